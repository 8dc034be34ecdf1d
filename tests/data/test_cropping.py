"""Crop geometry: the affine map, keypoints through it, and the resampled image."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from prohmr.data.cropping import apply_affine, crop_image, crop_transform, invert_affine

SIZE = 224


def _reference_crop(image: np.ndarray, M: np.ndarray, size: int) -> np.ndarray:
    """Brute-force bilinear resampling, pixel centres at +0.5, zeros outside the image."""
    height, width = image.shape[:2]
    inverse = invert_affine(M)
    out = np.zeros((size, size, image.shape[2]))
    for row in range(size):
        for col in range(size):
            x, y = inverse @ np.array([col + 0.5, row + 0.5, 1.0])
            if not (0.0 <= x < width and 0.0 <= y < height):
                continue
            x, y = x - 0.5, y - 0.5
            x0, y0 = math.floor(x), math.floor(y)
            dx, dy = x - x0, y - y0

            def pixel(r: int, c: int) -> np.ndarray:
                return image[min(max(r, 0), height - 1), min(max(c, 0), width - 1)].astype(float)

            top = (1 - dx) * pixel(y0, x0) + dx * pixel(y0, x0 + 1)
            bottom = (1 - dx) * pixel(y0 + 1, x0) + dx * pixel(y0 + 1, x0 + 1)
            out[row, col] = (1 - dy) * top + dy * bottom
    return out


def test_box_centre_and_corners_map_to_normalised_centre_and_edges() -> None:
    center, box = np.array([321.5, 87.25]), 173.0
    for rotation in (0.0, 37.0, -120.0):
        M = crop_transform(center, box, rotation, SIZE)
        angle = math.radians(rotation)
        # The box is turned clockwise on screen (y down) by the rotation: its corners are
        # centre + R @ (+-box/2, +-box/2) with R = [[c, -s], [s, c]].
        turn = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        signs = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=float)
        corners = center + (0.5 * box * signs) @ turn.T
        points = np.concatenate([center[None], corners])
        normalised = apply_affine(points, M) / SIZE - 0.5
        np.testing.assert_allclose(normalised[0], [0.0, 0.0], atol=1e-12)
        np.testing.assert_allclose(normalised[1:], 0.5 * signs, atol=1e-12)


def test_positive_rotation_turns_content_counter_clockwise_on_screen() -> None:
    M = crop_transform((0.0, 0.0), SIZE, 90.0, SIZE)
    right, up = apply_affine(np.array([[10.0, 0.0], [0.0, -10.0]]), M) - SIZE / 2
    np.testing.assert_allclose(right, [0.0, -10.0], atol=1e-12)  # right of centre -> up
    np.testing.assert_allclose(up, [-10.0, 0.0], atol=1e-12)  # up -> left


def test_flip_mirrors_the_finished_crop_and_keeps_distances() -> None:
    rng = np.random.default_rng(0)
    points = rng.uniform(-100, 400, size=(20, 2))
    M = crop_transform((150.0, 120.0), 90.0, 25.0, SIZE)
    M_flip = crop_transform((150.0, 120.0), 90.0, 25.0, SIZE, flip=True)
    plain, flipped = apply_affine(points, M), apply_affine(points, M_flip)
    np.testing.assert_allclose(flipped[:, 0], SIZE - plain[:, 0], atol=1e-10)
    np.testing.assert_allclose(flipped[:, 1], plain[:, 1], atol=1e-10)
    distances = np.linalg.norm(points[1:] - points[:-1], axis=1)
    np.testing.assert_allclose(
        np.linalg.norm(plain[1:] - plain[:-1], axis=1), distances * SIZE / 90.0, rtol=1e-12
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_apply_affine_torch_matches_numpy_and_keeps_confidence(dtype: torch.dtype) -> None:
    rng = np.random.default_rng(1)
    points = rng.uniform(0, 300, size=(2, 5, 3))
    M = crop_transform((100.0, 80.0), 150.0, -33.0, SIZE, flip=True)
    expected = apply_affine(points, M)
    np.testing.assert_array_equal(expected[..., 2], points[..., 2])
    result = apply_affine(torch.tensor(points, dtype=dtype), M)
    assert result.dtype == dtype
    tolerance = 1e-4 if dtype == torch.float32 else 1e-10
    np.testing.assert_allclose(result.numpy(), expected, atol=tolerance)
    back = apply_affine(expected, invert_affine(M))
    np.testing.assert_allclose(back, points, atol=1e-10)


@pytest.mark.parametrize(
    "center,box,rotation,flip",
    [((30.0, 20.0), 40.0, 0.0, False), ((45.0, 12.0), 33.0, 27.0, True),
     ((5.0, 50.0), 90.0, -70.0, False)],
)
def test_crop_image_matches_brute_force_bilinear(
    center: tuple[float, float], box: float, rotation: float, flip: bool
) -> None:
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, size=(40, 60, 3), dtype=np.uint8)
    size = 48
    M = crop_transform(center, box, rotation, size, flip=flip)
    result = crop_image(image, M, size)
    assert result.shape == (size, size, 3) and result.dtype == np.uint8
    reference = _reference_crop(image, M, size)
    assert np.max(np.abs(result.astype(float) - reference)) <= 1.0


def test_marker_appears_where_the_transformed_keypoint_says() -> None:
    rng = np.random.default_rng(3)
    height, width = 120, 160
    for trial in range(12):
        row, col = int(rng.integers(20, height - 20)), int(rng.integers(20, width - 20))
        image = np.zeros((height, width, 3), dtype=np.uint8)
        image[row, col] = (255, 0, 0)
        keypoint = np.array([[col + 0.5, row + 0.5]])
        center = keypoint[0] + rng.uniform(-20, 20, size=2)
        box = float(rng.uniform(60, 140))  # upsampling: the one-pixel marker cannot vanish
        M = crop_transform(center, box, float(rng.uniform(-60, 60)), SIZE, flip=bool(trial % 2))
        crop = crop_image(image, M, SIZE)
        brightest = np.unravel_index(np.argmax(crop[..., 0]), crop.shape[:2])
        u, v = apply_affine(keypoint, M)[0]
        assert crop[brightest][0] > 100 and crop[brightest][1] == 0
        assert abs(brightest[1] + 0.5 - u) <= 1.0 and abs(brightest[0] + 0.5 - v) <= 1.0


def test_out_of_image_region_is_zero_padded() -> None:
    image = np.full((50, 50, 3), 200, dtype=np.uint8)
    half_outside = crop_image(image, crop_transform((0.0, 25.0), 50.0, 0.0, 100), 100)
    assert np.all(half_outside[:, :50] == 0) and np.all(half_outside[:, 50:] == 200)
    assert np.all(crop_image(image, crop_transform((500.0, 500.0), 50.0, 0.0, 10), 10) == 0)


def test_flipping_a_crop_twice_gives_it_back_exactly() -> None:
    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, size=(90, 70, 3), dtype=np.uint8)
    M = crop_transform((30.0, 50.0), 80.0, 15.0, SIZE)
    M_flip = crop_transform((30.0, 50.0), 80.0, 15.0, SIZE, flip=True)
    mirror = crop_transform((SIZE / 2, SIZE / 2), SIZE, 0.0, SIZE, flip=True)
    once = crop_image(image, M_flip, SIZE)
    np.testing.assert_array_equal(once, crop_image(image, M, SIZE)[:, ::-1])
    np.testing.assert_array_equal(crop_image(once, mirror, SIZE), crop_image(image, M, SIZE))


def test_grey_images_keep_a_channel_axis() -> None:
    image = np.arange(100, dtype=np.uint8).reshape(10, 10)
    crop = crop_image(image, crop_transform((5.0, 5.0), 10.0, 0.0, 10), 10)
    assert crop.shape == (10, 10, 1)
    np.testing.assert_array_equal(crop[..., 0], image)


@pytest.mark.parametrize(
    "kwargs,match",
    [(dict(center=(1.0, 2.0, 3.0)), "center"), (dict(box_size=0.0), "box_size"),
     (dict(output_size=-1), "output_size"), (dict(rotation_deg=float("nan")), "rotation_deg"),
     (dict(center=(float("nan"), 0.0)), "center")],
)
def test_crop_transform_validates(kwargs: dict, match: str) -> None:
    arguments = dict(center=(0.0, 0.0), box_size=10.0, rotation_deg=0.0, output_size=224)
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=match):
        crop_transform(**arguments)


def test_apply_affine_and_crop_image_validate() -> None:
    with pytest.raises(ValueError, match="M must have shape"):
        apply_affine(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="points"):
        apply_affine(np.zeros((3, 1)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="uint8"):
        crop_image(np.zeros((4, 4, 3)), crop_transform((2.0, 2.0), 4.0, 0.0, 4), 4)
