"""Correspondence of mocap skeletons with SMPL's 24 joints.

Each table maps an SMPL joint name (``prohmr.body.joints.SMPL_JOINT_NAMES``) to the mocap joint
whose position stands for it. A mocap joint sits at the *start* of its bone (ASF) or is the
BVH joint itself; so e.g. SMPL's left knee is the joint ``ltibia`` (start of the tibia).

Choices where the skeletons offer no exact counterpart:

- **Spine.** SMPL's spine1/2/3, neck and head are the *ends* of the Acclaim ``lowerback``,
  ``upperback``, ``thorax``, ``lowerneck`` and ``upperneck`` bones, i.e. the joints
  ``upperback``, ``thorax``, ``lowerneck``, ``upperneck`` and ``head``. The start of
  ``lowerback`` coincides with the pelvis; the ends lie about 0.13, 0.28, 0.42, 0.51 and
  0.60 m above it in the HDM05 rest poses, spaced like SMPL's spine, neck and head joints.
- **Collars** are the start of the clavicles (on the spine, at spine3's position).
- **CMU BVH** conversions give the thorax and the wrist bone zero length: their spine3 and
  spine2 coincide, and the hand joint would sit on the wrist, so SMPL's hands map to the start
  of the finger bones (``LFingers``/``RFingers``, 3-4 cm past the wrist).

Axes: Acclaim (HDM05) and CMU BVH data are y-up; their rest poses face +z with the subject's
left on +x, exactly SMPL's axes, and the data are right-handed, so :data:`MOCAP_TO_SMPL_AXES`
is the identity (only a change of units, done by the readers, is needed). The subject's
heading in a clip is whatever the capture had; ``face_forward=True`` rotates a clip about the
vertical axis so that it faces +z at its first frame.
"""

from __future__ import annotations

import numpy as np

from prohmr.body.joints import SMPL_JOINT_NAMES
from prohmr.data.mocap.skeleton import MocapClip

__all__ = [
    "SMPL_FROM_ACCLAIM",
    "SMPL_FROM_BVH_MOTIONBUILDER",
    "SMPL_FROM_BVH_3DSMAX",
    "MOCAP_CONVENTIONS",
    "MOCAP_TO_SMPL_AXES",
    "detect_convention",
    "smpl_joint_indices",
    "smpl_joint_positions",
]

SMPL_FROM_ACCLAIM: dict[str, str] = {
    "pelvis": "root",
    "left_hip": "lfemur",
    "right_hip": "rfemur",
    "spine1": "upperback",
    "left_knee": "ltibia",
    "right_knee": "rtibia",
    "spine2": "thorax",
    "left_ankle": "lfoot",
    "right_ankle": "rfoot",
    "spine3": "lowerneck",
    "left_foot": "ltoes",
    "right_foot": "rtoes",
    "neck": "upperneck",
    "left_collar": "lclavicle",
    "right_collar": "rclavicle",
    "head": "head",
    "left_shoulder": "lhumerus",
    "right_shoulder": "rhumerus",
    "left_elbow": "lradius",
    "right_elbow": "rradius",
    "left_wrist": "lwrist",
    "right_wrist": "rwrist",
    "left_hand": "lhand",
    "right_hand": "rhand",
}
"""SMPL joint -> Acclaim ASF joint (CMU / HDM05 bone names; the joint is the bone's start)."""

SMPL_FROM_BVH_MOTIONBUILDER: dict[str, str] = {
    "pelvis": "Hips",
    "left_hip": "LeftUpLeg",
    "right_hip": "RightUpLeg",
    "spine1": "Spine",
    "left_knee": "LeftLeg",
    "right_knee": "RightLeg",
    "spine2": "Spine1",
    "left_ankle": "LeftFoot",
    "right_ankle": "RightFoot",
    "spine3": "Neck",
    "left_foot": "LeftToeBase",
    "right_foot": "RightToeBase",
    "neck": "Neck1",
    "left_collar": "LeftShoulder",
    "right_collar": "RightShoulder",
    "head": "Head",
    "left_shoulder": "LeftArm",
    "right_shoulder": "RightArm",
    "left_elbow": "LeftForeArm",
    "right_elbow": "RightForeArm",
    "left_wrist": "LeftHand",
    "right_wrist": "RightHand",
    "left_hand": "LFingers",
    "right_hand": "RFingers",
}
"""SMPL joint -> CMU BVH joint, MotionBuilder-style names (e.g. ``cmu_01_01.bvh``)."""

SMPL_FROM_BVH_3DSMAX: dict[str, str] = {
    "pelvis": "Hips",
    "left_hip": "LeftHip",
    "right_hip": "RightHip",
    "spine1": "Chest",
    "left_knee": "LeftKnee",
    "right_knee": "RightKnee",
    "spine2": "Chest2",
    "left_ankle": "LeftAnkle",
    "right_ankle": "RightAnkle",
    "spine3": "lowerneck",
    "left_foot": "LeftToe",
    "right_foot": "RightToe",
    "neck": "Neck",
    "left_collar": "LeftCollar",
    "right_collar": "RightCollar",
    "head": "Head",
    "left_shoulder": "LeftShoulder",
    "right_shoulder": "RightShoulder",
    "left_elbow": "LeftElbow",
    "right_elbow": "RightElbow",
    "left_wrist": "LeftWrist",
    "right_wrist": "RightWrist",
    "left_hand": "LFingers",
    "right_hand": "RFingers",
}
"""SMPL joint -> CMU BVH joint, 3ds Max-style names (e.g. ``cmu_131_01.bvh``)."""

MOCAP_CONVENTIONS: dict[str, dict[str, str]] = {
    "acclaim": SMPL_FROM_ACCLAIM,
    "bvh_motionbuilder": SMPL_FROM_BVH_MOTIONBUILDER,
    "bvh_3dsmax": SMPL_FROM_BVH_3DSMAX,
}
"""The known skeleton conventions by name."""

MOCAP_TO_SMPL_AXES: np.ndarray = np.eye(3)
"""Rotation taking mocap (Acclaim / CMU BVH) axes to SMPL's: ``p_smpl = MOCAP_TO_SMPL_AXES @ p``."""
MOCAP_TO_SMPL_AXES.setflags(write=False)


def detect_convention(clip: MocapClip) -> str:
    """Name of the convention in :data:`MOCAP_CONVENTIONS` whose joints the clip has.

    Raises:
        ValueError: no known convention matches (listing what each one lacks).
    """
    names = set(clip.joint_names)
    missing = {}
    for convention, table in MOCAP_CONVENTIONS.items():
        lacking = [joint for joint in table.values() if joint not in names]
        if not lacking:
            return convention
        missing[convention] = lacking
    details = "; ".join(f"{c} lacks {', '.join(m[:4])}" for c, m in missing.items())
    raise ValueError(f"clip: joints match no known mocap convention ({details})")


def smpl_joint_indices(clip: MocapClip, convention: str | None = None) -> np.ndarray:
    """Index of the clip joint standing for each SMPL joint, in SMPL's order: ``(24,)``.

    Arguments:
        clip: the motion.
        convention: a key of :data:`MOCAP_CONVENTIONS`; detected from the joint names if None.
    """
    if convention is None:
        convention = detect_convention(clip)
    if convention not in MOCAP_CONVENTIONS:
        raise ValueError(
            f"convention: expected one of {sorted(MOCAP_CONVENTIONS)}, got {convention!r}"
        )
    table = MOCAP_CONVENTIONS[convention]
    return np.array([clip.joint_index(table[name]) for name in SMPL_JOINT_NAMES])


def smpl_joint_positions(
    clip: MocapClip, convention: str | None = None, face_forward: bool = False
) -> np.ndarray:
    """Positions of SMPL's 24 joints over a clip, in SMPL's order and axes: ``(T, 24, 3)`` m.

    Arguments:
        clip: the motion.
        convention: a key of :data:`MOCAP_CONVENTIONS`; detected from the joint names if None.
        face_forward: rotate the whole clip about the vertical (y) axis through the origin so
            that at frame 0 the right-to-left hip vector points along +x, i.e. the subject
            faces +z.

    Returns:
        ``(T, 24, 3)`` float64 joint positions in metres.
    """
    joints = clip.positions()[:, smpl_joint_indices(clip, convention)] @ MOCAP_TO_SMPL_AXES.T
    if face_forward:
        left, right = SMPL_JOINT_NAMES.index("left_hip"), SMPL_JOINT_NAMES.index("right_hip")
        across = joints[0, left] - joints[0, right]
        yaw = np.arctan2(across[2], across[0])
        c, s = np.cos(yaw), np.sin(yaw)
        turn = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
        joints = joints @ turn.T
    return joints
