"""The procedural default body model: format, topology, rig, shape space and cache."""

from __future__ import annotations

import collections
import json
import math
import pickle
import threading
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import scipy.sparse
import smplx
import torch
from scipy.spatial.transform import Rotation

from prohmr.body.joints import (
    EXTRA_JOINT_NAMES,
    SMPL_JOINT_NAMES,
    SMPL_PARENTS,
    SMPLX_LANDMARK_NAMES,
    SMPLX_LANDMARK_VERTEX_IDS,
)
from prohmr.body.procedural import (
    CACHE_DIR_ENV_VAR,
    EXTRA_REGRESSOR_FILENAME,
    GENERATOR_VERSION,
    MEAN_PARAMS_FILENAME,
    METADATA_FILENAME,
    MODEL_DIRNAME,
    MODEL_FILENAME,
    SHAPE_COMPONENT_NAMES,
    TARGET_HEIGHT,
    build_procedural_body,
    default_body_model_dir,
    write_procedural_body,
)
from prohmr.body.smpl_io import load_smpl_pickle, safe_load_pickle

NUM_VERTICES = 6890
NUM_FACES = 13776
J = {name: i for i, name in enumerate(SMPL_JOINT_NAMES)}
SIDES = (("left", 1.0), ("right", -1.0))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_procedural_body(tmp_path_factory.mktemp("procedural") / "model")


@pytest.fixture(scope="module")
def model(model_dir: Path) -> dict[str, Any]:
    with (model_dir / MODEL_FILENAME).open("rb") as handle:
        return pickle.load(handle)


@pytest.fixture(scope="module")
def vertices(model: dict[str, Any]) -> np.ndarray:
    return model["v_template"]


@pytest.fixture(scope="module")
def faces(model: dict[str, Any]) -> np.ndarray:
    return np.asarray(model["f"], dtype=np.int64)


@pytest.fixture(scope="module")
def regressor(model: dict[str, Any]) -> np.ndarray:
    return model["J_regressor"].toarray()


@pytest.fixture(scope="module")
def rest_joints(regressor: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    return regressor @ vertices


@pytest.fixture(scope="module")
def extra_regressor(model_dir: Path) -> np.ndarray:
    with (model_dir / EXTRA_REGRESSOR_FILENAME).open("rb") as handle:
        return pickle.load(handle)


def winding_numbers(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Generalised winding number of each point (1 inside a closed outward mesh, 0 outside),
    by summing triangle solid angles (Van Oosterom & Strackee)."""
    a, b, c = (vertices[faces[:, k]][None] - points[:, None] for k in range(3))
    la, lb, lc = (np.linalg.norm(x, axis=2) for x in (a, b, c))
    det = np.einsum("pfi,pfi->pf", a, np.cross(b, c))
    dots = (la * lb * lc + np.einsum("pfi,pfi->pf", a, b) * lc
            + np.einsum("pfi,pfi->pf", a, c) * lb + np.einsum("pfi,pfi->pf", b, c) * la)
    return 2.0 * np.arctan2(det, dots).sum(axis=1) / (4.0 * np.pi)


def height(vertices: np.ndarray) -> float:
    return float(vertices[:, 1].max() - vertices[:, 1].min())


# --- file format and loading -------------------------------------------------------------

def test_files_written(model_dir: Path) -> None:
    names = {p.name for p in model_dir.iterdir()}
    assert {MODEL_FILENAME, EXTRA_REGRESSOR_FILENAME, MEAN_PARAMS_FILENAME,
            METADATA_FILENAME, "README.txt"} <= names
    metadata = json.loads((model_dir / METADATA_FILENAME).read_text())
    assert metadata["generator_version"] == GENERATOR_VERSION
    assert metadata["is_smpl"] is False
    assert "NOT SMPL" in (model_dir / "README.txt").read_text()


def test_pickle_has_smpl_keys(model: dict[str, Any]) -> None:
    assert model["v_template"].shape == (NUM_VERTICES, 3)
    assert model["f"].shape == (NUM_FACES, 3)
    assert model["f"].dtype.kind in "iu"
    assert model["shapedirs"].shape == (NUM_VERTICES, 3, 10)
    assert model["posedirs"].shape == (NUM_VERTICES, 3, 207)
    assert not model["posedirs"].any()
    assert scipy.sparse.issparse(model["J_regressor"])
    assert model["J_regressor"].shape == (24, NUM_VERTICES)
    assert model["weights"].shape == (NUM_VERTICES, 24)
    kintree = model["kintree_table"]
    assert kintree.shape == (2, 24)
    assert kintree[0, 0] == 2**32 - 1
    assert kintree[0, 1:].tolist() == list(SMPL_PARENTS[1:])
    assert kintree[1].tolist() == list(range(24))
    assert model["shape_component_names"] == list(SHAPE_COMPONENT_NAMES)


def test_smplx_loads_it_unchanged(model_dir: Path, vertices: np.ndarray,
                                  rest_joints: np.ndarray) -> None:
    body = smplx.SMPL(model_path=str(model_dir))
    assert body.faces.shape == (NUM_FACES, 3)
    out = body()
    assert out.vertices.shape == (1, NUM_VERTICES, 3)
    assert out.joints.shape == (1, 45, 3)
    np.testing.assert_allclose(out.vertices[0].detach().numpy(), vertices, atol=1e-6)
    np.testing.assert_allclose(out.joints[0, :24].detach().numpy(), rest_joints, atol=1e-5)
    landmark_ids = [SMPLX_LANDMARK_VERTEX_IDS[name] for name in SMPLX_LANDMARK_NAMES]
    np.testing.assert_allclose(out.joints[0, 24:].detach().numpy(), vertices[landmark_ids],
                               atol=1e-6)


def test_restricted_loaders_accept_the_files(model_dir: Path, model: dict[str, Any],
                                             extra_regressor: np.ndarray) -> None:
    data = load_smpl_pickle(model_dir / MODEL_FILENAME)
    np.testing.assert_array_equal(data["v_template"], model["v_template"])
    np.testing.assert_array_equal(safe_load_pickle(model_dir / EXTRA_REGRESSOR_FILENAME),
                                  extra_regressor)


def test_mean_params(model_dir: Path) -> None:
    with np.load(model_dir / MEAN_PARAMS_FILENAME) as params:
        pose, shape, cam = params["pose"], params["shape"], params["cam"]
    assert pose.shape == (144,) and shape.shape == (10,) and cam.shape == (3,)
    assert not shape.any()
    assert 0.5 < cam[0] < 1.5 and cam[1] == 0 and cam[2] == 0
    # SPIN's interleaved layout: each 6-vector holds the rows of R[:, :2].
    columns = pose.reshape(24, 3, 2)
    first = columns[..., 0] / np.linalg.norm(columns[..., 0], axis=1, keepdims=True)
    second = columns[..., 1] - (first * columns[..., 1]).sum(1, keepdims=True) * first
    second /= np.linalg.norm(second, axis=1, keepdims=True)
    rotations = np.stack([first, second, np.cross(first, second)], axis=2)
    np.testing.assert_allclose(rotations[0], Rotation.from_euler("x", 180, degrees=True)
                               .as_matrix(), atol=1e-12)
    np.testing.assert_allclose(rotations[1:], np.broadcast_to(np.eye(3), (23, 3, 3)),
                               atol=1e-12)


# --- topology ------------------------------------------------------------------------------

def test_closed_consistently_oriented_manifold(vertices: np.ndarray, faces: np.ndarray) -> None:
    assert faces.min() == 0 and faces.max() == NUM_VERTICES - 1
    assert all(len(set(face)) == 3 for face in faces.tolist())
    directed = collections.Counter(
        (face[i], face[(i + 1) % 3]) for face in faces.tolist() for i in range(3)
    )
    # Each directed edge once, and its reverse once: every edge has exactly two faces
    # that traverse it in opposite directions.
    assert max(directed.values()) == 1
    assert all((b, a) in directed for a, b in directed)
    edges = {tuple(sorted(e)) for e in directed}
    assert NUM_VERTICES - len(edges) + len(faces) == 2  # Euler characteristic of a sphere


def test_single_component_no_isolated_vertices(faces: np.ndarray) -> None:
    parent = list(range(NUM_VERTICES))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b, c in faces.tolist():
        for u, v in ((a, b), (b, c)):
            parent[find(u)] = find(v)
    assert len({find(i) for i in range(NUM_VERTICES)}) == 1


def test_outward_orientation_and_volume(vertices: np.ndarray, faces: np.ndarray,
                                        rest_joints: np.ndarray) -> None:
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    volume = np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0
    assert 0.05 < volume < 0.1  # m^3: a 50-100 kg body at the density of water
    # Winding numbers: the joints are inside (1), points beside the body outside (0).
    outside = np.array([[0.0, 0.0, 0.5], [0.5, 0.0, 0.0], [0.0, 1.5, 0.0]])
    np.testing.assert_allclose(winding_numbers(rest_joints, vertices, faces), 1.0, atol=1e-6)
    np.testing.assert_allclose(winding_numbers(outside, vertices, faces), 0.0, atol=1e-6)


def test_no_degenerate_triangles(vertices: np.ndarray, faces: np.ndarray) -> None:
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    area = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)
    longest = np.max([np.linalg.norm(b - a, axis=1), np.linalg.norm(c - b, axis=1),
                      np.linalg.norm(a - c, axis=1)], axis=0)
    assert area.min() > 1e-8
    assert (2 * area / longest**2).min() > 0.02  # no needle or sliver triangles


# --- rig -----------------------------------------------------------------------------------

def test_skinning_weights(model: dict[str, Any], vertices: np.ndarray) -> None:
    weights = model["weights"]
    assert weights.min() >= 0.0
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-12)
    assert (weights > 0).sum(axis=1).max() <= 4
    dominant = weights.argmax(axis=1)
    assert set(dominant.tolist()) == set(range(24))  # every joint drives some vertices
    for side, sign in SIDES:
        for joint in ("hip", "knee", "ankle", "foot", "shoulder", "elbow", "wrist", "hand"):
            follows = weights[:, J[f"{side}_{joint}"]] > 0.3
            assert (sign * vertices[follows, 0] > 0).all(), (side, joint)
    ids = SMPLX_LANDMARK_VERTEX_IDS
    assert dominant[ids["nose"]] == J["head"]
    assert dominant[ids["lindex"]] == J["left_hand"]
    assert dominant[ids["rthumb"]] == J["right_hand"]
    assert dominant[ids["LBigToe"]] == J["left_foot"]
    assert dominant[ids["RHeel"]] == J["right_ankle"]


def test_regressors_normalised(regressor: np.ndarray, extra_regressor: np.ndarray) -> None:
    for rows, count in ((regressor, 24), (extra_regressor, len(EXTRA_JOINT_NAMES))):
        assert rows.shape == (count, NUM_VERTICES)
        assert rows.min() >= 0.0
        np.testing.assert_allclose(rows.sum(axis=1), 1.0, atol=1e-9)
        assert ((rows > 0).sum(axis=1) >= 3).all()  # an average, not a single vertex
        assert ((rows > 0).sum(axis=1) <= 400).all()  # and local


def test_rest_joints_in_anatomical_order(rest_joints: np.ndarray, vertices: np.ndarray) -> None:
    j = {name: rest_joints[i] for name, i in J.items()}
    assert np.linalg.norm(j["pelvis"]) < 0.01
    heights = [j[n][1] for n in ("pelvis", "spine1", "spine2", "spine3", "neck", "head")]
    assert heights == sorted(heights)
    for side, sign in SIDES:
        joint = {n: j[f"{side}_{n}"] for n in ("hip", "knee", "ankle", "foot", "collar",
                                                "shoulder", "elbow", "wrist", "hand")}
        assert all(sign * p[0] > 0.03 for p in joint.values())
        assert joint["hip"][1] > joint["knee"][1] > joint["ankle"][1] > joint["foot"][1]
        assert joint["foot"][2] > joint["ankle"][2] + 0.05  # the foot points forward
        outward = [sign * joint[n][0] for n in ("collar", "shoulder", "elbow", "wrist",
                                                 "hand")]
        assert outward == sorted(outward)
        # T-pose: the arm is horizontal at shoulder height, the hand at its end.
        assert abs(joint["wrist"][1] - joint["shoulder"][1]) < 0.05
        assert (sign * vertices[:, 0]).max() - sign * joint["hand"][0] < 0.12
    for name in J:
        if name.startswith("left_"):
            other = j["right_" + name[len("left_"):]]
            np.testing.assert_allclose(j[name], other * [-1, 1, 1], atol=1e-3)
    lowest = vertices[:, 1].min()
    assert min(p[1] for p in rest_joints) == min(j["left_foot"][1], j["right_foot"][1])
    assert j["left_foot"][1] - lowest < 0.05


def test_extra_joints_placed(extra_regressor: np.ndarray, vertices: np.ndarray,
                             faces: np.ndarray, rest_joints: np.ndarray,
                             regressor: np.ndarray) -> None:
    extra = dict(zip(EXTRA_JOINT_NAMES, extra_regressor @ vertices))
    j = {name: rest_joints[i] for name, i in J.items()}
    for side, key in (("right", "R"), ("left", "L")):
        for joint in ("ankle", "knee", "hip", "wrist", "elbow", "shoulder"):
            np.testing.assert_allclose(extra[f"{key}_{joint.capitalize()}"], j[f"{side}_{joint}"],
                                       atol=1e-9)
    top = extra["Top_of_Head_LSP"]
    assert vertices[:, 1].max() - top[1] < 0.005 and abs(top[0]) < 0.01
    np.testing.assert_allclose(extra["Pelvis_MPII"], 0.5 * (j["left_hip"] + j["right_hip"]),
                               atol=1e-9)
    order = ["Pelvis_MPII", "Spine_H36M", "Thorax_MPII", "Neck_LSP", "Jaw_H36M", "Head_H36M",
             "Top_of_Head_LSP"]
    assert [extra[n][1] for n in order] == sorted(extra[n][1] for n in order)
    assert extra["Jaw_H36M"][2] > j["neck"][2] + 0.03  # the jaw is in front of the neck
    inside = np.stack([extra[n] for n in order[:-1]])
    np.testing.assert_allclose(winding_numbers(inside, vertices, faces), 1.0, atol=1e-6)


def test_landmarks_where_their_names_say(vertices: np.ndarray,
                                         rest_joints: np.ndarray) -> None:
    p = {name: vertices[i] for name, i in SMPLX_LANDMARK_VERTEX_IDS.items()}
    j = {name: rest_joints[i] for name, i in J.items()}
    crown = vertices[:, 1].max()
    # Face: nose on the midline in front of the head joint, eyes above it, ears on the sides.
    assert abs(p["nose"][0]) < 0.01 and p["nose"][2] > j["head"][2] + 0.07
    assert j["head"][1] < p["nose"][1] < crown
    for eye, ear, sign in (("leye", "lear", 1.0), ("reye", "rear", -1.0)):
        assert p[eye][1] > p["nose"][1] and p[eye][2] > j["head"][2] + 0.05
        assert 0.015 < sign * p[eye][0] < 0.06
        assert sign * p[ear][0] > 0.06 and p[ear][2] < p[eye][2] - 0.05
        assert abs(p[ear][1] - p["nose"][1]) < 0.05
    # Feet: toes in front of the ankles near the floor, heels behind them.
    floor = vertices[:, 1].min()
    for key, side, sign in (("L", "left", 1.0), ("R", "right", -1.0)):
        ankle = j[f"{side}_ankle"]
        for toe in ("BigToe", "SmallToe"):
            assert p[key + toe][2] > ankle[2] + 0.15 and p[key + toe][1] < floor + 0.04
        assert sign * p[key + "BigToe"][0] < sign * p[key + "SmallToe"][0]  # big toe inside
        assert p[key + "Heel"][2] < ankle[2] - 0.03 and p[key + "Heel"][1] < floor + 0.04
    # Hands: fingertips beyond the wrists, the middle finger longest, thumbs forward.
    for key, side, sign in (("l", "left", 1.0), ("r", "right", -1.0)):
        wrist, hand = j[f"{side}_wrist"], j[f"{side}_hand"]
        reach = {f: sign * p[key + f][0] for f in ("thumb", "index", "middle", "ring", "pinky")}
        assert all(r > sign * wrist[0] + 0.03 for r in reach.values())
        assert all(reach[f] > sign * hand[0] + 0.04 for f in ("index", "middle", "ring", "pinky"))
        assert reach["middle"] == max(reach.values())
        assert p[key + "thumb"][2] > hand[2] + 0.04
        across = [p[key + f][2] for f in ("index", "middle", "ring", "pinky")]
        assert across == sorted(across, reverse=True)  # index at the front, pinky at the back
        assert min(-np.diff(across)) > 0.01  # separate fingers


# --- shape space ---------------------------------------------------------------------------

def test_rest_height(vertices: np.ndarray) -> None:
    assert height(vertices) == pytest.approx(TARGET_HEIGHT, abs=1e-6)


@pytest.mark.parametrize("component", range(10), ids=SHAPE_COMPONENT_NAMES)
def test_heights_over_the_shape_range(model: dict[str, Any], component: int) -> None:
    direction = model["shapedirs"][:, :, component]
    heights = [height(model["v_template"] + beta * direction) for beta in np.linspace(-3, 3, 7)]
    assert 1.45 <= min(heights) and max(heights) <= 2.0
    if SHAPE_COMPONENT_NAMES[component] == "height":
        assert heights[-1] - heights[0] > 0.2
        assert heights == sorted(heights)


def test_shape_components_roughly_orthogonal(model: dict[str, Any]) -> None:
    fields = model["shapedirs"].reshape(-1, 10)
    norms = np.linalg.norm(fields, axis=0)
    assert (norms > 0.05).all()
    cosine = (fields.T @ fields) / np.outer(norms, norms)
    assert np.abs(cosine[np.triu_indices(10, 1)]).max() < 0.5


def test_shape_components_do_what_their_names_say(model: dict[str, Any], regressor: np.ndarray,
                                                  rest_joints: np.ndarray) -> None:
    v0 = model["v_template"]
    component = dict(zip(SHAPE_COMPONENT_NAMES, np.moveaxis(model["shapedirs"], 2, 0)))

    def shaped(name: str, beta: float = 1.0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        v = v0 + beta * component[name]
        joints = regressor @ v
        return v, {n: joints[i] for n, i in J.items()}

    j0 = {name: rest_joints[i] for name, i in J.items()}
    v, j = shaped("leg_length")
    assert j["left_hip"][1] - j["left_ankle"][1] > j0["left_hip"][1] - j0["left_ankle"][1] + 0.02
    v, j = shaped("arm_length")
    assert j["left_wrist"][0] - j["left_shoulder"][0] > (
        j0["left_wrist"][0] - j0["left_shoulder"][0] + 0.015)
    v, j = shaped("shoulder_width")
    assert j["left_shoulder"][0] - j0["left_shoulder"][0] > 0.01
    assert abs(j["left_wrist"][0] - j0["left_wrist"][0]) < 0.005
    v, j = shaped("hip_width")
    assert j["left_hip"][0] - j["right_hip"][0] > j0["left_hip"][0] - j0["right_hip"][0] + 0.005
    v, j = shaped("torso_length")
    assert j["neck"][1] - j["pelvis"][1] > j0["neck"][1] - j0["pelvis"][1] + 0.015
    for name, region in (("girth", lambda x: np.abs(x[:, 1] - 0.15) < 0.03),
                         ("belly", lambda x: (np.abs(x[:, 1] - 0.06) < 0.03)
                          & (np.abs(x[:, 0]) < 0.05))):
        v, _ = shaped(name)
        mask = region(v0) & (np.abs(v0[:, 0]) < 0.2)
        assert v[mask, 2].max() > v0[mask, 2].max() + 0.004, name  # the front moves out
    v, _ = shaped("head_size")
    head = v0[:, 1] > j0["head"][1]
    assert np.ptp(v[head, 1]) > np.ptp(v0[head, 1]) * 1.02
    v, _ = shaped("limb_thickness")
    thigh = (np.abs(v0[:, 1] + 0.3) < 0.02) & (v0[:, 0] > 0)
    assert np.ptp(v[thigh, 2]) > np.ptp(v0[thigh, 2]) * 1.04  # thigh depth


def test_shape_moves_joints_with_the_mesh(model: dict[str, Any], regressor: np.ndarray,
                                          vertices: np.ndarray, faces: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    for _ in range(3):
        betas = rng.uniform(-3, 3, 10)
        v = vertices + model["shapedirs"] @ betas
        joints = regressor @ v
        assert 1.3 < height(v) < 2.2
        np.testing.assert_allclose(winding_numbers(joints, v, faces), 1.0, atol=1e-6)


# --- posing --------------------------------------------------------------------------------

def bone_lengths(joints: torch.Tensor) -> torch.Tensor:
    children = [i for i, p in enumerate(SMPL_PARENTS) if p >= 0]
    parents = [SMPL_PARENTS[i] for i in children]
    return (joints[..., children, :] - joints[..., parents, :]).norm(dim=-1)


def test_large_rotations_keep_mesh_finite_and_bones_rigid(
    model_dir: Path, device: torch.device, dtype: torch.dtype
) -> None:
    body = smplx.SMPL(model_path=str(model_dir), dtype=dtype).to(device)
    generator = torch.Generator().manual_seed(0)
    axes = torch.nn.functional.normalize(torch.randn(16, 24, 3, generator=generator), dim=-1)
    angles = torch.rand(16, 24, 1, generator=generator) * math.radians(120)
    pose = axes * angles
    right_angle = math.pi / 2
    for joint in ("left_elbow", "right_elbow", "left_knee", "right_knee"):
        pose[0, J[joint]] = torch.tensor([0.0, right_angle, 0.0])
    for joint, axis in (("left_shoulder", 2), ("right_shoulder", 2), ("left_knee", 0)):
        pose[1, J[joint], :] = 0.0
        pose[1, J[joint], axis] = right_angle
    pose = pose.to(device, dtype)
    betas = (torch.rand(16, 10, generator=generator) * 6 - 3).to(device, dtype)
    out = body(betas=betas, global_orient=pose[:, 0], body_pose=pose[:, 1:].reshape(16, -1))
    rest = body(betas=betas, global_orient=torch.zeros_like(pose[:, 0]),
                body_pose=torch.zeros_like(pose[:, 1:]).reshape(16, -1))
    assert torch.isfinite(out.vertices).all()
    assert out.vertices.abs().max() < 3.0
    # smplx's Rodrigues adds 1e-8 to the rotation vector before normalising the axis, so
    # its rotations are orthonormal to about 1e-8 even in float64.
    tolerance = 1e-5 if dtype == torch.float32 else 1e-7
    torch.testing.assert_close(bone_lengths(out.joints[:, :24]), bone_lengths(rest.joints[:, :24]),
                               atol=tolerance, rtol=0)
    # Skinning keeps each vertex near the bones it follows: no vertex flies off.
    centred = out.vertices - out.joints[:, :1]
    assert centred.norm(dim=-1).max() < 1.3


# --- generation and cache -------------------------------------------------------------------

def test_deterministic(model: dict[str, Any], extra_regressor: np.ndarray) -> None:
    again = build_procedural_body()
    for key in ("v_template", "f", "shapedirs", "weights"):
        np.testing.assert_array_equal(again[key], model[key])
    np.testing.assert_array_equal(again["J_regressor"], model["J_regressor"].toarray())
    np.testing.assert_array_equal(again["J_regressor_extra"], extra_regressor)


def test_seed_bakes_a_shape_into_the_template(model: dict[str, Any]) -> None:
    other = build_procedural_body(seed=3)
    assert np.abs(other["betas"]).max() > 0.1 and np.abs(other["betas"]).max() <= 2.0
    np.testing.assert_allclose(other["v_template"],
                               model["v_template"] + model["shapedirs"] @ other["betas"],
                               atol=1e-12)
    np.testing.assert_array_equal(other["f"], model["f"])


def test_default_dir_generates_once_and_respects_the_cache_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_file = tmp_path / "keep_me.txt"
    user_file.write_text("user data")
    monkeypatch.setenv(CACHE_DIR_ENV_VAR, str(tmp_path))
    folder = default_body_model_dir()
    assert folder == tmp_path / MODEL_DIRNAME
    stamp = (folder / MODEL_FILENAME).stat().st_mtime_ns
    assert default_body_model_dir(tmp_path) == folder
    assert (folder / MODEL_FILENAME).stat().st_mtime_ns == stamp  # not regenerated
    assert user_file.read_text() == "user data"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([MODEL_DIRNAME, "keep_me.txt"])

    # A folder written by other generator code is replaced ...
    metadata = json.loads((folder / METADATA_FILENAME).read_text())
    (folder / METADATA_FILENAME).write_text(json.dumps({**metadata, "source_digest": "old"}))
    assert default_body_model_dir(tmp_path) == folder
    assert json.loads((folder / METADATA_FILENAME).read_text()) == metadata
    assert (folder / MODEL_FILENAME).stat().st_mtime_ns != stamp
    # ... and so is an incomplete one (e.g. an interrupted older run).
    (folder / METADATA_FILENAME).unlink()
    assert default_body_model_dir(tmp_path) == folder
    assert json.loads((folder / METADATA_FILENAME).read_text())["generator_version"] == (
        GENERATOR_VERSION)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([MODEL_DIRNAME, "keep_me.txt"])


def test_default_dir_concurrent_callers(tmp_path: Path) -> None:
    results: list[Path] = []
    errors: list[BaseException] = []

    def call() -> None:
        try:
            results.append(default_body_model_dir(tmp_path))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert results == [tmp_path / MODEL_DIRNAME] * 2
    assert [p.name for p in tmp_path.iterdir()] == [MODEL_DIRNAME]  # no staging left over


def test_write_refuses_to_overwrite(tmp_path: Path) -> None:
    (tmp_path / MODEL_FILENAME).write_bytes(b"a user's SMPL file")
    with pytest.raises(FileExistsError, match="overwrite"):
        write_procedural_body(tmp_path)
    assert (tmp_path / MODEL_FILENAME).read_bytes() == b"a user's SMPL file"


@pytest.mark.parametrize(
    "call",
    [lambda: default_body_model_dir(cache_dir=3), lambda: default_body_model_dir(""),
     lambda: write_procedural_body(""), lambda: build_procedural_body(seed="0"),
     lambda: build_procedural_body(seed=1.5)],
    ids=["cache_dir_int", "cache_dir_empty", "out_dir_empty", "seed_str", "seed_float"],
)
def test_invalid_arguments(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        call()
