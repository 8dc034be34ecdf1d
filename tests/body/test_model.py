"""BodyModel: smplx wrapper for rotation matrices, ProHMR joints, file resolution, mean params."""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import io
import logging
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse
import smplx
import torch
from scipy.spatial.transform import Rotation
from smplx.utils import Struct

from prohmr.body.joints import (
    EXTRA_JOINT_NAMES,
    PELVIS_INDEX,
    PROHMR_JOINT_NAMES,
    SMPL_JOINT_NAMES,
    SMPL_PARENTS,
    SMPLX_TO_BODY25,
)
from prohmr.body.model import (
    EXTRA_REGRESSOR_FILENAME,
    MEAN_PARAMS_FILENAME,
    SMPL_DIR_ENV_VAR,
    BodyModel,
    BodyOutput,
    create_body_model,
    load_mean_params,
    resolve_body_model_path,
)
from prohmr.body.smpl_io import load_smpl_file

NUM_VERTICES = 6890
HAS_PROCEDURAL = importlib.util.find_spec("prohmr.body.procedural") is not None
needs_procedural = pytest.mark.skipif(not HAS_PROCEDURAL, reason="prohmr.body.procedural missing")


def random_model_folder(folder: Path, seed: int = 0) -> Path:
    """Write a random SMPL-format model, its 19-joint regressor and mean params to ``folder``.

    Row 14 (MPII pelvis) of the extra regressor equals SMPL's pelvis row of ``J_regressor``.
    """
    rng = np.random.default_rng(seed)
    regressor = rng.random((24, NUM_VERTICES)) * (rng.random((24, NUM_VERTICES)) < 0.01)
    regressor[:, 0] += 0.05
    regressor /= regressor.sum(1, keepdims=True)
    weights = rng.random((NUM_VERTICES, 24)) ** 8
    data = {
        "v_template": rng.normal(scale=0.3, size=(NUM_VERTICES, 3)),
        "f": ((np.arange(13776)[:, None] + np.arange(3)) % NUM_VERTICES).astype(np.uint32),
        "shapedirs": rng.normal(scale=0.02, size=(NUM_VERTICES, 3, 10)),
        "posedirs": rng.normal(scale=0.002, size=(NUM_VERTICES, 3, 207)),
        "J_regressor": scipy.sparse.csc_matrix(regressor),
        "weights": weights / weights.sum(1, keepdims=True),
        "kintree_table": np.array([[4294967295, *SMPL_PARENTS[1:]], list(range(24))], np.int64),
    }
    extra = rng.random((19, NUM_VERTICES)) * (rng.random((19, NUM_VERTICES)) < 0.01)
    extra[:, 1] += 0.05
    extra /= extra.sum(1, keepdims=True)
    extra[14] = regressor[0]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "SMPL_NEUTRAL.pkl").write_bytes(pickle.dumps(data, protocol=2))
    (folder / EXTRA_REGRESSOR_FILENAME).write_bytes(pickle.dumps(extra, protocol=2))
    np.savez(folder / MEAN_PARAMS_FILENAME, pose=rng.normal(size=144), shape=rng.normal(size=10),
             cam=np.array([0.9, 0.0, 0.1]))
    return folder


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return random_model_folder(tmp_path_factory.mktemp("smpl"))


@pytest.fixture(scope="module")
def base_body(model_dir: Path) -> BodyModel:
    return BodyModel(model_dir)


@pytest.fixture
def body(base_body: BodyModel, device: torch.device, dtype: torch.dtype) -> BodyModel:
    return copy.deepcopy(base_body).to(device=device, dtype=dtype)


def random_inputs(
    batch_shape: tuple[int, ...], seed: int = 0, dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> dict[str, torch.Tensor]:
    """Uniformly random rotations (scipy) and N(0,1) betas."""
    count = int(np.prod(batch_shape, dtype=np.int64))
    rotations = Rotation.random(max(count, 1) * 24, random_state=seed).as_matrix()
    rotations = torch.tensor(rotations[: count * 24], dtype=dtype, device=device)
    rotations = rotations.reshape(*batch_shape, 24, 3, 3)
    betas = torch.tensor(np.random.default_rng(seed).normal(size=(*batch_shape, 10)), dtype=dtype,
                         device=device)
    return {"global_orient": rotations[..., :1, :, :], "body_pose": rotations[..., 1:, :, :],
            "betas": betas}


def smplx_reference(model_file: Path, inputs: dict[str, torch.Tensor]) -> Any:
    """smplx's own SMPL in float64 with axis-angle input (converted with scipy)."""
    with contextlib.redirect_stdout(io.StringIO()):
        model = smplx.SMPL(model_path=str(model_file),
                           data_struct=Struct(**load_smpl_file(model_file)), dtype=torch.float64)
    rotations = torch.cat([inputs["global_orient"], inputs["body_pose"]], dim=-3)
    rotvec = Rotation.from_matrix(rotations.reshape(-1, 3, 3).double().cpu().numpy()).as_rotvec()
    rotvec = torch.tensor(rotvec).reshape(-1, 72)
    with torch.no_grad():
            return model(global_orient=rotvec[:, :3], body_pose=rotvec[:, 3:],
                     betas=inputs["betas"].reshape(-1, 10).double().cpu())


def tolerance(dtype: torch.dtype, float64_atol: float = 1e-10) -> dict[str, float]:
    return {"rtol": 0.0, "atol": 1e-5 if dtype == torch.float32 else float64_atol}


#: smplx's Rodrigues adds 1e-8 to every axis-angle vector: the axis-angle path differs by
#: that much from exact rotation matrices even in float64.
RODRIGUES_ATOL = 1e-7


# --- agreement with smplx and the joint layout --------------------------------------------


def test_matches_smplx_with_axis_angle(body, model_dir, device, dtype):
    inputs = random_inputs((5,), seed=1, dtype=dtype, device=device)
    out = body(**inputs)
    reference = smplx_reference(model_dir / "SMPL_NEUTRAL.pkl", inputs)
    tol = tolerance(dtype, RODRIGUES_ATOL)
    ref_vertices = reference.vertices.to(device=device, dtype=dtype)
    torch.testing.assert_close(out.vertices, ref_vertices, **tol)
    torch.testing.assert_close(out.smpl_joints, reference.joints[:, :24].to(device, dtype), **tol)
    body25 = reference.joints[:, list(SMPLX_TO_BODY25)]
    torch.testing.assert_close(out.joints[:, :25], body25.to(device, dtype), **tol)
    with (model_dir / EXTRA_REGRESSOR_FILENAME).open("rb") as handle:
        extra_regressor = pickle.load(handle)
    extra = np.einsum("jv,bvc->bjc", extra_regressor, reference.vertices.numpy())
    torch.testing.assert_close(out.joints[:, 25:], torch.tensor(extra, device=device, dtype=dtype),
                               **tol)
    assert out.vertices.dtype == dtype and out.vertices.device.type == device.type


def test_leading_dims_match_a_loop(base_body):
    inputs = random_inputs((2, 3), seed=2)
    out = base_body(**inputs)
    assert out.vertices.shape == (2, 3, NUM_VERTICES, 3)
    assert out.joints.shape == (2, 3, 44, 3) and out.smpl_joints.shape == (2, 3, 24, 3)
    for i in range(2):
        for j in range(3):
            single = base_body(**{k: v[i, j] for k, v in inputs.items()})
            assert single.vertices.shape == (NUM_VERTICES, 3)
            for name in out.keys():
                torch.testing.assert_close(out[name][i, j], single[name], rtol=0, atol=1e-6)
    flat = base_body(**{k: v.reshape(6, *v.shape[2:]) for k, v in inputs.items()})
    torch.testing.assert_close(flat.joints.reshape(2, 3, 44, 3), out.joints, rtol=0, atol=1e-6)


def test_empty_batch(base_body):
    eye = torch.eye(3).expand(0, 4, 24, 3, 3)
    out = base_body(eye[..., :1, :, :], eye[..., 1:, :, :], torch.zeros(0, 1, 10))
    assert out.vertices.shape == (0, 4, NUM_VERTICES, 3)
    assert out.joints.shape == (0, 4, 44, 3) and out.smpl_joints.shape == (0, 4, 24, 3)


def test_broadcasting_and_translation(base_body):
    inputs = random_inputs((2, 4), seed=3)
    inputs["betas"] = inputs["betas"][:, :1]  # one shape per image, shared by its samples
    transl = torch.tensor([0.5, -1.0, 20.0])
    out = base_body(**inputs, transl=transl)
    expanded = dict(inputs, betas=inputs["betas"].expand(2, 4, 10))
    reference = base_body(**expanded)
    for name in out.keys():
        torch.testing.assert_close(out[name], reference[name] + transl, rtol=0, atol=1e-5)


def test_wrists_and_pelvis_coincide(base_body):
    out = base_body(**random_inputs((3,), seed=4))
    right_wrist, left_wrist = SMPL_JOINT_NAMES.index("right_wrist"), SMPL_JOINT_NAMES.index(
        "left_wrist")
    assert (right_wrist, left_wrist) == (21, 20)
    assert PROHMR_JOINT_NAMES[4] == "RWrist" and PROHMR_JOINT_NAMES[7] == "LWrist"
    assert torch.equal(out.joints[:, 4], out.smpl_joints[:, right_wrist])
    assert torch.equal(out.joints[:, 7], out.smpl_joints[:, left_wrist])
    assert torch.equal(out.joints[:, 8], out.smpl_joints[:, 0])  # BODY_25 MidHip
    # The fixture's MPII pelvis row is SMPL's pelvis row: equal in the rest pose.
    eye = torch.eye(3).expand(3, 24, 3, 3)
    rest = base_body(eye[:, :1], eye[:, 1:], torch.randn(3, 10))
    assert PROHMR_JOINT_NAMES[PELVIS_INDEX] == "Pelvis_MPII"
    torch.testing.assert_close(rest.joints[:, PELVIS_INDEX], rest.smpl_joints[:, 0], rtol=0,
                               atol=1e-6)


def test_identity_pose_gives_rest_shape(body, model_dir, device, dtype):
    # smplx stores the model arrays in float32: the float64 reference uses the same values.
    data = {key: np.asarray(value.toarray() if scipy.sparse.issparse(value) else value,
                            dtype=np.float32).astype(np.float64)
            for key, value in load_smpl_file(model_dir / "SMPL_NEUTRAL.pkl").items()}
    betas = np.random.default_rng(5).normal(size=(2, 10))
    shaped = data["v_template"] + np.einsum("vck,bk->bvc", data["shapedirs"], betas)
    rest_joints = np.einsum("jv,bvc->bjc", data["J_regressor"], shaped)
    eye = torch.eye(3, dtype=dtype, device=device).expand(2, 24, 3, 3)
    out = body(eye[:, :1], eye[:, 1:], torch.tensor(betas, dtype=dtype, device=device))
    tol = tolerance(dtype)
    # Identity pose: each vertex is scaled by its skinning-weight sum (1 up to rounding).
    skinned = shaped * data["weights"].sum(1)[:, None]
    torch.testing.assert_close(out.vertices, torch.tensor(skinned, dtype=dtype, device=device),
                               **tol)
    torch.testing.assert_close(out.smpl_joints, torch.tensor(rest_joints, dtype=dtype,
                                                             device=device), **tol)


def test_gradients_reach_every_input(base_body):
    inputs = {k: v.clone().requires_grad_() for k, v in random_inputs((2,), seed=6).items()}
    transl = torch.zeros(2, 3, requires_grad=True)
    out = base_body(**inputs, transl=transl)
    (out.vertices.square().sum() + out.joints.square().sum()).backward()
    for name, value in {**inputs, "transl": transl}.items():
        assert value.grad is not None and value.grad.abs().sum() > 0, name


# --- module behaviour ----------------------------------------------------------------------


def test_attributes_state_dict_and_dtype(base_body, model_dir):
    data = load_smpl_file(model_dir / "SMPL_NEUTRAL.pkl")
    assert base_body.faces.dtype == torch.long
    np.testing.assert_array_equal(base_body.faces.numpy(), data["f"].astype(np.int64))
    assert base_body.num_vertices == NUM_VERTICES and base_body.num_betas == 10
    assert base_body.model_file == model_dir / "SMPL_NEUTRAL.pkl"
    assert base_body.extra_regressor_file == model_dir / EXTRA_REGRESSOR_FILENAME
    assert base_body.state_dict() == {}  # no licence-gated arrays in checkpoints
    double = copy.deepcopy(base_body).to(torch.float64)
    assert double.faces.dtype == torch.long
    assert {b.dtype for b in double.buffers() if b.is_floating_point()} == {torch.float64}
    inputs64 = {k: v.double() for k, v in random_inputs((2,), seed=9).items()}
    torch.testing.assert_close(double(**inputs64).vertices,
                               base_body(**random_inputs((2,), seed=9)).vertices.double(),
                               rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match=r"global_orient has dtype torch\.float32.*float64"):
        double(**random_inputs((1,)))
    assert len(EXTRA_JOINT_NAMES) == 19


def test_body_output_is_dict_like(base_body):
    out = base_body(**random_inputs((1,)))
    assert isinstance(out, BodyOutput)
    assert out.keys() == ["vertices", "joints", "smpl_joints"] == list(out)
    assert out["vertices"] is out.vertices and "joints" in out and len(out) == 3
    assert dict(out.items())["smpl_joints"] is out.smpl_joints
    assert out.get("missing") is None
    with pytest.raises(KeyError):
        out["faces"]


@pytest.mark.parametrize(
    "name, value, pattern",
    [
        ("global_orient", torch.eye(3).expand(2, 3, 3), r"global_orient.*\(\.\.\., 1, 3, 3\)"),
        ("body_pose", torch.eye(3).expand(2, 22, 3, 3), r"body_pose.*\(\.\.\., 23, 3, 3\)"),
        ("betas", torch.zeros(2, 11), r"betas.*\(\.\.\., 10\)"),
        ("transl", torch.zeros(2, 2), r"transl.*\(\.\.\., 3\)"),
        ("betas", np.zeros((2, 10)), r"betas must be a torch\.Tensor"),
        ("betas", torch.zeros(3, 10), r"do not broadcast"),
        ("body_pose", torch.eye(3).expand(2, 23, 3, 3).to(torch.float64), r"body_pose has dtype"),
    ],
)
def test_invalid_inputs(base_body, name, value, pattern):
    inputs = dict(random_inputs((2,)), transl=torch.zeros(2, 3))
    inputs[name] = value
    with pytest.raises(ValueError, match=pattern):
        base_body(**inputs)


@pytest.mark.parametrize("name", ["global_orient", "body_pose", "betas", "transl"])
def test_nan_input(base_body, name):
    inputs = dict(random_inputs((2,)), transl=torch.zeros(2, 3))
    inputs[name] = inputs[name].clone()
    inputs[name].view(-1)[-1] = float("nan")
    with pytest.raises(ValueError, match=f"{name} contains NaN"):
        base_body(**inputs)


# --- files and resolution -----------------------------------------------------------------


def test_missing_paths_name_path_and_env_var(tmp_path, monkeypatch, model_dir):
    monkeypatch.delenv(SMPL_DIR_ENV_VAR, raising=False)
    missing = tmp_path / "no_such_dir"
    with pytest.raises(FileNotFoundError) as info:
        BodyModel(missing)
    assert str(missing) in str(info.value) and SMPL_DIR_ENV_VAR in str(info.value)
    monkeypatch.setenv(SMPL_DIR_ENV_VAR, str(missing))
    with pytest.raises(FileNotFoundError, match=f"environment variable {SMPL_DIR_ENV_VAR}"):
        create_body_model()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=r"SMPL_NEUTRAL\.pkl") as info:
        BodyModel(empty)
    assert str(empty) in str(info.value)
    with pytest.raises(FileNotFoundError, match=r"SMPL_MALE\.pkl"):
        BodyModel(model_dir, gender="male")
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    (lonely / "SMPL_NEUTRAL.pkl").write_bytes((model_dir / "SMPL_NEUTRAL.pkl").read_bytes())
    with pytest.raises(FileNotFoundError, match=EXTRA_REGRESSOR_FILENAME) as info:
        BodyModel(lonely)
    assert str(lonely / EXTRA_REGRESSOR_FILENAME) in str(info.value)
    with pytest.raises(FileNotFoundError, match=MEAN_PARAMS_FILENAME):
        load_mean_params(lonely)


def test_explicit_path_beats_env_var_which_beats_default(tmp_path, monkeypatch, model_dir, caplog):
    monkeypatch.setenv(SMPL_DIR_ENV_VAR, str(tmp_path / "bogus"))
    assert resolve_body_model_path(model_dir) == model_dir
    monkeypatch.setenv(SMPL_DIR_ENV_VAR, str(model_dir))
    with caplog.at_level(logging.INFO, logger="prohmr.body.model"):
        body = create_body_model()
    assert body.model_file == model_dir / "SMPL_NEUTRAL.pkl"
    assert SMPL_DIR_ENV_VAR in caplog.text and str(model_dir) in caplog.text


def test_direct_file_paths_and_options(tmp_path, model_dir, base_body):
    data = load_smpl_file(model_dir / "SMPL_NEUTRAL.pkl")
    npz = tmp_path / "my_model.npz"
    np.savez(npz, **dict(data, J_regressor=data["J_regressor"].toarray()))
    extra = tmp_path / "extra.npy"
    with (model_dir / EXTRA_REGRESSOR_FILENAME).open("rb") as handle:
        np.save(extra, pickle.load(handle))
    body = BodyModel(npz, extra_regressor_path=extra, num_betas=6)
    assert body.model_file == npz and body.num_betas == 6
    inputs = random_inputs((2,), seed=7)
    six = body(inputs["global_orient"], inputs["body_pose"], inputs["betas"][:, :6])
    padded = torch.cat([inputs["betas"][:, :6], torch.zeros(2, 4)], dim=-1)
    ten = base_body(inputs["global_orient"], inputs["body_pose"], padded)
    torch.testing.assert_close(six.joints, ten.joints, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="num_betas=11 exceeds the 10 shape components"):
        BodyModel(model_dir, num_betas=11)
    with pytest.raises(ValueError, match="gender must be one of"):
        BodyModel(model_dir, gender="child")
    bad_extra = tmp_path / "bad.pkl"
    bad_extra.write_bytes(pickle.dumps(np.zeros((18, NUM_VERTICES))))
    with pytest.raises(ValueError, match=r"extra_regressor_path.*\(19, 6890\)"):
        BodyModel(model_dir, extra_regressor_path=bad_extra)


def test_load_mean_params(tmp_path, monkeypatch, model_dir):
    with np.load(model_dir / MEAN_PARAMS_FILENAME) as archive:
        expected = {key: archive[key] for key in ("pose", "shape", "cam")}
    for source in (model_dir, model_dir / MEAN_PARAMS_FILENAME):
        params = load_mean_params(source)
        assert list(params) == ["pose", "shape", "cam"]
        for key, value in params.items():
            assert value.dtype == torch.float32
            np.testing.assert_allclose(value.numpy(), expected[key], rtol=1e-6)
    monkeypatch.setenv(SMPL_DIR_ENV_VAR, str(model_dir))
    torch.testing.assert_close(load_mean_params()["cam"], torch.tensor([0.9, 0.0, 0.1]))
    broken = tmp_path / "broken.npz"
    np.savez(broken, pose=np.zeros(144), shape=np.zeros(9), cam=np.zeros(3))
    with pytest.raises(ValueError, match=r"'shape'.*\(10,\)"):
        load_mean_params(broken)
    np.savez(broken, pose=np.zeros(144), shape=np.zeros(10))
    with pytest.raises(ValueError, match="lacks the key 'cam'"):
        load_mean_params(broken)


# --- the procedural default ---------------------------------------------------------------


@pytest.fixture(scope="module")
def default_dir() -> Path:
    if not HAS_PROCEDURAL:
        pytest.skip("prohmr.body.procedural missing")
    from prohmr.body.procedural import default_body_model_dir

    return Path(default_body_model_dir())


@pytest.fixture(scope="module")
def default_body(default_dir: Path) -> BodyModel:
    return BodyModel(default_dir)


def test_default_is_used_without_path_or_env(monkeypatch, default_dir, caplog):
    monkeypatch.delenv(SMPL_DIR_ENV_VAR, raising=False)
    with caplog.at_level(logging.INFO, logger="prohmr.body.model"):
        assert resolve_body_model_path() == default_dir
    assert "procedural default" in caplog.text
    params = load_mean_params()
    assert {k: tuple(v.shape) for k, v in params.items()} == {
        "pose": (144,), "shape": (10,), "cam": (3,)}
    assert all(torch.isfinite(v).all() for v in params.values())


def test_default_loads_through_smplx_file_path(default_body, default_dir):
    """smplx reads the default folder by itself, and agrees with the wrapper."""
    inputs = random_inputs((3,), seed=8)
    with contextlib.redirect_stdout(io.StringIO()):
        reference = smplx.SMPL(model_path=str(default_dir), gender="neutral")
    rotations = torch.cat([inputs["global_orient"], inputs["body_pose"]], dim=-3)
    rotvec = torch.tensor(Rotation.from_matrix(rotations.reshape(-1, 3, 3).numpy()).as_rotvec(),
                          dtype=torch.float32).reshape(3, 72)
    with torch.no_grad():
        expected = reference(global_orient=rotvec[:, :3], body_pose=rotvec[:, 3:],
                             betas=inputs["betas"])
    out = default_body(**inputs)
    torch.testing.assert_close(out.vertices, expected.vertices, rtol=0, atol=1e-5)
    torch.testing.assert_close(out.joints[:, :25], expected.joints[:, list(SMPLX_TO_BODY25)],
                               rtol=0, atol=1e-5)
    with (default_dir / EXTRA_REGRESSOR_FILENAME).open("rb") as handle:
        extra_regressor = np.asarray(pickle.load(handle), dtype=np.float64)
    extra = np.einsum("jv,bvc->bjc", extra_regressor, expected.vertices.double().numpy())
    torch.testing.assert_close(out.joints[:, 25:], torch.tensor(extra, dtype=torch.float32),
                               rtol=0, atol=1e-5)


def test_default_rest_pose_and_wrists(default_body):
    eye = torch.eye(3).expand(24, 3, 3)
    rest = default_body(eye[:1], eye[1:], torch.zeros(10))
    data = load_smpl_file(default_body.model_file)
    regressor = data["J_regressor"]
    regressor = regressor.toarray() if scipy.sparse.issparse(regressor) else regressor
    torch.testing.assert_close(rest.vertices, torch.tensor(data["v_template"], dtype=torch.float32),
                               rtol=0, atol=1e-5)
    torch.testing.assert_close(rest.smpl_joints, torch.tensor(regressor @ data["v_template"],
                                                              dtype=torch.float32),
                               rtol=0, atol=1e-5)
    assert torch.equal(rest.joints[4], rest.smpl_joints[21])
    assert torch.equal(rest.joints[7], rest.smpl_joints[20])
    # The MPII pelvis sits near SMPL's pelvis on any sensible body (metres).
    assert torch.linalg.norm(rest.joints[PELVIS_INDEX] - rest.smpl_joints[0]) < 0.1
