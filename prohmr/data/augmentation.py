"""Training augmentations of ProHMR (SPEC §4.2) and the left/right flips they need.

:class:`AugmentationConfig` holds every probability and magnitude with ProHMR's defaults;
:func:`sample_augmentation` draws one :class:`AugmentationParams` from a
``numpy.random.Generator``. Exactly what is drawn (``N`` = standard normal, ``U`` = uniform):

==================  =====================================================================
scale               ``s = 1 + clip(0.3 N, -0.3, 0.3)``; the box side is multiplied by ``s``
                    (``s > 1`` zooms out).
rotation            with probability 0.6: ``clip(30 N, -60, 60)`` degrees, else 0. Positive
                    turns the image content counter-clockwise on screen.
translation         per axis ``clip(N, -1, 1) * 0.02`` times the box side (before scaling),
                    added to the box centre (a normal clipped at one standard deviation).
colour              per RGB channel a factor ``U(0.8, 1.2)`` on the ``[0, 1]`` crop, which is
                    then clipped to ``[0, 1]``.
flip                with probability 0.5: mirror the crop, permute the 44 keypoints
                    (:func:`flip_keypoints`) and mirror the SMPL pose (:func:`flip_smpl_pose`).
extreme crop        with probability 0.1, if some region is eligible (below): replace the box
                    by a box around one body region (:func:`extreme_crop_box`), before the
                    translation and scale above are applied.
==================  =====================================================================

Extreme-crop rule. Each region keeps a set of the 44 joints (:data:`EXTREME_CROP_REGIONS`):
``"hips"`` everything above the knees, ``"shoulders"`` head, neck and shoulders, ``"head"``
the face and head joints. A region is *eligible* when at least
``extreme_crop_min_keypoints`` (3) of its joints are visible (2D confidence > 0), their
extent is not degenerate, and at least one visible joint lies outside the region (so the crop
actually cuts something off). One eligible region is drawn with weights (0.7, 0.2, 0.1)
(hips, shoulders, head; renormalised over the eligible ones). The new box is centred on the
middle of the bounding box of the region's visible joints, with side 1.2 times its larger
extent, and never larger than the original box.

Geometry of rotation and flip (camera frame: x right, y down, z forward; the crop centre is
on the optical axis): rotating the crop content by ``a`` degrees is the camera roll
``R = camera_roll_matrix(a)`` (a rotation about z by ``-a``, see
:func:`prohmr.data.cropping.crop_transform`), applied to the global orientation
(``R_global' = R @ R_global``) and to the 3D keypoints. Mirroring is ``x -> -x`` in the crop's
normalised coordinates and in the camera frame; for a rotation ``R`` it is ``D R D`` with
``D = diag(-1, 1, 1)``, which on axis-angle vectors negates the y and z components. The
flip is applied after the rotation.

Every function here accepts NumPy arrays or torch tensors and returns the same type.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch

from prohmr.body.joints import PROHMR_FLIP_PERMUTATION, PROHMR_JOINT_NAMES, SMPL_FLIP_PERMUTATION
from prohmr.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle

__all__ = [
    "EXTREME_CROP_REGIONS",
    "AugmentationConfig",
    "AugmentationParams",
    "sample_augmentation",
    "eligible_extreme_crop_regions",
    "extreme_crop_box",
    "augment_box",
    "flip_keypoints",
    "flip_smpl_pose",
    "flip_smpl_rotation_matrices",
    "camera_roll_matrix",
    "rotate_smpl_pose",
    "rotate_keypoints_3d",
]

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)

_BELOW_HIPS = (
    "RKnee", "RAnkle", "LKnee", "LAnkle", "LBigToe", "LSmallToe", "LHeel", "RBigToe",
    "RSmallToe", "RHeel", "R_Ankle", "R_Knee", "L_Knee", "L_Ankle",
)
_SHOULDERS_AND_UP = (
    "Nose", "Neck", "RShoulder", "LShoulder", "REye", "LEye", "REar", "LEar", "R_Shoulder",
    "L_Shoulder", "Neck_LSP", "Top_of_Head_LSP", "Thorax_MPII", "Jaw_H36M", "Head_H36M",
)
_HEAD = ("Nose", "REye", "LEye", "REar", "LEar", "Top_of_Head_LSP", "Jaw_H36M", "Head_H36M")

#: Indices (into the 44 ProHMR joints) that each extreme-crop region keeps, in the order the
#: region weights of :class:`AugmentationConfig` refer to.
EXTREME_CROP_REGIONS: dict[str, tuple[int, ...]] = {
    "hips": tuple(i for i, name in enumerate(PROHMR_JOINT_NAMES) if name not in _BELOW_HIPS),
    "shoulders": tuple(sorted(PROHMR_JOINT_NAMES.index(name) for name in _SHOULDERS_AND_UP)),
    "head": tuple(sorted(PROHMR_JOINT_NAMES.index(name) for name in _HEAD)),
}

# Axis-angle components after mirroring x: (x, y, z) -> (x, -y, -z).
_AXIS_ANGLE_MIRROR = (1.0, -1.0, -1.0)
_MIRROR_X = (-1.0, 1.0, 1.0)


@dataclass(frozen=True)
class AugmentationConfig:
    """Probabilities and magnitudes of the training augmentations (ProHMR's defaults).

    Attributes:
        scale_factor: box scale ``1 + clip(scale_factor * N, -scale_factor, scale_factor)``.
        rotation_factor: degrees per standard deviation of the rotation.
        rotation_limit: rotations are clipped to ``[-rotation_limit, rotation_limit]`` deg.
        rotation_probability: probability of rotating at all.
        translation_factor: box-centre shift per axis, as a fraction of the box side, times
            a standard normal clipped to ``[-1, 1]``.
        color_factor: per-channel colour factor drawn from ``U(1 - c, 1 + c)``.
        flip_probability: probability of a horizontal flip.
        extreme_crop_probability: probability of cropping to a body region.
        extreme_crop_weights: weights of the regions ``("hips", "shoulders", "head")``.
        extreme_crop_min_keypoints: visible joints a region needs to be eligible.
        extreme_crop_margin: box side over the larger extent of the region's joints.
    """

    scale_factor: float = 0.3
    rotation_factor: float = 30.0
    rotation_limit: float = 60.0
    rotation_probability: float = 0.6
    translation_factor: float = 0.02
    color_factor: float = 0.2
    flip_probability: float = 0.5
    extreme_crop_probability: float = 0.1
    extreme_crop_weights: tuple[float, float, float] = (0.7, 0.2, 0.1)
    extreme_crop_min_keypoints: int = 3
    extreme_crop_margin: float = 1.2

    def __post_init__(self) -> None:
        for name in ("rotation_probability", "flip_probability", "extreme_crop_probability"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"AugmentationConfig.{name} must lie in [0, 1], got {value}")
        for name in ("scale_factor", "rotation_factor", "rotation_limit", "translation_factor"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f"AugmentationConfig.{name} must be >= 0, got {value}")
        if self.scale_factor >= 1.0:
            raise ValueError(
                f"AugmentationConfig.scale_factor must be < 1 (box scale stays positive), "
                f"got {self.scale_factor}"
            )
        if not 0.0 <= self.color_factor < 1.0:
            raise ValueError(
                f"AugmentationConfig.color_factor must lie in [0, 1), got {self.color_factor}"
            )
        weights = tuple(self.extreme_crop_weights)
        if len(weights) != len(EXTREME_CROP_REGIONS) or not all(
            math.isfinite(w) and w >= 0.0 for w in weights
        ):
            raise ValueError(
                "AugmentationConfig.extreme_crop_weights must be 3 non-negative numbers for "
                f"{tuple(EXTREME_CROP_REGIONS)}, got {weights}"
            )
        if self.extreme_crop_min_keypoints < 2:
            raise ValueError(
                "AugmentationConfig.extreme_crop_min_keypoints must be >= 2, "
                f"got {self.extreme_crop_min_keypoints}"
            )
        if not self.extreme_crop_margin > 0.0:
            raise ValueError(
                "AugmentationConfig.extreme_crop_margin must be > 0, "
                f"got {self.extreme_crop_margin}"
            )

    @classmethod
    def disabled(cls) -> AugmentationConfig:
        """A configuration under which every sampled augmentation is the identity."""
        return cls(
            scale_factor=0.0,
            rotation_factor=0.0,
            rotation_probability=0.0,
            translation_factor=0.0,
            color_factor=0.0,
            flip_probability=0.0,
            extreme_crop_probability=0.0,
        )


@dataclass(frozen=True)
class AugmentationParams:
    """One draw of the augmentations; the defaults are the identity.

    Attributes:
        scale: factor on the box side.
        rotation_deg: in-plane rotation, positive = content counter-clockwise on screen.
        translation: ``(dx, dy)`` shift of the box centre as a fraction of the box side.
        color_scale: ``(r, g, b)`` factors on the ``[0, 1]`` crop.
        flip: mirror left-right.
        extreme_crop: a key of :data:`EXTREME_CROP_REGIONS`, or ``None``.
    """

    scale: float = 1.0
    rotation_deg: float = 0.0
    translation: tuple[float, float] = (0.0, 0.0)
    color_scale: tuple[float, float, float] = (1.0, 1.0, 1.0)
    flip: bool = False
    extreme_crop: str | None = None


def _check_keypoints_2d(keypoints_2d: np.ndarray, function: str) -> np.ndarray:
    keypoints = np.asarray(keypoints_2d, dtype=np.float64)
    if keypoints.shape != (len(PROHMR_JOINT_NAMES), 3):
        raise ValueError(
            f"{function}: keypoints_2d must have shape (44, 3), got {tuple(keypoints.shape)}"
        )
    return keypoints


def _visible_extent(keypoints: np.ndarray, indices: Sequence[int]) -> tuple[int, np.ndarray]:
    """Number of visible joints among ``indices`` and their ``(min_xy, max_xy)`` (2, 2)."""
    selected = keypoints[list(indices)]
    visible = selected[selected[:, 2] > 0, :2]
    if len(visible) == 0:
        return 0, np.zeros((2, 2))
    return len(visible), np.stack([visible.min(axis=0), visible.max(axis=0)])


def eligible_extreme_crop_regions(keypoints_2d: np.ndarray, min_keypoints: int = 3) -> list[str]:
    """The extreme-crop regions that the visible 2D keypoints allow (rule in module doc).

    Arguments:
        keypoints_2d: ``(44, 3)`` keypoints ``(x, y, confidence)`` in any pixel frame.
        min_keypoints: visible joints a region needs.

    Returns:
        Region names, in the order of :data:`EXTREME_CROP_REGIONS`.

    Example:
        >>> keypoints = np.zeros((44, 3))
        >>> eligible_extreme_crop_regions(keypoints)
        []
    """
    keypoints = _check_keypoints_2d(keypoints_2d, "eligible_extreme_crop_regions")
    visible = keypoints[:, 2] > 0
    eligible = []
    for name, indices in EXTREME_CROP_REGIONS.items():
        count, extent = _visible_extent(keypoints, indices)
        outside = np.ones(len(keypoints), dtype=bool)
        outside[list(indices)] = False
        if (
            count >= min_keypoints
            and np.max(extent[1] - extent[0]) > 0
            and bool(np.any(visible & outside))
        ):
            eligible.append(name)
    return eligible


def extreme_crop_box(
    keypoints_2d: np.ndarray, region: str, margin: float = 1.2
) -> tuple[np.ndarray, float]:
    """The square box around the visible joints of one body region.

    Arguments:
        keypoints_2d: ``(44, 3)`` keypoints ``(x, y, confidence)`` in image pixels.
        region: a key of :data:`EXTREME_CROP_REGIONS`.
        margin: box side over the larger extent of the visible joints.

    Returns:
        ``(center (2,), box_size)`` in image pixels.

    Example:
        >>> keypoints = np.zeros((44, 3))
        >>> keypoints[[0, 15, 16], :] = [[10, 20, 1], [6, 16, 1], [14, 17, 1]]
        >>> center, size = extreme_crop_box(keypoints, "head", margin=1.5)
        >>> center.tolist(), size
        ([10.0, 18.0], 12.0)
    """
    keypoints = _check_keypoints_2d(keypoints_2d, "extreme_crop_box")
    if region not in EXTREME_CROP_REGIONS:
        raise ValueError(
            f"extreme_crop_box: region must be one of {tuple(EXTREME_CROP_REGIONS)}, "
            f"got {region!r}"
        )
    count, extent = _visible_extent(keypoints, EXTREME_CROP_REGIONS[region])
    size = float(np.max(extent[1] - extent[0])) * margin
    if count == 0 or size <= 0:
        raise ValueError(
            f"extreme_crop_box: region {region!r} has no visible joints with a non-zero extent"
        )
    return extent.mean(axis=0), size


def sample_augmentation(
    config: AugmentationConfig,
    rng: np.random.Generator,
    keypoints_2d: np.ndarray | None = None,
) -> AugmentationParams:
    """Draw one set of augmentation parameters.

    The generator is always advanced by the same number of draws (whatever is applied), so
    the draw of one augmentation never shifts another.

    Arguments:
        config: probabilities and magnitudes.
        rng: the source of randomness.
        keypoints_2d: ``(44, 3)`` image keypoints deciding which extreme-crop regions are
            eligible; without them no extreme crop is drawn.

    Returns:
        The parameters (:class:`AugmentationParams`).

    Example:
        >>> params = sample_augmentation(AugmentationConfig(), np.random.default_rng(0))
        >>> 0.7 <= params.scale <= 1.3 and abs(params.rotation_deg) <= 60.0
        True
    """
    normals = rng.standard_normal(4)
    uniforms = rng.random(4)
    colors = rng.uniform(1.0 - config.color_factor, 1.0 + config.color_factor, size=3)

    scale = 1.0 + float(np.clip(config.scale_factor * normals[0], -config.scale_factor,
                                config.scale_factor))
    rotation = 0.0
    if uniforms[0] < config.rotation_probability:
        rotation = float(np.clip(config.rotation_factor * normals[1], -config.rotation_limit,
                                 config.rotation_limit))
    translation = np.clip(normals[2:4], -1.0, 1.0) * config.translation_factor
    flip = bool(uniforms[1] < config.flip_probability)

    region = None
    if keypoints_2d is not None and uniforms[2] < config.extreme_crop_probability:
        eligible = eligible_extreme_crop_regions(keypoints_2d, config.extreme_crop_min_keypoints)
        names = list(EXTREME_CROP_REGIONS)
        weights = np.array([config.extreme_crop_weights[names.index(name)] for name in eligible])
        if weights.sum() > 0:
            cumulative = np.cumsum(weights / weights.sum())
            choice = min(int(np.searchsorted(cumulative, uniforms[3], side="right")),
                         len(eligible) - 1)
            region = eligible[choice]

    return AugmentationParams(
        scale=scale,
        rotation_deg=rotation,
        translation=(float(translation[0]), float(translation[1])),
        color_scale=(float(colors[0]), float(colors[1]), float(colors[2])),
        flip=flip,
        extreme_crop=region,
    )


def augment_box(
    center: np.ndarray,
    box_size: float,
    params: AugmentationParams,
    keypoints_2d: np.ndarray | None = None,
    extreme_crop_margin: float = 1.2,
) -> tuple[np.ndarray, float]:
    """Apply the extreme crop, translation and scale of ``params`` to a box.

    Arguments:
        center: ``(2,)`` box centre in image pixels.
        box_size: box side in image pixels.
        params: the augmentation draw.
        keypoints_2d: ``(44, 3)`` image keypoints (needed when ``params.extreme_crop``).
        extreme_crop_margin: see :func:`extreme_crop_box`.

    Returns:
        ``(center (2,), box_size)`` of the crop to take, before rotation and flip.

    Example:
        >>> params = AugmentationParams(scale=1.5, translation=(0.1, 0.0))
        >>> center, size = augment_box(np.array([50.0, 50.0]), 100.0, params)
        >>> center.tolist(), size
        ([60.0, 50.0], 150.0)
    """
    center = np.asarray(center, dtype=np.float64)
    if params.extreme_crop is not None:
        if keypoints_2d is None:
            raise ValueError("augment_box: keypoints_2d (44, 3) is needed for an extreme crop")
        center, region_size = extreme_crop_box(keypoints_2d, params.extreme_crop,
                                               extreme_crop_margin)
        box_size = min(region_size, box_size)
    center = center + np.asarray(params.translation) * box_size
    return center, box_size * params.scale


def _constant_like(values: Sequence[float], like: ArrayT) -> ArrayT:
    if isinstance(like, torch.Tensor):
        return torch.tensor(values, dtype=like.dtype, device=like.device)
    return np.asarray(values, dtype=like.dtype)


def _concatenate(parts: Sequence[ArrayT]) -> ArrayT:
    if isinstance(parts[0], torch.Tensor):
        return torch.cat(list(parts), dim=-1)
    return np.concatenate(parts, axis=-1)


def flip_keypoints(
    keypoints: ArrayT,
    image_width: float | None = None,
    permutation: Sequence[int] = PROHMR_FLIP_PERMUTATION,
) -> ArrayT:
    """Mirror keypoints left-right: swap left and right joints and reflect x.

    Arguments:
        keypoints: ``(..., J, C)`` with ``x`` in column 0 (2D ``(x, y, conf)``, 3D
            ``(x, y, z[, conf])``); ``J = len(permutation)`` (44 by default).
        image_width: ``None`` reflects about ``x = 0`` (normalised crop coordinates, camera
            frame); a number ``W`` reflects pixel coordinates, ``x -> W - x``.
        permutation: the joint swap.

    Returns:
        Mirrored keypoints of the same type and shape.

    Example:
        >>> keypoints = np.zeros((44, 3))
        >>> keypoints[2] = [0.1, 0.2, 1.0]  # RShoulder
        >>> flip_keypoints(keypoints)[5].tolist()  # becomes LShoulder
        [-0.1, 0.2, 1.0]
    """
    if keypoints.ndim < 2 or keypoints.shape[-2] != len(permutation):
        raise ValueError(
            f"flip_keypoints: keypoints must have shape (..., {len(permutation)}, C), "
            f"got {tuple(keypoints.shape)}"
        )
    flipped = keypoints[..., list(permutation), :]
    x = flipped[..., :1]
    x = -x if image_width is None else image_width - x
    return _concatenate([x, flipped[..., 1:]])


def flip_smpl_pose(pose: ArrayT) -> ArrayT:
    """Mirror an SMPL pose left-right in axis-angle form.

    Swaps left and right joints (``SMPL_FLIP_PERMUTATION``) and negates the y and z
    components of every rotation (``D R D`` with ``D = diag(-1, 1, 1)``). Applying it twice
    gives back the input exactly.

    Arguments:
        pose: ``(..., 72)`` axis-angle, global orientation first.

    Returns:
        ``(..., 72)`` mirrored pose, same type and dtype.

    Example:
        >>> pose = np.zeros(72)
        >>> pose[3:6] = [0.1, 0.2, 0.3]  # left hip
        >>> flip_smpl_pose(pose)[6:9].tolist()  # now the right hip
        [0.1, -0.2, -0.3]
    """
    if pose.ndim < 1 or pose.shape[-1] != 3 * len(SMPL_FLIP_PERMUTATION):
        raise ValueError(f"flip_smpl_pose: pose must have shape (..., 72), got {tuple(pose.shape)}")
    rotations = pose.reshape(*pose.shape[:-1], len(SMPL_FLIP_PERMUTATION), 3)
    flipped = rotations[..., list(SMPL_FLIP_PERMUTATION), :] * _constant_like(
        _AXIS_ANGLE_MIRROR, pose
    )
    return flipped.reshape(pose.shape)


def flip_smpl_rotation_matrices(rotations: ArrayT) -> ArrayT:
    """Mirror an SMPL pose left-right in rotation-matrix form (``D R D``, joints swapped).

    Arguments:
        rotations: ``(..., 24, 3, 3)`` rotation matrices, global orientation first.

    Returns:
        ``(..., 24, 3, 3)`` mirrored rotations, same type and dtype.

    Example:
        >>> R = np.tile(np.eye(3), (24, 1, 1))
        >>> bool(np.array_equal(flip_smpl_rotation_matrices(R), R))
        True
    """
    if rotations.ndim < 3 or tuple(rotations.shape[-3:]) != (len(SMPL_FLIP_PERMUTATION), 3, 3):
        raise ValueError(
            "flip_smpl_rotation_matrices: rotations must have shape (..., 24, 3, 3), "
            f"got {tuple(rotations.shape)}"
        )
    mirror = _constant_like(_MIRROR_X, rotations)
    swapped = rotations[..., list(SMPL_FLIP_PERMUTATION), :, :]
    return swapped * mirror[:, None] * mirror[None, :]


def camera_roll_matrix(rotation_deg: float) -> np.ndarray:
    """The camera-frame rotation that matches rotating the crop content by ``rotation_deg``.

    In the camera frame (x right, y down, z forward) turning the image content
    counter-clockwise on screen by ``a`` is a rotation about +z by ``-a``.

    Arguments:
        rotation_deg: the image rotation of :func:`prohmr.data.cropping.crop_transform`.

    Returns:
        ``(3, 3)`` float64 rotation matrix.

    Example:
        >>> camera_roll_matrix(90.0).round(6) @ np.array([1.0, 0.0, 5.0])  # right -> up
        array([ 0., -1.,  5.])
    """
    angle = math.radians(rotation_deg)
    cos, sin = math.cos(angle), math.sin(angle)
    return np.array([[cos, sin, 0.0], [-sin, cos, 0.0], [0.0, 0.0, 1.0]])


def rotate_smpl_pose(pose: ArrayT, rotation_deg: float) -> ArrayT:
    """Turn the global orientation of an SMPL pose with the camera roll of an image rotation.

    ``R_global' = camera_roll_matrix(rotation_deg) @ R_global``; body joints are unchanged.

    Arguments:
        pose: ``(..., 72)`` axis-angle, global orientation first.
        rotation_deg: the image rotation (positive = content counter-clockwise on screen).

    Returns:
        ``(..., 72)`` pose, same type and dtype.

    Example:
        >>> rotate_smpl_pose(np.zeros(72), 90.0)[:3].round(4).tolist()
        [0.0, 0.0, -1.5708]
    """
    if pose.ndim < 1 or pose.shape[-1] != 72:
        raise ValueError(
            f"rotate_smpl_pose: pose must have shape (..., 72), got {tuple(pose.shape)}"
        )
    as_tensor = torch.as_tensor(pose)
    device = as_tensor.device
    global_orient = as_tensor[..., :3].to(torch.float64)
    roll = torch.from_numpy(camera_roll_matrix(rotation_deg)).to(device)
    rotated = matrix_to_axis_angle(roll @ axis_angle_to_matrix(global_orient))
    result = torch.cat([rotated.to(as_tensor.dtype), as_tensor[..., 3:]], dim=-1)
    return result if isinstance(pose, torch.Tensor) else result.numpy()


def rotate_keypoints_3d(keypoints: ArrayT, rotation_deg: float) -> ArrayT:
    """Turn camera-frame 3D keypoints with the camera roll of an image rotation.

    Arguments:
        keypoints: ``(..., J, C)`` with ``C >= 3``: ``(x, y, z[, confidence])``.
        rotation_deg: the image rotation (positive = content counter-clockwise on screen).

    Returns:
        Keypoints of the same type, shape and dtype; extra columns pass through.

    Example:
        >>> rotate_keypoints_3d(np.array([[1.0, 0.0, 2.0, 1.0]]), 90.0).round(6)
        array([[ 0., -1.,  2.,  1.]])
    """
    if keypoints.ndim < 2 or keypoints.shape[-1] < 3:
        raise ValueError(
            f"rotate_keypoints_3d: keypoints must have shape (..., J, C>=3), "
            f"got {tuple(keypoints.shape)}"
        )
    roll = _constant_like(camera_roll_matrix(rotation_deg).tolist(), keypoints)
    xyz = keypoints[..., :3] @ roll.T
    return _concatenate([xyz, keypoints[..., 3:]])
