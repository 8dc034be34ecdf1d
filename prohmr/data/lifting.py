"""Training data for 2D → 3D lifting (ProSkeleton, SPEC §8): mocap seen by virtual cameras.

The mocap ``.npz`` files of Contract A hold each frame's 44 ProHMR joints in the **body frame**
(metres, y up, the body facing +z, zero translation). Lifting uses 17 of them, the H36M-17 set
``H36M_17_INPUT_2D`` (pelvis = joint 39 at position :data:`LIFTING_PELVIS`). Every item puts a
random pinhole camera around the body (:class:`VirtualCameraConfig`), projects the 17 joints
to pixels and returns the camera-frame 3D joints relative to the pelvis:

- **camera frame**: x right, y down, z forward (the optical axis), metres;
- **2D keypoints**: pixels, ``u = f x / z + c``, the principal point ``c`` at the centre of a
  virtual ``image_size`` frame. The model sees them only after :func:`box_normalize_keypoints`
  (which removes the image position and size), so the image size and focal length matter only
  through the perspective they imply.

The camera looks at the pelvis (plus a small random offset) from a random heading around the
body, an elevation (positive: camera above, looking down), a distance of 3–7 m and a small
roll about the optical axis. Training draws are deterministic per ``(seed, epoch, index)``
(:meth:`VirtualCameraLiftingDataset.set_epoch`); validation draws (``train=False``) per
``(seed, index)``, the same every epoch and without 2D noise.

:func:`box_normalize_keypoints` is the image-independent first step of ProSkeleton's input
normalisation: a square box around the keypoints, like ProHMR's crops
(:mod:`prohmr.data.cropping`); :func:`compute_keypoint_stats` gives the dataset mean and std
of its output that the model stores.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
from torch.utils.data import Dataset

from prohmr.body.joints import H36M_16_OUTPUT_3D, H36M_17_INPUT_2D, NUM_PROHMR_JOINTS, PELVIS_INDEX
from prohmr.data.image_dataset import load_npz

__all__ = [
    "NUM_LIFTING_JOINTS",
    "LIFTING_PELVIS",
    "LIFTING_OUTPUT_POSITIONS",
    "BOX_MARGIN",
    "MIN_BOX_SIZE",
    "MIN_KEYPOINT_STD",
    "DEFAULT_KEYPOINT_NOISE",
    "VirtualCameraConfig",
    "VirtualCamera",
    "look_at_rotation",
    "sample_virtual_camera",
    "project_points",
    "box_normalize_keypoints",
    "VirtualCameraLiftingDataset",
    "compute_keypoint_stats",
]

PathLike = Union[str, os.PathLike]

#: Joints of a lifting skeleton: the H36M-17 set, in the order of ``H36M_17_INPUT_2D``.
NUM_LIFTING_JOINTS: int = len(H36M_17_INPUT_2D)  # 17
#: Position of the pelvis (ProHMR joint 39) in that order: the root of the 3D output.
LIFTING_PELVIS: int = H36M_17_INPUT_2D.index(PELVIS_INDEX)  # 13
#: Positions in the 17 of the 16 root-relative joints the flow models (``H36M_16_OUTPUT_3D``).
LIFTING_OUTPUT_POSITIONS: tuple[int, ...] = tuple(
    H36M_17_INPUT_2D.index(joint) for joint in H36M_16_OUTPUT_3D
)
#: Side of the square person box relative to the larger extent of the keypoints (as the
#: synthetic crops of :mod:`prohmr.data.synthetic`).
BOX_MARGIN: float = 1.2
#: Boxes smaller than this (in the keypoints' units) span no area: the keypoints coincide.
MIN_BOX_SIZE: float = 1e-6
#: Floor of the per-coordinate std of :func:`compute_keypoint_stats` (box units).
MIN_KEYPOINT_STD: float = 1e-3
#: Default std of the Gaussian noise added to training keypoints, as a fraction of the box.
DEFAULT_KEYPOINT_NOISE: float = 0.01

# --------------------------------------------------------------------------------- cameras
@dataclass(frozen=True)
class VirtualCameraConfig:
    """Ranges of the random virtual cameras (uniform draws unless said otherwise).

    *Fields*
        heading_deg: azimuth of the camera around the body's vertical axis; 0 = in front of
            the body (it faces +z), 90 = on the body's left (+x).
        elevation_deg: angle of the camera above the horizontal plane through the look-at
            point (positive: above, looking down). Must stay within (-90, 90).
        distance: distance from the camera centre to the look-at point (metres).
        focal_length: focal length in pixels.
        roll_deg: rotation of the camera about its optical axis.
        look_at_offset: half-width of the uniform per-axis offset of the look-at point from
            the pelvis (metres), so the pelvis is not always exactly on the optical axis.
        image_size: ``(width, height)`` of the virtual image; the principal point is its
            centre.
    """

    heading_deg: tuple[float, float] = (-180.0, 180.0)
    elevation_deg: tuple[float, float] = (-10.0, 40.0)
    distance: tuple[float, float] = (3.0, 7.0)
    focal_length: tuple[float, float] = (800.0, 2400.0)
    roll_deg: tuple[float, float] = (-5.0, 5.0)
    look_at_offset: float = 0.1
    image_size: tuple[int, int] = (1000, 1000)

    def __post_init__(self) -> None:
        for field in fields(self):
            if field.name in ("look_at_offset", "image_size"):
                continue
            value = getattr(self, field.name)
            if not (
                isinstance(value, (tuple, list))
                and len(value) == 2
                and all(isinstance(v, (int, float)) and math.isfinite(v) for v in value)
                and value[0] <= value[1]
            ):
                raise ValueError(
                    f"VirtualCameraConfig: `{field.name}` must be a (low, high) pair of finite "
                    f"numbers with low <= high, got {value!r}"
                )
            object.__setattr__(self, field.name, (float(value[0]), float(value[1])))
        if not (-90.0 < self.elevation_deg[0] and self.elevation_deg[1] < 90.0):
            raise ValueError(
                f"VirtualCameraConfig: `elevation_deg` must lie inside (-90, 90), got "
                f"{self.elevation_deg}"
            )
        if self.distance[0] <= 0.0 or self.focal_length[0] <= 0.0:
            raise ValueError(
                "VirtualCameraConfig: `distance` and `focal_length` must be positive, got "
                f"{self.distance} and {self.focal_length}"
            )
        offset = self.look_at_offset
        if isinstance(offset, bool) or not isinstance(offset, (int, float)) or not (
            math.isfinite(offset) and offset >= 0.0
        ):
            raise ValueError(
                f"VirtualCameraConfig: `look_at_offset` must be a number >= 0, got {offset!r}"
            )
        object.__setattr__(self, "look_at_offset", float(offset))
        size = self.image_size
        if not (
            isinstance(size, (tuple, list))
            and len(size) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)
        ):
            raise ValueError(
                f"VirtualCameraConfig: `image_size` must be a (width, height) pair of positive "
                f"ints, got {size!r}"
            )
        object.__setattr__(self, "image_size", (int(size[0]), int(size[1])))

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the fields (pairs as lists), for configs and metadata."""
        return {key: list(value) if isinstance(value, tuple) else value
                for key, value in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> VirtualCameraConfig:
        """Build from a dict of fields (missing ones take their defaults)."""
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"VirtualCameraConfig.from_dict: unknown field(s) {unknown}; valid fields: "
                f"{sorted(known)}"
            )
        return cls(**{key: tuple(value) if isinstance(value, list) else value
                      for key, value in values.items()})


@dataclass(frozen=True)
class VirtualCamera:
    """One pinhole camera: ``p_camera = rotation @ X_body + translation``.

    *Fields*
        rotation: ``(3, 3)`` body frame → camera frame (x right, y down, z forward).
        translation: ``(3,)`` metres.
        focal_length: pixels.
        principal_point: ``(2,)`` pixels.
        heading_deg, elevation_deg, roll_deg, distance: the draws it was built from.
        look_at: ``(3,)`` body-frame point on the optical axis at depth ``distance``.
    """

    rotation: np.ndarray
    translation: np.ndarray
    focal_length: float
    principal_point: np.ndarray
    heading_deg: float
    elevation_deg: float
    roll_deg: float
    distance: float
    look_at: np.ndarray

    @property
    def center(self) -> np.ndarray:
        """``(3,)`` the camera centre in the body frame."""
        return -self.rotation.T @ self.translation


def look_at_rotation(heading_deg: float, elevation_deg: float, roll_deg: float = 0.0) -> np.ndarray:
    """Rotation body frame → camera frame of a camera looking at a point of the body.

    The camera sits in direction ``(sin h cos e, sin e, cos h cos e)`` from the point it looks
    at (body frame: y up, the body facing +z), its optical axis (camera +z) points back at
    that point, its image x axis is horizontal (before the roll) and its image y axis points
    down; then the camera turns by ``roll_deg`` about its optical axis (positive: the image
    content turns counter-clockwise on screen, as
    :func:`prohmr.data.augmentation.camera_roll_matrix`).

    *Arguments*
        heading_deg: azimuth ``h`` (0: in front of the body).
        elevation_deg: ``e`` in (-90, 90) (positive: above, looking down).
        roll_deg: roll about the optical axis.

    *Returns*
        ``(3, 3)`` float64 rotation matrix (rows: the camera axes in body coordinates).

    *Example*
        >>> look_at_rotation(0.0, 0.0).round(6)  # in front: the body's left is image right
        array([[ 1.,  0.,  0.],
               [ 0., -1.,  0.],
               [ 0.,  0., -1.]])
    """
    if not -90.0 < elevation_deg < 90.0:
        raise ValueError(
            f"look_at_rotation: `elevation_deg` must lie in (-90, 90), got {elevation_deg}"
        )
    heading, elevation = math.radians(heading_deg), math.radians(elevation_deg)
    sin_h, cos_h = math.sin(heading), math.cos(heading)
    sin_e, cos_e = math.sin(elevation), math.cos(elevation)
    # Rows: right = normalised forward x up, down = forward x right, forward = -direction
    # (closed forms: np.cross costs more than the rest of an item).
    rotation = np.array(
        [
            [cos_h, 0.0, -sin_h],
            [sin_h * sin_e, -cos_e, cos_h * sin_e],
            [-sin_h * cos_e, -sin_e, -cos_h * cos_e],
        ]
    )
    roll = math.radians(roll_deg)
    cos, sin = math.cos(roll), math.sin(roll)
    roll_matrix = np.array([[cos, sin, 0.0], [-sin, cos, 0.0], [0.0, 0.0, 1.0]])
    return roll_matrix @ rotation


def sample_virtual_camera(
    rng: np.random.Generator, config: VirtualCameraConfig, pelvis: np.ndarray
) -> VirtualCamera:
    """Draw one camera looking at ``pelvis`` (plus the random look-at offset).

    *Arguments*
        rng: the generator (its draws: heading, elevation, distance, focal length, roll,
            then the 3 offsets, in this order).
        config: the ranges.
        pelvis: ``(3,)`` body-frame pelvis position.

    *Returns*
        :class:`VirtualCamera`.
    """
    heading = rng.uniform(*config.heading_deg)
    elevation = rng.uniform(*config.elevation_deg)
    distance = rng.uniform(*config.distance)
    focal_length = rng.uniform(*config.focal_length)
    roll = rng.uniform(*config.roll_deg)
    offset = rng.uniform(-config.look_at_offset, config.look_at_offset, size=3)
    look_at = np.asarray(pelvis, dtype=np.float64) + offset
    rotation = look_at_rotation(heading, elevation, roll)
    translation = np.array([0.0, 0.0, distance]) - rotation @ look_at
    width, height = config.image_size
    return VirtualCamera(
        rotation=rotation,
        translation=translation,
        focal_length=float(focal_length),
        principal_point=np.array([width / 2.0, height / 2.0]),
        heading_deg=float(heading),
        elevation_deg=float(elevation),
        roll_deg=float(roll),
        distance=float(distance),
        look_at=look_at,
    )


def project_points(points: np.ndarray, camera: VirtualCamera) -> tuple[np.ndarray, np.ndarray]:
    """Camera-frame points and their pixels under a :class:`VirtualCamera`.

    *Arguments*
        points: ``(J, 3)`` body-frame points.
        camera: the camera.

    *Returns*
        ``(J, 3)`` camera-frame points and ``(J, 2)`` pixel coordinates (float64).
    """
    camera_points = points @ camera.rotation.T + camera.translation
    pixels = camera.focal_length * camera_points[:, :2] / camera_points[:, 2:]
    return camera_points, pixels + camera.principal_point


# --------------------------------------------------------------------------- normalisation
def box_normalize_keypoints(
    keypoints: torch.Tensor,
    box_center: torch.Tensor | None = None,
    box_size: torch.Tensor | None = None,
    margin: float = BOX_MARGIN,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Express 2D keypoints in a square person box: ``(keypoints - center) / size``.

    By default the box is centred on the keypoints' bounding box and its side is ``margin``
    times the larger of its width and height (what ProSkeleton was trained with); a detector
    box can be given instead. The result does not depend on where the person is in the image
    or on the image resolution; it equals ProHMR's normalised crop coordinates
    (``px / S - 0.5``) of an ``S x S`` crop of that box, so it lies in ``[-0.5, 0.5]``.

    *Arguments*
        keypoints: ``(..., J, 2)`` pixel coordinates (any image), ``J >= 2``.
        box_center: optional ``(..., 2)`` box centre in the same pixels.
        box_size: optional ``(...)`` box side in the same pixels (> 0); give both or neither.
        margin: side of the default box relative to the keypoints' extent (>= 1).

    *Returns*
        ``(..., J, 2)`` box coordinates, ``(..., 2)`` box centre and ``(...)`` box size.

    *Example*
        >>> keypoints = torch.tensor([[100.0, 50.0], [160.0, 170.0]])
        >>> normalized, center, size = box_normalize_keypoints(keypoints)
        >>> normalized, center, size
        (tensor([[-0.2083, -0.4167],
                [ 0.2083,  0.4167]]), tensor([130., 110.]), tensor(144.))
    """
    function = "box_normalize_keypoints"
    if not isinstance(keypoints, torch.Tensor) or not keypoints.is_floating_point():
        raise ValueError(f"{function}: `keypoints` must be a floating torch.Tensor (..., J, 2)")
    if keypoints.ndim < 2 or keypoints.shape[-1] != 2 or keypoints.shape[-2] < 2:
        raise ValueError(
            f"{function}: `keypoints` must have shape (..., J, 2) with J >= 2, "
            f"got {tuple(keypoints.shape)}"
        )
    if not bool(torch.isfinite(keypoints).all()):
        raise ValueError(f"{function}: `keypoints` contains NaN or infinite values")
    if (box_center is None) != (box_size is None):
        raise ValueError(f"{function}: give both `box_center` and `box_size`, or neither")
    batch_shape = keypoints.shape[:-2]
    if box_center is None or box_size is None:
        if not (math.isfinite(margin) and margin >= 1.0):
            raise ValueError(f"{function}: `margin` must be a finite number >= 1, got {margin!r}")
        low = keypoints.amin(dim=-2)
        high = keypoints.amax(dim=-2)
        box_center = 0.5 * (low + high)
        box_size = margin * (high - low).amax(dim=-1)
    else:
        if tuple(box_center.shape) != tuple(batch_shape) + (2,):
            raise ValueError(
                f"{function}: `box_center` must have shape {tuple(batch_shape) + (2,)}, "
                f"got {tuple(box_center.shape)}"
            )
        if tuple(box_size.shape) != tuple(batch_shape):
            raise ValueError(
                f"{function}: `box_size` must have shape {tuple(batch_shape)}, "
                f"got {tuple(box_size.shape)}"
            )
        box_center = box_center.to(keypoints)
        box_size = box_size.to(keypoints)
        if not bool(torch.isfinite(box_center).all()):
            raise ValueError(f"{function}: `box_center` contains NaN or infinite values")
    if not bool((box_size > MIN_BOX_SIZE).all()):
        raise ValueError(
            f"{function}: the person box has no size (keypoints all at one point, or a "
            f"`box_size` <= {MIN_BOX_SIZE})"
        )
    normalized = (keypoints - box_center[..., None, :]) / box_size[..., None, None]
    return normalized, box_center, box_size


# --------------------------------------------------------------------------------- dataset
def _lifting_joints(source: PathLike | Mapping[str, Any] | np.ndarray) -> tuple[np.ndarray, str]:
    """``(N, 17, 3)`` float64 body-frame joints from a Contract A file, dict or array."""
    if isinstance(source, np.ndarray):
        joints, name = source, "`source`"
    elif isinstance(source, Mapping):
        if "joints" not in source:
            raise ValueError("VirtualCameraLiftingDataset: the arrays have no 'joints' key")
        joints, name = np.asarray(source["joints"]), "`source['joints']`"
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        joints, name = load_npz(path, required=("joints",))["joints"], str(path)
    else:
        raise ValueError(
            "VirtualCameraLiftingDataset: `source` must be an .npz path, a dict with 'joints' "
            f"or an (N, 44, 3) array, got {type(source).__name__}"
        )
    if joints.ndim != 3 or joints.shape[1:] != (NUM_PROHMR_JOINTS, 3) or len(joints) == 0:
        raise ValueError(
            f"VirtualCameraLiftingDataset: {name} must have shape (N, {NUM_PROHMR_JOINTS}, 3) "
            f"with N >= 1 (the 44 ProHMR joints), got {tuple(joints.shape)}"
        )
    if not np.issubdtype(joints.dtype, np.floating) or not np.all(np.isfinite(joints)):
        raise ValueError(f"VirtualCameraLiftingDataset: {name} must hold finite floats")
    return joints[:, list(H36M_17_INPUT_2D)].astype(np.float64), name


class VirtualCameraLiftingDataset(Dataset):
    """Mocap skeletons seen through random virtual cameras: ProSkeleton's training pairs.

    *Arguments*
        source: a Contract A ``.npz`` (its ``joints (N, 44, 3)``, body frame), a dict holding
            ``joints``, or the ``(N, 44, 3)`` array itself.
        train: random cameras per ``(seed, epoch, index)`` and 2D noise; ``False``: one
            fixed camera per ``(seed, index)``, no noise (validation).
        camera: ranges of the cameras (:class:`VirtualCameraConfig`, or a dict of it).
        keypoint_noise: std of the Gaussian noise added to the training keypoints, as a
            fraction of the person box side (:func:`box_normalize_keypoints`); ignored when
            ``train`` is False.
        frame_stride: keep every ``frame_stride``-th frame (e.g. a lighter validation set).
        seed: seed of all draws.

    *Items*
        ``keypoints_2d (17, 2)`` pixels; ``joints_3d (17, 3)`` camera-frame joints relative
        to the pelvis (row :data:`LIFTING_PELVIS` is zero), metres; ``camera_rotation
        (3, 3)``, ``camera_translation (3,)``, ``focal_length ()``, ``principal_point (2,)``
        (``p = R X + t`` from the body frame, the pelvis-relative joints are ``R (X - X_pelvis)``);
        ``index ()``. Tensors are float32.

    *Example*
        >>> joints = np.random.default_rng(0).normal(scale=0.3, size=(4, 44, 3))
        >>> dataset = VirtualCameraLiftingDataset(joints, seed=1)
        >>> item = dataset[2]
        >>> tuple(item["keypoints_2d"].shape), tuple(item["joints_3d"].shape)
        ((17, 2), (17, 3))
        >>> bool(torch.equal(item["keypoints_2d"], dataset[2]["keypoints_2d"]))
        True
    """

    def __init__(
        self,
        source: PathLike | Mapping[str, Any] | np.ndarray,
        train: bool = True,
        camera: VirtualCameraConfig | Mapping[str, Any] | None = None,
        keypoint_noise: float = DEFAULT_KEYPOINT_NOISE,
        frame_stride: int = 1,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if isinstance(frame_stride, bool) or not isinstance(frame_stride, int) or frame_stride < 1:
            raise ValueError(
                "VirtualCameraLiftingDataset: `frame_stride` must be an int >= 1, got "
                f"{frame_stride!r}"
            )
        if isinstance(keypoint_noise, bool) or not isinstance(keypoint_noise, (int, float)) or not (
            math.isfinite(keypoint_noise) and keypoint_noise >= 0.0
        ):
            raise ValueError(
                f"VirtualCameraLiftingDataset: `keypoint_noise` must be a number >= 0, got "
                f"{keypoint_noise!r}"
            )
        if isinstance(camera, Mapping):
            camera = VirtualCameraConfig.from_dict(camera)
        if camera is not None and not isinstance(camera, VirtualCameraConfig):
            raise ValueError(
                "VirtualCameraLiftingDataset: `camera` must be a VirtualCameraConfig or a dict, "
                f"got {type(camera).__name__}"
            )
        joints, self.source_name = _lifting_joints(source)
        self.joints = joints[::frame_stride]
        self.train = bool(train)
        self.camera = camera or VirtualCameraConfig()
        self.keypoint_noise = float(keypoint_noise)
        self.seed = int(seed)
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.joints)

    def set_epoch(self, epoch: int) -> None:
        """Select the training draws of ``epoch`` (validation draws never change)."""
        self.epoch = int(epoch)

    def rng(self, index: int) -> np.random.Generator:
        """The generator of item ``index``: ``(seed, epoch, index)``, or ``(seed, index)``
        for validation."""
        if self.train:
            return np.random.default_rng((self.seed, self.epoch, int(index)))
        return np.random.default_rng((self.seed, int(index)))

    def camera_for(self, index: int) -> VirtualCamera:
        """The virtual camera of item ``index`` (for the current epoch)."""
        pelvis = self.joints[index, LIFTING_PELVIS]
        return sample_virtual_camera(self.rng(index), self.camera, pelvis)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        index = int(index) % len(self)
        rng = self.rng(index)
        joints = self.joints[index]
        camera = sample_virtual_camera(rng, self.camera, joints[LIFTING_PELVIS])
        camera_points, pixels = project_points(joints, camera)
        if self.train and self.keypoint_noise > 0.0:
            extent = (pixels.max(axis=0) - pixels.min(axis=0)).max() * BOX_MARGIN
            pixels = pixels + rng.normal(scale=self.keypoint_noise * extent, size=pixels.shape)
        relative = camera_points - camera_points[LIFTING_PELVIS]

        def tensor(value: Any) -> torch.Tensor:
            return torch.as_tensor(np.asarray(value, dtype=np.float32))

        return {
            "keypoints_2d": tensor(pixels),
            "joints_3d": tensor(relative),
            "camera_rotation": tensor(camera.rotation),
            "camera_translation": tensor(camera.translation),
            "focal_length": tensor(camera.focal_length),
            "principal_point": tensor(camera.principal_point),
            "index": torch.tensor(index),
        }


def compute_keypoint_stats(
    source: VirtualCameraLiftingDataset | torch.Tensor | np.ndarray,
    max_items: int | None = None,
    margin: float = BOX_MARGIN,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std of box-normalised 2D keypoints, flattened: ProSkeleton's input statistics.

    *Arguments*
        source: a :class:`VirtualCameraLiftingDataset` (its items of the current epoch, evenly
            spaced when ``max_items`` is smaller than the dataset) or pixel keypoints
            ``(M, 17, 2)``.
        max_items: at most this many dataset items (None: all).
        margin: the box margin (:func:`box_normalize_keypoints`).

    *Returns*
        ``mean (34,)`` and ``std (34,)`` float32 (``x0, y0, x1, y1, ...``); the std is at
        least :data:`MIN_KEYPOINT_STD`.

    *Example*
        >>> keypoints = torch.tensor([[[0.0, 0.0], [1.0, 2.0]], [[0.0, 0.0], [2.0, 1.0]]])
        >>> mean, std = compute_keypoint_stats(keypoints)
        >>> mean.reshape(2, 2)
        tensor([[-0.3125, -0.3125],
                [ 0.3125,  0.3125]])
    """
    function = "compute_keypoint_stats"
    if isinstance(source, VirtualCameraLiftingDataset):
        count = len(source) if max_items is None else min(int(max_items), len(source))
        if count < 2:
            raise ValueError(f"{function}: need at least 2 items, got {count}")
        positions = np.linspace(0, len(source) - 1, count).round().astype(int)
        keypoints = torch.stack([source[int(i)]["keypoints_2d"] for i in positions])
    elif isinstance(source, (torch.Tensor, np.ndarray)):
        keypoints = torch.as_tensor(source)
        if keypoints.ndim != 3 or keypoints.shape[-1] != 2 or keypoints.shape[0] < 2:
            raise ValueError(
                f"{function}: keypoints must have shape (M, J, 2) with M >= 2, "
                f"got {tuple(keypoints.shape)}"
            )
        keypoints = keypoints.double()
    else:
        raise ValueError(
            f"{function}: `source` must be a VirtualCameraLiftingDataset or (M, J, 2) keypoints, "
            f"got {type(source).__name__}"
        )
    normalized, _, _ = box_normalize_keypoints(keypoints.double(), margin=margin)
    flat = normalized.flatten(1)
    mean = flat.mean(dim=0)
    std = flat.std(dim=0).clamp_min(MIN_KEYPOINT_STD)
    return mean.float(), std.float()
