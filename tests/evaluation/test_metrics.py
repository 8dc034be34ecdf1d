"""Deterministic metrics against per-item numpy loops and analytic cases."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from prohmr.body.joints import (
    EVAL_JOINTS_14,
    EXTRA_JOINT_NAMES,
    H36M_17_FROM_EXTRA,
    H36M_17_INPUT_2D,
    PELVIS_INDEX,
)
from prohmr.evaluation.metrics import (
    H36M_17,
    H36M_17_FROM_44,
    JOINT_PROTOCOLS,
    MEAN_OF_HIPS_14,
    MILLIMETRES_PER_METRE,
    PROHMR_14,
    JointProtocol,
    acceleration,
    acceleration_error,
    centre_and_select,
    mpjpe,
    pa_mpjpe,
    pve,
)

PROTOCOLS_ON_44 = [PROHMR_14, MEAN_OF_HIPS_14, H36M_17_FROM_44]


def _t(values, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values, dtype=np.float64), dtype=dtype, device=device)


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().double().numpy()


def _tol(dtype: torch.dtype) -> float:
    """Absolute tolerance in millimetres for metres-scale inputs."""
    return 2e-3 if dtype == torch.float32 else 1e-8


def _assert_full(actual: torch.Tensor, value: float) -> None:
    """``actual`` is ``value`` (millimetres) everywhere, within the dtype's tolerance."""
    expected = torch.full_like(actual, value)
    torch.testing.assert_close(actual, expected, rtol=0, atol=_tol(actual.dtype))


# --- independent numpy references (one item at a time) ---------------------------------------
def _centre_select_one(points: np.ndarray, root, joints) -> np.ndarray:
    if root is None:
        origin = np.zeros(3)
    elif isinstance(root, int):
        origin = points[root]
    else:
        origin = np.mean([points[i] for i in root], axis=0)
    centred = points - origin
    return centred if joints is None else np.stack([centred[i] for i in joints])


def _mean_distance_mm(a: np.ndarray, b: np.ndarray) -> float:
    return 1000.0 * float(np.mean([np.sqrt(np.sum((p - q) ** 2)) for p, q in zip(a, b)]))


def _umeyama_aligned(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Umeyama (1991) similarity alignment of (J, 3) source to target, no reflections."""
    mu_x, mu_y = source.mean(0), target.mean(0)
    x, y = source - mu_x, target - mu_y
    covariance = y.T @ x / len(x)
    u, d, vt = np.linalg.svd(covariance)
    s = np.eye(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        s[2, 2] = -1.0
    rotation = u @ s @ vt
    scale = np.trace(np.diag(d) @ s) / ((x**2).sum() / len(x))
    return scale * x @ rotation.T + mu_y


def _reference(pred: np.ndarray, gt: np.ndarray, protocol: JointProtocol, aligned: bool) -> np.ndarray:
    out = np.zeros(pred.shape[:-2])
    for index in np.ndindex(out.shape):
        p = _centre_select_one(pred[index], protocol.root, protocol.joint_indices)
        g = _centre_select_one(gt[index], protocol.root, protocol.joint_indices)
        out[index] = _mean_distance_mm(_umeyama_aligned(p, g) if aligned else p, g)
    return out


def _joints(rng: np.random.Generator, batch: tuple[int, ...], num_joints: int = 44) -> tuple[np.ndarray, np.ndarray]:
    gt = rng.normal(scale=0.3, size=(*batch, num_joints, 3)) + rng.normal(size=(*batch, 1, 3))
    pred = gt + rng.normal(scale=0.05, size=gt.shape) + rng.normal(scale=0.2, size=(*batch, 1, 3))
    return pred, gt


# --- protocols --------------------------------------------------------------------------------
def test_presets() -> None:
    assert MILLIMETRES_PER_METRE == 1000.0
    assert PROHMR_14.root == PELVIS_INDEX == 39 and PROHMR_14.joint_indices == EVAL_JOINTS_14
    assert PELVIS_INDEX not in EVAL_JOINTS_14
    assert MEAN_OF_HIPS_14.root == (27, 28) and MEAN_OF_HIPS_14.joint_indices == EVAL_JOINTS_14
    assert [EXTRA_JOINT_NAMES[i - 25] for i in MEAN_OF_HIPS_14.root] == ["R_Hip", "L_Hip"]
    # The 14-set's hips are its entries 2 and 3 (VIBE's `j3ds[:, [2, 3]]`).
    assert EVAL_JOINTS_14[2:4] == (27, 28)
    assert H36M_17.joint_indices is None and EXTRA_JOINT_NAMES[H36M_17_FROM_EXTRA[H36M_17.root]] == "Pelvis_MPII"
    assert H36M_17.root == 13 and H36M_17.required_joints() == 14
    assert H36M_17_FROM_44.joint_indices == H36M_17_INPUT_2D and H36M_17_FROM_44.root == 39
    assert set(JOINT_PROTOCOLS) == {"prohmr_14", "mean_of_hips_14", "h36m_17", "h36m_17_from_44"}
    assert all(JOINT_PROTOCOLS[name].name == name for name in JOINT_PROTOCOLS)
    assert PROHMR_14.required_joints() == 44


def test_protocol_normalises_and_validates() -> None:
    protocol = JointProtocol("custom", [3, 1], [0, 2])  # type: ignore[arg-type]
    assert protocol.joint_indices == (3, 1) and protocol.root == (0, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        protocol.root = 1  # type: ignore[misc]
    for bad in [dict(name=""), dict(joint_indices=()), dict(joint_indices=(1, -2)), dict(root=-1),
                dict(root=()), dict(root=(1, 2.0)), dict(root=True), dict(joint_indices=(0.5,))]:
        arguments = dict(name="bad", joint_indices=(0,), root=None) | bad
        with pytest.raises(ValueError, match="JointProtocol"):
            JointProtocol(**arguments)


# --- MPJPE ------------------------------------------------------------------------------------
@pytest.mark.parametrize("protocol", PROTOCOLS_ON_44, ids=lambda p: p.name)
@pytest.mark.parametrize("batch", [(), (5,), (2, 3)], ids=str)
def test_mpjpe_matches_loop(protocol: JointProtocol, batch: tuple[int, ...], device: torch.device,
                            dtype: torch.dtype) -> None:
    pred, gt = _joints(np.random.default_rng(0), batch)
    actual = mpjpe(_t(pred, device, dtype), _t(gt, device, dtype), protocol)
    assert actual.shape == batch and actual.dtype == dtype and actual.device.type == device.type
    np.testing.assert_allclose(_numpy(actual), _reference(pred, gt, protocol, aligned=False), rtol=0, atol=_tol(dtype))


def test_h36m_17_on_17_joint_arrays(device: torch.device, dtype: torch.dtype) -> None:
    pred, gt = _joints(np.random.default_rng(1), (4,))
    from_44 = mpjpe(_t(pred, device, dtype), _t(gt, device, dtype), H36M_17_FROM_44)
    picked = list(H36M_17_INPUT_2D)
    on_17 = mpjpe(_t(pred[:, picked], device, dtype), _t(gt[:, picked], device, dtype), H36M_17)
    torch.testing.assert_close(on_17, from_44)
    np.testing.assert_allclose(_numpy(on_17), _reference(pred[:, picked], gt[:, picked], H36M_17, False), atol=_tol(dtype))


def test_millimetre_scaling(device: torch.device, dtype: torch.dtype) -> None:
    gt = _t(np.random.default_rng(2).normal(size=(3, 44, 3)), device, dtype)
    pred = gt.clone()
    pred[:, list(EVAL_JOINTS_14)] += _t([0.006, 0.0, 0.008], device, dtype)  # 1 cm, pelvis fixed
    _assert_full(mpjpe(pred, gt), 10.0)


def test_pelvis_centring_order(device: torch.device, dtype: torch.dtype) -> None:
    """Centring uses the pelvis from the full array before selecting the 14 joints."""
    rng = np.random.default_rng(3)
    gt = _t(rng.normal(size=(2, 44, 3)), device, dtype)
    shift = _t([0.03, -0.04, 0.0], device, dtype)  # 5 cm
    moved_pelvis = gt.clone()
    moved_pelvis[:, PELVIS_INDEX] += shift
    # Every evaluated joint moves by -shift relative to the pelvis, although the pelvis itself
    # is not evaluated.
    _assert_full(mpjpe(moved_pelvis, gt), 50.0)
    # A global translation changes nothing, nor does moving a joint outside the protocol.
    translated = gt + _t(rng.normal(size=(2, 1, 3)), device, dtype)
    _assert_full(mpjpe(translated, gt), 0.0)
    moved_nose = gt.clone()
    moved_nose[:, 0] += 1.0
    assert float(mpjpe(moved_nose, gt).abs().max()) == 0.0
    # Without centring, the global translation is the whole error.
    offset = _t([0.0, 0.0, 0.02], device, dtype)
    _assert_full(mpjpe(gt + offset, gt, root=None), 20.0)


def test_mean_of_hips_root(device: torch.device, dtype: torch.dtype) -> None:
    gt = _t(np.random.default_rng(4).normal(size=(2, 44, 3)), device, dtype)
    shift = _t([0.0, 0.06, 0.08], device, dtype)  # 10 cm
    right_hip = gt.clone()
    right_hip[:, 27] += shift
    # The root moves by shift / 2: all 14 joints (the moved hip too) are off by 5 cm.
    _assert_full(mpjpe(right_hip, gt, MEAN_OF_HIPS_14), 50.0)
    both_hips = gt.clone()
    both_hips[:, [27, 28]] += shift
    # The root moves by shift: the 12 other joints are off by 10 cm, the hips by 0.
    _assert_full(mpjpe(both_hips, gt, MEAN_OF_HIPS_14), 100.0 * 12 / 14)
    moved_pelvis = gt.clone()
    moved_pelvis[:, PELVIS_INDEX] += shift
    assert float(mpjpe(moved_pelvis, gt, MEAN_OF_HIPS_14).abs().max()) == 0.0
    assert float(mpjpe(moved_pelvis, gt, PROHMR_14).min()) > 99.0


def test_keyword_overrides(device: torch.device, dtype: torch.dtype) -> None:
    pred, gt = _joints(np.random.default_rng(5), (3,), num_joints=6)
    custom = JointProtocol("custom", (1, 4, 5), (0, 2))
    expected = _reference(pred, gt, custom, aligned=False)
    actual = mpjpe(_t(pred, device, dtype), _t(gt, device, dtype), root=(0, 2), joint_indices=(1, 4, 5))
    np.testing.assert_allclose(_numpy(actual), expected, atol=_tol(dtype))
    torch.testing.assert_close(actual, mpjpe(_t(pred, device, dtype), _t(gt, device, dtype), custom))
    everything = JointProtocol("all", None, 3)
    actual = mpjpe(_t(pred, device, dtype), _t(gt, device, dtype), custom, root=3, joint_indices=None)
    np.testing.assert_allclose(_numpy(actual), _reference(pred, gt, everything, False), atol=_tol(dtype))


def test_centre_and_select(device: torch.device, dtype: torch.dtype) -> None:
    points = np.random.default_rng(6).normal(size=(2, 3, 44, 3))
    actual = centre_and_select(_t(points, device, dtype), MEAN_OF_HIPS_14)
    assert actual.shape == (2, 3, 14, 3)
    expected = np.stack([[_centre_select_one(p, (27, 28), EVAL_JOINTS_14) for p in row] for row in points])
    np.testing.assert_allclose(_numpy(actual), expected, atol=1e-6 if dtype == torch.float32 else 1e-12)


# --- PA-MPJPE ---------------------------------------------------------------------------------
@pytest.mark.parametrize("protocol", PROTOCOLS_ON_44, ids=lambda p: p.name)
@pytest.mark.parametrize("batch", [(), (6,), (2, 3)], ids=str)
def test_pa_mpjpe_matches_umeyama_loop(protocol: JointProtocol, batch: tuple[int, ...], device: torch.device,
                                       dtype: torch.dtype) -> None:
    pred, gt = _joints(np.random.default_rng(7), batch)
    actual = pa_mpjpe(_t(pred, device, dtype), _t(gt, device, dtype), protocol)
    assert actual.shape == batch and actual.dtype == dtype
    expected = _reference(pred, gt, protocol, aligned=True)
    np.testing.assert_allclose(_numpy(actual), expected, rtol=0, atol=_tol(dtype))
    # Alignment really happened: PA-MPJPE is below MPJPE and differs from it.
    assert np.all(expected < _reference(pred, gt, protocol, aligned=False) - 1.0)


def test_pa_mpjpe_of_similarity_is_zero(device: torch.device, dtype: torch.dtype) -> None:
    rng = np.random.default_rng(8)
    gt = rng.normal(scale=0.3, size=(5, 44, 3))
    rotation = Rotation.random(5, random_state=9).as_matrix()
    scale = rng.uniform(0.5, 2.0, size=(5, 1, 1))
    pred = scale * (gt @ np.swapaxes(rotation, -1, -2)) + rng.normal(size=(5, 1, 3))
    actual = pa_mpjpe(_t(pred, device, dtype), _t(gt, device, dtype))
    np.testing.assert_allclose(_numpy(actual), 0.0, atol=5e-3 if dtype == torch.float32 else 1e-8)
    assert float(mpjpe(_t(pred, device, dtype), _t(gt, device, dtype)).min()) > 10.0


def test_pa_mpjpe_excludes_reflections(device: torch.device, dtype: torch.dtype) -> None:
    rng = np.random.default_rng(10)
    pred = rng.normal(scale=0.3, size=(4, 44, 3))
    rotation = Rotation.random(4, random_state=11).as_matrix()
    # The ground truth is a mirrored, rotated and translated copy of the prediction.
    gt = (pred * np.array([-1.0, 1.0, 1.0])) @ np.swapaxes(rotation, -1, -2) + rng.normal(size=(4, 1, 3))
    actual = _numpy(pa_mpjpe(_t(pred, device, dtype), _t(gt, device, dtype)))
    expected = _reference(pred, gt, PROHMR_14, aligned=True)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=_tol(dtype))
    assert np.all(actual > 50.0)
    # An orthogonal Procrustes that allowed reflections would reach zero on these inputs.
    for p, g in zip(pred[:, list(EVAL_JOINTS_14)], gt[:, list(EVAL_JOINTS_14)]):
        x, y = p - p.mean(0), g - g.mean(0)
        u, _, vt = np.linalg.svd(y.T @ x)
        reflected = x @ (u @ vt).T + g.mean(0)
        assert _mean_distance_mm(reflected, g) < 1e-6


def test_pa_mpjpe_uses_only_selected_joints(device: torch.device, dtype: torch.dtype) -> None:
    rng = np.random.default_rng(12)
    gt = rng.normal(scale=0.3, size=(2, 44, 3))
    pred = gt.copy()
    pred[:, :25] += rng.normal(size=(2, 25, 3))  # OpenPose joints are not evaluated
    pred[:, 38:43] += rng.normal(size=(2, 5, 3))
    actual = pa_mpjpe(_t(pred, device, dtype), _t(gt, device, dtype))
    np.testing.assert_allclose(_numpy(actual), 0.0, atol=5e-3 if dtype == torch.float32 else 1e-8)


# --- PVE --------------------------------------------------------------------------------------
def test_pve(device: torch.device, dtype: torch.dtype) -> None:
    rng = np.random.default_rng(13)
    gt = rng.normal(scale=0.3, size=(2, 3, 50, 3))
    pred = gt + rng.normal(scale=0.02, size=gt.shape) + rng.normal(scale=0.1, size=(2, 3, 1, 3))
    pred_root, gt_root = rng.normal(size=(2, 3, 3)), rng.normal(size=(2, 3, 3))
    references = {
        "none": [(p, g) for p, g in zip(pred.reshape(-1, 50, 3), gt.reshape(-1, 50, 3))],
        "centroid": [(p - p.mean(0), g - g.mean(0)) for p, g in zip(pred.reshape(-1, 50, 3), gt.reshape(-1, 50, 3))],
        "given": [(p - pr, g - gr) for p, g, pr, gr in zip(pred.reshape(-1, 50, 3), gt.reshape(-1, 50, 3),
                                                             pred_root.reshape(-1, 3), gt_root.reshape(-1, 3))],
    }
    modes = {"none": False, "centroid": True,
             "given": (_t(pred_root, device, dtype), _t(gt_root, device, dtype))}
    for name, root_align in modes.items():
        actual = pve(_t(pred, device, dtype), _t(gt, device, dtype), root_align=root_align)
        assert actual.shape == (2, 3)
        expected = np.array([_mean_distance_mm(p, g) for p, g in references[name]]).reshape(2, 3)
        np.testing.assert_allclose(_numpy(actual), expected, rtol=0, atol=_tol(dtype))
    assert not np.allclose(*[np.array([_mean_distance_mm(p, g) for p, g in references[n]]) for n in ("none", "centroid")])


# --- acceleration -----------------------------------------------------------------------------
def _vibe_accel_error(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray | None) -> np.ndarray:
    """VIBE's compute_error_accel, frame by frame (inputs already centred and selected)."""
    errors = []
    for t in range(len(pred) - 2):
        a_pred = pred[t] - 2 * pred[t + 1] + pred[t + 2]
        a_gt = gt[t] - 2 * gt[t + 1] + gt[t + 2]
        if visible is None or (visible[t] and visible[t + 1] and visible[t + 2]):
            errors.append(1000.0 * np.mean([np.linalg.norm(a_pred[j] - a_gt[j]) for j in range(len(a_pred))]))
    return np.array(errors)


def test_acceleration_error_constant_velocity_vs_parabola(device: torch.device, dtype: torch.dtype) -> None:
    """Hips fixed, other joints: GT x0 + a t^2 / 2, prediction x0 + v t. Error = mean_j |a_j|."""
    rng = np.random.default_rng(14)
    frames = np.arange(9.0)[:, None, None]
    start = rng.normal(scale=0.3, size=(1, 44, 3))
    accel = rng.normal(scale=0.002, size=(1, 44, 3))
    velocity = rng.normal(scale=0.01, size=(1, 44, 3))
    accel[:, [27, 28]] = velocity[:, [27, 28]] = 0.0
    gt = start + 0.5 * accel * frames**2
    pred = start + velocity * frames
    actual = acceleration_error(_t(pred, device, dtype), _t(gt, device, dtype))
    expected = 1000.0 * np.linalg.norm(accel[0, list(EVAL_JOINTS_14)], axis=-1).mean()
    assert actual.shape == (7,)
    np.testing.assert_allclose(_numpy(actual), expected, rtol=0, atol=1e-4 if dtype == torch.float32 else 1e-9)
    # The prediction's own acceleration is zero, the ground truth's is the same constant.
    np.testing.assert_allclose(_numpy(acceleration(_t(pred, device, dtype))), 0.0, atol=1e-4)
    np.testing.assert_allclose(_numpy(acceleration(_t(gt, device, dtype))), expected, atol=1e-4)


@pytest.mark.parametrize("protocol", PROTOCOLS_ON_44, ids=lambda p: p.name)
def test_acceleration_error_matches_vibe_loop(protocol: JointProtocol, device: torch.device, dtype: torch.dtype) -> None:
    rng = np.random.default_rng(15)
    gt = np.cumsum(rng.normal(scale=0.01, size=(12, 44, 3)), axis=0)
    pred = gt + rng.normal(scale=0.005, size=gt.shape)
    visible = np.ones(12, dtype=bool)
    visible[[0, 5, 11]] = False
    centred = [np.stack([_centre_select_one(f, protocol.root, protocol.joint_indices) for f in x]) for x in (pred, gt)]
    tol = 1e-3 if dtype == torch.float32 else 1e-9
    for mask in (None, visible):
        actual = acceleration_error(_t(pred, device, dtype), _t(gt, device, dtype),
                                    None if mask is None else torch.as_tensor(mask), protocol)
        expected = _vibe_accel_error(*centred, mask)
        assert actual.shape == expected.shape
        np.testing.assert_allclose(_numpy(actual), expected, rtol=0, atol=tol)
    # Windows 1, 2, 6, 7, 8 are the only ones whose three frames are all visible.
    assert len(_vibe_accel_error(*centred, visible)) == 5
    batched = acceleration_error(_t(np.stack([pred, gt]), device, dtype), _t(np.stack([gt, gt]), device, dtype),
                                 protocol=protocol)
    assert batched.shape == (2, 10)
    np.testing.assert_allclose(_numpy(batched[0]), _vibe_accel_error(*centred, None), rtol=0, atol=tol)
    assert float(batched[1].abs().max()) == 0.0


# --- validation -------------------------------------------------------------------------------
def test_validation() -> None:
    good = torch.zeros(2, 44, 3)
    nan = good.clone()
    nan[1, 30, 2] = float("nan")
    inf = good.clone()
    inf[0, 0, 0] = float("inf")
    for function in (mpjpe, pa_mpjpe):
        with pytest.raises(ValueError, match="`gt` must have the shape of `pred`"):
            function(good, torch.zeros(3, 44, 3))
        with pytest.raises(ValueError, match="`pred` contains NaN"):
            function(nan, good)
        with pytest.raises(ValueError, match="`gt` contains NaN"):
            function(good, inf)
        with pytest.raises(ValueError, match="`pred` must have shape \\(\\.\\.\\., J, 3\\)"):
            function(torch.zeros(2, 44, 2), torch.zeros(2, 44, 2))
        with pytest.raises(ValueError, match="`pred` must be a torch.Tensor"):
            function(np.zeros((2, 44, 3)), good)
        with pytest.raises(ValueError, match="floating point"):
            function(good.long(), good.long())
        with pytest.raises(ValueError, match="protocol 'prohmr_14' indexes joint 43.*\\(\\.\\.\\., 17, 3\\)"):
            function(torch.zeros(2, 17, 3), torch.zeros(2, 17, 3))
        with pytest.raises(ValueError, match="`protocol` must be a JointProtocol"):
            function(good, good, "prohmr_14")
        with pytest.raises(ValueError, match="dtype"):
            function(good, good.double())
    with pytest.raises(ValueError, match="`gt_vertices` must have the shape"):
        pve(torch.zeros(2, 10, 3), torch.zeros(2, 11, 3))
    with pytest.raises(ValueError, match="`pred_vertices` contains NaN"):
        pve(torch.full((1, 4, 3), float("nan")), torch.zeros(1, 4, 3))
    with pytest.raises(ValueError, match="gt_root must be a tensor of shape \\(2, 3\\)"):
        pve(torch.zeros(2, 10, 3), torch.zeros(2, 10, 3), (torch.zeros(2, 3), torch.zeros(3)))
    with pytest.raises(ValueError, match="`root_align` must be a bool"):
        pve(torch.zeros(2, 10, 3), torch.zeros(2, 10, 3), "pelvis")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="T >= 3"):
        acceleration_error(torch.zeros(2, 44, 3), torch.zeros(2, 44, 3))
    with pytest.raises(ValueError, match="`visible` must be a tensor of shape \\(5,\\)"):
        acceleration_error(torch.zeros(5, 44, 3), torch.zeros(5, 44, 3), torch.ones(4, dtype=torch.bool))
    with pytest.raises(ValueError, match="`joints` contains NaN"):
        acceleration(torch.full((5, 44, 3), float("nan")))
    with pytest.raises(ValueError, match="`points` must have shape"):
        centre_and_select(torch.zeros(44))
