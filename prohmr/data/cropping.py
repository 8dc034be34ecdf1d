"""SPIN-style square crops: the affine map from an image to the network crop (SPEC §1.3).

A crop is a square box of side ``box_size`` pixels centred at ``center`` in the original
image, optionally rotated and mirrored, resampled to ``output_size`` x ``output_size`` pixels.
It is one 2x3 affine matrix ``M`` that maps original-image pixel coordinates to crop pixel
coordinates (``p_crop = M[:, :2] @ p + M[:, 2]``); keypoints go through :func:`apply_affine`
and the image through :func:`crop_image`, so both always agree.

Coordinates are continuous: pixel (row ``i``, column ``j``) covers ``[j, j+1) x [i, i+1)``
and its centre is ``(j + 0.5, i + 0.5)``; the top-left image corner is ``(0, 0)``. The box
centre maps to the crop centre ``(output_size / 2, output_size / 2)`` and the box edges to
``0`` and ``output_size``, i.e. to ``-0.5`` and ``0.5`` after
``prohmr.geometry.pixel_to_normalized``.

Rotation convention: a positive ``rotation_deg`` turns the image *content* counter-clockwise
as seen on screen (the box is turned clockwise over the image), as in SPIN and ProHMR. The
matching 3D rotation of camera-frame points (x right, y down, z forward) is
:func:`prohmr.data.augmentation.camera_roll_matrix`.
"""

from __future__ import annotations

import math
from typing import TypeVar

import numpy as np
import torch
from PIL import Image

__all__ = ["crop_transform", "invert_affine", "apply_affine", "crop_image"]

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


def crop_transform(
    center: np.ndarray | tuple[float, float],
    box_size: float,
    rotation_deg: float,
    output_size: int | float,
    flip: bool = False,
) -> np.ndarray:
    """The affine map from original-image pixels to crop pixels.

    The box of side ``box_size`` centred at ``center`` is scaled to ``output_size`` pixels,
    turned by ``rotation_deg`` (positive: content counter-clockwise on screen) about its
    centre and, if ``flip``, mirrored left-right about the crop's vertical centre line (after
    the rotation, as an image flip of the finished crop).

    Arguments:
        center: ``(2,)`` box centre ``(x, y)`` in image pixels.
        box_size: side of the square box in image pixels (> 0).
        rotation_deg: in-plane rotation in degrees.
        output_size: side of the square crop in pixels (> 0).
        flip: mirror the crop horizontally.

    Returns:
        ``(2, 3)`` float64 matrix ``M`` with ``p_crop = M[:, :2] @ p_image + M[:, 2]``.

    Example:
        >>> M = crop_transform((100.0, 50.0), 112.0, 0.0, 224)
        >>> apply_affine(np.array([[100.0, 50.0], [44.0, -6.0]]), M)
        array([[112., 112.],
               [  0.,   0.]])
    """
    center_array = np.asarray(center, dtype=np.float64)
    if center_array.shape != (2,) or not np.all(np.isfinite(center_array)):
        raise ValueError(f"center must be a finite (2,) point, got {center_array.tolist()}")
    if not (math.isfinite(box_size) and box_size > 0):
        raise ValueError(f"box_size must be a positive finite number, got {box_size}")
    if not (math.isfinite(output_size) and output_size > 0):
        raise ValueError(f"output_size must be a positive finite number, got {output_size}")
    if not math.isfinite(rotation_deg):
        raise ValueError(f"rotation_deg must be finite, got {rotation_deg}")

    scale = float(output_size) / float(box_size)
    angle = math.radians(rotation_deg)
    cos, sin = math.cos(angle), math.sin(angle)
    # In y-down image coordinates this matrix turns content counter-clockwise by `angle`.
    linear = scale * np.array([[cos, sin], [-sin, cos]], dtype=np.float64)
    half = 0.5 * float(output_size)
    offset = np.array([half, half]) - linear @ center_array
    if flip:
        linear[0] = -linear[0]
        offset[0] = float(output_size) - offset[0]
    return np.concatenate([linear, offset[:, None]], axis=1)


def invert_affine(M: np.ndarray) -> np.ndarray:
    """The inverse of a 2x3 affine map.

    Arguments:
        M: ``(2, 3)`` invertible affine matrix.

    Returns:
        ``(2, 3)`` float64 matrix of the inverse map.

    Example:
        >>> M = crop_transform((10.0, 20.0), 50.0, 30.0, 224, flip=True)
        >>> bool(np.allclose(apply_affine(apply_affine(np.ones((1, 2)), M), invert_affine(M)), 1))
        True
    """
    M = np.asarray(M, dtype=np.float64)
    if M.shape != (2, 3):
        raise ValueError(f"M must have shape (2, 3), got {tuple(M.shape)}")
    linear_inverse = np.linalg.inv(M[:, :2])
    return np.concatenate([linear_inverse, -(linear_inverse @ M[:, 2])[:, None]], axis=1)


def apply_affine(points: ArrayT, M: np.ndarray | torch.Tensor) -> ArrayT:
    """Apply a 2x3 affine map to the ``(x, y)`` columns of points.

    Columns after the first two (confidences) pass through unchanged.

    Arguments:
        points: ``(..., J, C)`` with ``C >= 2``, a NumPy array or a torch tensor.
        M: ``(2, 3)`` affine matrix (NumPy or torch).

    Returns:
        Points of the same type, shape and dtype as ``points``.

    Example:
        >>> M = crop_transform((0.0, 0.0), 224.0, 90.0, 224)
        >>> apply_affine(np.array([[10.0, 0.0, 1.0]]), M).round(6)
        array([[112., 102.,   1.]])
    """
    if points.shape[-1] < 2:
        raise ValueError(f"points must have shape (..., J, C>=2), got {tuple(points.shape)}")
    if tuple(M.shape) != (2, 3):
        raise ValueError(f"M must have shape (2, 3), got {tuple(M.shape)}")
    if isinstance(points, torch.Tensor):
        matrix = torch.as_tensor(M, dtype=points.dtype, device=points.device)
        xy = points[..., :2] @ matrix[:, :2].T + matrix[:, 2]
        return torch.cat([xy, points[..., 2:]], dim=-1)
    matrix = np.asarray(M, dtype=np.float64)
    xy = points[..., :2].astype(np.float64) @ matrix[:, :2].T + matrix[:, 2]
    out = points.copy()
    out[..., :2] = xy
    return out


def crop_image(image: Image.Image | np.ndarray, M: np.ndarray, output_size: int) -> np.ndarray:
    """Resample the crop defined by ``M`` with bilinear interpolation.

    Uses Pillow's affine transform (C code that only visits the output pixels, so the cost
    does not grow with the source image); regions outside the source image are filled with
    zeros.

    Arguments:
        image: a Pillow image, or a ``(H, W)`` / ``(H, W, C)`` uint8 array.
        M: ``(2, 3)`` map from image pixels to crop pixels (:func:`crop_transform`).
        output_size: side of the square output in pixels.

    Returns:
        ``(output_size, output_size, C)`` uint8 array (``C`` = 3 for RGB, 1 for grey).

    Example:
        >>> image = np.zeros((10, 10, 3), dtype=np.uint8)
        >>> image[2, 7] = 255
        >>> M = crop_transform((5.0, 5.0), 10.0, 0.0, 10)
        >>> crop_image(image, M, 10)[2, 7].tolist()
        [255, 255, 255]
    """
    if int(output_size) != output_size or output_size <= 0:
        raise ValueError(f"output_size must be a positive integer, got {output_size}")
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim not in (2, 3):
            raise ValueError(
                "image must be a (H, W) or (H, W, C) uint8 array, got "
                f"{image.dtype} {tuple(image.shape)}"
            )
        image = Image.fromarray(image)
    inverse = invert_affine(M)
    cropped = image.transform(
        (int(output_size), int(output_size)),
        Image.Transform.AFFINE,
        data=tuple(inverse.ravel().tolist()),
        resample=Image.Resampling.BILINEAR,
        fillcolor=0,
    )
    array = np.asarray(cropped)
    return array[..., None] if array.ndim == 2 else array
