"""Skeletons and motion clips shared by the ASF/AMC and BVH readers, with forward kinematics.

Both readers produce the same representation: a tree of joints (root first, every parent
before its children), a rest offset per joint (the vector from the parent joint to this joint
in the parent's frame, in metres) and per-frame local rotations. In the rest pose every joint
frame is aligned with the world, so offsets are also world vectors at rest. Forward kinematics:

    G_root = L_root,                  p_root = t + offset_root
    G_j    = G_parent(j) @ L_j,        p_j    = p_parent(j) + G_parent(j) @ offset_j

where ``L_j`` is the local rotation of joint ``j`` and ``t`` the root translation of the
frame. All arrays are float64 numpy; forward kinematics is vectorised over frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "Skeleton",
    "MocapClip",
    "forward_kinematics",
    "euler_to_matrix",
    "subsample",
]

_AXIS_INDEX = {"x": 0, "y": 1, "z": 2}
#: Slack (in frames) when counting output frames, so that float round-off in
#: ``duration * target_fps`` never drops the last frame.
_FRAME_COUNT_SLACK = 1e-9


def euler_to_matrix(angles: np.ndarray, axes: str) -> np.ndarray:
    """Compose elementary rotations in the listed order: ``R = R_a0 @ R_a1 @ ... @ R_ak``.

    This is the *intrinsic* reading of the axis sequence (the BVH convention): the rotation
    about the first listed axis is the outermost factor. The *extrinsic* (Acclaim) reading of
    ``axes`` equals ``euler_to_matrix(angles[..., ::-1], axes[::-1])``.

    Arguments:
        angles: ``(..., k)`` angles in radians, one per axis letter.
        axes: ``k`` letters from ``"xyz"`` (case-insensitive), e.g. ``"zyx"``; may be empty.

    Returns:
        ``(..., 3, 3)`` float64 rotation matrices (identity when ``axes`` is empty).

    Example:
        >>> R = euler_to_matrix(np.array([np.pi / 2, 0.0]), "zx")
        >>> np.round(R @ np.array([1.0, 0.0, 0.0]), 6).tolist()
        [0.0, 1.0, 0.0]
    """
    angles = np.asarray(angles, dtype=np.float64)
    axes = axes.lower()
    if angles.ndim < 1 or angles.shape[-1] != len(axes):
        raise ValueError(
            f"angles: expected shape (..., {len(axes)}) for axes {axes!r}, got {angles.shape}"
        )
    if any(a not in _AXIS_INDEX for a in axes):
        raise ValueError(f"axes: expected letters from 'xyz', got {axes!r}")
    batch = angles.shape[:-1]
    result = np.broadcast_to(np.eye(3), batch + (3, 3)).copy()
    for k, axis in enumerate(axes):
        result = result @ _elementary_rotation(angles[..., k], _AXIS_INDEX[axis])
    return result


def _elementary_rotation(angle: np.ndarray, axis: int) -> np.ndarray:
    """Right-handed rotation by ``angle (...)`` radians about coordinate ``axis``: (..., 3, 3)."""
    c, s = np.cos(angle), np.sin(angle)
    i, j = (axis + 1) % 3, (axis + 2) % 3
    R = np.zeros(angle.shape + (3, 3))
    R[..., axis, axis] = 1.0
    R[..., i, i] = c
    R[..., j, j] = c
    R[..., i, j] = -s
    R[..., j, i] = s
    return R


@dataclass(frozen=True, eq=False)
class Skeleton:
    """A joint tree with rest offsets.

    Attributes:
        joint_names: ``J`` unique names; joint 0 is the root.
        parents: ``(J,)`` int array, ``-1`` for the root and ``parents[j] < j`` otherwise.
        offsets: ``(J, 3)`` float64 rest vector from the parent joint to the joint, in metres
            (for the root: its rest position).
    """

    joint_names: tuple[str, ...]
    parents: np.ndarray
    offsets: np.ndarray
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = tuple(self.joint_names)
        parents = np.asarray(self.parents, dtype=np.int64)
        offsets = np.asarray(self.offsets, dtype=np.float64)
        num_joints = len(names)
        if num_joints == 0:
            raise ValueError("joint_names: expected at least one joint")
        if len(set(names)) != num_joints:
            raise ValueError("joint_names: names must be unique")
        if parents.shape != (num_joints,):
            raise ValueError(f"parents: expected shape ({num_joints},), got {parents.shape}")
        if parents[0] != -1 or np.any(parents[1:] < 0) or np.any(
            parents[1:] >= np.arange(1, num_joints)
        ):
            raise ValueError(
                "parents: expected -1 for joint 0 and 0 <= parents[j] < j for the others"
            )
        if offsets.shape != (num_joints, 3):
            raise ValueError(f"offsets: expected shape ({num_joints}, 3), got {offsets.shape}")
        if not np.all(np.isfinite(offsets)):
            raise ValueError("offsets: contains NaN or infinite values")
        object.__setattr__(self, "joint_names", names)
        object.__setattr__(self, "parents", parents)
        object.__setattr__(self, "offsets", offsets)
        object.__setattr__(self, "_index", {n: i for i, n in enumerate(names)})

    @property
    def num_joints(self) -> int:
        """Number of joints ``J``."""
        return len(self.joint_names)

    def joint_index(self, name: str) -> int:
        """Index of the joint called ``name``; ``KeyError`` naming the known joints if absent."""
        try:
            return self._index[name]
        except KeyError:
            raise KeyError(
                f"no joint named {name!r}; joints are {', '.join(self.joint_names)}"
            ) from None

    def rest_positions(self) -> np.ndarray:
        """World joint positions of the rest pose (all rotations identity): ``(J, 3)``."""
        positions = np.zeros((self.num_joints, 3))
        positions[0] = self.offsets[0]
        for j in range(1, self.num_joints):
            positions[j] = positions[self.parents[j]] + self.offsets[j]
        return positions


def forward_kinematics(
    rotations: np.ndarray,
    root_translations: np.ndarray,
    parents: np.ndarray,
    offsets: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """World joint positions and rotations of a joint tree (see the module docstring).

    Arguments:
        rotations: ``(T, J, 3, 3)`` local joint rotations.
        root_translations: ``(T, 3)`` root translations (added to the root's offset).
        parents: ``(J,)`` parent indices, ``-1`` for joint 0 and ``parents[j] < j``.
        offsets: ``(J, 3)`` rest offsets.

    Returns:
        ``(positions (T, J, 3), global_rotations (T, J, 3, 3))`` in float64.

    Example:
        >>> L = np.broadcast_to(np.eye(3), (1, 2, 3, 3))
        >>> p, _ = forward_kinematics(L, np.zeros((1, 3)), np.array([-1, 0]),
        ...                           np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 2.0]]))
        >>> p[0].tolist()
        [[0.0, 1.0, 0.0], [0.0, 1.0, 2.0]]
    """
    rotations = np.asarray(rotations, dtype=np.float64)
    root_translations = np.asarray(root_translations, dtype=np.float64)
    offsets = np.asarray(offsets, dtype=np.float64)
    num_frames, num_joints = rotations.shape[:2]
    global_rotations = np.empty_like(rotations)
    positions = np.empty((num_frames, num_joints, 3))
    global_rotations[:, 0] = rotations[:, 0]
    positions[:, 0] = root_translations + offsets[0]
    for j in range(1, num_joints):
        parent = parents[j]
        global_rotations[:, j] = global_rotations[:, parent] @ rotations[:, j]
        positions[:, j] = positions[:, parent] + global_rotations[:, parent] @ offsets[j]
    return positions, global_rotations


@dataclass(frozen=True, eq=False)
class MocapClip:
    """A motion: a skeleton, per-frame local rotations, root translations and a frame rate.

    Attributes:
        skeleton: the joint tree (names, parents, rest offsets in metres).
        rotations: ``(T, J, 3, 3)`` float64 local rotations (identity at rest).
        root_translations: ``(T, 3)`` float64 root translations in metres.
        frame_rate: frames per second (> 0).
        name: a label, e.g. the file stem.

    Example:
        >>> skeleton = Skeleton(("root", "tip"), np.array([-1, 0]),
        ...                     np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]))
        >>> R = euler_to_matrix(np.array([[0.0], [np.pi / 2]]), "z")      # (T=2, 3, 3)
        >>> rotations = np.stack([R, np.broadcast_to(np.eye(3), (2, 3, 3))], axis=1)
        >>> clip = MocapClip(skeleton, rotations, np.zeros((2, 3)), frame_rate=30.0)
        >>> np.round(clip.positions()[:, clip.joint_index("tip")], 6).tolist()
        [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    """

    skeleton: Skeleton
    rotations: np.ndarray
    root_translations: np.ndarray
    frame_rate: float
    name: str = ""

    def __post_init__(self) -> None:
        rotations = np.asarray(self.rotations, dtype=np.float64)
        translations = np.asarray(self.root_translations, dtype=np.float64)
        num_joints = self.skeleton.num_joints
        if rotations.ndim != 4 or rotations.shape[1:] != (num_joints, 3, 3):
            raise ValueError(
                f"rotations: expected shape (T, {num_joints}, 3, 3), got {rotations.shape}"
            )
        if rotations.shape[0] == 0:
            raise ValueError("rotations: expected at least one frame, got T = 0")
        if translations.shape != (rotations.shape[0], 3):
            raise ValueError(
                f"root_translations: expected shape ({rotations.shape[0]}, 3), "
                f"got {translations.shape}"
            )
        if not (np.all(np.isfinite(rotations)) and np.all(np.isfinite(translations))):
            raise ValueError("rotations/root_translations: contain NaN or infinite values")
        if not (np.isfinite(self.frame_rate) and self.frame_rate > 0):
            raise ValueError(f"frame_rate: expected a positive number, got {self.frame_rate}")
        object.__setattr__(self, "rotations", rotations)
        object.__setattr__(self, "root_translations", translations)
        object.__setattr__(self, "frame_rate", float(self.frame_rate))

    @property
    def joint_names(self) -> tuple[str, ...]:
        """The ``J`` joint names."""
        return self.skeleton.joint_names

    @property
    def parents(self) -> np.ndarray:
        """``(J,)`` parent indices."""
        return self.skeleton.parents

    @property
    def offsets(self) -> np.ndarray:
        """``(J, 3)`` rest offsets in metres."""
        return self.skeleton.offsets

    @property
    def num_frames(self) -> int:
        """Number of frames ``T``."""
        return self.rotations.shape[0]

    @property
    def num_joints(self) -> int:
        """Number of joints ``J``."""
        return self.skeleton.num_joints

    def joint_index(self, name: str) -> int:
        """Index of the joint called ``name`` (``KeyError`` if absent)."""
        return self.skeleton.joint_index(name)

    def positions(self) -> np.ndarray:
        """World joint positions by forward kinematics: ``(T, J, 3)`` metres."""
        return forward_kinematics(
            self.rotations, self.root_translations, self.parents, self.offsets
        )[0]

    def global_rotations(self) -> np.ndarray:
        """World joint rotations by forward kinematics: ``(T, J, 3, 3)``."""
        return forward_kinematics(
            self.rotations, self.root_translations, self.parents, self.offsets
        )[1]


def subsample(clip: MocapClip, target_fps: float) -> MocapClip:
    """Resample a clip to ``target_fps`` by taking the nearest original frame (no blending).

    Output frame ``k`` is the original frame nearest to time ``k / target_fps``; the output
    covers the clip's duration. With an integer ratio (120 -> 30) this is every 4th frame.

    Arguments:
        clip: the motion.
        target_fps: the new frame rate, ``0 < target_fps <= clip.frame_rate``.

    Returns:
        A new :class:`MocapClip` with ``frame_rate == target_fps``.

    Example:
        >>> skeleton = Skeleton(("root",), np.array([-1]), np.zeros((1, 3)))
        >>> clip = MocapClip(skeleton, np.broadcast_to(np.eye(3), (9, 1, 3, 3)),
        ...                  np.arange(27.0).reshape(9, 3), frame_rate=120.0)
        >>> subsample(clip, 30.0).root_translations[:, 0].tolist()
        [0.0, 12.0, 24.0]
    """
    if not (np.isfinite(target_fps) and 0 < target_fps <= clip.frame_rate):
        raise ValueError(
            f"target_fps: expected 0 < target_fps <= {clip.frame_rate}, got {target_fps}"
        )
    duration = (clip.num_frames - 1) / clip.frame_rate
    num_out = int(np.floor(duration * target_fps + _FRAME_COUNT_SLACK)) + 1
    indices = np.rint(np.arange(num_out) * (clip.frame_rate / target_fps)).astype(np.int64)
    indices = np.minimum(indices, clip.num_frames - 1)
    return MocapClip(
        clip.skeleton,
        clip.rotations[indices],
        clip.root_translations[indices],
        float(target_fps),
        clip.name,
    )
