"""Rigging of the procedural body: skinning weights, joint regressors and the shape space.

Private to :mod:`prohmr.body.procedural`.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import scipy.optimize
import scipy.sparse

from prohmr.body._procedural_design import REGIONS
from prohmr.body._procedural_mesh import vertex_adjacency, vertex_normals
from prohmr.body.joints import SMPL_JOINT_NAMES, SMPL_PARENTS

__all__ = [
    "REGION_BONES",
    "SHAPE_COMPONENTS",
    "skinning_weights",
    "point_regressor",
    "shape_directions",
    "sparse_rows",
]

_J = {name: i for i, name in enumerate(SMPL_JOINT_NAMES)}
_NUM_JOINTS = len(SMPL_JOINT_NAMES)

#: Softness (metres) of the capsule distance competition between bones.
_SKIN_TEMPERATURE: float = 0.012
#: Bones a vertex can follow, at most.
_MAX_INFLUENCES: int = 4
#: Weights below this are dropped before renormalising.
_MIN_WEIGHT: float = 1e-3
#: Graph-diffusion steps that smooth the weights across part borders.
_SKIN_SMOOTHING_STEPS: int = 4


def _side_bones(side: str) -> list[int]:
    return [_J[f"{side}_{name}"] for name in ("hip", "knee", "ankle", "foot")]


#: Bones each region may be skinned to.
REGION_BONES: dict[str, list[int]] = {
    "torso": [_J[n] for n in ("pelvis", "spine1", "spine2", "spine3", "neck", "left_collar",
                             "right_collar", "left_hip", "right_hip", "left_shoulder",
                             "right_shoulder")],
    "head": [_J[n] for n in ("spine3", "neck", "head")],
    "l_leg": [_J["pelvis"]] + _side_bones("left"),
    "r_leg": [_J["pelvis"]] + _side_bones("right"),
    "l_arm": [_J[n] for n in ("spine3", "left_collar", "left_shoulder", "left_elbow",
                             "left_wrist", "left_hand")],
    "r_arm": [_J[n] for n in ("spine3", "right_collar", "right_shoulder", "right_elbow",
                             "right_wrist", "right_hand")],
}


def _capsule_distance(points: np.ndarray, start: np.ndarray, end: np.ndarray, r0: float,
                      r1: float) -> np.ndarray:
    """Distance ``(N,)`` from points to a tapered capsule's surface (negative inside)."""
    axis = end - start
    t = np.clip((points - start) @ axis / (axis @ axis), 0.0, 1.0)
    closest = start + t[:, None] * axis
    return np.linalg.norm(points - closest, axis=1) - (r0 + (r1 - r0) * t)


def skinning_weights(
    vertices: np.ndarray,
    faces: np.ndarray,
    regions: np.ndarray,
    capsules: Sequence[tuple[int, np.ndarray, np.ndarray, float, float]],
) -> np.ndarray:
    """Linear-blend-skinning weights ``(V, 24)``: non-negative, rows sum to one.

    Each bone is a set of tapered capsules; a vertex's affinity to a bone decays
    exponentially with its distance to the nearest capsule surface (a soft nearest-bone
    assignment, so weights blend where two bones are about as close, i.e. at joints). Only
    the bones of the vertex's region compete; a few diffusion steps over the mesh smooth
    the result, and each vertex keeps its four strongest bones.
    """
    distance = np.full((len(vertices), _NUM_JOINTS), np.inf)
    for bone, start, end, r0, r1 in capsules:
        distance[:, bone] = np.minimum(
            distance[:, bone], _capsule_distance(vertices, start, end, r0, r1)
        )
    allowed = np.zeros((len(REGIONS), _NUM_JOINTS), dtype=bool)
    for r, name in enumerate(REGIONS):
        allowed[r, REGION_BONES[name]] = True
    distance = np.where(allowed[regions], distance, np.inf)
    logits = -(distance - distance.min(axis=1, keepdims=True)) / _SKIN_TEMPERATURE
    weights = np.exp(logits)
    weights /= weights.sum(axis=1, keepdims=True)

    adjacency = vertex_adjacency(faces, len(vertices))
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    for _ in range(_SKIN_SMOOTHING_STEPS):
        weights = 0.5 * weights + 0.5 * (adjacency @ weights) / degree[:, None]
    return _keep_strongest(weights)


def _keep_strongest(weights: np.ndarray) -> np.ndarray:
    order = np.argsort(-weights, axis=1, kind="stable")
    keep = np.zeros_like(weights, dtype=bool)
    np.put_along_axis(keep, order[:, :_MAX_INFLUENCES], True, axis=1)
    weights = np.where(keep & (weights >= _MIN_WEIGHT), weights, 0.0)
    return weights / weights.sum(axis=1, keepdims=True)


#: Accepted mismatch (metres) between a regressed point and its target.
_REGRESSOR_TOLERANCE: float = 1e-4
#: Weight of the exact constraints relative to staying near uniform weights.
_CONSTRAINT_WEIGHT: float = 1e4


def point_regressor(
    vertices: np.ndarray,
    target: np.ndarray,
    axis: np.ndarray,
    candidates: np.ndarray,
    radius: float,
    min_vertices: int = 16,
) -> np.ndarray:
    """Vertex weights ``(V,)`` whose weighted mean is ``target``: non-negative, sum one.

    The support is the cross-section of the surface around the target: candidate vertices
    within ``radius`` of the target in a slab perpendicular to ``axis``, widened until the
    constraints can be met. Among all valid weights, the ones closest to uniform are chosen
    (non-negative least squares with the constraints weighted heavily), so the point is an
    average over a ring of vertices rather than a few of them.
    """
    axis = axis / np.linalg.norm(axis)
    rel = vertices - target
    along = np.abs(rel @ axis)
    near = candidates & (np.linalg.norm(rel, axis=1) < radius)
    for half_width in (0.01, 0.015, 0.02, 0.03, 0.045, 0.07):
        support = np.flatnonzero(near & (along < half_width))
        if len(support) < min_vertices:
            continue
        n = len(support)
        a = np.vstack([
            _CONSTRAINT_WEIGHT * vertices[support].T,
            _CONSTRAINT_WEIGHT * np.ones((1, n)),
            np.eye(n),
        ])
        b = np.concatenate([_CONSTRAINT_WEIGHT * target, [_CONSTRAINT_WEIGHT],
                            np.full(n, 1.0 / n)])
        w, _ = scipy.optimize.nnls(a, b, maxiter=50 * n)
        w /= w.sum()
        if np.linalg.norm(w @ vertices[support] - target) < _REGRESSOR_TOLERANCE:
            out = np.zeros(len(vertices))
            out[support] = w
            return out
    raise RuntimeError(f"no vertex ring around {target} can regress it")


# --- shape space ---------------------------------------------------------------------------

def _axis(joints: np.ndarray, bone: int, child: int) -> np.ndarray:
    d = joints[child] - joints[bone]
    return d / np.linalg.norm(d)


def _bone_field(
    vertices: np.ndarray,
    joints: np.ndarray,
    weights: np.ndarray,
    maps: dict[int, np.ndarray],
    carry_children: bool = True,
) -> np.ndarray:
    """Displacement ``(V, 3)`` from per-bone linear maps, blended by the skinning weights.

    Bone b maps a point p to ``dJ_b + M_b (p - J_b)``, where ``dJ_b`` is how its joint moves
    under its ancestors' maps, so parts stay attached: stretching a thigh carries the shin
    and foot along. With ``carry_children=False`` joints stay put and only the mapped
    parts deform (blending keeps the field continuous).
    """
    num = len(joints)
    moved = np.zeros((num, 3))
    matrices = np.zeros((num, 3, 3))
    for b, m in maps.items():
        matrices[b] = m
    for b in range(1, num if carry_children else 1):
        p = SMPL_PARENTS[b]
        moved[b] = moved[p] + matrices[p] @ (joints[b] - joints[p])
    # sum_b w_b (dJ_b + M_b (v - J_b)) = W (dJ - M J) + (sum_b w_b M_b) v
    offsets = moved - np.einsum("jab,jb->ja", matrices, joints)
    blended = (weights @ matrices.reshape(num, 9)).reshape(-1, 3, 3)
    return weights @ offsets + np.einsum("vab,vb->va", blended, vertices)


def _stretch(axis: np.ndarray, amount: float) -> np.ndarray:
    return amount * np.outer(axis, axis)


def _thicken(axis: np.ndarray, amount: float) -> np.ndarray:
    return amount * (np.eye(3) - np.outer(axis, axis))


def _limb_axes(joints: np.ndarray) -> dict[int, np.ndarray]:
    pairs = {}
    for side in ("left", "right"):
        pairs[_J[f"{side}_hip"]] = _J[f"{side}_knee"]
        pairs[_J[f"{side}_knee"]] = _J[f"{side}_ankle"]
        pairs[_J[f"{side}_shoulder"]] = _J[f"{side}_elbow"]
        pairs[_J[f"{side}_elbow"]] = _J[f"{side}_wrist"]
        pairs[_J[f"{side}_collar"]] = _J[f"{side}_shoulder"]
    return {b: _axis(joints, b, c) for b, c in pairs.items()}


def _height(v, j, w, n):
    return _bone_field(v, j, w, {b: 0.045 * np.eye(3) for b in range(_NUM_JOINTS)})


def _girth(v, j, w, n):
    up = np.array([0.0, 1.0, 0.0])
    torso = {_J[b]: _thicken(up, 0.08) for b in ("spine1", "spine2", "spine3")}
    torso[_J["pelvis"]] = 0.05 * np.diag([0.0, 0.0, 1.0])
    torso[_J["neck"]] = _thicken(up, 0.04)
    return _bone_field(v, j, w, torso, carry_children=False)


def _leg_length(v, j, w, n):
    axes = _limb_axes(j)
    bones = [_J[f"{s}_{b}"] for s in ("left", "right") for b in ("hip", "knee")]
    return _bone_field(v, j, w, {b: _stretch(axes[b], 0.045) for b in bones})


def _arm_length(v, j, w, n):
    axes = _limb_axes(j)
    bones = [_J[f"{s}_{b}"] for s in ("left", "right") for b in ("shoulder", "elbow")]
    return _bone_field(v, j, w, {b: _stretch(axes[b], 0.05) for b in bones})


def _shoulder_width(v, j, w, n):
    # Collar bones longer, upper arms shorter by as much: the elbows and hands stay.
    axes = _limb_axes(j)
    maps = {}
    for side in ("left", "right"):
        collar, shoulder, elbow = (_J[f"{side}_{b}"] for b in ("collar", "shoulder", "elbow"))
        widen = 0.18 * np.linalg.norm(j[shoulder] - j[collar])
        maps[collar] = _stretch(axes[collar], 0.18)
        maps[shoulder] = _stretch(axes[shoulder], -widen / np.linalg.norm(j[elbow] - j[shoulder]))
    return _bone_field(v, j, w, maps)


def _hip_width(v, j, w, n):
    return _bone_field(v, j, w, {_J["pelvis"]: _stretch(np.array([1.0, 0.0, 0.0]), 0.10)})


def _torso_length(v, j, w, n):
    up = np.array([0.0, 1.0, 0.0])
    return _bone_field(v, j, w, {_J[b]: _stretch(up, 0.05) for b in ("spine1", "spine2",
                                                                       "spine3")})


def _head_size(v, j, w, n):
    return _bone_field(v, j, w, {_J["head"]: 0.05 * np.eye(3)})


def _belly(v, j, w, n):
    torso = w[:, [_J[b] for b in ("pelvis", "spine1", "spine2")]].sum(axis=1)
    center = np.array([0.0, 0.06, 0.0])
    falloff = np.exp(-0.5 * (((v - center) / np.array([0.11, 0.11, 1.0])) ** 2).sum(axis=1))
    forward = np.clip(n[:, 2], 0.0, None)
    return (0.012 * torso * falloff * forward)[:, None] * n


def _limb_thickness(v, j, w, n):
    axes = _limb_axes(j)
    bones = [_J[f"{s}_{b}"] for s in ("left", "right")
             for b in ("hip", "knee", "shoulder", "elbow")]
    return _bone_field(v, j, w, {b: _thicken(axes[b], 0.07) for b in bones})


#: The shape components in order: (name, what +1 does, field builder).
SHAPE_COMPONENTS: tuple[tuple[str, str, Callable[..., np.ndarray]], ...] = (
    ("height", "uniform scale +4.5 % about the pelvis", _height),
    ("girth", "chest and waist 8 % wider and deeper, hips 5 % deeper, neck 4 % thicker",
     _girth),
    ("leg_length", "thighs and shins 4.5 % longer", _leg_length),
    ("arm_length", "upper arms and forearms 5 % longer", _arm_length),
    ("shoulder_width", "shoulders 2 cm wider each, elbows and hands in place",
     _shoulder_width),
    ("hip_width", "pelvis 10 % wider (legs move out)", _hip_width),
    ("torso_length", "spine 5 % longer (chest, arms and head move up)", _torso_length),
    ("head_size", "head 5 % larger", _head_size),
    ("belly", "belly pushed out up to 12 mm", _belly),
    ("limb_thickness", "arms and legs 7 % thicker", _limb_thickness),
)


def shape_directions(vertices: np.ndarray, faces: np.ndarray, joints: np.ndarray,
                     weights: np.ndarray) -> np.ndarray:
    """The designed shape components as displacement fields ``(V, 3, K)`` per unit beta."""
    normals = vertex_normals(vertices, faces)
    fields = [build(vertices, joints, weights, normals) for _, _, build in SHAPE_COMPONENTS]
    return np.stack(fields, axis=2)


def sparse_rows(rows: np.ndarray) -> scipy.sparse.csc_matrix:
    """A dense regressor as a CSC matrix, like SMPL's ``J_regressor``."""
    return scipy.sparse.csc_matrix(rows)
