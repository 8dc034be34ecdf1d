"""Motion-capture readers: Acclaim ASF/AMC and BVH, forward kinematics, SMPL correspondences.

A reader returns a :class:`MocapClip` (a :class:`Skeleton` with per-frame local rotations,
root translations and a frame rate, in metres); :func:`smpl_joint_positions` gives SMPL's 24
joints over a clip in SMPL's axes. :mod:`prohmr.data.mocap.retarget` fits the body model to
them and exports the mocap dataset (its names are importable from here; the module loads on
first use, since it builds on :mod:`prohmr.data.pose_sources`, which imports the readers).
"""

from __future__ import annotations

import importlib
from typing import Any

from prohmr.data.mocap.asf_amc import (
    DEFAULT_AMC_FRAME_RATE,
    INCH_IN_METRES,
    AcclaimBone,
    AcclaimSkeleton,
    load_asf_amc,
    read_amc,
    read_asf,
)
from prohmr.data.mocap.bvh import CMU_BVH_SCALE, read_bvh
from prohmr.data.mocap.skeleton import (
    MocapClip,
    Skeleton,
    euler_to_matrix,
    forward_kinematics,
    subsample,
)
from prohmr.data.mocap.smpl_map import (
    MOCAP_CONVENTIONS,
    MOCAP_TO_SMPL_AXES,
    SMPL_FROM_ACCLAIM,
    SMPL_FROM_BVH_3DSMAX,
    SMPL_FROM_BVH_MOTIONBUILDER,
    detect_convention,
    smpl_joint_indices,
    smpl_joint_positions,
)

_RETARGET_NAMES: tuple[str, ...] = (
    "ActorCalibration",
    "MocapBuildReport",
    "RetargetResult",
    "RetargetWeights",
    "build_mocap_dataset",
    "calibrate_actor",
    "mocap_targets",
    "retarget_clip",
    "run_mocap_command",
    "subsample_indices",
)

__all__ = [
    "AcclaimBone",
    "AcclaimSkeleton",
    "CMU_BVH_SCALE",
    "DEFAULT_AMC_FRAME_RATE",
    "INCH_IN_METRES",
    "MOCAP_CONVENTIONS",
    "MOCAP_TO_SMPL_AXES",
    "MocapClip",
    "SMPL_FROM_ACCLAIM",
    "SMPL_FROM_BVH_3DSMAX",
    "SMPL_FROM_BVH_MOTIONBUILDER",
    "Skeleton",
    "detect_convention",
    "euler_to_matrix",
    "forward_kinematics",
    "load_asf_amc",
    "read_amc",
    "read_asf",
    "read_bvh",
    "smpl_joint_indices",
    "smpl_joint_positions",
    "subsample",
    *_RETARGET_NAMES,
]


def __getattr__(name: str) -> Any:
    if name in _RETARGET_NAMES:
        return getattr(importlib.import_module("prohmr.data.mocap.retarget"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
