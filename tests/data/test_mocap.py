"""Mocap readers: ASF/AMC and BVH parsing, forward kinematics, SMPL correspondences.

Real-data tests read ../shared/data (HDM05 and CMU clips) and skip where it is absent.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from prohmr.body.joints import SMPL_JOINT_NAMES
from prohmr.data.mocap import (
    CMU_BVH_SCALE,
    MOCAP_TO_SMPL_AXES,
    SMPL_FROM_ACCLAIM,
    MocapClip,
    Skeleton,
    detect_convention,
    euler_to_matrix,
    load_asf_amc,
    read_amc,
    read_asf,
    read_bvh,
    smpl_joint_indices,
    smpl_joint_positions,
    subsample,
)

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
HDM05 = DATA / "hdm05"
CMU_BVH = DATA / "cmu_bvh"
needs_data = pytest.mark.skipif(
    not DATA.is_dir(), reason=f"open mocap data not found at {DATA} (../shared/data)"
)
ACCLAIM_UNIT = 0.0254 / 0.45  # metres per HDM05 length unit (ASF 'length 0.45')
SQUAT_BD = "HDM_bd_squat1Reps_001_120.amc"
#: One standing clip per HDM05 actor (grabHighR starts standing).
STANDING_CLIPS = {
    "bd": "HDM_bd_grabHighR_001_120.amc",
    "bk": "HDM_bk_grabHighR_005_120.amc",
    "dg": "HDM_dg_grabHighR_011_120.amc",
    "mm": "HDM_mm_grabHighR_019_120.amc",
}
SMPL = {name: i for i, name in enumerate(SMPL_JOINT_NAMES)}


def _hdm05(actor: str, clip: str) -> MocapClip:
    return load_asf_amc(HDM05 / "asf" / f"HDM_{actor}.asf", HDM05 / "amc" / clip)


def _rx(deg: float) -> np.ndarray:
    c, s = np.cos(np.deg2rad(deg)), np.sin(np.deg2rad(deg))
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _ry(deg: float) -> np.ndarray:
    c, s = np.cos(np.deg2rad(deg)), np.sin(np.deg2rad(deg))
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _rz(deg: float) -> np.ndarray:
    c, s = np.cos(np.deg2rad(deg)), np.sin(np.deg2rad(deg))
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _bone_length_deviation(clip: MocapClip) -> float:
    """Largest relative change of any parent-child distance over the clip."""
    positions = clip.positions()
    rest = np.linalg.norm(clip.offsets[1:], axis=-1)
    lengths = np.linalg.norm(positions[:, 1:] - positions[:, clip.parents[1:]], axis=-1)
    moving = rest > 0
    relative = np.abs(lengths[:, moving] - rest[moving]) / rest[moving]
    assert np.all(lengths[:, ~moving] < 1e-12)
    return float(relative.max())


# --- rotations and forward kinematics (no data needed) ----------------------------------


@pytest.mark.parametrize("axes", ["xyz", "zyx", "zxy", "yxz", "xz", "y", "xyx"])
def test_euler_to_matrix_is_intrinsic_product(axes):
    angles = np.random.default_rng(0).uniform(-np.pi, np.pi, (5, len(axes)))
    expected = Rotation.from_euler(axes.upper(), angles).as_matrix()
    np.testing.assert_allclose(euler_to_matrix(angles, axes), expected, atol=1e-12)


def test_forward_kinematics_matches_loop():
    rng = np.random.default_rng(1)
    parents = np.array([-1, 0, 1, 1, 0])
    offsets = rng.normal(size=(5, 3))
    rotations = Rotation.random(3 * 5, random_state=2).as_matrix().reshape(3, 5, 3, 3)
    translations = rng.normal(size=(3, 3))
    clip = MocapClip(Skeleton(tuple("abcde"), parents, offsets), rotations, translations, 30.0)
    positions = clip.positions()
    for t in range(3):
        world = [rotations[t, 0]]
        expected = [translations[t] + offsets[0]]
        for j in range(1, 5):
            world.append(world[parents[j]] @ rotations[t, j])
            expected.append(expected[parents[j]] + world[parents[j]] @ offsets[j])
        np.testing.assert_allclose(positions[t], np.stack(expected), atol=1e-12)
        np.testing.assert_allclose(clip.global_rotations()[t], np.stack(world), atol=1e-12)
    assert _bone_length_deviation(clip) < 1e-12
    assert clip.joint_index("d") == 3
    with pytest.raises(KeyError, match="no joint named 'z'"):
        clip.joint_index("z")


def test_skeleton_and_clip_validation():
    with pytest.raises(ValueError, match="parents"):
        Skeleton(("a", "b"), np.array([-1, 1]), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="unique"):
        Skeleton(("a", "a"), np.array([-1, 0]), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="offsets"):
        Skeleton(("a", "b"), np.array([-1, 0]), np.zeros((2, 2)))
    skeleton = Skeleton(("a", "b"), np.array([-1, 0]), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"rotations: expected shape \(T, 2, 3, 3\)"):
        MocapClip(skeleton, np.zeros((4, 3, 3, 3)), np.zeros((4, 3)), 30.0)
    with pytest.raises(ValueError, match="root_translations"):
        MocapClip(skeleton, np.zeros((4, 2, 3, 3)), np.zeros((3, 3)), 30.0)
    with pytest.raises(ValueError, match="frame_rate"):
        MocapClip(skeleton, np.zeros((4, 2, 3, 3)), np.zeros((4, 3)), 0.0)


def test_subsample():
    skeleton = Skeleton(("root",), np.array([-1]), np.zeros((1, 3)))
    frames = np.arange(13.0)
    rotations = euler_to_matrix(frames[:, None, None] * 0.1, "z")
    clip = MocapClip(skeleton, rotations, np.stack([frames] * 3, -1), frame_rate=120.0)
    quarter = subsample(clip, 30.0)
    assert quarter.frame_rate == 30.0
    np.testing.assert_array_equal(quarter.root_translations[:, 0], [0, 4, 8, 12])
    np.testing.assert_allclose(quarter.rotations, rotations[[0, 4, 8, 12]])
    # 120 -> 50 Hz: frame k at k / 50 s, nearest of the 120 Hz frames: 0, 2.4, 4.8, 7.2, 9.6, 12
    fifty = subsample(clip, 50.0)
    np.testing.assert_array_equal(fifty.root_translations[:, 0], [0, 2, 5, 7, 10, 12])
    assert subsample(clip, 120.0).num_frames == 13
    with pytest.raises(ValueError, match="target_fps"):
        subsample(clip, 240.0)


# --- synthetic files: conventions, errors ------------------------------------------------

SYNTHETIC_ASF = """\
# latin-1 comment: Universit\u00e4t Bonn, f\u00fcr Tests
:version 1.10
:name test
:units
  mass 1.0
  length 0.45
  angle deg
:documentation
   a tiny two-bone chain
:root
   order TX TY TZ RX RY RZ
   axis XYZ
   position 0 0 0
   orientation 0 0 0
:bonedata
  begin
     id 1
     name upper
     direction 0 -1 0
     length 10
     axis 30 -40 50 XYZ
    dof rz rx
    limits (-180 180)
           (-180 180)
  end
  begin
     id 2
     name lower
     direction 1 0 0
     length 5
     axis 0 0 0 XYZ
    dof ry
    limits (-180.0 180.0)
  end
:hierarchy
  begin
    root upper
    upper lower
  end
"""

SYNTHETIC_AMC = """\
# Universit\u00e4t
:FULLY-SPECIFIED
:DEGREES
1
root 1 2 3 10 20 30
upper 25 -35
lower 15
2
root 1 2 3 10 20 30
lower 15
"""


def _write_latin1(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("latin-1"))
    return path


def test_asf_amc_synthetic_conventions(tmp_path):
    asf = _write_latin1(tmp_path / "test.asf", SYNTHETIC_ASF)
    amc = _write_latin1(tmp_path / "test_07_120.amc", SYNTHETIC_AMC)
    with pytest.raises(UnicodeDecodeError):
        asf.read_text(encoding="utf-8")
    skeleton = read_asf(asf)
    assert skeleton.bones["upper"].dof == ("rz", "rx")
    assert skeleton.bones["upper"].limits == ((-180.0, 180.0), (-180.0, 180.0))
    clip = read_amc(amc, skeleton, frame_rate=60.0)
    assert clip.joint_names == ("root", "upper", "lower", "lower_end")
    assert clip.frame_rate == 60.0 and clip.num_frames == 2
    # Acclaim: listed axes applied one after the other about fixed axes = scipy extrinsic.
    root = Rotation.from_euler("xyz", [10, 20, 30], degrees=True).as_matrix()
    frame_c = Rotation.from_euler("xyz", [30, -40, 50], degrees=True).as_matrix()
    motion = Rotation.from_euler("zx", [25, -35], degrees=True).as_matrix()
    upper = frame_c @ motion @ frame_c.T
    lower = Rotation.from_euler("y", 15, degrees=True).as_matrix()
    np.testing.assert_allclose(clip.rotations[0, 0], root, atol=1e-12)
    np.testing.assert_allclose(clip.rotations[0, 1], upper, atol=1e-12)
    np.testing.assert_allclose(clip.rotations[0, 2], lower, atol=1e-12)
    # Bone 'upper' is missing in frame 2: zero dofs, i.e. the rest rotation.
    np.testing.assert_allclose(clip.rotations[1, 1], np.eye(3), atol=1e-12)
    unit = ACCLAIM_UNIT
    start = np.array([1.0, 2.0, 3.0]) * unit
    knee = start + root @ upper @ np.array([0.0, -10.0, 0.0]) * unit
    tip = knee + root @ upper @ lower @ np.array([5.0, 0.0, 0.0]) * unit
    np.testing.assert_allclose(clip.positions()[0], [start, start, knee, tip], atol=1e-12)


def test_amc_radians_and_frame_rate_default(tmp_path, caplog):
    asf = _write_latin1(tmp_path / "test.asf", SYNTHETIC_ASF)
    text = SYNTHETIC_AMC.replace(":DEGREES", ":RADIANS").replace("lower 15", "lower 0.5")
    amc = _write_latin1(tmp_path / "motion.amc", text)
    with caplog.at_level(logging.WARNING):
        clip = read_amc(amc, asf)
    assert clip.frame_rate == 120.0 and "no frame rate" in caplog.text
    expected = Rotation.from_euler("y", 0.5).as_matrix()
    np.testing.assert_allclose(clip.rotations[1, 2], expected, atol=1e-12)
    hdm_name = _write_latin1(tmp_path / "HDM_xx_walk_003_60.amc", SYNTHETIC_AMC)
    assert read_amc(hdm_name, asf).frame_rate == 60.0


@pytest.mark.parametrize(
    ("old", "new", "line"),
    [
        ("upper 25 -35", "upper 25", 6),
        ("lower 15\n2", "lower x\n2", 7),
        ("upper 25 -35", "thumb 1 2", 6),
        ("2\n", "5\n", 8),
    ],
)
def test_malformed_amc_names_line(tmp_path, old, new, line):
    asf = _write_latin1(tmp_path / "test.asf", SYNTHETIC_ASF)
    amc = _write_latin1(tmp_path / "bad.amc", SYNTHETIC_AMC.replace(old, new, 1))
    with pytest.raises(ValueError, match=rf"bad\.amc line {line}\b"):
        read_amc(amc, asf, frame_rate=120.0)


@pytest.mark.parametrize(
    ("old", "new", "line"),
    [
        ("direction 0 -1 0", "direction 0 -1", 19),
        ("axis 0 0 0 XYZ", "axis 0 0 0 XQZ", 31),
        ("dof ry", "dof ry qq", 32),
        ("upper lower\n", "upper elbow\n", 38),
        ("position 0 0 0", "position 0 0", 13),
    ],
)
def test_malformed_asf_names_line(tmp_path, old, new, line):
    asf = _write_latin1(tmp_path / "bad.asf", SYNTHETIC_ASF.replace(old, new, 1))
    with pytest.raises(ValueError, match=rf"bad\.asf line {line}\b"):
        read_asf(asf)


def test_missing_files_raise(tmp_path):
    asf = _write_latin1(tmp_path / "test.asf", SYNTHETIC_ASF)
    with pytest.raises(FileNotFoundError):
        read_asf(tmp_path / "none.asf")
    with pytest.raises(FileNotFoundError):
        read_amc(tmp_path / "none.amc", asf)
    with pytest.raises(FileNotFoundError):
        read_bvh(tmp_path / "none.bvh")


SYNTHETIC_BVH = """\
HIERARCHY
ROOT hips
{
  OFFSET 0.5 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT knee
  {
    OFFSET 0 -4 1
    CHANNELS 3 Yrotation Xrotation Zrotation
    End Site
    {
      OFFSET 2 -3 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.0416667
1 2 3 30 -50 70 -20 40 110
-1 0 5 -100 10 0 5 -60 -25
"""


def test_bvh_rotation_orders(tmp_path):
    bvh = tmp_path / "tiny.bvh"
    bvh.write_text(SYNTHETIC_BVH)
    clip = read_bvh(bvh, scale=0.1)
    assert clip.joint_names == ("hips", "knee", "knee_end")
    assert clip.frame_rate == 24.0
    values = np.array([[1, 2, 3, 30, -50, 70, -20, 40, 110], [-1, 0, 5, -100, 10, 0, 5, -60, -25]])
    for t, row in enumerate(values):
        root = Rotation.from_euler("ZXY", row[3:6], degrees=True).as_matrix()
        knee = Rotation.from_euler("YXZ", row[6:9], degrees=True).as_matrix()
        np.testing.assert_allclose(clip.rotations[t, 0], root, atol=1e-12)
        np.testing.assert_allclose(clip.rotations[t, 1], knee, atol=1e-12)
        hips = (row[:3] + np.array([0.5, 0.0, 0.0])) * 0.1
        knee_position = hips + root @ np.array([0.0, -0.4, 0.1])
        end = knee_position + root @ knee @ np.array([0.2, -0.3, 0.0])
        np.testing.assert_allclose(clip.positions()[t], [hips, knee_position, end], atol=1e-12)


@pytest.mark.parametrize(
    ("old", "new", "line"),
    [
        ("OFFSET 0 -4 1", "OFFSET 0 -4 x", 8),
        ("Yrotation Xrotation Zrotation", "Yrotation Xrotation Wrotation", 9),
        ("-1 0 5 -100 10 0 5 -60 -25", "-1 0 5 -100 10 0 5 -60", 20),
        ("-1 0 5 -100 10", "-1 0 5 -1e0e0 10", 20),
        ("Frames: 2", "Frames: 3", 20),
        ("  JOINT knee", "  JIONT knee", 6),
    ],
)
def test_malformed_bvh_names_line(tmp_path, old, new, line):
    bvh = tmp_path / "bad.bvh"
    bvh.write_text(SYNTHETIC_BVH.replace(old, new, 1))
    with pytest.raises(ValueError, match=rf"bad\.bvh line {line}\b"):
        read_bvh(bvh)


# --- real data: HDM05 (ASF/AMC) -----------------------------------------------------------


@needs_data
def test_hdm05_hand_checked_frame():
    """Frame 1 of HDM_bd_squat1Reps_001: root, lhipjoint, lfemur and ltibia by hand.

    Numbers copied from HDM_bd.asf and the AMC's first frame:
    root -1.30653 17.149 2.13089 168.3 -0.56844 -174.497 (order TX TY TZ RX RY RZ);
    lhipjoint: direction 0.567149 -0.783011 0.255413, length 2.28399, no dof;
    lfemur: direction 0.34202 -0.939693 0, length 7.34031, axis 0 0 20, dof rx ry rz,
    values -2.14097 -1.0907 -14.6522; ltibia: same direction, length 6.9833, axis 0 0 20,
    dof rx, value 37.8774.
    """
    clip = _hdm05("bd", SQUAT_BD)
    unit = ACCLAIM_UNIT
    root = np.array([-1.30653, 17.149, 2.13089]) * unit
    g_root = _rz(-174.497) @ _ry(-0.56844) @ _rx(168.3)
    hip = root + g_root @ (np.array([0.567149, -0.783011, 0.255413]) * 2.28399 * unit)
    c_leg = _rz(20.0)
    g_femur = g_root @ c_leg @ (_rz(-14.6522) @ _ry(-1.0907) @ _rx(-2.14097)) @ c_leg.T
    knee = hip + g_femur @ (np.array([0.34202, -0.939693, 0.0]) * 7.34031 * unit)
    g_tibia = g_femur @ c_leg @ _rx(37.8774) @ c_leg.T
    ankle = knee + g_tibia @ (np.array([0.34202, -0.939693, 0.0]) * 6.9833 * unit)
    positions = clip.positions()[0]
    for name, expected in [("root", root), ("lfemur", hip), ("ltibia", knee), ("lfoot", ankle)]:
        np.testing.assert_allclose(positions[clip.joint_index(name)], expected, atol=1e-12)
    # The same numbers, written down once (metres).
    np.testing.assert_allclose(
        positions[[clip.joint_index(n) for n in ("root", "lfemur", "ltibia", "lfoot")]],
        [
            [-0.0737464, 0.9679658, 0.1202769],
            [-0.1382035, 0.8691591, 0.0682913],
            [-0.1388829, 0.4666868, -0.0300782],
            [-0.1369657, 0.1069961, 0.1311292],
        ],
        atol=1e-7,
    )
    assert clip.frame_rate == 120.0 and clip.num_frames == 140


@needs_data
def test_hdm05_latin1_and_bone_lengths():
    raw = (HDM05 / "amc" / SQUAT_BD).read_bytes()
    assert any(byte >= 0x80 for byte in raw[:200])  # the header is not ASCII
    clip = _hdm05("bd", SQUAT_BD)
    assert _bone_length_deviation(clip) < 1e-9
    skeleton = read_asf(HDM05 / "asf" / "HDM_bd.asf")
    assert skeleton.metres_per_unit == pytest.approx(ACCLAIM_UNIT, rel=1e-15)
    femur = np.linalg.norm(clip.offsets[clip.joint_index("ltibia")])
    assert femur == pytest.approx(7.34031 * ACCLAIM_UNIT, rel=1e-6)


@needs_data
@pytest.mark.parametrize("actor", sorted(STANDING_CLIPS))
def test_hdm05_standing_height_and_sides(actor):
    clip = _hdm05(actor, STANDING_CLIPS[actor])
    positions = clip.positions()[:10]
    height = positions[..., 1].max(-1) - positions[..., 1].min(-1)
    assert np.all((height > 1.5) & (height < 1.95)), height
    assert np.all(np.abs(positions[..., 1].min(-1)) < 0.08)  # feet on the ground (y = 0)
    joints = smpl_joint_positions(clip, face_forward=True)[:10]
    y = joints[..., 1]
    # Upright: feet < ankles < knees < pelvis < spine < neck < head.
    for lower, upper in [
        ("left_foot", "left_knee"), ("left_ankle", "left_knee"), ("right_knee", "pelvis"),
        ("pelvis", "spine2"), ("spine2", "neck"), ("neck", "head"),
    ]:
        assert np.all(y[:, SMPL[lower]] < y[:, SMPL[upper]]), (lower, upper)
    x, z = joints[..., 0], joints[..., 2]
    for side in ("hip", "knee", "shoulder", "elbow"):
        assert np.all(x[:, SMPL[f"left_{side}"]] > x[:, SMPL[f"right_{side}"]]), side
    # Facing +z: toes point forward from the ankles.
    for side in ("left", "right"):
        assert np.all(z[:, SMPL[f"{side}_foot"]] > z[:, SMPL[f"{side}_ankle"]])


def _handedness(joints: np.ndarray) -> np.ndarray:
    """(left hip - right hip) x (neck - pelvis) . (foot - ankle): > 0 for a right-handed body."""
    across = joints[:, SMPL["left_hip"]] - joints[:, SMPL["right_hip"]]
    up = joints[:, SMPL["neck"]] - joints[:, SMPL["pelvis"]]
    forward = joints[:, SMPL["left_foot"]] - joints[:, SMPL["left_ankle"]]
    return np.einsum("ti,ti->t", np.cross(across, up), forward)


@needs_data
def test_hdm05_smpl_axes_rest_and_handedness():
    clip = _hdm05("dg", STANDING_CLIPS["dg"])
    assert detect_convention(clip) == "acclaim"
    indices = smpl_joint_indices(clip)
    assert [clip.joint_names[i] for i in indices] == [
        SMPL_FROM_ACCLAIM[name] for name in SMPL_JOINT_NAMES
    ]
    rest = clip.skeleton.rest_positions()[indices] @ MOCAP_TO_SMPL_AXES.T
    assert rest[SMPL["left_hip"], 0] > 0.05 and rest[SMPL["right_hip"], 0] < -0.05
    assert rest[SMPL["left_foot"], 2] > rest[SMPL["left_ankle"], 2] + 0.05
    assert np.all(_handedness(smpl_joint_positions(clip)) > 0)
    np.testing.assert_allclose(MOCAP_TO_SMPL_AXES @ MOCAP_TO_SMPL_AXES.T, np.eye(3))
    assert np.linalg.det(MOCAP_TO_SMPL_AXES) == pytest.approx(1.0)


# --- real data: CMU BVH, both naming styles -----------------------------------------------


@needs_data
@pytest.mark.parametrize(
    ("file_name", "convention", "frames", "hip"),
    [
        ("cmu_01_01.bvh", "bvh_motionbuilder", 2752, "LeftUpLeg"),
        ("cmu_131_01.bvh", "bvh_3dsmax", 994, "LeftHip"),
    ],
)
def test_cmu_bvh_styles(file_name, convention, frames, hip):
    clip = read_bvh(CMU_BVH / file_name)
    assert clip.num_frames == frames and clip.frame_rate == 120.0
    assert detect_convention(clip) == convention
    assert clip.joint_names[0] == "Hips" and clip.parents[clip.joint_index(hip)] >= 0
    assert _bone_length_deviation(clip) < 1e-9
    joints = smpl_joint_positions(clip)
    assert joints.shape == (frames, 24, 3) and np.all(np.isfinite(joints))
    # CMU_BVH_SCALE is the CMU ASF unit: adult leg bones, feet on the ground.
    thigh = np.linalg.norm(joints[0, SMPL["left_knee"]] - joints[0, SMPL["left_hip"]])
    shin = np.linalg.norm(joints[0, SMPL["left_ankle"]] - joints[0, SMPL["left_knee"]])
    assert 0.35 < thigh < 0.48 and 0.35 < shin < 0.48, (thigh, shin)
    assert abs(clip.positions()[0, :, 1].min()) < 0.08
    assert np.mean(_handedness(joints) > 0) > 0.99
    forward = smpl_joint_positions(clip, face_forward=True)[0]
    assert forward[SMPL["left_shoulder"], 0] > forward[SMPL["right_shoulder"], 0]
    assert forward[SMPL["left_foot"], 2] > forward[SMPL["left_ankle"], 2]
    assert CMU_BVH_SCALE == pytest.approx(ACCLAIM_UNIT)


@needs_data
def test_cmu_bvh_first_frame_by_hand():
    """Root and left leg of cmu_131_01 frame 1 from the file's numbers (channels Z Y X)."""
    clip = read_bvh(CMU_BVH / "cmu_131_01.bvh")
    with open(CMU_BVH / "cmu_131_01.bvh", encoding="latin-1") as handle:
        text = handle.read()
    first = np.array(text.split("Frame Time:")[1].splitlines()[1].split(), dtype=float)
    unit = CMU_BVH_SCALE
    g_root = _rz(first[3]) @ _ry(first[4]) @ _rx(first[5])
    g_hipjoint = g_root @ _rz(first[6]) @ _ry(first[7]) @ _rx(first[8])
    hip = first[:3] * unit + g_hipjoint @ np.array([1.24777, -1.64261, 0.71711]) * unit
    g_thigh = g_hipjoint @ _rz(first[9]) @ _ry(first[10]) @ _rx(first[11])
    knee = hip + g_thigh @ np.array([2.49329, -6.85026, 0.0]) * unit
    positions = clip.positions()[0]
    np.testing.assert_allclose(positions[clip.joint_index("LeftHip")], hip, atol=1e-12)
    np.testing.assert_allclose(positions[clip.joint_index("LeftKnee")], knee, atol=1e-12)
    np.testing.assert_array_equal(first[:6], [5.23, 16.9002, -33.8986, -5.4029, 9.8098, 10.4956])
