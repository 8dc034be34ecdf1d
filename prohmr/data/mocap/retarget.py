"""Fitted retarget of motion capture onto the body model, and the mocap dataset export.

The swing retarget (:func:`prohmr.data.pose_sources.retarget_swing`) turns every bone of the
body model towards the mocap bone, but keeps the body's own proportions (a ~5 cm mean joint
error on HDM05) and has no notion of twist. This module *fits* the body model to the mocap's
SMPL-ordered joint positions with the library's batched L-BFGS
(:func:`prohmr.fitting.minimize_lbfgs`):

- **Variables.** Per frame: the 24 joint rotations (global orientation included) as a local
  correction ``R_j = S_j C(δ_j)`` of a start ``S`` (``C(δ)``: the rotation of the quaternion
  ``(1, δ/2)``, ``exp([δ]×)`` to first order), and a translation ``t``. Per
  actor (an :class:`ActorCalibration`): **one** betas vector shared by all its frames (bones
  have one length per person) and the marker offsets of :data:`CALIBRATED_JOINTS`.
- **Start.** The swing retarget onto the body's rest skeleton, with the hips and shoulders
  then turned about their bone so that the knee and elbow bend about their anatomical hinge
  axis (see *Hinges*), and the least-squares translation.
- **Loss per frame** (the unit ``u`` of the position term is 1 cm, so a 1 cm error on one
  joint costs 1)::

      Σ_j w_j ‖(M_j + t − X_j) / u‖²  +  w_twist² Σ_{j∈T} 4 sin²(τ_j / 2)
      + w_hinge² Σ_{j∈H} ‖R_j h_j − h_j‖²  +  w_spine² Σ_k ½ ‖R_{s_k+1} − R_{s_k}‖²
      + w_start² Σ_j ‖δ_j‖²

  with ``X`` the mocap joints, ``w_j`` :data:`DEFAULT_JOINT_WEIGHTS` and ``M_j`` the body's
  SMPL joint ``J_j(R, β)`` (or, for a calibrated joint, its marker); the betas fit adds
  ``w_shape² ‖β‖²`` per frame.
- **Twist.** Joint positions say nothing about the rotation of a bone about its own axis
  when the joints below lie on that axis (wrist and foot roll, head turn), and only fix the
  sum of the twists along a chain (spine, collar and shoulder). ``τ_j`` is the twist angle of
  the local rotation ``R_j`` about the rest direction of joint ``j``'s child bone
  (:data:`TWIST_JOINTS`): ``tan(τ/2) = (s·a) / (1 + tr R)`` with ``s`` the axial vector of
  ``R − Rᵀ`` and ``a`` the axis; ``4 sin²(τ/2) ≈ τ²`` for small twists.
- **Hinges.** Knees and elbows (:data:`HINGE_JOINTS`) are anatomical hinges: their rotation
  should be about ``h = bone × bend`` (perpendicular to the rest bone and the direction the
  joint bends towards: knees backwards, elbows forwards in the T-pose). The penalty
  ``‖R h − h‖² = 4 sin²(off-hinge angle / 2)`` makes the twist of the hip and shoulder
  observable: it is the one that lets the joint below bend about its hinge.
- **Spine.** Consecutive spine rotations (spine1-spine2, spine2-spine3) are kept alike
  (``½ ‖R_a − R_b‖² ≈`` the angle between them, squared). The body's spine2-to-neck distance
  is set by its shape space, the actor's is not; without this term the fit kinks spine2 and
  spine3 by ±30° to shorten it.
- **Markers for loose correspondences.** Some mocap joints are a different anatomical point
  than the SMPL joint they stand for: HDM05's root lies 3-5 cm behind and above the hip
  centre, its clavicles start on the spine at the top of the thorax (where SMPL's collars sit
  off-centre) and the same point stands for spine3, which SMPL places lower. Forcing the
  body's joints onto those points bends the spine and skews the betas. Instead, such a mocap
  joint is treated as a *marker* rigidly attached to the frame of the joint it moves with
  (:data:`CALIBRATED_JOINTS`): ``M_j = J_a + W_a c_j`` with ``a`` that joint, ``W_a`` its world
  rotation and ``c_j`` an offset fitted once per actor (as MoSh does for surface markers).
- **Betas per actor** are fitted *jointly* with the marker offsets and the poses of a
  subsample of the actor's frames (one L-BFGS problem): bone lengths and joint angles trade
  off against each other (a longer thigh or a more bent knee), which an alternation between
  poses and betas resolves only slowly, while a few dozen frames spread over the actor's clips
  already pin down every bone length. All frames are then fitted with the calibration fixed,
  as independent problems.

Frames are fitted ``frames_per_problem`` at a time as one L-BFGS problem: the frames of a
group are independent (the group's optimum is every frame's own optimum), but one L-BFGS state
per group rather than per frame cuts the optimiser's per-problem host overhead, which would
otherwise dominate. Each joint's correction is preconditioned by the inverse square root of
its loss curvature at the start (the weighted inertia tensor of the joints it moves, plus the
regularisers'), so that L-BFGS sees a well-scaled problem.

The fit runs in float64 on the CPU whatever the body model's dtype and device (the SMPL
joints follow from the kinematic chain alone); the exported 44 joints come from the body
model itself.

HDM05 targets use :data:`RETARGET_FROM_ACCLAIM`: the correspondence of
:data:`prohmr.data.mocap.SMPL_FROM_ACCLAIM` with the wrists and hands one bone further down
the arm (the Acclaim ``radius`` bone is only the first ~2/3 of the forearm; the ``wrist``
bone completes it), which is what the CMU BVH tables already do.

:func:`build_mocap_dataset` writes the HDM05 clips as one ``.npz`` (format in
``docs/mocap.md``) and :func:`run_mocap_command` is what ``prohmr data mocap`` runs. HDM05 is
CC BY-SA 3.0 (Müller et al., "Documentation Mocap Database HDM05", Universität Bonn, 2007);
data derived from it shares that licence.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch

from prohmr.body.joints import SMPL_JOINT_NAMES, SMPL_PARENTS
from prohmr.body.model import BodyModel, create_body_model
from prohmr.constants import NUM_BETAS, NUM_SMPL_JOINTS
from prohmr.data.mocap.asf_amc import read_amc, read_asf
from prohmr.data.mocap.skeleton import MocapClip, Skeleton, subsample
from prohmr.data.mocap.smpl_map import (
    MOCAP_TO_SMPL_AXES,
    SMPL_FROM_ACCLAIM,
    detect_convention,
    smpl_joint_positions,
)
from prohmr.data.pose_sources import (
    DEFAULT_DATA_ROOT,
    HDM05_ACTORS,
    hdm05_clips,
    retarget_swing,
)
from prohmr.fitting.body_joints import BodyJoints
from prohmr.fitting.optimizer import LBFGSSettings, minimize_lbfgs
from prohmr.geometry import axis_angle_to_matrix, matrix_to_axis_angle

__all__ = [
    "RETARGET_VERSION",
    "MOCAP_DATASET_FORMAT",
    "MOCAP_DATASET_KEYS",
    "HDM05_ATTRIBUTION",
    "RETARGET_FROM_ACCLAIM",
    "DEFAULT_JOINT_WEIGHTS",
    "CALIBRATED_JOINTS",
    "TWIST_JOINTS",
    "HINGE_JOINTS",
    "DEFAULT_POSE_SETTINGS",
    "DEFAULT_SHAPE_SETTINGS",
    "DEFAULT_SHAPE_FRAMES",
    "RetargetWeights",
    "DEFAULT_RETARGET_WEIGHTS",
    "ActorCalibration",
    "RetargetResult",
    "ClipResidual",
    "MocapBuildReport",
    "mocap_targets",
    "subsample_indices",
    "calibrate_actor",
    "retarget_clip",
    "build_mocap_dataset",
    "run_mocap_command",
]

logger = logging.getLogger(__name__)

#: Version of the fitted retarget, stored in a dataset's ``source``.
RETARGET_VERSION: int = 1
#: Format name stored in a dataset's ``source``.
MOCAP_DATASET_FORMAT: str = "prohmr.mocap_dataset"
#: The keys of a mocap dataset ``.npz`` (docs/mocap.md).
MOCAP_DATASET_KEYS: tuple[str, ...] = (
    "body_pose", "betas", "joints", "smpl_joints", "mocap_joints", "actor", "clip", "frame",
    "residual_mm", "fps", "source",
)
#: Licence and citation that data derived from HDM05 must carry.
HDM05_ATTRIBUTION: str = (
    "Derived from the HDM05 motion capture database, Creative Commons Attribution-ShareAlike "
    "3.0 (CC BY-SA 3.0): M. Müller, T. Röder, M. Clausen, B. Eberhardt, B. Krüger, A. Weber, "
    "\"Documentation Mocap Database HDM05\", Technical Report CG-2007-2, Universität Bonn, "
    "2007. Shared under the same licence."
)

RETARGET_FROM_ACCLAIM: dict[str, str] = {
    **SMPL_FROM_ACCLAIM,
    "left_wrist": "lhand", "right_wrist": "rhand",
    "left_hand": "lfingers", "right_hand": "rfingers",
}
"""SMPL joint -> Acclaim joint for the fitted retarget (module docstring): HDM05's radius is
~17 cm and its wrist bone ~8.5 cm, together the ~25 cm of a forearm (SMPL's elbow-wrist
distance); ``SMPL_FROM_ACCLAIM``'s wrist would shorten the forearm by a third."""

_J = {name: index for index, name in enumerate(SMPL_JOINT_NAMES)}
#: Position weight of each SMPL joint. The collars' HDM05 counterpart is the same point as
#: spine3's (the top of the thorax), so they share its weight instead of tripling it.
DEFAULT_JOINT_WEIGHTS: tuple[float, ...] = tuple(
    {"left_collar": 0.5, "right_collar": 0.5}.get(name, 1.0) for name in SMPL_JOINT_NAMES
)
#: Joints whose mocap counterpart is a marker rigidly attached to a joint's frame (module
#: docstring): joint -> that joint. HDM05's root moves with the pelvis; its spine3 and
#: clavicle starts are one point, the base of the neck, which SMPL's spine3 carries.
CALIBRATED_JOINTS: dict[int, int] = {
    _J["pelvis"]: _J["pelvis"], _J["spine3"]: _J["spine3"],
    _J["left_collar"]: _J["spine3"], _J["right_collar"]: _J["spine3"],
}
#: Joints whose twist about their child bone is penalised: joint -> the child defining the
#: axis (spine3 has three children; its axis points to the neck).
TWIST_JOINTS: dict[int, int] = {
    _J["spine1"]: _J["spine2"], _J["spine2"]: _J["spine3"], _J["spine3"]: _J["neck"],
    _J["neck"]: _J["head"], _J["left_collar"]: _J["left_shoulder"],
    _J["right_collar"]: _J["right_shoulder"], _J["left_ankle"]: _J["left_foot"],
    _J["right_ankle"]: _J["right_foot"], _J["left_wrist"]: _J["left_hand"],
    _J["right_wrist"]: _J["right_hand"],
}
#: Hinge joints -> the direction (body axes of the rest pose) they bend their child towards:
#: knees backwards (-z), elbows forwards (+z; the arms lie along x in the T-pose).
HINGE_JOINTS: dict[int, tuple[float, float, float]] = {
    _J["left_knee"]: (0.0, 0.0, -1.0), _J["right_knee"]: (0.0, 0.0, -1.0),
    _J["left_elbow"]: (0.0, 0.0, 1.0), _J["right_elbow"]: (0.0, 0.0, 1.0),
}
#: L-BFGS settings of the per-frame pose fit.
DEFAULT_POSE_SETTINGS = LBFGSSettings(
    max_steps=5, max_iterations=20, history_size=10, relative_tolerance=1e-7
)
#: L-BFGS settings of an actor's calibration (betas, marker offsets and poses jointly).
DEFAULT_SHAPE_SETTINGS = LBFGSSettings(
    max_steps=15, max_iterations=20, history_size=20, relative_tolerance=1e-8
)
#: Frames of an actor used for its calibration (spread evenly over its frames).
DEFAULT_SHAPE_FRAMES: int = 64

_CHILDREN: tuple[tuple[int, ...], ...] = tuple(
    tuple(child for child in range(NUM_SMPL_JOINTS) if SMPL_PARENTS[child] == joint)
    for joint in range(NUM_SMPL_JOINTS)
)
#: Spine joints whose consecutive local rotations are kept alike.
_SPINE_CHAIN: list[int] = [_J["spine1"], _J["spine2"], _J["spine3"]]
_SPINE_STEP = _SPINE_CHAIN[1] - _SPINE_CHAIN[0]
_POSE_SIZE = 3 * NUM_SMPL_JOINTS
_FRAME_SIZE = _POSE_SIZE + 3
_NUM_MARKERS = len(CALIBRATED_JOINTS)
#: Floor under ``(1 + tr R)² + (s·a)²`` in the twist penalty; it only matters for half
#: turns (where the twist angle is undefined) and keeps the gradient finite there.
_TWIST_EPS: float = 1e-12
#: Floor under ``1 + cos`` when turning one unit vector into another (antiparallel vectors),
#: and under vector norms before dividing by them.
_DIRECTION_EPS: float = 1e-9
#: Hip/shoulder turns of the start are applied in full when the limb below bends by more
#: than asin(0.15) ≈ 9°, not at all below asin(0.05) ≈ 3° (there the bend plane is noise),
#: and in proportion in between.
_BEND_SIN_RANGE: tuple[float, float] = (0.05, 0.15)
#: Floor under the eigenvalues of the preconditioner's curvature.
_MIN_CURVATURE: float = 1e-6
#: Frames per body-model call when exporting.
_EXPORT_CHUNK: int = 256
_F64 = torch.float64
_INDEX_SKELETON = Skeleton(("root",), np.array([-1]), np.zeros((1, 3)))


@dataclass(frozen=True)
class RetargetWeights:
    """Weights of the fitted retarget (module docstring).

    *Fields*
        joint_unit: ``u``, the unit of position residuals in metres (0.01: centimetres).
        joint_weights: ``(24,)`` position weight ``w_j`` per SMPL joint.
        twist: ``w_twist`` on the twists of :data:`TWIST_JOINTS`.
        hinge: ``w_hinge`` on the off-hinge rotation of :data:`HINGE_JOINTS`.
        start: ``w_start`` on every joint's correction ``δ`` away from the start.
        shape: ``w_shape`` on ``‖β‖²``, per frame of an actor's calibration.
        spine: ``w_spine`` on the difference of consecutive spine rotations.
    """

    joint_unit: float = 0.01
    joint_weights: tuple[float, ...] = DEFAULT_JOINT_WEIGHTS
    twist: float = 2.0
    hinge: float = 2.0
    start: float = 1.0
    shape: float = 1.0
    spine: float = 3.0

    def __post_init__(self) -> None:
        for name in ("joint_unit", "twist", "hinge", "start", "shape", "spine"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                math.isfinite(value) and value >= 0
            ):
                raise ValueError(f"RetargetWeights: `{name}` must be a number >= 0, got {value!r}")
        if not self.joint_unit > 0:
            raise ValueError(f"RetargetWeights: `joint_unit` must be > 0, got {self.joint_unit!r}")
        weights = np.asarray(self.joint_weights, dtype=np.float64)
        if weights.shape != (NUM_SMPL_JOINTS,) or not (
            np.all(np.isfinite(weights)) and np.all(weights >= 0) and weights.sum() > 0
        ):
            raise ValueError(
                "RetargetWeights: `joint_weights` must be 24 finite numbers >= 0, not all zero"
            )
        object.__setattr__(self, "joint_weights", tuple(float(w) for w in weights))

    def to_dict(self) -> dict[str, Any]:
        """The weights as a JSON-able dict."""
        return {
            "joint_unit": self.joint_unit, "joint_weights": list(self.joint_weights),
            "twist": self.twist, "hinge": self.hinge, "start": self.start, "shape": self.shape,
            "spine": self.spine,
        }


#: The default weights.
DEFAULT_RETARGET_WEIGHTS = RetargetWeights()


@dataclass(frozen=True, eq=False)
class ActorCalibration:
    """What is fitted once per actor (float64 numpy).

    *Fields*
        betas: ``(num_betas,)`` the body shape.
        marker_offsets: ``(4, 3)`` offset ``c_j`` of each of :data:`CALIBRATED_JOINTS` (in
            its order) in the frame of the joint it is attached to, metres; None puts every
            marker on its joint (for targets made by the body model itself).
        residual_mm: mean joint distance of the calibration frames, mm (all 24 joints).
    """

    betas: np.ndarray
    marker_offsets: Optional[np.ndarray] = None
    residual_mm: float = float("nan")

    def to_dict(self) -> dict[str, Any]:
        """The calibration as a JSON-able dict."""
        return {
            "betas": [round(float(b), 6) for b in self.betas],
            "marker_offsets": None if self.marker_offsets is None else {
                SMPL_JOINT_NAMES[joint]: [round(float(v), 6) for v in offset]
                for joint, offset in zip(CALIBRATED_JOINTS, self.marker_offsets)
            },
            "residual_mm": round(float(self.residual_mm), 3),
        }


@dataclass(eq=False)
class RetargetResult:
    """What :func:`retarget_clip` returns for ``T`` frames (float64 numpy, the mocap's frame).

    *Fields*
        body_pose: ``(T, 72)`` axis-angle, global orientation first.
        rotations: ``(T, 24, 3, 3)`` the same as local rotation matrices.
        translation: ``(T, 3)`` added to the body model's output.
        smpl_joints: ``(T, 24, 3)`` the fitted body's SMPL joints, translation included.
        residual_mm: ``(T,)`` mean distance of ``smpl_joints`` to the mocap joints (mm).
        marker_residual_mm: ``(T,)`` the same with each calibrated joint replaced by its
            marker (what the fit minimises).
        swing_residual_mm: ``(T,)`` the same as ``residual_mm`` for the swing retarget onto
            the body with zero betas and its least-squares translation.
        calibration: the :class:`ActorCalibration` used.
        evaluations: ``(T,)`` objective evaluations of each frame's problem.
        converged: ``(T,)`` whether each frame's problem met a tolerance.
    """

    body_pose: np.ndarray
    rotations: np.ndarray
    translation: np.ndarray
    smpl_joints: np.ndarray
    residual_mm: np.ndarray
    marker_residual_mm: np.ndarray
    swing_residual_mm: np.ndarray
    calibration: ActorCalibration
    evaluations: np.ndarray
    converged: np.ndarray


# ------------------------------------------------------------------------ body kinematics
class _Kinematics:
    """SMPL's 24 joints of a body model from rotations and betas, in float64 on the CPU.

    SMPL's joints are regressed from the shaped rest mesh, before pose blend shapes and
    skinning, so they follow from the kinematic chain alone: far cheaper than the 44 joints.
    """

    def __init__(self, body_model: BodyModel) -> None:
        joints = BodyJoints(body_model)
        self.template = joints.joint_template.detach().to("cpu", _F64)
        self.shapedirs = joints.joint_shapedirs.detach().to("cpu", _F64)
        self.num_betas = joints.num_betas
        level = [0] * NUM_SMPL_JOINTS
        for joint in range(1, NUM_SMPL_JOINTS):
            level[joint] = level[SMPL_PARENTS[joint]] + 1
        if level != sorted(level):
            raise ValueError("BodyModel: SMPL joints must be numbered level by level")
        # One batched step per tree level. Inputs are split into levels and parents are taken
        # from the level above by slices: an index gather's backward would zero-fill a tensor
        # of the full size for every use.
        self.sizes = [level.count(depth) for depth in range(max(level) + 1)]
        first = np.cumsum([0] + self.sizes)
        #: (level, row in the level) of every joint.
        self.place = [(depth, joint - first[depth]) for joint, depth in enumerate(level)]
        self.parent_runs = [
            _runs([self.place[SMPL_PARENTS[joint]][1] for joint in range(first[depth],
                                                                         first[depth + 1])])
            for depth in range(1, len(self.sizes))
        ]

    def rest(self, betas: torch.Tensor) -> torch.Tensor:
        """``(P, 24, 3)`` rest joints of ``betas (P, num_betas)``."""
        # A matmul: torch.einsum's per-call overhead dominates at these sizes.
        flat = self.shapedirs.reshape(-1, self.num_betas) @ betas.transpose(0, 1)
        return self.template + flat.transpose(0, 1).reshape(-1, NUM_SMPL_JOINTS, 3)

    def forward(
        self, rotations: torch.Tensor, rest: torch.Tensor
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Posed joints ``(P, 24, 3)`` (root at its rest position) and world rotations per
        tree level (``(P, size, 3, 3)`` each; :meth:`frame` picks a joint's) of local
        ``rotations (P, 24, 3, 3)`` on the skeleton ``rest (P, 24, 3)``."""
        local = rotations.split(self.sizes, dim=1)
        rests = rest.split(self.sizes, dim=1)
        rotation, position = local[0], rests[0]
        points, levels = [position], [rotation]
        for depth, runs in enumerate(self.parent_runs, start=1):
            parent_rotation = _take(rotation, runs)
            bones = rests[depth] - _take(rests[depth - 1], runs)
            position = (parent_rotation @ bones[..., None])[..., 0] + _take(position, runs)
            rotation = parent_rotation @ local[depth]
            points.append(position)
            levels.append(rotation)
        return torch.cat(points, dim=1), levels

    def frame(self, levels: list[torch.Tensor], joint: int) -> torch.Tensor:
        """``(P, 3, 3)`` world rotation of ``joint`` from :meth:`forward`'s levels."""
        depth, row = self.place[joint]
        return levels[depth][:, row]


def _runs(rows: list[int]) -> list[tuple[int, int, int]]:
    """``rows`` as ``(start, stop, repeat)`` pieces: consecutive rows, or one row repeated."""
    pieces: list[tuple[int, int, int]] = []
    for row in rows:
        if pieces and pieces[-1][2] == 1 and row == pieces[-1][1]:
            pieces[-1] = (pieces[-1][0], row + 1, 1)
        elif pieces and pieces[-1][1] - pieces[-1][0] == 1 and row == pieces[-1][0]:
            pieces[-1] = (row, row + 1, pieces[-1][2] + 1)
        else:
            pieces.append((row, row + 1, 1))
    return pieces


def _take(values: torch.Tensor, pieces: list[tuple[int, int, int]]) -> torch.Tensor:
    """Rows of ``values (N, K, ...)`` along dim 1 given as :func:`_runs` pieces."""
    parts = [
        values[:, start:stop] if repeat == 1
        else values[:, start:stop].expand(-1, repeat, *values.shape[2:])
        for start, stop, repeat in pieces
    ]
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)


def _world_rotations(local: np.ndarray) -> np.ndarray:
    world = np.empty_like(local)
    world[:, 0] = local[:, 0]
    for joint in range(1, NUM_SMPL_JOINTS):
        world[:, joint] = world[:, SMPL_PARENTS[joint]] @ local[:, joint]
    return world


def _local_rotations(world: np.ndarray) -> np.ndarray:
    local = world.copy()
    for joint in range(1, NUM_SMPL_JOINTS):
        local[:, joint] = np.swapaxes(world[:, SMPL_PARENTS[joint]], -1, -2) @ world[:, joint]
    return local


def _unit(vectors: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norm, _DIRECTION_EPS)


def _descendants(joint: int) -> list[int]:
    found, stack = [], list(_CHILDREN[joint])
    while stack:
        child = stack.pop()
        found.append(child)
        stack.extend(_CHILDREN[child])
    return sorted(found)


def _rotation_between(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``(T, 3, 3)`` smallest rotations turning unit ``source (T, 3)`` into unit ``target``:
    ``I + [v]× + [v]×² / (1 + c)`` with ``v = source × target``, ``c = source · target``."""
    v = np.cross(source, target)
    c = np.sum(source * target, axis=-1)
    skew = np.zeros(v.shape[:-1] + (3, 3))
    skew[..., 0, 1], skew[..., 0, 2], skew[..., 1, 2] = -v[..., 2], v[..., 1], -v[..., 0]
    skew = skew - np.swapaxes(skew, -1, -2)
    scale = 1.0 / np.maximum(1.0 + c, _DIRECTION_EPS)
    return np.eye(3) + skew + scale[..., None, None] * (skew @ skew)


def _hinge_axes(rest: np.ndarray) -> dict[int, np.ndarray]:
    """Unit hinge axis ``bone × bend`` of every hinge joint (rest pose, body axes)."""
    axes = {}
    for joint, bend in HINGE_JOINTS.items():
        bone = rest[_CHILDREN[joint][0]] - rest[joint]
        axes[joint] = _unit(np.cross(bone, np.asarray(bend)))
    return axes


def _start_rotations(mocap_joints: np.ndarray, rest: np.ndarray) -> np.ndarray:
    """``(T, 24, 3, 3)`` local rotations of the start: the swing retarget, then each hip and
    shoulder turned about its bone so that the knee or elbow below bends about its hinge.

    The turn ``ψ`` about the mocap's upper bone ``u`` brings the hinge axis ``a(ψ)`` (carried
    by the hip or shoulder) perpendicular to the mocap's lower bone ``l``, so that a rotation
    about it alone reaches ``l``: ``a(ψ)·l = 0`` is ``P cos ψ + Q sin ψ = R`` with
    ``a(ψ) = a∥ + cos ψ a⊥ + sin ψ u × a⊥``; of its two solutions the one that bends the
    anatomical way is kept. The knee or elbow and the ankle or wrist are then re-swung from
    their turned parents (so no joint moves), and the foot or hand keeps no rotation of its
    own. Near-straight limbs (no bend plane) keep the swing.
    """
    num_frames = len(mocap_joints)
    swing = retarget_swing(mocap_joints, rest).reshape(num_frames, NUM_SMPL_JOINTS, 3)
    world = _world_rotations(axis_angle_to_matrix(torch.from_numpy(swing)).numpy())
    low, high = _BEND_SIN_RANGE

    def dot(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.sum(x * y, axis=-1)

    for joint, axis in _hinge_axes(rest).items():
        parent, child = SMPL_PARENTS[joint], _CHILDREN[joint][0]
        upper = _unit(mocap_joints[:, joint] - mocap_joints[:, parent])
        lower = _unit(mocap_joints[:, child] - mocap_joints[:, joint])
        sin_bend = np.linalg.norm(np.cross(upper, lower), axis=-1)
        hinge = world[:, parent] @ axis
        along = dot(hinge, upper)[:, None] * upper
        across = hinge - along
        side = np.cross(upper, across)
        p, q, r = dot(across, lower), dot(side, lower), -dot(along, lower)
        offset = np.arccos(np.clip(r / np.maximum(np.hypot(p, q), _DIRECTION_EPS), -1.0, 1.0))
        candidates = np.arctan2(q, p)[None] + np.stack([offset, -offset])
        posed_lower = world[:, parent] @ _unit(rest[child] - rest[joint])
        bends = []
        for angle in candidates:
            turned = np.cos(angle)[:, None] * across + np.sin(angle)[:, None] * side + along
            turned_lower = axis_angle_to_matrix(
                torch.from_numpy(angle[:, None] * upper)).numpy() @ posed_lower[..., None]
            bends.append(dot(np.cross(turned_lower[..., 0], lower), turned))
        angle = np.where(bends[0] >= bends[1], candidates[0], candidates[1])
        angle = angle * np.clip((sin_bend - low) / (high - low), 0.0, 1.0)
        turn = axis_angle_to_matrix(torch.from_numpy(angle[:, None] * upper)).numpy()
        world[:, parent] = turn @ world[:, parent]
        # Re-swing the hinge joint and the joint below it (the wrist or ankle) from their
        # turned parents; the leaf below that one keeps no rotation of its own.
        for bone_start, bone_end, target in (
            (joint, child, lower),
            (child, _CHILDREN[child][0], _unit(
                mocap_joints[:, _CHILDREN[child][0]] - mocap_joints[:, child])),
        ):
            above = world[:, SMPL_PARENTS[bone_start]]
            posed_bone = above @ _unit(rest[bone_end] - rest[bone_start])
            world[:, bone_start] = _rotation_between(posed_bone, target) @ above
        world[:, _CHILDREN[child][0]] = world[:, child]
    return _local_rotations(world)


def _correction(delta: torch.Tensor) -> torch.Tensor:
    """``(..., 3, 3)`` rotation of the unit quaternion ``(1, δ/2) / ‖(1, δ/2)‖`` for
    ``delta (..., 3)``: ``exp([δ]×)`` to first order at 0 (same derivative), smooth
    everywhere and cheaper than Rodrigues' formula, which is all a local correction needs."""
    x, y, z = (0.5 * delta).unbind(dim=-1)
    scale = 2.0 / (1.0 + x * x + y * y + z * z)
    xx, yy, zz = x * x * scale, y * y * scale, z * z * scale
    xy, xz, yz = x * y * scale, x * z * scale, y * z * scale
    wx, wy, wz = x * scale, y * scale, z * scale
    return torch.stack([
        1.0 - yy - zz, xy - wz, xz + wy,
        xy + wz, 1.0 - xx - zz, yz - wx,
        xz - wy, yz + wx, 1.0 - xx - yy,
    ], dim=-1).reshape(*delta.shape[:-1], 3, 3)


def _twist_penalty(rotations: torch.Tensor, axes: torch.Tensor) -> torch.Tensor:
    """``4 sin²(τ/2)`` of the twist ``τ`` of ``rotations (..., 3, 3)`` about unit
    ``axes (..., 3)``: ``tan(τ/2) = (s·a) / (1 + tr R)``, ``s`` the axial vector of R − Rᵀ."""
    axial = torch.stack([
        rotations[..., 2, 1] - rotations[..., 1, 2],
        rotations[..., 0, 2] - rotations[..., 2, 0],
        rotations[..., 1, 0] - rotations[..., 0, 1],
    ], dim=-1)
    sine = (axial * axes).sum(dim=-1)
    cosine = 1.0 + rotations.diagonal(dim1=-2, dim2=-1).sum(dim=-1)
    return 4.0 * sine * sine / (cosine * cosine + sine * sine + _TWIST_EPS)


# ------------------------------------------------------------------------ the fit
class _Retarget:
    """Start, variables and loss of the fitted retarget of ``T`` frames (float64, CPU).

    Per frame the variables are ``(u (24, 3), v (3,))`` with ``δ_j = P_j u_j`` and
    ``t = t_start + v · translation_scale``. ``P_j = M_j^(-1/2)`` is a per-frame, per-joint
    preconditioner: ``M_j`` is half the loss Hessian of ``δ_j`` at the start (the weighted
    inertia tensor, in ``joint_unit``, of the joints it moves about it, plus the regularisers'
    curvature), so that a unit step in ``u`` changes the loss by about one unit in every
    direction. A calibration prepends the betas ``b`` (``β = b · beta_scale``) and marker
    offsets ``m`` (``c = c_rest + m · offset_scale``) to the variables of all frames.
    """

    def __init__(
        self,
        kinematics: _Kinematics,
        targets: np.ndarray,
        betas: np.ndarray,
        offsets: np.ndarray,
        weights: RetargetWeights,
        start: Optional[np.ndarray] = None,
    ) -> None:
        self.kinematics = kinematics
        self.weights = weights
        self.targets = torch.from_numpy(targets)
        self.betas = torch.from_numpy(betas)
        self.offsets = torch.from_numpy(offsets)
        joint_weights = np.asarray(weights.joint_weights)
        unit = weights.joint_unit
        rest0 = kinematics.template.numpy()
        twist_axes = _unit(rest0[list(TWIST_JOINTS.values())] - rest0[list(TWIST_JOINTS)])
        hinge_axes = _hinge_axes(rest0)
        # Per-joint axes over all 24 joints (zero where a term does not apply, which zeroes
        # it): cheaper than gathering the joints it applies to.
        self.twist_axes = torch.zeros(NUM_SMPL_JOINTS, 3, dtype=_F64)
        self.twist_axes[list(TWIST_JOINTS)] = torch.from_numpy(twist_axes)
        self.hinge_axes = torch.zeros(NUM_SMPL_JOINTS, 3, dtype=_F64)
        self.hinge_axes[list(hinge_axes)] = torch.from_numpy(np.stack(list(hinge_axes.values())))
        # Calibrated joints enter the position term through their markers only.
        marker_weights = joint_weights[list(CALIBRATED_JOINTS)]
        self.marker_weights = torch.from_numpy(marker_weights.copy())
        self.joint_weights = torch.from_numpy(joint_weights.copy())
        self.joint_weights[list(CALIBRATED_JOINTS)] = 0.0
        self.translation_scale = unit / math.sqrt(joint_weights.sum())
        self.offset_scale = torch.from_numpy(unit / np.sqrt(np.maximum(marker_weights, 1.0)))
        shape_response = np.einsum("j,jck->k", joint_weights, kinematics.shapedirs.numpy() ** 2)
        self.shape_curvature = torch.from_numpy(shape_response / unit**2 + weights.shape**2)

        rest = kinematics.rest(self.betas)
        self.rest_joints = rest
        if start is None:
            start = np.empty((len(targets), NUM_SMPL_JOINTS, 3, 3))
            for key in np.unique(betas, axis=0):
                rows = np.all(betas == key, axis=1)
                start[rows] = _start_rotations(targets[rows], rest[rows][0].numpy())
        self.start = torch.from_numpy(start)
        with torch.no_grad():
            posed, levels = kinematics.forward(self.start, rest)
            points = self._with_markers(posed, levels, self.offsets)
        weight = torch.from_numpy(joint_weights)[:, None]
        self.start_translation = ((self.targets - points) * weight).sum(dim=1) / weight.sum()
        self.preconditioner = self._preconditioner(
            posed.numpy(), torch.cat(levels, dim=1).numpy(), twist_axes, hinge_axes
        )

    def _preconditioner(
        self,
        positions: np.ndarray,
        world: np.ndarray,
        twist_axes: np.ndarray,
        hinge_axes: dict[int, np.ndarray],
    ) -> torch.Tensor:
        weights = self.weights
        joint_weights = np.asarray(weights.joint_weights)
        # Regulariser curvature (half Hessian at δ = 0) in each joint's own frame.
        regular = np.broadcast_to(weights.start**2 * np.eye(3), (NUM_SMPL_JOINTS, 3, 3)).copy()
        for joint, axis in zip(TWIST_JOINTS, twist_axes):
            regular[joint] += weights.twist**2 * np.outer(axis, axis)
        for joint, axis in hinge_axes.items():
            regular[joint] += weights.hinge**2 * (np.eye(3) - np.outer(axis, axis))
        for joint, neighbours in zip(_SPINE_CHAIN, (1, 2, 1)):
            regular[joint] += neighbours * weights.spine**2 * np.eye(3)
        curvature = np.broadcast_to(regular, world.shape).copy()
        for joint in range(NUM_SMPL_JOINTS):
            moved = _descendants(joint)
            if not moved:
                continue
            # Offsets of the joints it moves, in the joint's own posed frame and `unit`s.
            offsets = np.einsum(
                "tba,tdb->tda", world[:, joint], positions[:, moved] - positions[:, joint:joint + 1]
            ) / weights.joint_unit
            inertia = np.sum(offsets * offsets, axis=-1)[..., None, None] * np.eye(3)
            inertia = inertia - offsets[..., :, None] * offsets[..., None, :]
            curvature[:, joint] += np.einsum("d,tdab->tab", joint_weights[moved], inertia)
        values, vectors = np.linalg.eigh(curvature)
        scale = 1.0 / np.sqrt(np.maximum(values, _MIN_CURVATURE))
        return torch.from_numpy(np.einsum("tjab,tjb,tjcb->tjac", vectors, scale, vectors))

    def _markers(
        self, joints: torch.Tensor, levels: list[torch.Tensor], offsets: torch.Tensor
    ) -> torch.Tensor:
        """``(N, 4, 3)`` markers of :data:`CALIBRATED_JOINTS` given the posed ``joints``,
        the world rotations per tree level and marker ``offsets (N, 4, 3)``."""
        markers = []
        for index, anchor in enumerate(CALIBRATED_JOINTS.values()):
            rotation = self.kinematics.frame(levels, anchor)
            markers.append(joints[:, anchor] + (rotation @ offsets[:, index, :, None])[..., 0])
        return torch.stack(markers, dim=1)

    def _with_markers(
        self, joints: torch.Tensor, levels: list[torch.Tensor], offsets: torch.Tensor
    ) -> torch.Tensor:
        """``joints (N, 24, 3)`` with each calibrated joint replaced by its marker."""
        markers = self._markers(joints, levels, offsets)
        return joints.index_copy(1, torch.tensor(list(CALIBRATED_JOINTS)), markers)

    def pose(
        self, frames: torch.Tensor, rows: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Corrections ``δ (N, 24, 3)``, rotations ``(N, 24, 3, 3)`` and translations
        ``(N, 3)`` of frame variables ``(N, 75)``."""
        u = frames[:, :_POSE_SIZE].reshape(-1, NUM_SMPL_JOINTS, 3, 1)
        delta = (self.preconditioner[rows] @ u)[..., 0]
        rotations = self.start[rows] @ _correction(delta)
        translation = self.start_translation[rows] + frames[:, _POSE_SIZE:] * self.translation_scale
        return delta, rotations, translation

    def frame_loss(
        self, frames: torch.Tensor, rows: torch.Tensor, rest: torch.Tensor, offsets: torch.Tensor
    ) -> torch.Tensor:
        """``(N,)`` loss of frame variables ``(N, 75)`` of frames ``rows`` given the rest
        skeletons ``(N, 24, 3)`` and marker ``offsets (N, 4, 3)``."""
        weights = self.weights
        delta, rotations, translation = self.pose(frames, rows)
        joints, levels = self.kinematics.forward(rotations, rest)
        targets = self.targets[rows]
        markers = self._markers(joints, levels, offsets) + translation[:, None]
        residual = (joints + translation[:, None] - targets) / weights.joint_unit
        data = ((residual * residual).sum(dim=-1) * self.joint_weights).sum(dim=-1)
        residual = (markers - targets[:, list(CALIBRATED_JOINTS)]) / weights.joint_unit
        data = data + ((residual * residual).sum(dim=-1) * self.marker_weights).sum(dim=-1)
        twist = _twist_penalty(rotations, self.twist_axes).sum(dim=-1)
        turned = (rotations @ self.hinge_axes[..., None])[..., 0]
        hinge = ((turned - self.hinge_axes) ** 2).sum(dim=(-1, -2))
        start = (delta * delta).sum(dim=(-1, -2))
        bends = rotations[:, _SPINE_CHAIN[0]:_SPINE_CHAIN[-1] + 1:_SPINE_STEP]
        spine = 0.5 * ((bends[:, 1:] - bends[:, :-1]) ** 2).sum(dim=(-1, -2, -3))
        return (data + weights.twist**2 * twist + weights.hinge**2 * hinge
                + weights.start**2 * start + weights.spine**2 * spine)

    def fit_poses(
        self, frames_per_problem: int, settings: LBFGSSettings
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fit every frame with its calibration fixed: ``(variables (T, 75), evaluations
        (T,), converged (T,))``."""
        num_frames = len(self.targets)
        size = min(frames_per_problem, num_frames)
        num_problems = -(-num_frames // size)
        # The last problem is padded with copies of the last frame (dropped afterwards).
        frame_of = torch.clamp(torch.arange(num_problems * size), max=num_frames - 1)
        frame_of = frame_of.view(num_problems, size)

        def objective(points: np.ndarray, problems: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            rows = frame_of[torch.from_numpy(problems)].reshape(-1)
            variables = torch.from_numpy(points).requires_grad_(True)
            with torch.enable_grad():
                frames = variables.reshape(-1, _FRAME_SIZE)
                loss = self.frame_loss(frames, rows, self.rest_joints[rows], self.offsets[rows])
                loss = loss.view(-1, size).sum(dim=1)
                (grad,) = torch.autograd.grad(loss.sum(), variables)
            return loss.detach().numpy(), grad.numpy()

        run = minimize_lbfgs(objective, np.zeros((num_problems, size * _FRAME_SIZE)), settings)
        variables = run.x.reshape(-1, _FRAME_SIZE)[:num_frames]
        problem_of = np.repeat(np.arange(num_problems), size)[:num_frames]
        return variables, run.evaluations[problem_of], run.converged[problem_of]

    def calibrate(self, settings: LBFGSSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fit one betas vector, the marker offsets and the poses of all frames jointly:
        ``(betas (num_betas,), offsets (4, 3), frame variables (T, 75))``."""
        num_frames = len(self.targets)
        rows = torch.arange(num_frames)
        num_betas = self.kinematics.num_betas
        beta_scale = 1.0 / (num_frames * self.shape_curvature).sqrt()
        offset_scale = self.offset_scale[:, None] / math.sqrt(num_frames)
        base_offsets = self.offsets[0]
        sizes = (num_betas, 3 * _NUM_MARKERS, num_frames * _FRAME_SIZE)

        def unpack(variables: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            b, m, frames = variables.split(sizes)
            offsets = base_offsets + m.view(_NUM_MARKERS, 3) * offset_scale
            return b * beta_scale, offsets, frames.view(num_frames, _FRAME_SIZE)

        def objective(points: np.ndarray, problems: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            variables = torch.from_numpy(points[0]).requires_grad_(True)
            with torch.enable_grad():
                betas, offsets, frames = unpack(variables)
                rest = self.kinematics.rest(betas[None]).expand(num_frames, -1, -1)
                loss = self.frame_loss(
                    frames, rows, rest, offsets.expand(num_frames, -1, -1)
                ).sum()
                loss = loss + num_frames * self.weights.shape**2 * (betas * betas).sum()
                (grad,) = torch.autograd.grad(loss, variables)
            return np.array([loss.item()]), grad.numpy()[None]

        run = minimize_lbfgs(objective, np.zeros((1, sum(sizes))), settings)
        betas, offsets, frames = unpack(torch.from_numpy(run.x[0]))
        return betas.numpy(), offsets.numpy(), frames.numpy()

    def evaluate(
        self, frames: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Rotations, translations, SMPL joints (translation included), joint residuals
        (mm) and marker residuals (mm) of frame variables ``(T, 75)``."""
        rows = torch.arange(len(self.targets))
        with torch.no_grad():
            _, rotations, translation = self.pose(torch.from_numpy(frames), rows)
            joints, levels = self.kinematics.forward(rotations, self.rest_joints)
            points = self._with_markers(joints, levels, self.offsets) + translation[:, None]
            joints = joints + translation[:, None]
        residual = (joints - self.targets).norm(dim=-1).mean(dim=-1) * 1000.0
        marker_residual = (points - self.targets).norm(dim=-1).mean(dim=-1) * 1000.0
        return (rotations.numpy(), translation.numpy(), joints.numpy(), residual.numpy(),
                marker_residual.numpy())


def _joint_offsets(kinematics: _Kinematics, betas: np.ndarray) -> np.ndarray:
    """``(4, 3)`` marker offsets that put every marker on its joint, for ``betas``."""
    rest = kinematics.rest(torch.from_numpy(np.asarray(betas, dtype=np.float64))[None])[0]
    rest = rest.numpy()
    return rest[list(CALIBRATED_JOINTS)] - rest[list(CALIBRATED_JOINTS.values())]


def _swing_residual_mm(kinematics: _Kinematics, targets: np.ndarray) -> np.ndarray:
    """``(T,)`` mean joint distance (mm) of the swing retarget onto the body with zero betas,
    at its least-squares translation."""
    rest = kinematics.template
    poses = retarget_swing(targets, rest.numpy()).reshape(len(targets), NUM_SMPL_JOINTS, 3)
    with torch.no_grad():
        joints, _ = kinematics.forward(
            axis_angle_to_matrix(torch.from_numpy(poses)), rest.expand(len(targets), -1, -1)
        )
    joints = joints.numpy()
    joints = joints + (targets - joints).mean(axis=1, keepdims=True)
    return np.linalg.norm(joints - targets, axis=-1).mean(axis=-1) * 1000.0


def _check_joints(mocap_joints: Any, function: str) -> np.ndarray:
    if isinstance(mocap_joints, torch.Tensor):
        mocap_joints = mocap_joints.detach().cpu().numpy()
    try:
        array = np.asarray(mocap_joints, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"{function}: `mocap_joints` must be an array of shape (T, 24, 3), got "
            f"{type(mocap_joints).__name__}"
        ) from None
    if array.ndim != 3 or array.shape[1:] != (NUM_SMPL_JOINTS, 3) or len(array) == 0:
        raise ValueError(
            f"{function}: `mocap_joints` must have shape (T, 24, 3) with T >= 1, "
            f"got {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        bad = np.unique(np.nonzero(~np.isfinite(array))[0])
        more = "..." if len(bad) > 5 else ""
        raise ValueError(
            f"{function}: `mocap_joints` contains NaN or infinite values (frames "
            f"{bad[:5].tolist()}{more})"
        )
    return array


def _check_body_model(body_model: Any, function: str) -> BodyModel:
    if body_model is None:
        return create_body_model()
    if not isinstance(body_model, BodyModel):
        raise ValueError(
            f"{function}: `body_model` must be a BodyModel or None, got {type(body_model).__name__}"
        )
    return body_model


def _check_options(weights: Any, settings: Any, default: LBFGSSettings,
                   function: str) -> tuple[RetargetWeights, LBFGSSettings]:
    weights = DEFAULT_RETARGET_WEIGHTS if weights is None else weights
    settings = default if settings is None else settings
    if not isinstance(weights, RetargetWeights):
        raise ValueError(
            f"{function}: `weights` must be a RetargetWeights, got {type(weights).__name__}"
        )
    if not isinstance(settings, LBFGSSettings):
        raise ValueError(
            f"{function}: `settings` must be an LBFGSSettings, got {type(settings).__name__}"
        )
    return weights, settings


def calibrate_actor(
    mocap_joints: Any,
    body_model: Optional[BodyModel] = None,
    *,
    max_frames: int = DEFAULT_SHAPE_FRAMES,
    weights: Optional[RetargetWeights] = None,
    settings: Optional[LBFGSSettings] = None,
) -> ActorCalibration:
    """Fit an actor's betas and marker offsets to (a subsample of) its mocap frames.

    Up to ``max_frames`` frames, spread evenly over ``mocap_joints``, are fitted jointly with
    one betas vector and the marker offsets of :data:`CALIBRATED_JOINTS` (module docstring).

    *Arguments*
        mocap_joints: ``(T, 24, 3)`` SMPL-ordered mocap joint positions (metres, SMPL axes),
            e.g. all frames of one actor from :func:`mocap_targets`.
        body_model: the :class:`~prohmr.body.model.BodyModel` to fit; None: the default.
        max_frames: frames used (>= 1).
        weights: :class:`RetargetWeights`; default :data:`DEFAULT_RETARGET_WEIGHTS`.
        settings: L-BFGS settings; default :data:`DEFAULT_SHAPE_SETTINGS`.

    *Returns*
        :class:`ActorCalibration`.

    *Example*
        >>> body = create_body_model()
        >>> eye = torch.eye(3).expand(1, 24, 3, 3)
        >>> betas = torch.zeros(1, 10)
        >>> betas[0, 0] = 1.0                               # a 4.5 % taller body
        >>> joints = body(eye[:, :1], eye[:, 1:], betas).smpl_joints.double().numpy()
        >>> calibration = calibrate_actor(joints, body, settings=LBFGSSettings(max_steps=5))
        >>> round(float(calibration.betas[0]), 1), calibration.residual_mm < 1.0
        (1.0, True)
    """
    function = "calibrate_actor"
    targets = _check_joints(mocap_joints, function)
    body_model = _check_body_model(body_model, function)
    weights, settings = _check_options(weights, settings, DEFAULT_SHAPE_SETTINGS, function)
    if isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 1:
        raise ValueError(f"{function}: `max_frames` must be an integer >= 1, got {max_frames!r}")
    kinematics = _Kinematics(body_model)
    count = min(max_frames, len(targets))
    picked = np.unique(np.linspace(0, len(targets) - 1, count).round().astype(np.int64))
    targets = targets[picked]
    zeros = np.zeros((len(targets), kinematics.num_betas))
    offsets = np.broadcast_to(_joint_offsets(kinematics, zeros[0]),
                              (len(targets), _NUM_MARKERS, 3)).copy()
    problem = _Retarget(kinematics, targets, zeros, offsets, weights)
    betas, marker_offsets, frames = problem.calibrate(settings)
    rest = kinematics.rest(torch.from_numpy(betas)[None])
    problem.rest_joints = rest.expand(len(targets), -1, -1)
    problem.offsets = torch.from_numpy(marker_offsets).expand(len(targets), -1, -1)
    residual = problem.evaluate(frames)[3]
    logger.info("calibrated on %d frames: residual %.1f mm, betas %s", len(targets),
                residual.mean(), np.round(betas, 2).tolist())
    return ActorCalibration(betas, marker_offsets, float(residual.mean()))


def retarget_clip(
    mocap_joints: Any,
    body_model: Optional[BodyModel] = None,
    *,
    calibration: Optional[ActorCalibration] = None,
    init_body_pose: Optional[Any] = None,
    weights: Optional[RetargetWeights] = None,
    settings: Optional[LBFGSSettings] = None,
    frames_per_problem: int = 16,
) -> RetargetResult:
    """Fit the body model to every frame of a clip (module docstring).

    *Arguments*
        mocap_joints: ``(T, 24, 3)`` SMPL-ordered mocap joint positions (metres, SMPL axes:
            y up), e.g. from :func:`mocap_targets`; frames need not be consecutive (any set of
            frames of one actor).
        body_model: the :class:`~prohmr.body.model.BodyModel` to fit; None: the default.
        calibration: the actor's :class:`ActorCalibration`; None fits one on these frames
            (:func:`calibrate_actor`).
        init_body_pose: ``(T, 72)`` axis-angle poses to start from (e.g. an earlier fit);
            None starts from the swing retarget with hinge-aligned hips and shoulders.
        weights: :class:`RetargetWeights`; default :data:`DEFAULT_RETARGET_WEIGHTS`.
        settings: L-BFGS settings of the pose fit; default :data:`DEFAULT_POSE_SETTINGS`.
        frames_per_problem: frames fitted as one L-BFGS problem (>= 1).

    *Returns*
        :class:`RetargetResult` in the mocap's frame (the body's heading is not removed).

    *Example*
        >>> body = create_body_model()
        >>> eye = torch.eye(3).expand(2, 24, 3, 3)
        >>> bent = eye.clone()
        >>> bent[1, 18] = torch.tensor([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
        >>> joints = body(bent[:, :1], bent[:, 1:], torch.zeros(2, 10)).smpl_joints
        >>> calibration = ActorCalibration(betas=np.zeros(10))
        >>> result = retarget_clip(joints.double().numpy(), body, calibration=calibration)
        >>> result.body_pose.shape, bool(result.residual_mm.max() < 1.0)
        ((2, 72), True)
        >>> # the left elbow bends the forearm forwards: -90° about y (+ 0.0 turns -0. into 0.)
        >>> print(np.round(np.degrees(result.body_pose[1, 54:57])) + 0.0)
        [  0. -90.   0.]
    """
    function = "retarget_clip"
    targets = _check_joints(mocap_joints, function)
    body_model = _check_body_model(body_model, function)
    weights, settings = _check_options(weights, settings, DEFAULT_POSE_SETTINGS, function)
    if isinstance(frames_per_problem, bool) or not isinstance(frames_per_problem, int) or (
        frames_per_problem < 1
    ):
        raise ValueError(
            f"{function}: `frames_per_problem` must be an integer >= 1, got {frames_per_problem!r}"
        )
    kinematics = _Kinematics(body_model)
    if calibration is None:
        calibration = calibrate_actor(targets, body_model, weights=weights)
    if not isinstance(calibration, ActorCalibration):
        raise ValueError(
            f"{function}: `calibration` must be an ActorCalibration or None, got "
            f"{type(calibration).__name__}"
        )
    betas = np.asarray(calibration.betas, dtype=np.float64)
    if betas.shape != (kinematics.num_betas,):
        raise ValueError(
            f"{function}: `calibration.betas` must have shape ({kinematics.num_betas},), got "
            f"{betas.shape}"
        )
    offsets = (_joint_offsets(kinematics, betas) if calibration.marker_offsets is None
               else np.asarray(calibration.marker_offsets, dtype=np.float64))
    if betas.shape != (kinematics.num_betas,) or offsets.shape != (_NUM_MARKERS, 3):
        raise ValueError(
            f"{function}: `calibration` must hold betas ({kinematics.num_betas},) and marker "
            f"offsets ({_NUM_MARKERS}, 3), got {betas.shape} and {offsets.shape}"
        )
    num_frames = len(targets)
    start = None
    if init_body_pose is not None:
        start = np.asarray(init_body_pose, dtype=np.float64)
        if start.shape != (num_frames, _POSE_SIZE) or not np.all(np.isfinite(start)):
            raise ValueError(
                f"{function}: `init_body_pose` must be finite with shape ({num_frames}, "
                f"{_POSE_SIZE}), got {start.shape}"
            )
        start = axis_angle_to_matrix(
            torch.from_numpy(start).reshape(num_frames, NUM_SMPL_JOINTS, 3)
        ).numpy()
    problem = _Retarget(
        kinematics, targets, np.broadcast_to(betas, (num_frames, len(betas))).copy(),
        np.broadcast_to(offsets, (num_frames, _NUM_MARKERS, 3)).copy(), weights, start,
    )
    frames, evaluations, converged = problem.fit_poses(frames_per_problem, settings)
    rotations, translation, joints, residual, marker_residual = problem.evaluate(frames)
    pose = matrix_to_axis_angle(torch.from_numpy(rotations)).reshape(num_frames, _POSE_SIZE)
    return RetargetResult(
        body_pose=pose.numpy(), rotations=rotations, translation=translation,
        smpl_joints=joints, residual_mm=residual, marker_residual_mm=marker_residual,
        swing_residual_mm=_swing_residual_mm(kinematics, targets), calibration=calibration,
        evaluations=evaluations, converged=converged,
    )


# ------------------------------------------------------------------------ the dataset
def mocap_targets(clip: MocapClip, convention: Optional[str] = None) -> np.ndarray:
    """SMPL-ordered joint positions of a clip for the fitted retarget: ``(T, 24, 3)`` metres.

    Acclaim (HDM05, CMU ASF) clips use :data:`RETARGET_FROM_ACCLAIM`; other conventions the
    tables of :func:`prohmr.data.mocap.smpl_joint_positions`.

    *Arguments*
        clip: the motion.
        convention: a key of :data:`prohmr.data.mocap.MOCAP_CONVENTIONS`; detected if None.
    """
    convention = detect_convention(clip) if convention is None else convention
    if convention != "acclaim":
        return smpl_joint_positions(clip, convention)
    indices = [clip.joint_index(RETARGET_FROM_ACCLAIM[name]) for name in SMPL_JOINT_NAMES]
    return clip.positions()[:, indices] @ MOCAP_TO_SMPL_AXES.T


def subsample_indices(num_frames: int, frame_rate: float, fps: float) -> np.ndarray:
    """Original frame indices that :func:`prohmr.data.mocap.subsample` keeps.

    The rule of ``subsample`` itself, applied to a clip whose root translation is the frame
    number.

    *Arguments*
        num_frames: frames of the clip (>= 1).
        frame_rate: the clip's frame rate.
        fps: the kept rate, ``0 < fps <= frame_rate``.

    *Returns*
        ``(K,)`` int64 indices, one per output frame.

    *Example*
        >>> subsample_indices(9, 120.0, 30.0).tolist()
        [0, 4, 8]
    """
    numbers = np.repeat(np.arange(num_frames, dtype=np.float64)[:, None], 3, axis=1)
    clip = MocapClip(_INDEX_SKELETON, np.broadcast_to(np.eye(3), (num_frames, 1, 3, 3)),
                     numbers, frame_rate)
    return np.rint(subsample(clip, fps).root_translations[:, 0]).astype(np.int64)


@dataclass(frozen=True)
class ClipResidual:
    """Fit quality of one clip of a built dataset (millimetres, means over its frames).

    *Fields*
        actor, clip: names (``clip`` is the AMC file stem); frames: frames kept.
        mean_mm, max_mm: per-frame residual (mean distance of the 24 joints), mean and max.
        marker_mean_mm: the same with the calibrated joints' markers (what the fit sees).
        swing_mean_mm: the swing retarget's residual (zero betas, best translation).
    """

    actor: str
    clip: str
    frames: int
    mean_mm: float
    max_mm: float
    marker_mean_mm: float
    swing_mean_mm: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (residuals rounded to 0.01 mm)."""
        return {
            "actor": self.actor, "clip": self.clip, "frames": self.frames,
            "residual_mm_mean": round(self.mean_mm, 2), "residual_mm_max": round(self.max_mm, 2),
            "marker_residual_mm_mean": round(self.marker_mean_mm, 2),
            "swing_residual_mm_mean": round(self.swing_mean_mm, 2),
        }


@dataclass(eq=False)
class MocapBuildReport:
    """What :func:`build_mocap_dataset` did.

    *Fields*
        path, json_path: the ``.npz`` written and its sibling ``.json``.
        clips: a :class:`ClipResidual` per clip.
        calibrations: the :class:`ActorCalibration` of each actor.
        actor: ``(N,)`` actor of every frame; residual_mm: ``(N,)`` its residual (as stored).
        seconds: wall time per actor (reading and fitting) and ``"total"``.
    """

    path: Path
    json_path: Path
    clips: list[ClipResidual]
    calibrations: dict[str, ActorCalibration]
    actor: np.ndarray
    residual_mm: np.ndarray
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        """Frames written."""
        return len(self.residual_mm)

    def table_lines(self) -> list[str]:
        """A short table: per actor and overall, clips, frames and the residual (mm)."""
        header = (f"{'actor':<6} {'clips':>5} {'frames':>6} {'mean mm':>8} {'median':>7} "
                  f"{'max':>6} {'swing':>6} {'time s':>7}")
        lines = [header]
        groups = [(name, self.actor == name) for name in dict.fromkeys(self.actor.tolist())]
        groups.append(("all", np.ones(len(self.actor), dtype=bool)))
        for name, rows in groups:
            clips = [c for c in self.clips if name in ("all", c.actor)]
            residual = self.residual_mm[rows]
            swing = sum(c.swing_mean_mm * c.frames for c in clips) / max(residual.size, 1)
            seconds = self.seconds.get("total" if name == "all" else name, float("nan"))
            lines.append(
                f"{name:<6} {len(clips):>5} {residual.size:>6} {residual.mean():>8.1f} "
                f"{np.median(residual):>7.1f} {residual.max():>6.1f} {swing:>6.1f} "
                f"{seconds:>7.1f}"
            )
        return lines


def _heading_turns(global_orient: np.ndarray) -> np.ndarray:
    """``(T, 3, 3)`` turns about y that make each root rotation face +z (as
    :func:`prohmr.data.pose_sources.remove_heading`: the root's left axis into the x-y plane)."""
    left = global_orient[:, :, 0]
    angle = np.arctan2(left[:, 2], left[:, 0])
    cos, sin = np.cos(angle), np.sin(angle)
    turn = np.zeros((len(angle), 3, 3))
    turn[:, 0, 0], turn[:, 0, 2], turn[:, 1, 1] = cos, sin, 1.0
    turn[:, 2, 0], turn[:, 2, 2] = -sin, cos
    return turn


def _export_actor(
    result: RetargetResult,
    targets: np.ndarray,
    body_model: BodyModel,
    kinematics: _Kinematics,
) -> dict[str, np.ndarray]:
    """Contract arrays of one actor's frames in the body frame (heading removed)."""
    rotations = result.rotations
    turn = _heading_turns(rotations[:, 0])
    global_orient = turn @ rotations[:, 0]
    pose = result.body_pose.copy()
    pose[:, :3] = matrix_to_axis_angle(torch.from_numpy(global_orient)).numpy()
    # The body model turns the body about its rest root joint; the mocap goes along.
    pivot = kinematics.rest(torch.from_numpy(result.calibration.betas)[None])[0, 0].numpy()
    relative = targets - result.translation[:, None] - pivot
    mocap = np.einsum("tab,tjb->tja", turn, relative) + pivot
    reference = body_model.layer.shapedirs
    joints, smpl_joints = [], []
    with torch.no_grad():
        for begin in range(0, len(pose), _EXPORT_CHUNK):
            chunk = slice(begin, begin + _EXPORT_CHUNK)
            local = torch.from_numpy(np.concatenate(
                [global_orient[chunk, None], rotations[chunk, 1:]], axis=1
            )).to(reference)
            betas = torch.from_numpy(result.calibration.betas).to(reference)
            out = body_model(local[:, :1], local[:, 1:], betas.expand(len(local), -1))
            joints.append(out.joints.cpu().double().numpy())
            smpl_joints.append(out.smpl_joints.cpu().double().numpy())
    return {
        "body_pose": pose, "joints": np.concatenate(joints),
        "smpl_joints": np.concatenate(smpl_joints), "mocap_joints": mocap,
    }


def _write_atomically(path: Path, write: Any) -> None:
    """Call ``write(temporary_path)`` and move the result to ``path`` (readers never see a
    partial file)."""
    handle, temporary = tempfile.mkstemp(suffix=path.suffix, prefix=f".{path.stem}.",
                                         dir=path.parent)
    os.close(handle)
    # mkstemp makes the file private (0600); give it the permissions a plain open() would.
    umask = os.umask(0)
    os.umask(umask)
    try:
        write(temporary)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def _check_names(value: Any, name: str, function: str) -> Optional[tuple[str, ...]]:
    if value is None:
        return None
    if isinstance(value, str) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{function}: `{name}` must be a sequence of names (not a str), "
                         f"got {value!r}")
    return tuple(value)


def build_mocap_dataset(
    out: str | Path,
    data_root: str | Path = DEFAULT_DATA_ROOT,
    actors: Optional[Sequence[str]] = None,
    exclude_actors: Sequence[str] = (),
    actions: Optional[Sequence[str]] = None,
    fps: float = 10.0,
    body_model: Optional[BodyModel] = None,
    overwrite: bool = False,
    progress: bool = True,
) -> MocapBuildReport:
    """Retarget HDM05 clips onto the body model and write them as a mocap dataset ``.npz``.

    Every clip under ``data_root/hdm05`` of the selected actors and actions is subsampled to
    ``fps`` (nearest frames; HDM05 is captured at 120 Hz, far denser than poses change), each
    actor is calibrated once (:func:`calibrate_actor`) and all its frames are fitted
    (:func:`retarget_clip`). The global orientation is turned about the vertical so that every
    body faces +z (as :func:`prohmr.data.pose_sources.remove_heading`). Writes ``out`` (keys
    :data:`MOCAP_DATASET_KEYS`, loadable with ``np.load(out, allow_pickle=False)``; see
    ``docs/mocap.md``) and a sibling ``.json`` with the settings, the calibrations, and the
    residuals per clip and per joint. Both are written to a temporary name and renamed.

    *Arguments*
        out: the ``.npz`` file to write.
        data_root: the open-data folder holding ``hdm05/asf`` and ``hdm05/amc``.
        actors: actors to use; None: all of :data:`prohmr.data.pose_sources.HDM05_ACTORS`.
        exclude_actors: actors to leave out (e.g. the held-out ``("mm",)``).
        actions: keep only these actions (e.g. ``"squat1Reps"``); None keeps all.
        fps: frames per second kept (at most the capture rate).
        body_model: a :class:`~prohmr.body.model.BodyModel` with 10 betas; None: the default.
        overwrite: replace an existing ``out`` (and its ``.json``).
        progress: show a progress bar (tqdm, on stderr).

    *Returns*
        :class:`MocapBuildReport`.

    *Raises*
        FileNotFoundError: the HDM05 folder (or a skeleton file) is missing.
        FileExistsError: ``out`` or its ``.json`` exists and ``overwrite`` is False.
        ValueError: bad arguments, or no clip matches the selection.
    """
    function = "build_mocap_dataset"
    started = time.perf_counter()
    out = Path(out).expanduser()
    if out.suffix != ".npz":
        raise ValueError(f"{function}: `out` must be a .npz file name, got {str(out)!r}")
    json_path = out.with_suffix(".json")
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not (
        math.isfinite(fps) and fps > 0
    ):
        raise ValueError(f"{function}: `fps` must be a positive number, got {fps!r}")
    actors = _check_names(actors, "actors", function)
    exclude = _check_names(exclude_actors, "exclude_actors", function) or ()
    actions = _check_names(actions, "actions", function)
    if not overwrite:
        for path in (out, json_path):
            if path.exists():
                raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    selected = [a for a in sorted(set(actors or HDM05_ACTORS)) if a not in set(exclude)]
    clips = hdm05_clips(data_root, selected, actions)
    if not clips:
        raise ValueError(
            f"{function}: no HDM05 clip for actors {selected} (actors={actors}, "
            f"exclude_actors={list(exclude)}, actions={actions}) under {data_root}"
        )
    body_model = _check_body_model(body_model, function)
    if body_model.num_betas != NUM_BETAS:
        raise ValueError(
            f"{function}: the dataset stores {NUM_BETAS} betas; `body_model` has "
            f"{body_model.num_betas}"
        )
    kinematics = _Kinematics(body_model)
    by_actor: dict[str, list[tuple[Path, Path]]] = {}
    for actor, asf, amc in clips:
        by_actor.setdefault(actor, []).append((asf, amc))

    from tqdm.auto import tqdm

    arrays: dict[str, list[np.ndarray]] = {key: [] for key in (
        "body_pose", "betas", "joints", "smpl_joints", "mocap_joints", "actor", "clip", "frame",
    )}
    report_clips: list[ClipResidual] = []
    calibrations: dict[str, ActorCalibration] = {}
    seconds: dict[str, float] = {}
    marker_residuals: list[np.ndarray] = []
    with tqdm(total=len(clips) + 2 * len(by_actor), desc="mocap", unit="step",
              disable=not progress) as bar:
        for actor, files in by_actor.items():
            actor_started = time.perf_counter()
            skeleton = read_asf(files[0][0])
            targets, names, indices = [], [], []
            for _, amc in files:
                bar.set_description(f"mocap {actor}: read")
                clip = read_amc(amc, skeleton)
                if fps > clip.frame_rate:
                    raise ValueError(
                        f"{function}: `fps` ({fps}) exceeds the frame rate of {amc.name} "
                        f"({clip.frame_rate})"
                    )
                indices.append(subsample_indices(clip.num_frames, clip.frame_rate, fps))
                targets.append(mocap_targets(subsample(clip, fps)))
                names.append(amc.stem)
                bar.update(1)
            joints = np.concatenate(targets)
            bar.set_description(f"mocap {actor}: calibrate")
            calibration = calibrate_actor(joints, body_model)
            bar.update(1)
            bar.set_description(f"mocap {actor}: fit {len(joints)} frames")
            result = retarget_clip(joints, body_model, calibration=calibration)
            bar.update(1)
            exported = _export_actor(result, joints, body_model, kinematics)
            for key, value in exported.items():
                arrays[key].append(value)
            arrays["betas"].append(np.broadcast_to(calibration.betas, (len(joints), NUM_BETAS)))
            arrays["actor"].append(np.full(len(joints), actor))
            arrays["clip"].append(np.concatenate(
                [np.full(len(i), name) for name, i in zip(names, indices)]
            ))
            arrays["frame"].append(np.concatenate(indices))
            calibrations[actor] = calibration
            marker_residuals.append(result.marker_residual_mm)
            residual = np.linalg.norm(
                exported["smpl_joints"].astype(np.float32).astype(np.float64)
                - exported["mocap_joints"].astype(np.float32).astype(np.float64), axis=-1
            ).mean(axis=-1) * 1000.0
            begin = 0
            for name, kept in zip(names, indices):
                rows = slice(begin, begin + len(kept))
                report_clips.append(ClipResidual(
                    actor=actor, clip=name, frames=len(kept),
                    mean_mm=float(residual[rows].mean()), max_mm=float(residual[rows].max()),
                    marker_mean_mm=float(result.marker_residual_mm[rows].mean()),
                    swing_mean_mm=float(result.swing_residual_mm[rows].mean()),
                ))
                begin += len(kept)
            seconds[actor] = time.perf_counter() - actor_started
            logger.info("%s: %d clips, %d frames, residual %.1f mm (%.0f s)", actor, len(files),
                        len(joints), residual.mean(), seconds[actor])

    merged = {key: np.concatenate(value) for key, value in arrays.items()}
    residual_mm = np.linalg.norm(
        merged["smpl_joints"].astype(np.float32).astype(np.float64)
        - merged["mocap_joints"].astype(np.float32).astype(np.float64), axis=-1
    )
    per_joint = residual_mm.mean(axis=0) * 1000.0
    residual_mm = residual_mm.mean(axis=-1) * 1000.0
    source = {
        "format": MOCAP_DATASET_FORMAT, "version": RETARGET_VERSION,
        "method": "fitted retarget (prohmr.data.mocap.retarget)", "dataset": "HDM05",
        "data_root": str(data_root), "actors": sorted(by_actor),
        "actions": None if actions is None else list(actions), "fps": float(fps),
        "body_model": str(body_model.model_file), "licence": "CC BY-SA 3.0",
        "attribution": HDM05_ATTRIBUTION,
    }
    contents = {
        "body_pose": merged["body_pose"].astype(np.float32),
        "betas": merged["betas"].astype(np.float32),
        "joints": merged["joints"].astype(np.float32),
        "smpl_joints": merged["smpl_joints"].astype(np.float32),
        "mocap_joints": merged["mocap_joints"].astype(np.float32),
        "actor": merged["actor"].astype(str),
        "clip": merged["clip"].astype(str),
        "frame": merged["frame"].astype(np.int32),
        "residual_mm": residual_mm.astype(np.float32),
        "fps": np.array(float(fps), dtype=np.float64),
        "source": np.array(json.dumps(source, sort_keys=True)),
    }
    seconds["total"] = time.perf_counter() - started
    summary = {
        "source": source,
        "settings": {
            "weights": DEFAULT_RETARGET_WEIGHTS.to_dict(),
            "pose_settings": DEFAULT_POSE_SETTINGS.__dict__,
            "shape_settings": DEFAULT_SHAPE_SETTINGS.__dict__,
            "shape_frames": DEFAULT_SHAPE_FRAMES,
            "joint_map": {name: RETARGET_FROM_ACCLAIM[name] for name in SMPL_JOINT_NAMES},
            "calibrated_joints": {
                SMPL_JOINT_NAMES[j]: SMPL_JOINT_NAMES[a] for j, a in CALIBRATED_JOINTS.items()
            },
        },
        "frames": int(len(residual_mm)),
        "residual_mm": {
            "mean": round(float(residual_mm.mean()), 2),
            "median": round(float(np.median(residual_mm)), 2),
            "max": round(float(residual_mm.max()), 2),
            "marker_mean": round(float(np.concatenate(marker_residuals).mean()), 2),
            "swing_mean": round(float(
                sum(c.swing_mean_mm * c.frames for c in report_clips) / len(residual_mm)), 2),
        },
        "per_joint_residual_mm": {
            name: round(float(value), 2) for name, value in zip(SMPL_JOINT_NAMES, per_joint)
        },
        "actors": {actor: c.to_dict() for actor, c in calibrations.items()},
        "clips": [clip.to_dict() for clip in report_clips],
        "seconds": {key: round(value, 1) for key, value in seconds.items()},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(out, lambda path: np.savez(path, **contents))

    def write_json(path: str) -> None:
        Path(path).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")

    _write_atomically(json_path, write_json)
    logger.info("wrote %s (%d frames) and %s", out, len(residual_mm), json_path)
    return MocapBuildReport(
        path=out, json_path=json_path, clips=report_clips, calibrations=calibrations,
        actor=contents["actor"], residual_mm=residual_mm, seconds=seconds,
    )


def run_mocap_command(
    out: str | Path,
    data_root: str | Path = DEFAULT_DATA_ROOT,
    actors: Optional[Sequence[str]] = None,
    exclude_actors: Sequence[str] = (),
    fps: float = 10.0,
    overwrite: bool = False,
) -> list[str]:
    """What ``prohmr data mocap`` does: :func:`build_mocap_dataset` with a progress bar.

    *Arguments*
        out, data_root, actors, exclude_actors, fps, overwrite: as in
            :func:`build_mocap_dataset` (an empty ``actors`` means all).

    *Returns*
        The lines to print: the residual table and where the files went.
    """
    report = build_mocap_dataset(
        out, data_root, actors=list(actors) if actors else None,
        exclude_actors=tuple(exclude_actors or ()), fps=fps, overwrite=overwrite, progress=True,
    )
    return report.table_lines() + [
        f"wrote {report.path} ({report.num_frames} frames) and {report.json_path}",
    ]
