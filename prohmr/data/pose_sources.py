"""Sources of SMPL poses for synthetic data: retargeted real mocap, or a hand-made prior.

Two sources, both returning ``(M, 72)`` axis-angle SMPL poses (global orientation first, SMPL
axes: y up, the body facing +z, x towards the body's left):

- :func:`mocap_pose_bank` retargets the HDM05 motion capture in ``../shared/data`` onto the
  body model's skeleton by a direct **swing-only** retarget (:func:`retarget_swing`): each
  joint gets the smallest rotation that turns its rest bone direction into the mocap bone
  direction, with zero twist about the bone. Joints with several children (pelvis, spine3)
  get the rotation that best aligns all their bone directions (an SVD/Kabsch fit). It is
  fast and exact on bone directions but knows nothing of twist (forearm roll, head turn
  about the neck axis) and inherits the skeletons' differing proportions; a fitting-based
  retarget (optimising the body model's joints against the mocap) is a later step. The
  heading (yaw about the vertical) of every pose is removed, so each pose faces +z; tilt,
  leaning and lying down are kept.
- :func:`random_pose` draws from a simple per-joint Gaussian with hand-set means, spreads
  and limits: a fallback when the mocap folder is missing.

Banks are cached as ``.npz`` under ``$PROHMR_CACHE_DIR`` (default ``~/.cache/prohmr``), keyed
by every parameter that changes them. HDM05 is CC BY-SA 3.0 (Müller et al., "Documentation
Mocap Database HDM05", Universität Bonn, 2007); poses derived from it share that licence.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from prohmr.body.joints import SMPL_JOINT_NAMES, SMPL_PARENTS
from prohmr.body.procedural import CACHE_DIR_ENV_VAR
from prohmr.constants import NUM_BETAS, NUM_SMPL_JOINTS
from prohmr.data.mocap import read_amc, read_asf, smpl_joint_positions, subsample
from prohmr.geometry import axis_angle_to_matrix, matrix_to_axis_angle

__all__ = [
    "DEFAULT_DATA_ROOT",
    "HDM05_ACTORS",
    "HELD_OUT_ACTORS",
    "POSE_BANK_VERSION",
    "BONE_EPS",
    "RANDOM_POSE_MEAN",
    "RANDOM_POSE_STD",
    "RANDOM_POSE_LIMIT",
    "hdm05_clips",
    "body_rest_joints",
    "retarget_swing",
    "remove_heading",
    "posed_smpl_joints",
    "retarget_residual",
    "mocap_pose_bank",
    "random_pose",
]

logger = logging.getLogger(__name__)

#: Where the project's open data lives, relative to the repository root (SPEC §10).
DEFAULT_DATA_ROOT: Path = Path("../shared/data")
#: The HDM05 actors present in the data folder.
HDM05_ACTORS: tuple[str, ...] = ("bd", "bk", "dg", "mm")
#: Actors held out for validation across the project (never in a training bank).
HELD_OUT_ACTORS: tuple[str, ...] = ("mm",)
#: Bumped whenever the retarget changes; part of the cache key.
POSE_BANK_VERSION: int = 1
#: Bones shorter than this (metres) have no direction; their joint looks further down.
BONE_EPS: float = 1e-4
#: |sin| of the swing angle below which a swing counts as parallel or antiparallel.
_PARALLEL_EPS: float = 1e-9

_CHILDREN: tuple[tuple[int, ...], ...] = tuple(
    tuple(child for child in range(NUM_SMPL_JOINTS) if SMPL_PARENTS[child] == joint)
    for joint in range(NUM_SMPL_JOINTS)
)
_HDM05_AMC = re.compile(r"^HDM_(?P<actor>[a-z]+)_(?P<action>.+)_(?P<take>\d+)_(?P<rate>\d+)\.amc$")


Triple = tuple[float, float, float]


def _mirror_right(left: dict[str, Triple]) -> dict[str, Triple]:
    """Right-side entries from left-side ones: a mirror negates the y and z components."""
    return {name.replace("left_", "right_"): (x, -y, -z) for name, (x, y, z) in left.items()}


# Hand-set per-joint axis-angle statistics of :func:`random_pose` (radians, SMPL axes: a
# positive x rotation bends the spine and head forward, the knees backward (flexion) and
# the hips backward; for the left arm a negative z lowers the arm from the T-pose and a
# negative y swings it forward, and bends the left elbow).
_LEFT_MEAN = {
    "left_hip": (-0.25, 0.0, 0.06), "left_knee": (0.45, 0.0, 0.0),
    "left_ankle": (0.0, 0.0, 0.0), "left_foot": (0.0, 0.0, 0.0),
    "left_collar": (0.0, 0.0, -0.05), "left_shoulder": (0.0, -0.2, -1.1),
    "left_elbow": (0.0, -0.7, 0.0), "left_wrist": (0.0, 0.0, 0.0), "left_hand": (0.0, 0.0, 0.0),
}
_LEFT_STD = {
    "left_hip": (0.4, 0.12, 0.12), "left_knee": (0.45, 0.03, 0.03),
    "left_ankle": (0.15, 0.08, 0.08), "left_foot": (0.05, 0.03, 0.03),
    "left_collar": (0.06, 0.08, 0.1), "left_shoulder": (0.3, 0.45, 0.35),
    "left_elbow": (0.1, 0.55, 0.05), "left_wrist": (0.2, 0.2, 0.2), "left_hand": (0.1, 0.1, 0.1),
}
_LEFT_LIMIT = {  # (low, high) per component
    "left_hip": ((-1.8, 0.5), (-0.4, 0.4), (-0.25, 0.7)),
    "left_knee": ((0.0, 2.2), (-0.1, 0.1), (-0.1, 0.1)),
    "left_ankle": ((-0.5, 0.5), (-0.25, 0.25), (-0.25, 0.25)),
    "left_foot": ((-0.15, 0.15), (-0.1, 0.1), (-0.1, 0.1)),
    "left_collar": ((-0.2, 0.2), (-0.25, 0.25), (-0.3, 0.3)),
    "left_shoulder": ((-1.0, 1.0), (-1.6, 0.8), (-1.5, 0.7)),
    "left_elbow": ((-0.3, 0.3), (-2.4, 0.0), (-0.15, 0.15)),
    "left_wrist": ((-0.6, 0.6), (-0.6, 0.6), (-0.6, 0.6)),
    "left_hand": ((-0.3, 0.3), (-0.3, 0.3), (-0.3, 0.3)),
}
_CENTRE_MEAN = {
    "pelvis": (0.0, 0.0, 0.0), "spine1": (0.05, 0.0, 0.0), "spine2": (0.03, 0.0, 0.0),
    "spine3": (0.0, 0.0, 0.0), "neck": (0.05, 0.0, 0.0), "head": (0.0, 0.0, 0.0),
}
_CENTRE_STD = {
    "pelvis": (0.08, 0.0, 0.05), "spine1": (0.12, 0.1, 0.06), "spine2": (0.08, 0.08, 0.05),
    "spine3": (0.06, 0.06, 0.04), "neck": (0.12, 0.25, 0.08), "head": (0.12, 0.2, 0.08),
}
_CENTRE_LIMIT = {
    "pelvis": ((-0.3, 0.3), (0.0, 0.0), (-0.2, 0.2)),
    "spine1": ((-0.3, 0.6), (-0.3, 0.3), (-0.2, 0.2)),
    "spine2": ((-0.2, 0.4), (-0.25, 0.25), (-0.15, 0.15)),
    "spine3": ((-0.15, 0.3), (-0.2, 0.2), (-0.12, 0.12)),
    "neck": ((-0.4, 0.5), (-0.7, 0.7), (-0.3, 0.3)),
    "head": ((-0.4, 0.4), (-0.6, 0.6), (-0.25, 0.25)),
}


def _table(centre: dict, left: dict, mirror: bool) -> np.ndarray:
    entries = dict(centre)
    entries.update(left)
    if mirror:
        entries.update(_mirror_right(left))
    else:
        entries.update({name.replace("left_", "right_"): value for name, value in left.items()})
    return np.array([entries[name] for name in SMPL_JOINT_NAMES], dtype=np.float64)


def _limit_table() -> np.ndarray:
    """``(24, 3, 2)`` limits; mirroring swaps and negates the y and z bounds."""
    entries = {name: np.array(value, dtype=np.float64) for name, value in _CENTRE_LIMIT.items()}
    for name, value in _LEFT_LIMIT.items():
        bounds = np.array(value, dtype=np.float64)
        entries[name] = bounds
        mirrored = bounds.copy()
        mirrored[1:] = -bounds[1:, ::-1]
        entries[name.replace("left_", "right_")] = mirrored
    return np.stack([entries[name] for name in SMPL_JOINT_NAMES])


#: ``(24, 3)`` mean axis-angle of :func:`random_pose` per SMPL joint (row 0: global
#: orientation, upright and facing +z).
RANDOM_POSE_MEAN: np.ndarray = _table(_CENTRE_MEAN, _LEFT_MEAN, mirror=True)
#: ``(24, 3)`` standard deviations of :func:`random_pose`.
RANDOM_POSE_STD: np.ndarray = _table(_CENTRE_STD, _LEFT_STD, mirror=False)
#: ``(24, 3, 2)`` (low, high) limits each component is clipped to.
RANDOM_POSE_LIMIT: np.ndarray = _limit_table()
for _array in (RANDOM_POSE_MEAN, RANDOM_POSE_STD, RANDOM_POSE_LIMIT):
    _array.setflags(write=False)
del _array


def random_pose(num_poses: int, rng: np.random.Generator) -> np.ndarray:
    """Draw poses from a hand-made per-joint Gaussian, clipped to plausible limits.

    Every axis-angle component is ``clip(mean + std * N(0, 1), low, high)`` with the values of
    :data:`RANDOM_POSE_MEAN`, :data:`RANDOM_POSE_STD` and :data:`RANDOM_POSE_LIMIT`: a
    standing body, arms lowered from the T-pose, knees and elbows bending the anatomical way,
    left and right sides mirror images of each other. The global orientation is upright,
    facing +z, with a small lean.

    Arguments:
        num_poses: number of poses ``M`` (>= 0).
        rng: numpy generator (the only source of randomness).

    Returns:
        ``(M, 72)`` float64 axis-angle, global orientation first.

    Example:
        >>> poses = random_pose(4, np.random.default_rng(0))
        >>> poses.shape, bool(np.isfinite(poses).all())
        ((4, 72), True)
    """
    if isinstance(num_poses, bool) or not isinstance(num_poses, (int, np.integer)) or num_poses < 0:
        raise ValueError(f"num_poses must be a non-negative int, got {num_poses!r}")
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng)}")
    noise = rng.standard_normal((int(num_poses), NUM_SMPL_JOINTS, 3))
    low, high = RANDOM_POSE_LIMIT[..., 0], RANDOM_POSE_LIMIT[..., 1]
    poses = np.clip(RANDOM_POSE_MEAN + RANDOM_POSE_STD * noise, low, high)
    return poses.reshape(int(num_poses), 3 * NUM_SMPL_JOINTS)


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


def _swing(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``(T, 3, 3)`` smallest rotations turning unit ``source (T, 3)`` into unit ``target``.

    Rodrigues' formula about ``source x target``; for antiparallel vectors any axis
    perpendicular to ``source`` gives a 180-degree turn.
    """
    cross = np.cross(source, target)
    sin = np.linalg.norm(cross, axis=-1)
    cos = np.sum(source * target, axis=-1)
    axis = cross / np.maximum(sin, _PARALLEL_EPS)[:, None]
    axis = np.where(sin[:, None] > _PARALLEL_EPS, axis, 0.0)
    antiparallel = (sin <= _PARALLEL_EPS) & (cos < 0)
    if np.any(antiparallel):
        x_axis, y_axis = np.eye(3)[0], np.eye(3)[1]
        helper = np.where(np.abs(source[:, :1]) < 0.9, x_axis, y_axis)
        perpendicular = _unit(np.cross(source, helper))
        axis = np.where(antiparallel[:, None], perpendicular, axis)
        sin = np.where(antiparallel, 0.0, sin)
    skew = np.zeros((len(source), 3, 3))
    skew[:, 0, 1], skew[:, 0, 2], skew[:, 1, 2] = -axis[:, 2], axis[:, 1], -axis[:, 0]
    skew -= skew.transpose(0, 2, 1)
    eye = np.eye(3)
    return eye + sin[:, None, None] * skew + (1.0 - cos)[:, None, None] * (skew @ skew)


def _kabsch(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``(T, 3, 3)`` proper rotations ``R`` minimising ``sum_k |R source_k - target_k|^2``.

    ``source (K, 3)`` are fixed vectors, ``target (T, K, 3)``.
    """
    covariance = np.einsum("tki,kj->tij", target, source)
    u, _, vt = np.linalg.svd(covariance)
    sign = np.sign(np.linalg.det(u @ vt))
    sign = np.where(sign == 0, 1.0, sign)
    correction = np.broadcast_to(np.eye(3), covariance.shape).copy()
    correction[:, 2, 2] = sign
    return u @ correction @ vt


def _direction_targets(joint: int, bone_lengths: np.ndarray) -> list[int]:
    """Descendants whose direction from ``joint`` orients it: its children, or, for a child
    whose mocap bone has no length, that child's own targets."""
    targets: list[int] = []
    for child in _CHILDREN[joint]:
        if bone_lengths[child] > BONE_EPS:
            targets.append(child)
        else:
            targets.extend(_direction_targets(child, bone_lengths))
    return targets


def retarget_swing(mocap_joints: np.ndarray, rest_joints: np.ndarray) -> np.ndarray:
    """Swing-only retarget of SMPL-ordered joint positions onto a body's rest skeleton.

    Processed root to leaves. A joint with one direction target gets the smallest rotation
    (relative to its parent's posed frame, i.e. zero twist) that turns its rest bone into the
    mocap bone; a joint with several (pelvis: hips and spine; spine3: neck and the shoulders,
    since mocap collars usually sit on the spine) gets the best-fitting proper rotation of
    all its unit bone directions (Kabsch); a leaf keeps the identity. Mocap bones shorter
    than :data:`BONE_EPS` hand their role to the next joint down.

    Arguments:
        mocap_joints: ``(T, 24, 3)`` SMPL-ordered joint positions (SMPL axes, metres; any
            scale or offset).
        rest_joints: ``(24, 3)`` the body model's rest-pose joints.

    Returns:
        ``(T, 72)`` float64 axis-angle SMPL poses, global orientation first (world frame of
        ``mocap_joints``).
    """
    mocap_joints = np.asarray(mocap_joints, dtype=np.float64)
    rest_joints = np.asarray(rest_joints, dtype=np.float64)
    if mocap_joints.ndim != 3 or mocap_joints.shape[1:] != (NUM_SMPL_JOINTS, 3):
        raise ValueError(f"mocap_joints must have shape (T, 24, 3), got {mocap_joints.shape}")
    if rest_joints.shape != (NUM_SMPL_JOINTS, 3):
        raise ValueError(f"rest_joints must have shape (24, 3), got {rest_joints.shape}")
    if not (np.isfinite(mocap_joints).all() and np.isfinite(rest_joints).all()):
        raise ValueError("mocap_joints and rest_joints must be finite")
    num_frames = mocap_joints.shape[0]
    parents = np.array(SMPL_PARENTS)
    bones = mocap_joints[:, 1:] - mocap_joints[:, parents[1:]]
    bone_lengths = np.concatenate([[np.inf], np.linalg.norm(bones, axis=-1).mean(axis=0)])

    global_rotations = np.zeros((num_frames, NUM_SMPL_JOINTS, 3, 3))
    local_rotations = np.zeros((num_frames, NUM_SMPL_JOINTS, 3, 3))
    for joint in range(NUM_SMPL_JOINTS):
        parent_rotation = global_rotations[:, parents[joint]] if joint > 0 else np.eye(3)[None]
        targets = _direction_targets(joint, bone_lengths)
        if not targets:
            world = np.broadcast_to(parent_rotation, (num_frames, 3, 3))
        else:
            rest = _unit(rest_joints[targets] - rest_joints[joint])
            mocap = _unit(mocap_joints[:, targets] - mocap_joints[:, joint : joint + 1])
            if len(targets) == 1:
                posed_rest = np.einsum("...ij,j->...i", parent_rotation, rest[0])
                posed_rest = np.broadcast_to(posed_rest, (num_frames, 3))
                world = _swing(posed_rest, mocap[:, 0]) @ parent_rotation
            else:
                world = _kabsch(rest, mocap)
        global_rotations[:, joint] = world
        local_rotations[:, joint] = np.swapaxes(parent_rotation, -1, -2) @ world
    axis_angle = matrix_to_axis_angle(torch.from_numpy(local_rotations)).numpy()
    return axis_angle.reshape(num_frames, 3 * NUM_SMPL_JOINTS)


def remove_heading(poses: np.ndarray) -> np.ndarray:
    """Turn each pose about the vertical (y) axis so that its body faces +z.

    The heading is read from the root's left axis (``R_root @ e_x``) projected on the ground
    plane, which stays defined when the body lies down; only the global orientation changes.

    Arguments:
        poses: ``(..., 72)`` axis-angle, global orientation first, y up.

    Returns:
        ``(..., 72)`` float64 poses whose root left axis lies in the x-y plane (x >= 0).
    """
    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim < 1 or poses.shape[-1] != 3 * NUM_SMPL_JOINTS:
        raise ValueError(f"poses must have shape (..., 72), got {poses.shape}")
    root = axis_angle_to_matrix(torch.from_numpy(poses[..., :3])).numpy()
    left = root[..., :, 0]
    angle = np.arctan2(left[..., 2], left[..., 0])
    cos, sin = np.cos(angle), np.sin(angle)
    turn = np.zeros((*angle.shape, 3, 3))
    turn[..., 0, 0], turn[..., 0, 2], turn[..., 1, 1] = cos, sin, 1.0
    turn[..., 2, 0], turn[..., 2, 2] = -sin, cos
    out = poses.copy()
    out[..., :3] = matrix_to_axis_angle(torch.from_numpy(turn @ root)).numpy()
    return out


def body_rest_joints(body_model: torch.nn.Module | None = None) -> np.ndarray:
    """``(24, 3)`` float64 SMPL joints of a body model in its rest pose with zero betas.

    Arguments:
        body_model: a :class:`prohmr.body.model.BodyModel`; None builds the default one.
    """
    return posed_smpl_joints(np.zeros((1, 3 * NUM_SMPL_JOINTS)), body_model)[0]


def posed_smpl_joints(poses: np.ndarray, body_model: torch.nn.Module | None = None,
                      batch_size: int = 512) -> np.ndarray:
    """``(M, 24, 3)`` float64 SMPL joints of a body model posed with ``poses (M, 72)``
    (zero betas, no translation).

    Arguments:
        poses: ``(M, 72)`` axis-angle, global orientation first.
        body_model: a :class:`prohmr.body.model.BodyModel`; None builds the default one.
        batch_size: poses per forward pass.
    """
    from prohmr.body.model import create_body_model

    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim != 2 or poses.shape[1] != 3 * NUM_SMPL_JOINTS:
        raise ValueError(f"poses must have shape (M, 72), got {poses.shape}")
    model = body_model if body_model is not None else create_body_model()
    reference = next(iter(model.buffers()))
    outputs = []
    with torch.no_grad():
        for start in range(0, len(poses), batch_size):
            chunk = torch.as_tensor(poses[start : start + batch_size], dtype=reference.dtype,
                                    device=reference.device)
            rotations = axis_angle_to_matrix(chunk.view(-1, NUM_SMPL_JOINTS, 3))
            betas = chunk.new_zeros(len(chunk), model.num_betas)
            out = model(rotations[:, :1], rotations[:, 1:], betas)
            outputs.append(out.smpl_joints.double().cpu().numpy())
    if not outputs:
        return np.zeros((0, NUM_SMPL_JOINTS, 3))
    return np.concatenate(outputs)


def retarget_residual(posed_joints: np.ndarray, mocap_joints: np.ndarray) -> np.ndarray:
    """Per-frame mean joint distance after aligning position and scale (no rotation).

    Both sets are centred at the centroid of their joints (the skeletons' root joints are
    not the same anatomical point: HDM05's root lies about 5 cm behind the hips, the body
    model's pelvis between them); the posed joints are then scaled by the least-squares
    factor ``<posed, mocap> / <posed, posed>`` (one per frame). The rotation is not aligned,
    so a wrong global orientation shows in full.

    Arguments:
        posed_joints: ``(T, 24, 3)`` joints of the posed body model.
        mocap_joints: ``(T, 24, 3)`` the mocap joints it should match.

    Returns:
        ``(T,)`` mean per-joint error in the mocap's units.
    """
    posed = np.asarray(posed_joints, dtype=np.float64)
    mocap = np.asarray(mocap_joints, dtype=np.float64)
    if posed.shape != mocap.shape or posed.ndim != 3 or posed.shape[-1] != 3:
        raise ValueError(
            f"posed_joints and mocap_joints must both have shape (T, J, 3), got {posed.shape} "
            f"and {mocap.shape}"
        )
    posed = posed - posed.mean(axis=1, keepdims=True)
    mocap = mocap - mocap.mean(axis=1, keepdims=True)
    norm = np.maximum(np.sum(posed * posed, axis=(1, 2)), BONE_EPS)
    scale = np.sum(posed * mocap, axis=(1, 2)) / norm
    return np.linalg.norm(scale[:, None, None] * posed - mocap, axis=-1).mean(axis=1)


def hdm05_clips(data_root: str | Path = DEFAULT_DATA_ROOT,
                actors: Sequence[str] | None = None,
                actions: Sequence[str] | None = None) -> list[tuple[str, Path, Path]]:
    """The HDM05 clips under ``data_root/hdm05``: ``(actor, asf_path, amc_path)``, sorted.

    Arguments:
        data_root: the open-data folder holding ``hdm05/asf`` and ``hdm05/amc``.
        actors: keep only these actors; None keeps all.
        actions: keep only these actions (e.g. ``"squat1Reps"``); None keeps all.

    Raises:
        FileNotFoundError: ``data_root/hdm05`` or an actor's skeleton file is missing.
    """
    folder = Path(data_root).expanduser() / "hdm05"
    if not (folder / "amc").is_dir() or not (folder / "asf").is_dir():
        raise FileNotFoundError(
            f"HDM05 mocap not found: expected {folder}/asf and {folder}/amc (data_root "
            f"{data_root}; see ../shared/data/README.md)"
        )
    clips = []
    for amc in sorted((folder / "amc").glob("*.amc")):
        match = _HDM05_AMC.match(amc.name)
        if match is None or (actors is not None and match["actor"] not in actors):
            continue
        if actions is not None and match["action"] not in actions:
            continue
        asf = folder / "asf" / f"HDM_{match['actor']}.asf"
        if not asf.is_file():
            raise FileNotFoundError(f"skeleton {asf} of clip {amc.name} not found")
        clips.append((match["actor"], asf, amc))
    return clips


def _cache_root(cache_dir: str | Path | None) -> Path:
    if cache_dir is None:
        cache_dir = os.environ.get(CACHE_DIR_ENV_VAR) or Path.home() / ".cache" / "prohmr"
    return Path(cache_dir).expanduser()


def mocap_pose_bank(
    data_root: str | Path = DEFAULT_DATA_ROOT,
    actors: Sequence[str] | None = None,
    exclude_actors: Sequence[str] = (),
    actions: Sequence[str] | None = None,
    fps: float = 10.0,
    body_model: torch.nn.Module | None = None,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
) -> np.ndarray:
    """Poses retargeted from the HDM05 mocap onto the body model (swing-only, see above).

    Each clip is subsampled to ``fps`` (nearest frames), its SMPL joints are taken from the
    mocap (:func:`prohmr.data.mocap.smpl_joint_positions`), retargeted with
    :func:`retarget_swing` onto :func:`body_rest_joints` and turned to face +z
    (:func:`remove_heading`). The result is cached as an ``.npz`` keyed by the parameters,
    the clip list and the body's rest joints.

    Arguments:
        data_root: the open-data folder (holding ``hdm05/``).
        actors: actors to use (of :data:`HDM05_ACTORS`); None for all present.
        exclude_actors: actors to leave out, e.g. :data:`HELD_OUT_ACTORS` for a training bank.
        actions: keep only these actions; None keeps all.
        fps: frames per second kept (HDM05 is captured at 120).
        body_model: the body the poses are for; None builds the default one.
        cache_dir: cache root; None uses ``$PROHMR_CACHE_DIR`` or ``~/.cache/prohmr``.
        use_cache: read and write the cache.

    Returns:
        ``(M, 72)`` float64 axis-angle SMPL poses, global orientation first (y up, facing +z).

    Raises:
        FileNotFoundError: the HDM05 folder is missing.
        ValueError: bad arguments, or no clip left after the actor selection.
    """
    if not (isinstance(fps, (int, float)) and np.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    if any(isinstance(names, str) for names in (actors, exclude_actors, actions)):
        raise ValueError("actors, exclude_actors and actions must be sequences of names, not a str")
    selected = sorted(set(actors) if actors is not None else set(HDM05_ACTORS))
    selected = [actor for actor in selected if actor not in set(exclude_actors)]
    clips = hdm05_clips(data_root, selected, actions)
    if not clips:
        raise ValueError(
            f"no HDM05 clip for actors {selected} (actors={actors}, exclude_actors="
            f"{list(exclude_actors)}, actions={actions}) under {data_root}"
        )
    rest = body_rest_joints(body_model)
    key = json.dumps({
        "version": POSE_BANK_VERSION,
        "fps": float(fps),
        "clips": [amc.name for _, _, amc in clips],
        "rest": np.round(rest, 6).tolist(),
    }, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    name = f"hdm05_swing_v{POSE_BANK_VERSION}_{digest}.npz"
    cache_file = _cache_root(cache_dir) / "pose_banks" / name
    if use_cache and cache_file.is_file():
        try:
            with np.load(cache_file, allow_pickle=False) as cached:
                logger.info("pose bank from cache %s", cache_file)
                return cached["body_pose"].astype(np.float64)
        except (OSError, ValueError, KeyError):
            logger.warning("unreadable pose-bank cache %s; rebuilding it", cache_file)

    skeletons = {}
    banks = []
    for actor, asf, amc in clips:
        if asf not in skeletons:
            skeletons[asf] = read_asf(asf)
        clip = read_amc(amc, skeletons[asf])
        clip = subsample(clip, min(float(fps), clip.frame_rate))
        banks.append(remove_heading(retarget_swing(smpl_joint_positions(clip), rest)))
    bank = np.concatenate(banks)
    logger.info(
        "retargeted %d poses from %d HDM05 clips (actors %s)", len(bank), len(clips), selected
    )
    if use_cache:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        # Written to a temporary name and renamed, so readers never see a partial file.
        handle, temporary = tempfile.mkstemp(suffix=".npz", dir=cache_file.parent)
        os.close(handle)
        try:
            # The MocapDataset format (body_pose, betas), usable for the adversarial prior.
            np.savez(temporary, body_pose=bank, betas=np.zeros((len(bank), NUM_BETAS)),
                     key=np.array(key))
            os.replace(temporary, cache_file)
        finally:
            if os.path.exists(temporary):
                os.remove(temporary)
    return bank
