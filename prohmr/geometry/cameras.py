"""Cameras: perspective projection, ProHMR's weak-perspective camera and 2D coordinates.

Conventions (SPEC §1.3): the camera looks down +z with image x to the right and image y
down; points are in metres, image coordinates in pixels unless stated otherwise.

- The network predicts ``(s, tx, ty)`` for a ``IMAGE_SIZE`` (224) pixel crop. It stands for a
  perspective camera with focal length ``FOCAL_LENGTH`` (5000) px, principal point at the
  crop centre (112, 112) and translation ``(tx, ty, 2 f / (224 s))``
  (:func:`weak_perspective_to_translation`).
- The same prediction expressed for the uncropped image (:func:`crop_to_full_frame_translation`)
  uses focal length 5000 px and principal point at the image centre.
- Keypoints inside the crop are normalised either the ProHMR way, ``px / 224 - 0.5`` in
  ``[-0.5, 0.5]``, or the HMR way (BOA, Meta-HMR, MAED), ``px / 112 - 1`` in ``[-1, 1]``
  (:func:`pixel_to_normalized`, :func:`normalized_to_pixel`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

from prohmr.constants import FOCAL_LENGTH, IMAGE_SIZE
from prohmr.geometry.rotations import _check_tensor

__all__ = [
    "WEAK_PERSPECTIVE_EPS",
    "KEYPOINT_CONVENTIONS",
    "KeypointConvention",
    "perspective_projection",
    "weak_perspective_to_translation",
    "crop_to_full_frame_translation",
    "pixel_to_normalized",
    "normalized_to_pixel",
]

#: Added to ``size * s`` before dividing, as in ProHMR, so that ``s = 0`` gives a finite
#: (very large) depth instead of inf.
WEAK_PERSPECTIVE_EPS: float = 1e-9

KeypointConvention = Literal["prohmr", "hmr"]
#: Names accepted by the ``convention`` argument of the keypoint conversions.
KEYPOINT_CONVENTIONS: tuple[str, ...] = ("prohmr", "hmr")
# (scale, offset) per convention: normalised = pixel / (size * scale) - offset.
_NORMALIZATION: dict[str, tuple[float, float]] = {"prohmr": (1.0, 0.5), "hmr": (0.5, 1.0)}


def _broadcasts_to(shape: torch.Size, batch_shape: torch.Size) -> bool:
    try:
        return torch.broadcast_shapes(shape, batch_shape) == batch_shape
    except RuntimeError:
        return False


def _per_axis(
    value: float | torch.Tensor, name: str, batch_shape: torch.Size, like: torch.Tensor
) -> torch.Tensor:
    """Turn a camera intrinsic into a tensor broadcastable against ``(*batch, J, 2)``.

    ``value`` is a number or 0-dim tensor (shared), a tensor of shape ``batch`` (one value
    per sample for both axes) or ``(*batch, 2)`` (one value per sample and axis). Size-1
    dimensions broadcast as usual.
    """
    tensor = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    batch_ndim = len(batch_shape)
    if tensor.ndim == 0:
        return tensor
    if tensor.ndim == batch_ndim and _broadcasts_to(tensor.shape, batch_shape):
        return tensor[..., None, None]
    per_axis = tensor.ndim == batch_ndim + 1 and tensor.shape[-1] == 2
    if per_axis and _broadcasts_to(tensor.shape[:-1], batch_shape):
        return tensor[..., None, :]
    raise ValueError(
        f"perspective_projection: `{name}` must be a float or a tensor of shape (...) or "
        f"(..., 2) with ... = the batch shape of `points` {tuple(batch_shape)}; "
        f"got {tuple(tensor.shape)}"
    )


def perspective_projection(
    points: torch.Tensor,
    translation: torch.Tensor,
    focal_length: float | torch.Tensor,
    principal_point: float | torch.Tensor = 0.0,
    rotation: torch.Tensor | None = None,
) -> torch.Tensor:
    """Project 3D points with a pinhole camera.

    The camera frame point is ``p = rotation @ X + translation`` and its image is
    ``focal_length * p[:2] / p[2] + principal_point``. Points must lie in front of the
    camera (``p[2] > 0``).

    Arguments:
        points: ``(..., J, 3)`` points.
        translation: ``(..., 3)`` camera translation, broadcastable against the batch.
        focal_length: a float, or a tensor ``(...)`` (per sample) or ``(..., 2)``
            (per sample, ``(fx, fy)``).
        principal_point: like ``focal_length``: ``c`` or ``(cx, cy)``. Defaults to 0.
        rotation: optional ``(..., 3, 3)`` rotation applied before the translation.

    Returns:
        ``(..., J, 2)`` image coordinates (pixels if the intrinsics are in pixels).

    Example:
        >>> points = torch.tensor([[0.1, -0.2, 0.0]])
        >>> perspective_projection(points, torch.tensor([0.0, 0.0, 10.0]), 5000.0, 112.0)
        tensor([[162.,  12.]])
    """
    function = "perspective_projection"
    _check_tensor(points, "points", (3,), function)
    if points.ndim < 2:
        raise ValueError(f"{function}: `points` must have shape (..., J, 3), got (3,)")
    _check_tensor(translation, "translation", (3,), function)
    batch_shape = points.shape[:-2]
    if rotation is not None:
        _check_tensor(rotation, "rotation", (3, 3), function)
        points = points @ rotation.transpose(-1, -2)
    camera_points = points + translation[..., None, :]
    xy = camera_points[..., :2] / camera_points[..., 2:]
    focal = _per_axis(focal_length, "focal_length", batch_shape, points)
    center = _per_axis(principal_point, "principal_point", batch_shape, points)
    return focal * xy + center


def weak_perspective_to_translation(
    cam: torch.Tensor,
    focal_length: float | torch.Tensor = FOCAL_LENGTH,
    image_size: float | torch.Tensor = IMAGE_SIZE,
) -> torch.Tensor:
    """ProHMR's crop camera ``(s, tx, ty)`` to a camera translation.

    ``t = (tx, ty, 2 f / (image_size * s + WEAK_PERSPECTIVE_EPS))``: a body of height ``h``
    metres at depth ``t_z`` spans ``s * h`` in ``[-1, 1]`` crop units.

    Arguments:
        cam: ``(..., 3)`` predicted ``(s, tx, ty)``.
        focal_length: focal length in crop pixels; float or tensor broadcastable to ``(...)``.
        image_size: crop side in pixels; float or tensor broadcastable to ``(...)``.

    Returns:
        ``(..., 3)`` translation in metres, for a camera with principal point at the crop
        centre.

    Example:
        >>> weak_perspective_to_translation(torch.tensor([0.5, 0.1, -0.2]))
        tensor([ 0.1000, -0.2000, 89.2857])
    """
    _check_tensor(cam, "cam", (3,), "weak_perspective_to_translation")
    s, tx, ty = cam.unbind(-1)
    depth = 2.0 * focal_length / (image_size * s + WEAK_PERSPECTIVE_EPS)
    return torch.stack((tx, ty, depth), dim=-1)


def crop_to_full_frame_translation(
    cam: torch.Tensor,
    box_center: torch.Tensor,
    box_size: float | torch.Tensor,
    image_size: torch.Tensor | Sequence[float],
    focal_length: float | torch.Tensor = FOCAL_LENGTH,
) -> torch.Tensor:
    """Crop camera ``(s, tx, ty)`` to the translation of a full-frame camera.

    ``depth = 2 f / (box_size * s + WEAK_PERSPECTIVE_EPS)`` and
    ``t_xy = (tx, ty) + (box_center - image_size / 2) * depth / f``. The full-frame camera
    has focal length ``f`` (5000 px, not rescaled by the box) and principal point at the
    image centre ``image_size / 2``.

    What is preserved: write ``pi_crop`` for projecting with the crop camera
    (:func:`weak_perspective_to_translation`, focal ``f``, principal point 112) followed by
    the crop-to-image map ``u -> box_center + (u - 112) * box_size / 224``. For a body point
    ``(X, Y, Z)`` (before the translation) and ``D`` the full-frame depth,

    ``pi_full(X, Y, Z) = pi_crop(X, Y, Z * box_size / 224)
    - (box_center - image_size / 2) * Z / (Z + D)``.

    So the two agree exactly on the plane ``Z = 0`` for every box (same position and scale,
    ``box_center + box_size * s / 2 * (X + tx, Y + ty)``), and everywhere when the box has
    side 224 and is centred on the image; otherwise the full-frame camera shows the true
    perspective of a body seen off the optical axis.

    Arguments:
        cam: ``(..., 3)`` predicted ``(s, tx, ty)``.
        box_center: ``(..., 2)`` crop box centre in image pixels ``(x, y)``.
        box_size: crop box side in image pixels; float or tensor ``(...)``.
        image_size: ``(..., 2)`` image ``(width, height)`` in pixels (tensor or pair).
        focal_length: full-frame focal length in pixels.

    Returns:
        ``(..., 3)`` translation of the full-frame camera in metres.

    Example:
        >>> cam = torch.tensor([0.5, 0.1, -0.2])
        >>> crop_to_full_frame_translation(cam, torch.tensor([700.0, 300.0]), 200.0, (1000, 800))
        tensor([  4.1000,  -2.2000, 100.0000])
    """
    function = "crop_to_full_frame_translation"
    _check_tensor(cam, "cam", (3,), function)
    _check_tensor(box_center, "box_center", (2,), function)
    image_size = torch.as_tensor(image_size, dtype=cam.dtype, device=cam.device)
    if image_size.ndim < 1 or image_size.shape[-1] != 2:
        raise ValueError(
            f"{function}: `image_size` must have shape (..., 2) as (width, height), "
            f"got {tuple(image_size.shape)}"
        )
    box_size = torch.as_tensor(box_size, dtype=cam.dtype, device=cam.device)
    batch_shape = cam.shape[:-1]
    for name, shape, expected in (
        ("box_center", box_center.shape[:-1], "(..., 2)"),
        ("box_size", box_size.shape, "(...)"),
        ("image_size", image_size.shape[:-1], "(..., 2)"),
    ):
        if not _broadcasts_to(shape, batch_shape):
            raise ValueError(
                f"{function}: `{name}` must have shape {expected} with ... broadcastable to "
                f"the batch shape of `cam` {tuple(batch_shape)}; got {tuple(shape)} for ..."
            )
    s, txy = cam[..., 0], cam[..., 1:]
    depth = 2.0 * focal_length / (box_size * s + WEAK_PERSPECTIVE_EPS)
    offset = (box_center - 0.5 * image_size) * (depth / focal_length)[..., None]
    return torch.cat((txy + offset, depth[..., None]), dim=-1)


def _check_keypoints(keypoints: torch.Tensor, convention: str, function: str) -> None:
    if not isinstance(keypoints, torch.Tensor):
        raise ValueError(
            f"{function}: `keypoints` must be a torch.Tensor of shape (..., J, 2) or "
            f"(..., J, 3), got {type(keypoints).__name__}"
        )
    if keypoints.ndim < 2 or keypoints.shape[-1] not in (2, 3):
        raise ValueError(
            f"{function}: `keypoints` must have shape (..., J, 2) or (..., J, 3), "
            f"got {tuple(keypoints.shape)}"
        )
    if not keypoints.is_floating_point():
        raise ValueError(f"{function}: `keypoints` must be floating point, got {keypoints.dtype}")
    if convention not in KEYPOINT_CONVENTIONS:
        raise ValueError(
            f"{function}: unknown `convention` {convention!r}; "
            f"expected one of {KEYPOINT_CONVENTIONS}"
        )


def pixel_to_normalized(
    keypoints: torch.Tensor,
    image_size: float = IMAGE_SIZE,
    convention: KeypointConvention = "prohmr",
) -> torch.Tensor:
    """Crop pixel coordinates to normalised crop coordinates.

    ``"prohmr"``: ``px / image_size - 0.5`` in ``[-0.5, 0.5]``; ``"hmr"``:
    ``px / (image_size / 2) - 1`` in ``[-1, 1]``. Pixel ``(0, 0)`` is the top-left corner
    of the crop. A third (confidence) column is passed through unchanged.

    Arguments:
        keypoints: ``(..., J, 2)`` or ``(..., J, 3)`` pixel ``(x, y[, confidence])``.
        image_size: crop side in pixels.
        convention: ``"prohmr"`` (default) or ``"hmr"``.

    Returns:
        A tensor of the same shape.

    Example:
        >>> keypoints = torch.tensor([[0.0, 112.0, 1.0], [224.0, 56.0, 0.0]])
        >>> pixel_to_normalized(keypoints)
        tensor([[-0.5000,  0.0000,  1.0000],
                [ 0.5000, -0.2500,  0.0000]])
        >>> pixel_to_normalized(keypoints, convention="hmr")
        tensor([[-1.0000,  0.0000,  1.0000],
                [ 1.0000, -0.5000,  0.0000]])
    """
    _check_keypoints(keypoints, convention, "pixel_to_normalized")
    scale, offset = _NORMALIZATION[convention]
    xy = keypoints[..., :2] / (image_size * scale) - offset
    return torch.cat((xy, keypoints[..., 2:]), dim=-1)


def normalized_to_pixel(
    keypoints: torch.Tensor,
    image_size: float = IMAGE_SIZE,
    convention: KeypointConvention = "prohmr",
) -> torch.Tensor:
    """Inverse of :func:`pixel_to_normalized`; a confidence column passes through unchanged.

    Arguments:
        keypoints: ``(..., J, 2)`` or ``(..., J, 3)`` normalised ``(x, y[, confidence])``.
        image_size: crop side in pixels.
        convention: ``"prohmr"`` (default) or ``"hmr"``.

    Returns:
        A tensor of the same shape, in crop pixels.

    Example:
        >>> normalized_to_pixel(torch.tensor([[-0.5, 0.25]]))
        tensor([[  0., 168.]])
    """
    _check_keypoints(keypoints, convention, "normalized_to_pixel")
    scale, offset = _NORMALIZATION[convention]
    xy = (keypoints[..., :2] + offset) * (image_size * scale)
    return torch.cat((xy, keypoints[..., 2:]), dim=-1)
