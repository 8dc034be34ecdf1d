"""Fitted mocap retarget: kinematics, regularisers, ground-truth recovery, HDM05, export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from prohmr.body.joints import SMPL_JOINT_NAMES, SMPL_PARENTS
from prohmr.body.model import create_body_model
from prohmr.data.mocap import read_amc, read_asf, subsample
from prohmr.data.mocap import retarget
from prohmr.data.mocap.retarget import (
    CALIBRATED_JOINTS,
    HINGE_JOINTS,
    MOCAP_DATASET_KEYS,
    TWIST_JOINTS,
    ActorCalibration,
    RetargetWeights,
    build_mocap_dataset,
    calibrate_actor,
    mocap_targets,
    retarget_clip,
    run_mocap_command,
    subsample_indices,
)
from prohmr.data.pose_sources import random_pose, remove_heading, retarget_swing
from prohmr.fitting.optimizer import LBFGSSettings
from prohmr.geometry import axis_angle_to_matrix

DATA_ROOT = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
needs_hdm05 = pytest.mark.skipif(
    not (DATA_ROOT / "hdm05").is_dir(),
    reason=f"HDM05 open data not found at {DATA_ROOT} (see ../shared/data/README.md)",
)
J = {name: index for index, name in enumerate(SMPL_JOINT_NAMES)}
#: Regularisers weak enough that clean targets made by the body itself are fitted exactly.
WEAK = RetargetWeights(twist=0.1, hinge=0.1, start=0.1, spine=0.1, shape=0.1)
FAST_SHAPE = LBFGSSettings(max_steps=6, history_size=20, relative_tolerance=1e-9)
#: Betas the joints determine (girth, head size, belly and limb thickness barely move them).
OBSERVABLE_BETAS = [0, 2, 3, 4, 5, 6]


@pytest.fixture(autouse=True)
def _single_thread() -> Iterator[None]:
    """Many small ops: one thread avoids oversubscribing a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def body():
    return create_body_model()


def _body_joints(body, rotations: torch.Tensor, betas: torch.Tensor) -> np.ndarray:
    out = body(rotations[:, :1].float(), rotations[:, 1:].float(),
               betas.float().expand(len(rotations), -1))
    return out.smpl_joints.double().numpy()


def _twist_angles(rotations: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """Reference twist angle (radians) of ``rotations (..., 3, 3)`` about unit ``axes``:
    swing-twist decomposition of scipy's quaternion, ``2 atan2(v·a, w)`` wrapped to (-π, π]."""
    quaternion = Rotation.from_matrix(rotations.reshape(-1, 3, 3)).as_quat()  # x, y, z, w
    quaternion = quaternion.reshape(*rotations.shape[:-2], 4)
    along = np.sum(quaternion[..., :3] * axes, axis=-1)
    angle = 2.0 * np.arctan2(along, quaternion[..., 3])
    return (angle + np.pi) % (2.0 * np.pi) - np.pi


def _rest_axes(body) -> np.ndarray:
    rest = _body_joints(body, torch.eye(3).expand(1, 24, 3, 3), torch.zeros(1, 10))[0]
    axes = rest[list(TWIST_JOINTS.values())] - rest[list(TWIST_JOINTS)]
    return axes / np.linalg.norm(axes, axis=-1, keepdims=True)


def _hdm05_frames(actor: str, action: str, fps: float) -> tuple[np.ndarray, object]:
    skeleton = read_asf(DATA_ROOT / "hdm05" / "asf" / f"HDM_{actor}.asf")
    first = sorted((DATA_ROOT / "hdm05" / "amc").glob(f"HDM_{actor}_{action}_*_120.amc"))[0]
    clip = read_amc(first, skeleton)
    return mocap_targets(subsample(clip, fps)), clip


# ------------------------------------------------------------------------ building blocks
def test_kinematics_match_the_body_model(body):
    generator = torch.Generator().manual_seed(0)
    rotations = axis_angle_to_matrix(0.5 * torch.randn(5, 24, 3, generator=generator,
                                                       dtype=torch.float64))
    betas = torch.randn(5, 10, generator=generator, dtype=torch.float64)
    kinematics = retarget._Kinematics(body)
    joints, levels = kinematics.forward(rotations, kinematics.rest(betas))
    reference = body.to(torch.float64)(rotations[:, :1], rotations[:, 1:], betas).smpl_joints
    body.to(torch.float32)
    assert torch.allclose(joints, reference, atol=1e-6)
    # World rotations: the product of the local rotations along the chain.
    world = [rotations[:, 0]]
    for joint in range(1, 24):
        world.append(world[SMPL_PARENTS[joint]] @ rotations[:, joint])
    for joint in range(24):
        assert torch.allclose(kinematics.frame(levels, joint), world[joint], atol=1e-12)


def test_twist_penalty_is_the_swing_twist_angle():
    generator = np.random.default_rng(0)
    rotations = Rotation.random(200, random_state=1).as_matrix()
    axes = generator.normal(size=(200, 3))
    axes /= np.linalg.norm(axes, axis=-1, keepdims=True)
    penalty = retarget._twist_penalty(torch.from_numpy(rotations), torch.from_numpy(axes))
    expected = 4.0 * np.sin(_twist_angles(rotations, axes) / 2.0) ** 2
    # (float64 round-off grows towards half turns, where the twist angle is ill-defined)
    np.testing.assert_allclose(penalty.numpy(), expected, atol=2e-5)
    ordinary = Rotation.from_matrix(rotations).magnitude() < np.radians(170.0)
    np.testing.assert_allclose(penalty.numpy()[ordinary], expected[ordinary], atol=1e-9)
    # A rotation about the axis is all twist; one about a perpendicular axis has none.
    about = Rotation.from_rotvec(0.7 * axes).as_matrix()
    perpendicular = np.cross(axes, [0.0, 0.0, 1.0])
    swing = Rotation.from_rotvec(0.7 * perpendicular / np.linalg.norm(
        perpendicular, axis=-1, keepdims=True)).as_matrix()
    torch.testing.assert_close(
        retarget._twist_penalty(torch.from_numpy(about), torch.from_numpy(axes)),
        torch.full((200,), 4.0 * np.sin(0.35) ** 2, dtype=torch.float64),
    )
    no_twist = retarget._twist_penalty(torch.from_numpy(swing), torch.from_numpy(axes))
    assert no_twist.abs().max() < 1e-12


def test_start_turns_hips_and_shoulders_so_knees_and_elbows_are_hinges(body):
    # Hips and shoulders twisted about their bone, knees and elbows bent about their hinge:
    # the swing retarget gets the twist wrong, the start must recover the true rotations.
    generator = np.random.default_rng(3)
    count = 24
    poses = np.zeros((count, 24, 3))
    rest = _body_joints(body, torch.eye(3).expand(1, 24, 3, 3), torch.zeros(1, 10))[0]
    for joint, bend in HINGE_JOINTS.items():
        parent, child = SMPL_PARENTS[joint], next(c for c in range(24) if SMPL_PARENTS[c] == joint)
        upper = rest[joint] - rest[parent]
        hinge = np.cross(rest[child] - rest[joint], bend)
        hinge /= np.linalg.norm(hinge)
        poses[:, parent] = np.radians(generator.uniform(-40, 40, (count, 1))) * (
            upper / np.linalg.norm(upper))
        poses[:, joint] = np.radians(generator.uniform(25, 100, (count, 1))) * hinge
    rotations = torch.from_numpy(Rotation.from_rotvec(poses.reshape(-1, 3)).as_matrix()).reshape(
        count, 24, 3, 3)
    targets = _body_joints(body, rotations, torch.zeros(1, 10))
    start = retarget._start_rotations(targets, rest)
    swing = Rotation.from_rotvec(retarget_swing(targets, rest).reshape(-1, 3)).as_matrix()
    swing = swing.reshape(count, 24, 3, 3)
    for joint in HINGE_JOINTS:
        parent = SMPL_PARENTS[joint]
        relative = np.swapaxes(swing[:, parent], -1, -2) @ rotations[:, parent].numpy()
        assert np.degrees(Rotation.from_matrix(relative).magnitude()).max() > 20.0
    for joint in HINGE_JOINTS:
        for chosen in (joint, SMPL_PARENTS[joint]):
            relative = np.swapaxes(start[:, chosen], -1, -2) @ rotations[:, chosen].numpy()
            angle = np.degrees(Rotation.from_matrix(relative).magnitude())
            assert angle.max() < 0.5, (SMPL_JOINT_NAMES[chosen], angle.max())
    # No joint moves: the start reproduces the targets' bone directions.
    kinematics = retarget._Kinematics(body)
    joints, _ = kinematics.forward(torch.from_numpy(start), kinematics.rest(
        torch.zeros(count, 10, dtype=torch.float64)))
    assert np.abs(joints.numpy() - targets).max() < 1e-5


def test_subsample_indices_match_subsample():
    from prohmr.data.mocap import MocapClip, Skeleton

    skeleton = Skeleton(("root",), np.array([-1]), np.zeros((1, 3)))
    clip = MocapClip(skeleton, np.broadcast_to(np.eye(3), (257, 1, 3, 3)),
                     np.random.default_rng(0).normal(size=(257, 3)), frame_rate=120.0)
    for fps in (120.0, 30.0, 10.0, 7.0):
        indices = subsample_indices(clip.num_frames, clip.frame_rate, fps)
        np.testing.assert_array_equal(subsample(clip, fps).root_translations,
                                      clip.root_translations[indices])


# ------------------------------------------------------------------------ fitting
def test_recovers_ground_truth_poses_and_betas(body):
    count = 8
    poses = torch.from_numpy(random_pose(count, np.random.default_rng(0))).view(count, 24, 3)
    rotations = axis_angle_to_matrix(poses)
    betas = torch.zeros(10, dtype=torch.float64)
    betas[:7] = torch.tensor([0.8, -0.5, 0.6, -0.4, 0.3, 0.5, -0.6], dtype=torch.float64)
    targets = _body_joints(body, rotations, betas) + np.array([0.1, 0.9, -0.3])

    calibration = calibrate_actor(targets, body, weights=WEAK, settings=FAST_SHAPE)
    np.testing.assert_allclose(calibration.betas[OBSERVABLE_BETAS],
                               betas.numpy()[OBSERVABLE_BETAS], atol=0.03)
    result = retarget_clip(targets, body, calibration=calibration, weights=WEAK)
    assert result.residual_mm.max() < 1.0
    # The fitted body reproduces the targets through the full body model too. The collars'
    # position is free up to their calibrated markers, which sit on spine3's frame.
    fitted = _body_joints(body, torch.from_numpy(result.rotations),
                          torch.from_numpy(calibration.betas)) + result.translation[:, None]
    exact = [j for j in range(24) if j not in (J["left_collar"], J["right_collar"])]
    assert np.linalg.norm(fitted - targets, axis=-1)[:, exact].max() < 1e-3
    assert np.linalg.norm(fitted - targets, axis=-1).max() < 5e-3
    # What the joints determine comes back: the root's rotation (three children) and how far
    # each knee and elbow bends (a hip's twist is free where its knee is straight).
    relative = np.swapaxes(result.rotations[:, 0], -1, -2) @ rotations[:, 0].numpy()
    assert np.degrees(Rotation.from_matrix(relative).magnitude()).max() < 1.0
    rest = _body_joints(body, torch.eye(3).expand(1, 24, 3, 3), torch.zeros(1, 10))[0]
    for joint in HINGE_JOINTS:
        child = next(c for c in range(24) if SMPL_PARENTS[c] == joint)
        bone = (rest[child] - rest[joint]) / np.linalg.norm(rest[child] - rest[joint])

        def bend(local: np.ndarray) -> np.ndarray:
            return np.degrees(np.arccos(np.clip(local @ bone @ bone, -1.0, 1.0)))

        np.testing.assert_allclose(bend(result.rotations[:, joint]),
                                   bend(rotations[:, joint].numpy()), atol=2.0)


def test_twist_regulariser_keeps_unobservable_twists_near_zero(body):
    # Targets from poses without twist at joints whose twist no joint position can see
    # (wrists, ankles, neck); the fit starts with 30° of twist there. With the regulariser
    # the twists go back to zero; without it only the weak pull towards the start acts.
    count = 6
    generator = np.random.default_rng(5)
    poses = 0.05 * generator.normal(size=(count, 24, 3))
    poses[:, J["left_shoulder"]] += [0.0, 0.0, -1.0]
    poses[:, J["right_shoulder"]] += [0.0, 0.0, 1.0]
    poses[:, J["left_knee"]] += [0.6, 0.0, 0.0]
    axes = _rest_axes(body)
    unseen = [J["left_wrist"], J["right_wrist"], J["left_ankle"], J["right_ankle"], J["neck"]]
    rows = [list(TWIST_JOINTS).index(joint) for joint in unseen]
    poses[:, unseen] = 0.0
    rotations = Rotation.from_rotvec(poses.reshape(-1, 3)).as_matrix().reshape(count, 24, 3, 3)
    targets = _body_joints(body, torch.from_numpy(rotations), torch.zeros(1, 10))
    twisted = rotations.copy()
    extra = Rotation.from_rotvec(np.radians(30.0) * axes[rows]).as_matrix()
    twisted[:, unseen] = twisted[:, unseen] @ extra
    init = Rotation.from_matrix(twisted.reshape(-1, 3, 3)).as_rotvec().reshape(count, 72)
    calibration = ActorCalibration(betas=np.zeros(10))
    twists = {}
    for label, weights in (("on", RetargetWeights(start=0.1)),
                           ("off", RetargetWeights(start=0.1, twist=0.0))):
        result = retarget_clip(targets, body, calibration=calibration, init_body_pose=init,
                               weights=weights)
        assert result.residual_mm.max() < 1.0
        twists[label] = np.degrees(_twist_angles(result.rotations[:, unseen], axes[rows]))
    assert np.abs(twists["on"]).max() < 1.0
    assert np.abs(twists["off"]).min() > 25.0


@needs_hdm05
def test_real_hdm05_clip_fits_far_better_than_the_swing_retarget(body):
    targets, _ = _hdm05_frames("bk", "squat1Reps", fps=6.0)
    assert 8 <= len(targets) <= 40
    calibration = calibrate_actor(targets, body, max_frames=8, settings=FAST_SHAPE)
    result = retarget_clip(targets, body, calibration=calibration)
    # What the fit minimises (loose joints as calibrated markers) is within about a
    # centimetre; the plain joint distance includes the markers' fixed offsets.
    assert result.marker_residual_mm.mean() < 16.0
    assert result.residual_mm.mean() < 30.0
    assert result.residual_mm.mean() < 0.4 * result.swing_residual_mm.mean()
    assert result.residual_mm.max() < 35.0
    # HDM05's root lies about 5 cm behind the body's pelvis (the calibrated pelvis marker).
    pelvis_marker = calibration.marker_offsets[list(CALIBRATED_JOINTS).index(J["pelvis"])]
    assert -0.08 < pelvis_marker[2] < -0.02 and abs(pelvis_marker[0]) < 0.02


# ------------------------------------------------------------------------ errors
@pytest.mark.parametrize("joints, message", [
    (np.zeros((4, 23, 3)), r"\(T, 24, 3\)"),
    (np.zeros((0, 24, 3)), r"T >= 1"),
    (np.zeros((24, 3)), r"\(T, 24, 3\)"),
    (np.where(np.arange(4)[:, None, None] == 2, np.nan, np.zeros((4, 24, 3))), r"NaN.*\[2\]"),
])
def test_bad_joints_are_rejected(body, joints, message):
    with pytest.raises(ValueError, match="mocap_joints.*" + message):
        retarget_clip(joints, body, calibration=ActorCalibration(betas=np.zeros(10)))
    with pytest.raises(ValueError, match="mocap_joints"):
        calibrate_actor(joints, body)


def test_bad_options_are_rejected(body):
    joints = np.zeros((2, 24, 3))
    with pytest.raises(ValueError, match="calibration.betas"):
        retarget_clip(joints, body, calibration=ActorCalibration(betas=np.zeros(3)))
    with pytest.raises(ValueError, match="init_body_pose"):
        retarget_clip(joints, body, calibration=ActorCalibration(betas=np.zeros(10)),
                      init_body_pose=np.zeros((3, 72)))
    with pytest.raises(ValueError, match="frames_per_problem"):
        retarget_clip(joints, body, frames_per_problem=0)
    with pytest.raises(ValueError, match="body_model"):
        retarget_clip(joints, "smpl")
    with pytest.raises(ValueError, match="joint_weights"):
        RetargetWeights(joint_weights=(1.0,) * 23)
    with pytest.raises(ValueError, match="twist"):
        RetargetWeights(twist=-1.0)


def test_build_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="HDM05"):
        build_mocap_dataset(tmp_path / "m.npz", data_root=tmp_path / "nowhere", progress=False)
    with pytest.raises(ValueError, match="out"):
        build_mocap_dataset(tmp_path / "m.pkl", progress=False)
    with pytest.raises(ValueError, match="fps"):
        build_mocap_dataset(tmp_path / "m.npz", fps=0.0, progress=False)
    with pytest.raises(ValueError, match="actors"):
        build_mocap_dataset(tmp_path / "m.npz", actors="bd", progress=False)
    existing = tmp_path / "existing.npz"
    existing.write_bytes(b"")
    with pytest.raises(FileExistsError, match="overwrite"):
        build_mocap_dataset(existing, data_root=tmp_path / "nowhere", progress=False)
    sibling = tmp_path / "other.json"
    sibling.write_text("{}")
    with pytest.raises(FileExistsError, match="other.json"):
        build_mocap_dataset(tmp_path / "other.npz", data_root=tmp_path / "nowhere",
                            progress=False)


# ------------------------------------------------------------------------ the dataset
@pytest.fixture
def small_data_root(tmp_path: Path) -> Path:
    """A data folder with actor mm's skeleton and two of its clips (links to ../shared/data)."""
    root = tmp_path / "data"
    for folder, names in (("asf", ["HDM_mm.asf"]), ("amc", [
        "HDM_mm_squat1Reps_037_120.amc", "HDM_mm_kickLFront1Reps_019_120.amc",
    ])):
        (root / "hdm05" / folder).mkdir(parents=True)
        for name in names:
            (root / "hdm05" / folder / name).symlink_to(DATA_ROOT / "hdm05" / folder / name)
    return root


@needs_hdm05
def test_mocap_dataset_file(body, tmp_path, small_data_root):
    out = tmp_path / "sub" / "mocap.npz"
    kwargs = dict(data_root=small_data_root, actors=["mm"], fps=2.0)
    lines = run_mocap_command(out, **kwargs)
    assert lines[0].split()[:3] == ["actor", "clips", "frames"] and lines[-1].startswith("wrote")
    with np.load(out, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    assert sorted(arrays) == sorted(MOCAP_DATASET_KEYS)
    n = len(arrays["body_pose"])
    expected = {
        "body_pose": ((n, 72), np.float32), "betas": ((n, 10), np.float32),
        "joints": ((n, 44, 3), np.float32), "smpl_joints": ((n, 24, 3), np.float32),
        "mocap_joints": ((n, 24, 3), np.float32), "frame": ((n,), np.int32),
        "residual_mm": ((n,), np.float32), "fps": ((), np.float64),
    }
    for key, (shape, dtype) in expected.items():
        assert arrays[key].shape == shape and arrays[key].dtype == dtype, key
    for key in ("actor", "clip", "source"):
        assert arrays[key].dtype.kind == "U", key
    assert arrays["actor"].shape == arrays["clip"].shape == (n,)
    assert set(arrays["actor"]) == {"mm"} and float(arrays["fps"]) == 2.0
    source = json.loads(str(arrays["source"]))
    assert source["dataset"] == "HDM05" and source["licence"] == "CC BY-SA 3.0"
    # One betas vector per actor.
    assert np.ptp(arrays["betas"], axis=0).max() == 0.0

    # Frames: the 2 Hz subsample of every clip, in order.
    clips = sorted(set(arrays["clip"]))
    assert clips == ["HDM_mm_kickLFront1Reps_019_120", "HDM_mm_squat1Reps_037_120"]
    skeleton = read_asf(DATA_ROOT / "hdm05" / "asf" / "HDM_mm.asf")
    first = clips[0]
    rows = arrays["clip"] == first
    clip = read_amc(DATA_ROOT / "hdm05" / "amc" / f"{first}.amc", skeleton)
    np.testing.assert_array_equal(arrays["frame"][rows],
                                  subsample_indices(clip.num_frames, clip.frame_rate, 2.0))
    # The mocap targets are the clip's joints, moved rigidly (distances kept).
    raw = mocap_targets(clip)[arrays["frame"][rows]]
    stored = arrays["mocap_joints"][rows].astype(np.float64)
    distances = lambda x: np.linalg.norm(x[:, :, None] - x[:, None], axis=-1)  # noqa: E731
    np.testing.assert_allclose(distances(stored), distances(raw), atol=1e-5)

    # Heading removed: the root's left axis lies in the x-y plane, pointing to +x.
    root = Rotation.from_rotvec(arrays["body_pose"][:, :3].astype(np.float64)).as_matrix()
    assert np.abs(root[:, 2, 0]).max() < 1e-5 and root[:, 0, 0].min() > 0
    np.testing.assert_allclose(remove_heading(arrays["body_pose"].astype(np.float64)),
                               arrays["body_pose"], atol=1e-5)
    # The stored joints are the body model's output for the stored pose and betas.
    pose = torch.from_numpy(arrays["body_pose"]).view(n, 24, 3)
    rotations = axis_angle_to_matrix(pose)
    out_body = body(rotations[:, :1], rotations[:, 1:], torch.from_numpy(arrays["betas"]))
    np.testing.assert_allclose(out_body.joints.numpy(), arrays["joints"], atol=1e-4)
    np.testing.assert_allclose(out_body.smpl_joints.numpy(), arrays["smpl_joints"], atol=1e-4)
    residual = np.linalg.norm(arrays["smpl_joints"].astype(np.float64)
                              - arrays["mocap_joints"], axis=-1).mean(-1) * 1000
    np.testing.assert_allclose(arrays["residual_mm"], residual, atol=1e-3)
    assert residual.mean() < 30.0

    summary = json.loads(out.with_suffix(".json").read_text())
    assert len(summary["clips"]) == len(clips)
    assert {"residual_mm_mean", "residual_mm_max"} <= set(summary["clips"][0])
    assert set(summary["per_joint_residual_mm"]) == set(SMPL_JOINT_NAMES)

    # Overwrite protection, and an explicit overwrite.
    with pytest.raises(FileExistsError):
        build_mocap_dataset(out, progress=False, **kwargs)
    before = out.stat().st_mtime_ns
    build_mocap_dataset(out, actions=["squat1Reps"], overwrite=True, progress=False, **kwargs)
    assert out.stat().st_mtime_ns != before
    with np.load(out, allow_pickle=False) as data:
        assert {name.split("_")[2] for name in data["clip"]} == {"squat1Reps"}
    assert not list(out.parent.glob(".mocap*"))  # no temporary files left behind
