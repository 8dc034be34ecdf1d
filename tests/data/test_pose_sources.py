"""Pose sources: the swing retarget, the HDM05 pose bank and the hand-made random poses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from prohmr.body.joints import SMPL_JOINT_NAMES, SMPL_PARENTS
from prohmr.body.model import create_body_model
from prohmr.data import pose_sources
from prohmr.data.mocap import read_amc, read_asf, smpl_joint_positions, subsample
from prohmr.data.pose_sources import (
    HELD_OUT_ACTORS,
    RANDOM_POSE_LIMIT,
    RANDOM_POSE_MEAN,
    RANDOM_POSE_STD,
    body_rest_joints,
    hdm05_clips,
    mocap_pose_bank,
    posed_smpl_joints,
    random_pose,
    remove_heading,
    retarget_residual,
    retarget_swing,
)

DATA_ROOT = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
needs_hdm05 = pytest.mark.skipif(
    not (DATA_ROOT / "hdm05").is_dir(), reason=f"open data not found at {DATA_ROOT}"
)
J = {name: i for i, name in enumerate(SMPL_JOINT_NAMES)}
CHILDREN = {j: [c for c in range(24) if SMPL_PARENTS[c] == j] for j in range(24)}
SINGLE_CHILD = [j for j in range(24) if len(CHILDREN[j]) == 1]


@pytest.fixture(scope="module")
def body():
    return create_body_model()


@pytest.fixture(scope="module")
def rest(body):
    return body_rest_joints(body)


def _local_rotations(poses: np.ndarray) -> np.ndarray:
    return Rotation.from_rotvec(poses.reshape(-1, 3)).as_matrix().reshape(len(poses), 24, 3, 3)


def _bone_angles_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    cos = np.sum(a * b, -1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def test_retarget_reproduces_joints_of_the_same_skeleton(body, rest):
    # Joints made by the body itself: an exact retarget exists, so positions must come back.
    poses = random_pose(32, np.random.default_rng(1))
    poses[:, :3] = Rotation.random(32, random_state=2).as_rotvec()
    joints = posed_smpl_joints(poses, body)
    retargeted = retarget_swing(joints, rest)
    again = posed_smpl_joints(retargeted, body)
    np.testing.assert_allclose(again, joints, atol=2e-5)
    # The global orientation (pelvis: fitted to three bones) is recovered exactly too.
    np.testing.assert_allclose(
        _local_rotations(retargeted)[:, 0], _local_rotations(poses)[:, 0], atol=1e-5
    )


def test_retarget_is_swing_only(body, rest):
    # For one-child joints the local rotation axis is perpendicular to the rest bone: no twist.
    poses = random_pose(16, np.random.default_rng(3))
    retargeted = retarget_swing(posed_smpl_joints(poses, body), rest)
    rotvecs = retargeted.reshape(-1, 24, 3)
    for joint in SINGLE_CHILD:
        child = CHILDREN[joint][0]
        bone = (rest[child] - rest[joint]) / np.linalg.norm(rest[child] - rest[joint])
        angle = np.linalg.norm(rotvecs[:, joint], axis=-1)
        axis = rotvecs[:, joint] / np.maximum(angle, 1e-12)[:, None]
        twist = np.abs(axis @ bone)[angle > 1e-6]
        assert twist.max(initial=0.0) < 1e-6, SMPL_JOINT_NAMES[joint]
    # Leaves keep the identity.
    for joint in (J["head"], J["left_foot"], J["right_hand"]):
        assert np.abs(rotvecs[:, joint]).max() < 1e-9


def test_retarget_passes_degenerate_bones_down(body, rest):
    # Collars collapsed onto spine3 (as in HDM05): spine3 is oriented by the shoulders and
    # the collars still point at the shoulders.
    poses = random_pose(8, np.random.default_rng(4))
    joints = posed_smpl_joints(poses, body)
    joints[:, [J["left_collar"], J["right_collar"]]] = joints[:, [J["spine3"]]]
    posed = posed_smpl_joints(retarget_swing(joints, rest), body)
    for side in ("left", "right"):
        target = joints[:, J[f"{side}_shoulder"]] - joints[:, J["spine3"]]
        got = posed[:, J[f"{side}_shoulder"]] - posed[:, J[f"{side}_collar"]]
        assert _bone_angles_deg(got, target).max() < 1e-3
        elbow = _bone_angles_deg(posed[:, J[f"{side}_elbow"]] - posed[:, J[f"{side}_shoulder"]],
                                 joints[:, J[f"{side}_elbow"]] - joints[:, J[f"{side}_shoulder"]])
        assert elbow.max() < 1e-3
    assert np.isfinite(posed).all()


def test_retarget_validates_inputs(rest):
    with pytest.raises(ValueError, match="mocap_joints"):
        retarget_swing(np.zeros((5, 23, 3)), rest)
    with pytest.raises(ValueError, match="rest_joints"):
        retarget_swing(np.zeros((5, 24, 3)), rest[:10])
    with pytest.raises(ValueError, match="finite"):
        retarget_swing(np.full((1, 24, 3), np.nan), rest)


def test_remove_heading_turns_about_vertical_only():
    rng = np.random.default_rng(5)
    poses = random_pose(10, rng)
    yaw = Rotation.from_euler("y", rng.uniform(-np.pi, np.pi, (10, 1)))
    poses[:, :3] = (yaw * Rotation.from_rotvec(poses[:, :3])).as_rotvec()
    facing = remove_heading(poses)
    root = Rotation.from_rotvec(facing[:, :3]).as_matrix()
    np.testing.assert_allclose(root[:, 2, 0], 0.0, atol=1e-9)  # left axis has no z
    assert (root[:, 0, 0] > 0).all()
    np.testing.assert_array_equal(facing[:, 3:], poses[:, 3:])
    # Only a turn about y separates the two: the vertical components of all axes agree.
    original = Rotation.from_rotvec(poses[:, :3]).as_matrix()
    np.testing.assert_allclose(root[:, 1], original[:, 1], atol=1e-9)
    np.testing.assert_allclose(remove_heading(facing), facing, atol=1e-9)


def test_random_pose_statistics_and_limits():
    poses = random_pose(20000, np.random.default_rng(6)).reshape(-1, 24, 3)
    assert poses.dtype == np.float64 and np.isfinite(poses).all()
    assert (poses >= RANDOM_POSE_LIMIT[..., 0] - 1e-12).all()
    assert (poses <= RANDOM_POSE_LIMIT[..., 1] + 1e-12).all()
    # Where the limits sit at least two sigma away, the draws keep the table's mean.
    far = (RANDOM_POSE_MEAN - 2 * RANDOM_POSE_STD > RANDOM_POSE_LIMIT[..., 0]) & (
        RANDOM_POSE_MEAN + 2 * RANDOM_POSE_STD < RANDOM_POSE_LIMIT[..., 1]
    )
    assert far.sum() > 20
    np.testing.assert_allclose(poses.mean(0)[far], RANDOM_POSE_MEAN[far], atol=0.02)
    # Left and right are mirror images: (x, y, z) -> (x, -y, -z).
    np.testing.assert_allclose(RANDOM_POSE_MEAN[J["right_shoulder"]],
                               RANDOM_POSE_MEAN[J["left_shoulder"]] * [1, -1, -1])
    np.testing.assert_array_equal(random_pose(3, np.random.default_rng(7)),
                                  random_pose(3, np.random.default_rng(7)))
    assert random_pose(0, np.random.default_rng(0)).shape == (0, 72)
    with pytest.raises(ValueError, match="num_poses"):
        random_pose(-1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="rng"):
        random_pose(1, 0)


def test_random_poses_are_plausible(body):
    poses = random_pose(300, np.random.default_rng(8))
    joints = posed_smpl_joints(poses, body)
    height = joints[..., 1]
    # Upright: head above the neck above the pelvis above both ankles.
    for upper, lower in (("head", "neck"), ("neck", "pelvis"), ("pelvis", "left_ankle"),
                         ("pelvis", "right_ankle")):
        assert (height[:, J[upper]] > height[:, J[lower]]).all(), (upper, lower)
    # Mostly standing: a foot above its knee (a kick back) is rare.
    for side in ("left", "right"):
        assert (height[:, J[f"{side}_knee"]] > height[:, J[f"{side}_ankle"]]).mean() > 0.95
    # Knees bend backwards: (thigh x shank) points to the body's left (+x, small lean only).
    for side in ("left", "right"):
        thigh = joints[:, J[f"{side}_knee"]] - joints[:, J[f"{side}_hip"]]
        shank = joints[:, J[f"{side}_ankle"]] - joints[:, J[f"{side}_knee"]]
        assert (np.cross(thigh, shank)[:, 0] > -1e-3).all()
    # Arms hang lowered from the T-pose on average: wrists below the shoulders.
    for side in ("left", "right"):
        assert np.mean(height[:, J[f"{side}_wrist"]] < height[:, J[f"{side}_shoulder"]]) > 0.8


@needs_hdm05
def test_hdm05_clip_retarget_residual(body, rest):
    folder = DATA_ROOT / "hdm05"
    skeleton = read_asf(folder / "asf" / "HDM_bd.asf")
    clip = read_amc(folder / "amc" / "HDM_bd_squat1Reps_001_120.amc", skeleton)
    mocap = smpl_joint_positions(subsample(clip, 10.0))
    poses = retarget_swing(mocap, rest)
    posed = posed_smpl_joints(poses, body)
    residual = retarget_residual(posed, mocap)
    # Dominated by the skeletons' different proportions (e.g. HDM05's forearm is ~17 cm,
    # the body's ~25 cm); measured 4.5 cm on this clip, 5.1 cm over all HDM05 frames.
    assert residual.mean() < 0.06
    # Every single-child bone points exactly where the mocap bone points.
    for joint in SINGLE_CHILD:
        child = CHILDREN[joint][0]
        target = mocap[:, child] - mocap[:, joint]
        if np.linalg.norm(target, axis=-1).min() < pose_sources.BONE_EPS:
            continue
        angle = _bone_angles_deg(posed[:, child] - posed[:, joint], target)
        assert angle.max() < 0.05, SMPL_JOINT_NAMES[joint]
    # A wrong global orientation would show in full: compare with a body turned 90 degrees.
    turned = posed @ Rotation.from_euler("y", 90, degrees=True).as_matrix().T
    assert retarget_residual(turned, mocap).mean() > 3 * residual.mean()


def test_retarget_residual_aligns_position_and_scale():
    rng = np.random.default_rng(9)
    joints = rng.normal(size=(4, 24, 3))
    moved = 1.7 * joints + rng.normal(size=(4, 1, 3))
    np.testing.assert_allclose(retarget_residual(joints, moved), 0.0, atol=1e-12)
    with pytest.raises(ValueError, match="shape"):
        retarget_residual(joints, moved[:, :10])


@needs_hdm05
def test_mocap_pose_bank_holdout_and_cache(tmp_path, monkeypatch, body):
    assert {actor for actor, _, _ in hdm05_clips(DATA_ROOT)} == {"bd", "bk", "dg", "mm"}
    val = hdm05_clips(DATA_ROOT, HELD_OUT_ACTORS)
    assert val and all(actor == "mm" for actor, _, _ in val)

    kwargs = dict(actions=["squat1Reps"], fps=5.0, body_model=body, cache_dir=tmp_path)
    kwargs.update(actors=["bd", "mm"], exclude_actors=HELD_OUT_ACTORS)
    bank = mocap_pose_bank(DATA_ROOT, **kwargs)
    clips = hdm05_clips(DATA_ROOT, ["bd"], ["squat1Reps"])
    expected = sum(
        subsample(read_amc(amc, read_asf(asf)), 5.0).num_frames for _, asf, amc in clips
    )
    assert bank.shape == (expected, 72) and np.isfinite(bank).all()
    root = Rotation.from_rotvec(bank[:, :3]).as_matrix()
    np.testing.assert_allclose(root[:, 2, 0], 0.0, atol=1e-9)  # heading removed
    assert len(list((tmp_path / "pose_banks").glob("*.npz"))) == 1

    def fail(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(pose_sources, "read_amc", fail)
    cached = mocap_pose_bank(DATA_ROOT, **kwargs)
    np.testing.assert_array_equal(cached, bank)
    with pytest.raises(AssertionError, match="cache"):  # another fps is another bank
        mocap_pose_bank(DATA_ROOT, actors=["bd"], actions=["squat1Reps"], fps=4.0, body_model=body,
                        cache_dir=tmp_path)


def test_mocap_pose_bank_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="HDM05"):
        mocap_pose_bank(tmp_path, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="fps"):
        mocap_pose_bank(tmp_path, fps=0.0)
    with pytest.raises(ValueError, match="not a str"):
        mocap_pose_bank(tmp_path, actors="mm")


@needs_hdm05
def test_mocap_pose_bank_no_clip_left(tmp_path, body):
    with pytest.raises(ValueError, match="no HDM05 clip"):
        mocap_pose_bank(DATA_ROOT, actors=["mm"], exclude_actors=["mm"], body_model=body,
                        cache_dir=tmp_path)
