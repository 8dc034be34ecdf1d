"""Joint conventions: the one place that defines joint names, orders and maps (SPEC §1.2).

ProHMR predicts 44 joints: 25 in OpenPose BODY_25 order (built from smplx's 45 SMPL joints
and vertex landmarks) followed by 19 "extra" joints from a vertex regressor. Everything else
in the library imports the index lists from here.
"""

from __future__ import annotations

__all__ = [
    "SMPL_JOINT_NAMES",
    "SMPL_PARENTS",
    "SMPL_FLIP_PERMUTATION",
    "SMPLX_LANDMARK_NAMES",
    "SMPLX_LANDMARK_VERTEX_IDS",
    "SMPLX_JOINT_NAMES",
    "BODY25_JOINT_NAMES",
    "SMPLX_TO_BODY25",
    "EXTRA_JOINT_NAMES",
    "PROHMR_JOINT_NAMES",
    "NUM_PROHMR_JOINTS",
    "PELVIS_INDEX",
    "EVAL_JOINTS_14",
    "H36M_17_FROM_EXTRA",
    "H36M_17_INPUT_2D",
    "H36M_16_OUTPUT_3D",
    "OPENPOSE_HIPS",
    "EXTRA_HIPS",
    "BODY25_FLIP_PERMUTATION",
    "EXTRA_FLIP_PERMUTATION",
    "PROHMR_FLIP_PERMUTATION",
    "SPIN49_JOINT_NAMES",
    "PROHMR44_TO_SPIN49",
    "SPIN49_TO_PROHMR44",
    "COCO17_JOINT_NAMES",
    "COCO17_TO_BODY25",
]

# --- SMPL's 24 joints -------------------------------------------------------------------
SMPL_JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck",
    "left_collar", "right_collar", "head", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hand", "right_hand",
)
#: Parent of each SMPL joint (-1 for the root).
SMPL_PARENTS: tuple[int, ...] = (
    -1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21,
)
#: Left/right swap of the 24 SMPL rotations. Mirroring a pose also negates the y and z
#: components of every axis-angle vector (see ``prohmr.data`` augmentation).
SMPL_FLIP_PERMUTATION: tuple[int, ...] = (
    0, 2, 1, 3, 5, 4, 6, 8, 7, 9, 11, 10, 12, 14, 13, 15, 17, 16, 19, 18, 21, 20, 23, 22,
)

# --- smplx vertex landmarks (SMPL topology, 6890 vertices) --------------------------------
#: smplx appends these 21 landmarks after the 24 SMPL joints, in this order.
SMPLX_LANDMARK_NAMES: tuple[str, ...] = (
    "nose", "reye", "leye", "rear", "lear",
    "LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel",
    "lthumb", "lindex", "lmiddle", "lring", "lpinky",
    "rthumb", "rindex", "rmiddle", "rring", "rpinky",
)
SMPLX_LANDMARK_VERTEX_IDS: dict[str, int] = {
    "nose": 332, "reye": 6260, "leye": 2800, "rear": 4071, "lear": 583,
    "LBigToe": 3216, "LSmallToe": 3226, "LHeel": 3387,
    "RBigToe": 6617, "RSmallToe": 6624, "RHeel": 6787,
    "rthumb": 6191, "rindex": 5782, "rmiddle": 5905, "rring": 6016, "rpinky": 6133,
    "lthumb": 2746, "lindex": 2319, "lmiddle": 2445, "lring": 2556, "lpinky": 2673,
}
#: The 45 joints smplx's SMPL returns: 24 SMPL joints then the 21 landmarks.
SMPLX_JOINT_NAMES: tuple[str, ...] = SMPL_JOINT_NAMES + SMPLX_LANDMARK_NAMES

# --- ProHMR's 44 joints -----------------------------------------------------------------
BODY25_JOINT_NAMES: tuple[str, ...] = (
    "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist",
    "MidHip", "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye",
    "REar", "LEar", "LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel",
)
#: Index into smplx's 45 joints for each BODY_25 joint.
SMPLX_TO_BODY25: tuple[int, ...] = (
    24, 12, 17, 19, 21, 16, 18, 20, 0, 2, 5, 8, 1, 4, 7, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34,
)
#: The 19 joints of the extra regressor (``SMPL_to_J19.pkl``), in its row order.
EXTRA_JOINT_NAMES: tuple[str, ...] = (
    "R_Ankle", "R_Knee", "R_Hip", "L_Hip", "L_Knee", "L_Ankle", "R_Wrist", "R_Elbow",
    "R_Shoulder", "L_Shoulder", "L_Elbow", "L_Wrist", "Neck_LSP", "Top_of_Head_LSP",
    "Pelvis_MPII", "Thorax_MPII", "Spine_H36M", "Jaw_H36M", "Head_H36M",
)
PROHMR_JOINT_NAMES: tuple[str, ...] = BODY25_JOINT_NAMES + EXTRA_JOINT_NAMES
NUM_PROHMR_JOINTS: int = len(PROHMR_JOINT_NAMES)  # 44

#: Pelvis used to centre 3D joints for root-relative losses and metrics (MPII pelvis).
PELVIS_INDEX: int = 25 + 14  # 39
#: 14 LSP evaluation joints: 12 limb joints, LSP neck, H36M head.
EVAL_JOINTS_14: tuple[int, ...] = tuple(range(25, 38)) + (43,)

#: H36M-17 joint set expressed in extra-joint indices (ProSkeleton 2D input).
H36M_17_FROM_EXTRA: tuple[int, ...] = tuple(range(13)) + (14, 16, 17, 18)
#: The same 17 joints as indices into the 44 ProHMR joints.
H36M_17_INPUT_2D: tuple[int, ...] = tuple(25 + i for i in H36M_17_FROM_EXTRA)
#: ProSkeleton's 16 root-relative 3D outputs (pelvis excluded), as indices into the 44.
H36M_16_OUTPUT_3D: tuple[int, ...] = tuple(25 + i for i in tuple(range(13)) + (16, 17, 18))

#: Hip joints whose confidence the fitting "hips" option zeroes (SPEC §6.1).
OPENPOSE_HIPS: tuple[int, ...] = (8, 9, 12)
EXTRA_HIPS: tuple[int, ...] = (27, 28, 39)

# --- left/right flips ---------------------------------------------------------------------
BODY25_FLIP_PERMUTATION: tuple[int, ...] = (
    0, 1, 5, 6, 7, 2, 3, 4, 8, 12, 13, 14, 9, 10, 11, 16, 15, 18, 17, 22, 23, 24, 19, 20, 21,
)
EXTRA_FLIP_PERMUTATION: tuple[int, ...] = (
    5, 4, 3, 2, 1, 0, 11, 10, 9, 8, 7, 6, 12, 13, 14, 15, 16, 17, 18,
)
PROHMR_FLIP_PERMUTATION: tuple[int, ...] = BODY25_FLIP_PERMUTATION + tuple(
    25 + i for i in EXTRA_FLIP_PERMUTATION
)

# --- SPIN's 49 joints (BOA, Meta-HMR, MAED) -------------------------------------------------
SPIN49_JOINT_NAMES: tuple[str, ...] = PROHMR_JOINT_NAMES + (
    "Nose_extra", "L_Eye_extra", "R_Eye_extra", "L_Ear_extra", "R_Ear_extra",
)
#: For each of SPIN's 49 joints, the ProHMR joint that stands in for it. The first 44 are
#: identical; SPIN's last five (nose, eyes, ears from its own regressor) take the BODY_25
#: face landmarks.
PROHMR44_TO_SPIN49: tuple[int, ...] = tuple(range(44)) + (0, 16, 15, 18, 17)
#: ProHMR's 44 joints are the first 44 of SPIN's 49.
SPIN49_TO_PROHMR44: tuple[int, ...] = tuple(range(44))

# --- COCO-17 ------------------------------------------------------------------------------
COCO17_JOINT_NAMES: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)
#: BODY_25 index of each COCO-17 keypoint.
COCO17_TO_BODY25: tuple[int, ...] = (0, 16, 15, 18, 17, 5, 2, 6, 3, 7, 4, 12, 9, 13, 10, 14, 11)
