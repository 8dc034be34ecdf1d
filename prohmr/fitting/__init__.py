"""Fitting with learned priors (SPEC §6).

- :func:`fit_keypoints`: ProHMR's keypoint fitting with the image-conditioned prior (§6.1).
- :func:`fit_multiview`: multi-view refinement of one subject (§6.2).
- :func:`fit_prior_keypoints_2d`, :func:`fit_prior_joints_3d`: SMPLify-style fitting with an
  unconditional learned pose prior (§6.3).
- :func:`read_keypoints` and friends: OpenPose BODY_25 JSON and COCO-17 keypoints.
- :mod:`prohmr.fitting.command`: what ``prohmr fit`` does (imported on demand: it needs the
  rendering and plotting modules).
- :func:`minimize_lbfgs`: the batched L-BFGS behind all of them (one state per problem).
- :class:`FrozenFlowSampler`, :class:`BodyJoints`: the fast flow and body evaluations of the
  inner loop (equal to ``ConditionalGlow.sample`` and ``BodyModel`` up to round-off).
"""

from __future__ import annotations

from prohmr.fitting.body_joints import BodyJoints
from prohmr.fitting.frozen_flow import FrozenFlowSampler
from prohmr.fitting.keypoint_fitting import (
    FIT_MODES,
    HIP_JOINTS,
    FitMode,
    KeypointFitResult,
    KeypointFitWeights,
    fit_keypoints,
    frozen,
    gmof,
    reprojection_loss,
)
from prohmr.fitting.keypoints_io import (
    body25_to_prohmr44,
    coco17_to_body25,
    read_coco_keypoints,
    read_keypoints,
    read_openpose_json,
)
from prohmr.fitting.multiview import (
    MultiViewFitResult,
    MultiViewWeights,
    body_pose_spread,
    fit_multiview,
)
from prohmr.fitting.optimizer import LBFGSResult, LBFGSSettings, minimize_lbfgs
from prohmr.fitting.prior_fitting import (
    DEFAULT_2D_WEIGHTS,
    DEFAULT_3D_WEIGHTS,
    JOINT_SETS,
    JointSet,
    PriorFitResult,
    PriorFitWeights,
    fit_prior_joints_3d,
    fit_prior_keypoints_2d,
)

__all__ = [
    "DEFAULT_2D_WEIGHTS",
    "DEFAULT_3D_WEIGHTS",
    "FIT_MODES",
    "HIP_JOINTS",
    "JOINT_SETS",
    "BodyJoints",
    "FitMode",
    "FrozenFlowSampler",
    "JointSet",
    "KeypointFitResult",
    "KeypointFitWeights",
    "LBFGSResult",
    "LBFGSSettings",
    "MultiViewFitResult",
    "MultiViewWeights",
    "PriorFitResult",
    "PriorFitWeights",
    "body25_to_prohmr44",
    "body_pose_spread",
    "coco17_to_body25",
    "fit_keypoints",
    "fit_multiview",
    "fit_prior_joints_3d",
    "fit_prior_keypoints_2d",
    "frozen",
    "gmof",
    "minimize_lbfgs",
    "read_coco_keypoints",
    "read_keypoints",
    "read_openpose_json",
    "reprojection_loss",
]
