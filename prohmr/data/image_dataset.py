"""The image dataset of ProHMR: person crops with optional SMPL and keypoint labels (SPEC §5).

A dataset is one ``.npz`` file (one row per person crop) plus a folder of images. Keys
(``N`` rows):

- ``imgname (N,)`` str: image path relative to ``image_root``. Required.
- ``center (N, 2)``: box centre ``(x, y)`` in image pixels. Required.
- ``scale (N,)`` or ``(N, k)``: box side / 200 pixels (the max over ``k``). Required.
- ``body_pose (N, 72)``: SMPL axis-angle in radians, global orientation first;
  ``has_body_pose (N,)``: 1 where it is a label.
- ``betas (N, 10)``: SMPL shape; ``has_betas (N,)``.
- ``body_keypoints_2d (N, 25, 3)``, ``extra_keypoints_2d (N, 19, 3)``: OpenPose BODY_25 and
  the 19 extra joints, ``(x, y, confidence)`` in image pixels.
- ``body_keypoints_3d (N, 25, 4)``, ``extra_keypoints_3d (N, 19, 4)``: ``(x, y, z,
  confidence)`` in metres, camera axes.
- ``gender (N,)``: ``"m"``/``"f"``/``"n"`` (or ``male``/``female``/``neutral``), or 0/1/-1.

Every label key is optional: a missing key means "no label" (zeros with ``has_* = 0``, or
confidence 0). Where ``body_pose``/``betas`` exist without their ``has_*`` key, every row
counts as labelled. The confidence of OpenPose joints 1-14 is always zeroed in 3D
(:data:`ZEROED_BODY25_3D_JOINTS`): those joints of the 3D datasets' skeletons do not match
the SMPL-derived OpenPose joints.

Pixel coordinates are continuous (pixel ``(row i, column j)`` has its centre at
``(j + 0.5, i + 0.5)``), as in :mod:`prohmr.data.cropping`.
"""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import Dataset

from prohmr.body.joints import NUM_PROHMR_JOINTS
from prohmr.constants import IMAGE_SIZE, IMAGENET_MEAN, IMAGENET_STD, NUM_BETAS
from prohmr.data.augmentation import (
    AugmentationConfig,
    AugmentationParams,
    augment_box,
    flip_keypoints,
    flip_smpl_pose,
    rotate_keypoints_3d,
    rotate_smpl_pose,
    sample_augmentation,
)
from prohmr.data.cropping import apply_affine, crop_image, crop_transform
from prohmr.geometry.cameras import pixel_to_normalized

__all__ = [
    "BOX_SCALE_UNIT",
    "ZEROED_BODY25_3D_JOINTS",
    "GENDER_CODES",
    "ImageDataset",
    "load_npz",
]

logger = logging.getLogger(__name__)

#: ``scale`` in the ``.npz`` is the box side in units of this many pixels (SPIN's habit).
BOX_SCALE_UNIT: float = 200.0
#: OpenPose joints whose 3D confidence is zeroed on loading.
ZEROED_BODY25_3D_JOINTS: tuple[int, ...] = tuple(range(1, 15))
#: ``gender`` values in items: 0 male, 1 female, -1 neutral or unknown.
GENDER_CODES: dict[str, int] = {
    "m": 0, "male": 0, "f": 1, "female": 1, "n": -1, "neutral": -1, "": -1,
}

_NUM_BODY25 = 25
_NUM_EXTRA = NUM_PROHMR_JOINTS - _NUM_BODY25
_SMPL_POSE_DIM = 72
# Trailing shapes of the numeric keys (`scale` is checked separately).
_TRAILING_SHAPES: dict[str, tuple[int, ...]] = {
    "center": (2,),
    "body_pose": (_SMPL_POSE_DIM,),
    "has_body_pose": (),
    "betas": (NUM_BETAS,),
    "has_betas": (),
    "body_keypoints_2d": (_NUM_BODY25, 3),
    "extra_keypoints_2d": (_NUM_EXTRA, 3),
    "body_keypoints_3d": (_NUM_BODY25, 4),
    "extra_keypoints_3d": (_NUM_EXTRA, 4),
}
_REQUIRED_KEYS = ("imgname", "center", "scale")


def load_npz(path: str | Path, required: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """Read every array of an ``.npz`` file into memory, without pickles.

    Arguments:
        path: the ``.npz`` file.
        required: keys that must be present.

    Returns:
        ``{key: array}``.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is not a readable ``.npz``, holds object arrays, or lacks a
            required key.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"dataset file not found: {path}")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise ValueError(f"{path} is not a readable .npz file: {error}") from error
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValueError(f"{path} holds a single array, not an .npz archive of named arrays")
    arrays: dict[str, np.ndarray] = {}
    with data:
        for key in data.files:
            try:
                arrays[key] = data[key]
            except ValueError as error:
                raise ValueError(
                    f"{path}: key {key!r} cannot be read without pickle ({error}); store "
                    "strings as a str array (np.array([...], dtype=str))"
                ) from error
            except (OSError, zipfile.BadZipFile, EOFError) as error:
                raise ValueError(f"{path}: key {key!r} is unreadable: {error}") from error
    missing = [key for key in required if key not in arrays]
    if missing:
        raise ValueError(f"{path}: missing required key(s) {missing}")
    return arrays


def _check_numeric(path: Path, key: str, array: np.ndarray, trailing: tuple[int, ...]) -> None:
    expected = "(N" + "".join(f", {size}" for size in trailing) + ")"
    if array.ndim != 1 + len(trailing) or tuple(array.shape[1:]) != trailing:
        raise ValueError(
            f"{path}: key {key!r} must have shape {expected}, got {tuple(array.shape)}"
        )
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise ValueError(f"{path}: key {key!r} must be numeric, got dtype {array.dtype}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{path}: key {key!r} contains NaN or inf")


def _gender_codes(path: Path, gender: np.ndarray) -> np.ndarray:
    if gender.ndim != 1:
        raise ValueError(f"{path}: key 'gender' must have shape (N,), got {tuple(gender.shape)}")
    if gender.dtype.kind in "US":
        names = np.char.lower(np.char.strip(gender.astype(str)))
        unknown = sorted(set(names.tolist()) - set(GENDER_CODES))
        if unknown:
            raise ValueError(
                f"{path}: key 'gender' has unknown values {unknown}; expected one of "
                f"{sorted(GENDER_CODES)} or integers 0/1/-1"
            )
        return np.array([GENDER_CODES[name] for name in names.tolist()], dtype=np.int64)
    if gender.dtype.kind in "iu" and set(np.unique(gender).tolist()) <= {-1, 0, 1}:
        return gender.astype(np.int64)
    raise ValueError(
        f"{path}: key 'gender' must hold 'm'/'f'/'n' strings or integers 0/1/-1, "
        f"got dtype {gender.dtype}"
    )


class ImageDataset(Dataset):
    """Person crops with labels for ProHMR training and evaluation.

    Images are decoded with Pillow in ``__getitem__`` (so in DataLoader workers), in RGB,
    after applying their EXIF orientation (as OpenCV's ``imread`` does). With ``train=True``
    each item is augmented (:mod:`prohmr.data.augmentation`) from its own generator
    ``numpy.random.default_rng((seed, epoch, index))``: the same seed, epoch and index give
    the same item. Call :meth:`set_epoch` before each epoch for new draws (with persistent
    DataLoader workers the call does not reach the workers' copies).

    Arguments:
        npz_path: the ``.npz`` file (format in the module docstring).
        image_root: folder that ``imgname`` is relative to.
        train: augment the items.
        augmentation: augmentation settings for ``train=True``; ``None`` means ProHMR's
            defaults (``AugmentationConfig()``); ``AugmentationConfig.disabled()`` turns
            them off. Ignored when ``train=False``.
        image_size: side of the square crop in pixels.
        seed: seed of the per-item generators.

    Items (dicts; shapes before batching, float32 tensors unless stated):
        - ``img (3, S, S)``: the crop, ImageNet-normalised RGB (``S = image_size``).
        - ``keypoints_2d (44, 3)``: ``(x, y, conf)`` in normalised crop coordinates
          ``px / S - 0.5`` (``prohmr.geometry.pixel_to_normalized``); conf 0 = missing.
        - ``keypoints_3d (44, 4)``: ``(x, y, z, conf)`` in metres, camera axes.
        - ``smpl_params``: ``global_orient (3,)``, ``body_pose (69,)`` (axis-angle, radians)
          and ``betas (10,)``; zeros where there is no label.
        - ``has_smpl_params``: ``global_orient``, ``body_pose``, ``betas`` -> ``bool``.
        - ``smpl_params_is_axis_angle``: same keys -> ``bool`` (True, True, False).
        - ``imgname`` (``str``), ``idx`` (``int``), ``gender`` (``int``: 0 male, 1 female,
          -1 unknown).
        - ``box_center (2,)`` and ``box_size ()``: the box actually cropped, in original
          image pixels (after the extreme crop, translation and scale augmentations; the
          rotation and flip are not part of it).
        - ``img_size (2,)``: the original image size as ``(width, height)``, the order of
          ``prohmr.geometry.crop_to_full_frame_translation``.
    """

    def __init__(
        self,
        npz_path: str | Path,
        image_root: str | Path,
        train: bool = False,
        augmentation: AugmentationConfig | None = None,
        image_size: int = IMAGE_SIZE,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if int(image_size) != image_size or image_size <= 0:
            raise ValueError(f"image_size must be a positive integer, got {image_size}")
        if augmentation is not None and not isinstance(augmentation, AugmentationConfig):
            raise ValueError(
                f"augmentation must be an AugmentationConfig or None, got {type(augmentation)}"
            )
        self.npz_path = Path(npz_path)
        self.image_root = Path(image_root)
        self.train = bool(train)
        self.augmentation = (augmentation or AugmentationConfig()) if self.train else None
        self.image_size = int(image_size)
        self.seed = int(seed)
        self.epoch = 0
        self._load(load_npz(self.npz_path, required=_REQUIRED_KEYS))

    def _load(self, arrays: dict[str, np.ndarray]) -> None:
        path = self.npz_path
        imgname = arrays["imgname"]
        if imgname.ndim != 1 or imgname.dtype.kind not in "US":
            raise ValueError(
                f"{path}: key 'imgname' must be a (N,) array of str, got "
                f"{imgname.dtype} {tuple(imgname.shape)}"
            )
        num_items = len(imgname)
        scale = arrays["scale"]
        if scale.ndim == 1:
            scale = scale[:, None]
        if scale.ndim != 2 or scale.shape[1] == 0:
            raise ValueError(
                f"{path}: key 'scale' must have shape (N,) or (N, k), got {scale.shape}"
            )
        _check_numeric(path, "scale", scale, (scale.shape[1],))
        for key, trailing in _TRAILING_SHAPES.items():
            if key in arrays:
                _check_numeric(path, key, arrays[key], trailing)
        for key in ("center", "scale", *_TRAILING_SHAPES, "gender"):
            if key in arrays and len(arrays[key]) != num_items:
                raise ValueError(
                    f"{path}: key {key!r} has {len(arrays[key])} rows but 'imgname' has "
                    f"{num_items}"
                )
        box_size = BOX_SCALE_UNIT * scale.max(axis=1).astype(np.float64)
        if np.any(box_size <= 0):
            raise ValueError(f"{path}: key 'scale' must be positive")

        def optional(key: str, shape: tuple[int, ...]) -> np.ndarray:
            if key in arrays:
                return arrays[key].astype(np.float32)
            return np.zeros((num_items, *shape), dtype=np.float32)

        def labelled(key: str, flag: str) -> np.ndarray:
            if key not in arrays:
                return np.zeros(num_items, dtype=bool)
            if flag not in arrays:
                return np.ones(num_items, dtype=bool)
            return arrays[flag].astype(bool)

        self.imgname = imgname.astype(str)
        self.center = arrays["center"].astype(np.float64)
        self.box_size = box_size
        self.body_pose = optional("body_pose", (_SMPL_POSE_DIM,))
        self.has_body_pose = labelled("body_pose", "has_body_pose")
        self.betas = optional("betas", (NUM_BETAS,))
        self.has_betas = labelled("betas", "has_betas")
        self.keypoints_2d = np.concatenate(
            [optional("body_keypoints_2d", (_NUM_BODY25, 3)),
             optional("extra_keypoints_2d", (_NUM_EXTRA, 3))], axis=1)
        self.keypoints_3d = np.concatenate(
            [optional("body_keypoints_3d", (_NUM_BODY25, 4)),
             optional("extra_keypoints_3d", (_NUM_EXTRA, 4))], axis=1)
        self.keypoints_3d[:, list(ZEROED_BODY25_3D_JOINTS), 3] = 0.0
        self.gender = (
            _gender_codes(path, arrays["gender"]) if "gender" in arrays
            else np.full(num_items, -1, dtype=np.int64)
        )
        logger.info(
            "%s: %d items; labels: %s", path, num_items,
            sorted(set(arrays) & (set(_TRAILING_SHAPES) | {"gender"})) or "none",
        )

    def __len__(self) -> int:
        return len(self.imgname)

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draws of an epoch (see the class docstring)."""
        self.epoch = int(epoch)

    def item_rng(self, index: int) -> np.random.Generator:
        """The generator that ``__getitem__`` uses for ``index`` in the current epoch."""
        return np.random.default_rng((self.seed, self.epoch, index))

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.get_item(index)

    def read_image(self, index: int) -> Image.Image:
        """The original RGB image of item ``index``."""
        path = self.image_root / self.imgname[index]
        try:
            with Image.open(path) as opened:
                return ImageOps.exif_transpose(opened).convert("RGB")
        except FileNotFoundError as error:
            raise FileNotFoundError(
                f"image of item {index} not found: {path} (imgname {self.imgname[index]!r} "
                f"relative to image_root {self.image_root})"
            ) from error

    def get_item(self, index: int, rng: np.random.Generator | None = None) -> dict[str, Any]:
        """Item ``index``, augmented from ``rng`` when training.

        Arguments:
            index: row of the ``.npz``.
            rng: generator for the augmentation draw; ``None`` uses :meth:`item_rng`.
                Ignored when ``train=False``.

        Returns:
            The item dict (keys in the class docstring).
        """
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        index = int(index) % len(self)
        keypoints_2d = self.keypoints_2d[index].astype(np.float64)
        center, box_size = self.center[index], float(self.box_size[index])
        params = AugmentationParams()
        if self.augmentation is not None:
            params = sample_augmentation(
                self.augmentation, rng if rng is not None else self.item_rng(index), keypoints_2d
            )
            center, box_size = augment_box(
                center, box_size, params, keypoints_2d, self.augmentation.extreme_crop_margin
            )

        image = self.read_image(index)
        size = self.image_size
        crop = crop_image(
            image, crop_transform(center, box_size, params.rotation_deg, size, params.flip), size
        )
        pixels = crop.astype(np.float32) * (np.asarray(params.color_scale, np.float32) / 255.0)
        pixels = (np.clip(pixels, 0.0, 1.0) - np.asarray(IMAGENET_MEAN, np.float32)) / np.asarray(
            IMAGENET_STD, np.float32
        )

        # Keypoints go through the unflipped map; flip_keypoints then both mirrors x and
        # swaps left/right joint identities.
        unflipped = crop_transform(center, box_size, params.rotation_deg, size)
        keypoints_crop = torch.from_numpy(apply_affine(keypoints_2d, unflipped))
        keypoints_crop = pixel_to_normalized(keypoints_crop, image_size=size)
        keypoints_3d = self.keypoints_3d[index].astype(np.float64)
        pose = self.body_pose[index].astype(np.float64)
        has_pose = bool(self.has_body_pose[index])
        if params.rotation_deg != 0.0:
            keypoints_3d = rotate_keypoints_3d(keypoints_3d, params.rotation_deg)
            if has_pose:
                pose = rotate_smpl_pose(pose, params.rotation_deg)
        if params.flip:
            keypoints_crop = flip_keypoints(keypoints_crop)
            keypoints_3d = flip_keypoints(keypoints_3d)
            pose = flip_smpl_pose(pose)

        has_betas = bool(self.has_betas[index])
        return {
            "img": torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1))),
            "keypoints_2d": keypoints_crop.to(torch.float32),
            "keypoints_3d": torch.from_numpy(keypoints_3d.astype(np.float32)),
            "smpl_params": {
                "global_orient": torch.from_numpy(pose[:3].astype(np.float32)),
                "body_pose": torch.from_numpy(pose[3:].astype(np.float32)),
                "betas": torch.from_numpy(self.betas[index].copy()),
            },
            "has_smpl_params": {
                "global_orient": has_pose,
                "body_pose": has_pose,
                "betas": has_betas,
            },
            "smpl_params_is_axis_angle": {
                "global_orient": True,
                "body_pose": True,
                "betas": False,
            },
            "imgname": str(self.imgname[index]),
            "idx": index,
            "gender": int(self.gender[index]),
            "box_center": torch.tensor(center, dtype=torch.float32),
            "box_size": torch.tensor(box_size, dtype=torch.float32),
            "img_size": torch.tensor(image.size, dtype=torch.float32),
        }
