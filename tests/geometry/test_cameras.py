"""Cameras against hand computations, a numpy pinhole loop and the crop/full-frame geometry."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from prohmr.constants import FOCAL_LENGTH, IMAGE_SIZE
from prohmr.geometry import (
    WEAK_PERSPECTIVE_EPS,
    crop_to_full_frame_translation,
    normalized_to_pixel,
    perspective_projection,
    pixel_to_normalized,
    weak_perspective_to_translation,
)


def _t(values, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values, dtype=np.float64), dtype=dtype, device=device)


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().double().numpy()


def _pixel_tol(dtype: torch.dtype) -> float:
    return 5e-3 if dtype == torch.float32 else 1e-8


# --- perspective projection ---------------------------------------------------------------
def test_projection_hand_computed(device: torch.device, dtype: torch.dtype) -> None:
    points = _t([[0.1, -0.2, 0.0], [0.5, 0.3, 2.0]], device, dtype)
    translation = _t([0.0, 0.0, 10.0], device, dtype)
    projected = perspective_projection(points, translation, 5000.0, 112.0)
    # (5000 * 0.1 / 10 + 112, 5000 * -0.2 / 10 + 112) and
    # (5000 * 0.5 / 12 + 112, 5000 * 0.3 / 12 + 112)
    expected = [[162.0, 12.0], [2500.0 / 12.0 + 112.0, 237.0]]
    np.testing.assert_allclose(_numpy(projected), expected, atol=_pixel_tol(dtype))


def test_projection_rotation_and_per_axis_intrinsics(
    device: torch.device, dtype: torch.dtype
) -> None:
    points = _t([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], device, dtype)
    quarter_turn_z = _t([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], device, dtype)
    translation = _t([0.0, 0.0, 4.0], device, dtype)
    projected = perspective_projection(
        points, translation, _t([1000.0, 2000.0], device, dtype), _t([10.0, 20.0], device, dtype),
        rotation=quarter_turn_z,
    )
    # (1,0,0) -> (0,1,4): (10, 2000/4 + 20); (0,0,1) -> (0,0,5): the principal point.
    expected = [[10.0, 520.0], [10.0, 20.0]]
    np.testing.assert_allclose(_numpy(projected), expected, atol=_pixel_tol(dtype))


def _numpy_projection(points, translation, rotation, focal, center) -> np.ndarray:
    out = np.zeros(points.shape[:-1] + (2,))
    for index in np.ndindex(points.shape[:-2]):
        for j in range(points.shape[-2]):
            p = rotation[index] @ points[index][j] + translation[index]
            out[index][j] = focal[index] * p[:2] / p[2] + center[index]
    return out


@pytest.mark.parametrize("intrinsics", ["float", "per_sample", "per_axis"])
def test_projection_matches_numpy_loop(
    intrinsics: str, device: torch.device, dtype: torch.dtype
) -> None:
    rng = np.random.default_rng(0)
    batch = (2, 3)
    points = rng.normal(size=(*batch, 5, 3))
    translation = rng.normal(size=(*batch, 3)) + [0.0, 0.0, 8.0]
    rotation = np.linalg.qr(rng.normal(size=(*batch, 3, 3)))[0]
    if intrinsics == "float":
        focal, center = 1500.0, 320.0
        focal_np, center_np = np.full((*batch, 2), focal), np.full((*batch, 2), center)
    elif intrinsics == "per_sample":
        focal_np = np.repeat(rng.uniform(500, 5000, size=(*batch, 1)), 2, axis=-1)
        center_np = np.repeat(rng.uniform(0, 500, size=(*batch, 1)), 2, axis=-1)
        focal, center = _t(focal_np[..., 0], device, dtype), _t(center_np[..., 0], device, dtype)
    else:
        focal_np = rng.uniform(500, 5000, size=(*batch, 2))
        center_np = rng.uniform(0, 500, size=(*batch, 2))
        focal, center = _t(focal_np, device, dtype), _t(center_np, device, dtype)
    projected = perspective_projection(
        _t(points, device, dtype), _t(translation, device, dtype), focal, center,
        rotation=_t(rotation, device, dtype),
    )
    expected = _numpy_projection(points, translation, rotation, focal_np, center_np)
    rtol = 1e-4 if dtype == torch.float32 else 1e-10
    np.testing.assert_allclose(_numpy(projected), expected, rtol=rtol)


def test_loss_camera_is_normalised_crop_camera(device: torch.device, dtype: torch.dtype) -> None:
    # SPEC §1.3: focal f / 224 with principal point 0 gives ProHMR's normalised coordinates.
    rng = np.random.default_rng(1)
    points = _t(rng.normal(scale=0.5, size=(4, 44, 3)), device, dtype)
    cam = rng.uniform([0.6, -0.2, -0.2], [1.2, 0.2, 0.2], size=(4, 3))
    translation = weak_perspective_to_translation(_t(cam, device, dtype))
    pixels = perspective_projection(points, translation, FOCAL_LENGTH, IMAGE_SIZE / 2)
    normalised = perspective_projection(points, translation, FOCAL_LENGTH / IMAGE_SIZE)
    torch.testing.assert_close(pixel_to_normalized(pixels), normalised)


def test_projection_intrinsics_validation() -> None:
    points, translation = torch.zeros(2, 5, 3), torch.tensor([[0.0, 0.0, 5.0]] * 2)
    with pytest.raises(ValueError, match="`focal_length`.*\\(\\.\\.\\., 2\\).*got \\(2, 3\\)"):
        perspective_projection(points, translation, torch.ones(2, 3))
    with pytest.raises(ValueError, match="`principal_point`"):
        perspective_projection(points, translation, 1.0, torch.ones(5))
    with pytest.raises(ValueError, match="`points` must have shape \\(\\.\\.\\., 3\\)"):
        perspective_projection(torch.zeros(5, 2), translation, 1.0)
    with pytest.raises(ValueError, match="`points` must have shape \\(\\.\\.\\., J, 3\\)"):
        perspective_projection(torch.zeros(3), translation, 1.0)
    with pytest.raises(ValueError, match="`translation`"):
        perspective_projection(points, torch.zeros(2, 2), 1.0)
    with pytest.raises(ValueError, match="`rotation`.*\\(\\.\\.\\., 3, 3\\)"):
        perspective_projection(points, translation, 1.0, rotation=torch.eye(2))


# --- weak perspective and the full frame --------------------------------------------------
def test_weak_perspective_hand_computed(device: torch.device, dtype: torch.dtype) -> None:
    cam = _t([[0.5, 0.1, -0.2], [1.0, 0.0, 0.3], [0.0, 0.0, 0.0]], device, dtype)
    t = _numpy(weak_perspective_to_translation(cam))
    expected = [[0.1, -0.2, 10000.0 / 112.0], [0.0, 0.3, 10000.0 / 224.0]]
    np.testing.assert_allclose(t[:2], expected, rtol=1e-6)
    # s = 0 gives a finite depth 2 f / eps thanks to the named epsilon.
    np.testing.assert_allclose(t[2, 2], 2 * FOCAL_LENGTH / WEAK_PERSPECTIVE_EPS, rtol=1e-6)
    custom = weak_perspective_to_translation(cam[:1], focal_length=1000.0, image_size=100.0)
    np.testing.assert_allclose(_numpy(custom)[0, 2], 2000.0 / 50.0, rtol=1e-6)


def test_weak_perspective_scale_meaning(device: torch.device, dtype: torch.dtype) -> None:
    # A segment of length h at depth t_z spans s * h in [-1, 1] crop units.
    s, h = 0.8, 1.7
    t = weak_perspective_to_translation(_t([s, 0.0, 0.0], device, dtype))
    segment = _t([[0.0, 0.0, 0.0], [0.0, h, 0.0]], device, dtype)
    pixels = perspective_projection(segment, t, FOCAL_LENGTH, IMAGE_SIZE / 2)
    uv = pixel_to_normalized(pixels, convention="hmr")
    np.testing.assert_allclose(_numpy(uv[1, 1] - uv[0, 1]), s * h, rtol=1e-5)


def _crop_to_image(
    uv_crop: torch.Tensor, box_center: torch.Tensor, box_size: torch.Tensor
) -> torch.Tensor:
    """Crop pixels -> full-image pixels for a square box."""
    zoom = (box_size / IMAGE_SIZE)[..., None, None]
    return box_center[..., None, :] + (uv_crop - IMAGE_SIZE / 2) * zoom


def _random_scene(device: torch.device, dtype: torch.dtype, seed: int):
    rng = np.random.default_rng(seed)
    batch = 6
    cam = _t(rng.uniform([0.6, -0.3, -0.3], [1.3, 0.3, 0.3], size=(batch, 3)), device, dtype)
    image_size = _t(rng.uniform(400, 1600, size=(batch, 2)), device, dtype)
    box_center = image_size * _t(rng.uniform(0.2, 0.8, size=(batch, 2)), device, dtype)
    box_size = _t(rng.uniform(100, 600, size=batch), device, dtype)
    points = _t(rng.normal(scale=0.4, size=(batch, 30, 3)), device, dtype)
    return cam, image_size, box_center, box_size, points


def _both_projections(cam, image_size, box_center, box_size, points):
    """Crop camera mapped into the image, and the full-frame camera; plus the full depth."""
    crop_translation = weak_perspective_to_translation(cam)
    crop_pixels = perspective_projection(points, crop_translation, FOCAL_LENGTH, IMAGE_SIZE / 2)
    crop = _crop_to_image(crop_pixels, box_center, box_size)
    full_translation = crop_to_full_frame_translation(cam, box_center, box_size, image_size)
    full = perspective_projection(points, full_translation, FOCAL_LENGTH, image_size / 2)
    return crop, full, full_translation[..., 2]


def test_full_frame_relation_general(device: torch.device, dtype: torch.dtype) -> None:
    # pi_full(X, Y, Z) = pi_crop(X, Y, Z * b / 224) - (box_center - image_size / 2) * Z / (Z + D)
    cam, image_size, box_center, box_size, points = _random_scene(device, dtype, 2)
    _, full, depth = _both_projections(cam, image_size, box_center, box_size, points)
    ones = torch.ones_like(box_size)
    scaled = points * torch.stack([ones, ones, box_size / IMAGE_SIZE], -1)[:, None]
    crop_scaled, _, _ = _both_projections(cam, image_size, box_center, box_size, scaled)
    z = points[..., 2:]
    correction = (box_center - image_size / 2)[:, None] * z / (z + depth[:, None, None])
    np.testing.assert_allclose(
        _numpy(full), _numpy(crop_scaled - correction), rtol=0, atol=_pixel_tol(dtype)
    )
    # The correction is real: the two cameras differ off the Z = 0 plane.
    crop, _, _ = _both_projections(cam, image_size, box_center, box_size, points)
    assert (full - crop).abs().max() > 1.0


def test_full_frame_agrees_on_root_plane(device: torch.device, dtype: torch.dtype) -> None:
    cam, image_size, box_center, box_size, points = _random_scene(device, dtype, 3)
    points = points * _t([1.0, 1.0, 0.0], device, dtype)
    crop, full, _ = _both_projections(cam, image_size, box_center, box_size, points)
    np.testing.assert_allclose(_numpy(full), _numpy(crop), rtol=0, atol=_pixel_tol(dtype))
    # ... where both equal box_center + box_size * s / 2 * (X + tx, Y + ty).
    s, txy = cam[:, None, :1], cam[:, None, 1:]
    weak = box_center[:, None] + box_size[:, None, None] * s / 2 * (points[..., :2] + txy)
    np.testing.assert_allclose(_numpy(full), _numpy(weak), rtol=0, atol=_pixel_tol(dtype))


def test_full_frame_equals_crop_for_centred_224_box(
    device: torch.device, dtype: torch.dtype
) -> None:
    cam, image_size, _, _, points = _random_scene(device, dtype, 4)
    box_center = image_size / 2
    box_size = torch.full_like(image_size[:, 0], float(IMAGE_SIZE))
    crop, full, _ = _both_projections(cam, image_size, box_center, box_size, points)
    np.testing.assert_allclose(_numpy(full), _numpy(crop), rtol=0, atol=_pixel_tol(dtype))


def test_full_frame_translation_hand_computed(device: torch.device, dtype: torch.dtype) -> None:
    cam = _t([0.5, 0.1, -0.2], device, dtype)
    box_center = _t([700.0, 300.0], device, dtype)
    t = crop_to_full_frame_translation(cam, box_center, 200.0, (1000.0, 800.0))
    # depth = 2 * 5000 / (200 * 0.5) = 100; offset = (200, -100) * 100 / 5000 = (4, -2)
    np.testing.assert_allclose(_numpy(t), [4.1, -2.2, 100.0], rtol=1e-6)


def test_full_frame_validation() -> None:
    cam = torch.tensor([1.0, 0.0, 0.0])
    cams = cam.expand(4, 3)
    with pytest.raises(ValueError, match="`cam`.*\\(\\.\\.\\., 3\\)"):
        crop_to_full_frame_translation(cam[:2], torch.zeros(2), 200.0, (640, 480))
    with pytest.raises(ValueError, match="`box_center`.*\\(\\.\\.\\., 2\\)"):
        crop_to_full_frame_translation(cam, torch.zeros(3), 200.0, (640, 480))
    with pytest.raises(ValueError, match="`box_size`.*\\(\\.\\.\\.\\).*got \\(4, 1\\)"):
        crop_to_full_frame_translation(cams, torch.zeros(4, 2), torch.ones(4, 1), (9, 9))
    with pytest.raises(ValueError, match="`box_center`.*batch shape of `cam` \\(4,\\)"):
        crop_to_full_frame_translation(cams, torch.zeros(3, 2), 1.0, (9, 9))
    with pytest.raises(ValueError, match="`image_size`.*\\(width, height\\)"):
        crop_to_full_frame_translation(cam, torch.zeros(2), 200.0, 640.0)
    with pytest.raises(ValueError, match="`cam`.*\\(\\.\\.\\., 3\\)"):
        weak_perspective_to_translation(torch.zeros(4, 2))


# --- normalised keypoints -----------------------------------------------------------------
def test_normalisation_hand_computed(device: torch.device, dtype: torch.dtype) -> None:
    pixels = _t([[0.0, 224.0], [112.0, 56.0], [224.0, 0.0]], device, dtype)
    prohmr = pixel_to_normalized(pixels)
    hmr = pixel_to_normalized(pixels, convention="hmr")
    hmr_small = pixel_to_normalized(pixels, image_size=112.0, convention="hmr")
    np.testing.assert_allclose(_numpy(prohmr), [[-0.5, 0.5], [0.0, -0.25], [0.5, -0.5]])
    np.testing.assert_allclose(_numpy(hmr), [[-1.0, 1.0], [0.0, -0.5], [1.0, -1.0]])
    np.testing.assert_allclose(_numpy(hmr_small), [[-1.0, 3.0], [1.0, 0.0], [3.0, -1.0]])


@pytest.mark.parametrize("convention", ["prohmr", "hmr"])
def test_normalisation_round_trip_and_confidence(
    convention: str, device: torch.device, dtype: torch.dtype
) -> None:
    rng = np.random.default_rng(5)
    xy = rng.uniform(-50, 300, size=(2, 3, 44, 2))
    confidence = rng.uniform(0, 1, size=(2, 3, 44, 1))
    keypoints = _t(np.concatenate([xy, confidence], -1), device, dtype)
    keypoints[..., 5, 2] = 0.0
    normalised = pixel_to_normalized(keypoints, convention=convention)
    assert normalised.shape == keypoints.shape and normalised.dtype == dtype
    assert torch.equal(normalised[..., 2], keypoints[..., 2])
    torch.testing.assert_close(normalized_to_pixel(normalised, convention=convention), keypoints)
    two_columns = pixel_to_normalized(keypoints[..., :2], convention=convention)
    torch.testing.assert_close(two_columns, normalised[..., :2])


def test_hmr_coordinates_are_twice_prohmr(device: torch.device, dtype: torch.dtype) -> None:
    pixels = _t(np.random.default_rng(6).uniform(0, 224, size=(10, 2)), device, dtype)
    hmr = pixel_to_normalized(pixels, convention="hmr")
    torch.testing.assert_close(hmr, 2 * pixel_to_normalized(pixels))


@pytest.mark.parametrize("function", [pixel_to_normalized, normalized_to_pixel])
def test_normalisation_validation(function) -> None:
    expected = r"`keypoints`.*\(\.\.\., J, 2\) or \(\.\.\., J, 3\).*got \(5, 4\)"
    with pytest.raises(ValueError, match=expected):
        function(torch.zeros(5, 4))
    with pytest.raises(ValueError, match="`keypoints`.*got \\(2,\\)"):
        function(torch.zeros(2))
    with pytest.raises(ValueError, match="convention.*'spin'"):
        function(torch.zeros(5, 2), convention="spin")
