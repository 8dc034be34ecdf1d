"""The joint conventions: internal consistency of every map and permutation."""

from __future__ import annotations

import pytest

from prohmr.body import joints as J


def _is_permutation(perm, n):
    return sorted(perm) == list(range(n))


def test_sizes():
    assert len(J.SMPL_JOINT_NAMES) == len(J.SMPL_PARENTS) == 24
    assert len(J.SMPLX_JOINT_NAMES) == 45
    assert len(J.BODY25_JOINT_NAMES) == len(J.SMPLX_TO_BODY25) == 25
    assert len(J.EXTRA_JOINT_NAMES) == 19
    assert J.NUM_PROHMR_JOINTS == 44
    assert len(J.SPIN49_JOINT_NAMES) == len(J.PROHMR44_TO_SPIN49) == 49


def test_pelvis_and_eval_set():
    assert J.PELVIS_INDEX == 39
    assert J.PROHMR_JOINT_NAMES[J.PELVIS_INDEX] == "Pelvis_MPII"
    assert J.EVAL_JOINTS_14 == (25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 43)
    assert J.PROHMR_JOINT_NAMES[43] == "Head_H36M" and J.PROHMR_JOINT_NAMES[37] == "Neck_LSP"


def test_parents_precede_children():
    assert J.SMPL_PARENTS[0] == -1
    assert all(0 <= p < i for i, p in enumerate(J.SMPL_PARENTS) if i > 0)


def test_smplx_to_body25_names_agree():
    # Each BODY_25 joint must come from the smplx joint of the same body part.
    expected = {
        "Nose": "nose", "Neck": "neck", "RShoulder": "right_shoulder", "RElbow": "right_elbow",
        "RWrist": "right_wrist", "LShoulder": "left_shoulder", "LElbow": "left_elbow",
        "LWrist": "left_wrist", "MidHip": "pelvis", "RHip": "right_hip", "RKnee": "right_knee",
        "RAnkle": "right_ankle", "LHip": "left_hip", "LKnee": "left_knee",
        "LAnkle": "left_ankle", "REye": "reye", "LEye": "leye", "REar": "rear", "LEar": "lear",
        "LBigToe": "LBigToe", "LSmallToe": "LSmallToe", "LHeel": "LHeel", "RBigToe": "RBigToe",
        "RSmallToe": "RSmallToe", "RHeel": "RHeel",
    }
    for name, idx in zip(J.BODY25_JOINT_NAMES, J.SMPLX_TO_BODY25):
        assert J.SMPLX_JOINT_NAMES[idx] == expected[name]


@pytest.mark.parametrize(
    "perm,n",
    [
        (J.SMPL_FLIP_PERMUTATION, 24),
        (J.BODY25_FLIP_PERMUTATION, 25),
        (J.EXTRA_FLIP_PERMUTATION, 19),
        (J.PROHMR_FLIP_PERMUTATION, 44),
    ],
)
def test_flips_are_involutions(perm, n):
    assert _is_permutation(perm, n)
    assert all(perm[perm[i]] == i for i in range(n))


def _side_swapped(name: str) -> str:
    swaps = [("left", "right"), ("Left", "Right"), ("L", "R"), ("l", "r")]
    for a, b in swaps:
        for prefix in (a + "_", a):
            if name.startswith(prefix) and name != prefix:
                return (b + "_" if prefix.endswith("_") else b) + name[len(prefix):]
        for prefix in (b + "_", b):
            if name.startswith(prefix) and name != prefix:
                return (a + "_" if prefix.endswith("_") else a) + name[len(prefix):]
    return name


@pytest.mark.parametrize(
    "names,perm",
    [
        (J.SMPL_JOINT_NAMES, J.SMPL_FLIP_PERMUTATION),
        (J.PROHMR_JOINT_NAMES, J.PROHMR_FLIP_PERMUTATION),
    ],
)
def test_flip_maps_each_joint_to_its_mirror(names, perm):
    for i, j in enumerate(perm):
        mirrored = _side_swapped(names[i])
        if mirrored == names[i]:
            assert j == i, names[i]
        else:
            assert names[j] == mirrored, (names[i], names[j])


def test_coco_map():
    assert len(set(J.COCO17_TO_BODY25)) == 17
    expected = [
        "Nose", "LEye", "REye", "LEar", "REar", "LShoulder", "RShoulder", "LElbow", "RElbow",
        "LWrist", "RWrist", "LHip", "RHip", "LKnee", "RKnee", "LAnkle", "RAnkle",
    ]
    assert [J.BODY25_JOINT_NAMES[i] for i in J.COCO17_TO_BODY25] == expected


def test_spin_map():
    assert J.PROHMR44_TO_SPIN49[:44] == tuple(range(44))
    face = [J.PROHMR_JOINT_NAMES[i] for i in J.PROHMR44_TO_SPIN49[44:]]
    assert face == ["Nose", "LEye", "REye", "LEar", "REar"]
    assert J.SPIN49_TO_PROHMR44 == tuple(range(44))


def test_h36m_sets():
    assert len(J.H36M_17_INPUT_2D) == 17
    assert len(J.H36M_16_OUTPUT_3D) == 16
    assert J.PELVIS_INDEX in J.H36M_17_INPUT_2D
    assert J.PELVIS_INDEX not in J.H36M_16_OUTPUT_3D
    assert set(J.H36M_16_OUTPUT_3D) < set(J.H36M_17_INPUT_2D)


def test_landmark_ids_unique_and_in_range():
    ids = list(J.SMPLX_LANDMARK_VERTEX_IDS.values())
    assert len(set(ids)) == 21
    assert all(0 <= i < 6890 for i in ids)
    assert set(J.SMPLX_LANDMARK_VERTEX_IDS) == set(J.SMPLX_LANDMARK_NAMES)
