"""Virtual-camera lifting data: camera geometry, projection, determinism, normalisation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from prohmr.body.joints import H36M_16_OUTPUT_3D, H36M_17_INPUT_2D, PELVIS_INDEX
from prohmr.data.cropping import apply_affine, crop_transform
from prohmr.data.lifting import (
    BOX_MARGIN,
    LIFTING_OUTPUT_POSITIONS,
    LIFTING_PELVIS,
    MIN_KEYPOINT_STD,
    VirtualCameraConfig,
    VirtualCameraLiftingDataset,
    box_normalize_keypoints,
    compute_keypoint_stats,
    look_at_rotation,
    sample_virtual_camera,
)
from prohmr.geometry import pixel_to_normalized

NUM_FRAMES = 40


def _skeletons(num_frames: int = NUM_FRAMES, seed: int = 0) -> np.ndarray:
    """``(N, 44, 3)`` body-frame joints: a standing stick figure (y up, facing +z) with
    random offsets, so that every frame differs."""
    rng = np.random.default_rng(seed)
    joints = rng.normal(scale=0.05, size=(num_frames, 44, 3))
    joints[..., 1] += np.linspace(-0.9, 0.8, 44)  # spread along the vertical
    joints[:, PELVIS_INDEX] = rng.normal(scale=0.02, size=(num_frames, 3))
    return joints


def test_joint_positions_follow_the_joint_tables() -> None:
    assert H36M_17_INPUT_2D[LIFTING_PELVIS] == PELVIS_INDEX
    assert [H36M_17_INPUT_2D[p] for p in LIFTING_OUTPUT_POSITIONS] == list(H36M_16_OUTPUT_3D)
    assert LIFTING_PELVIS not in LIFTING_OUTPUT_POSITIONS


def _reference_rotation(heading: float, elevation: float, roll: float) -> np.ndarray:
    """Look-at camera from its centre direction with np.cross, then the roll (scipy)."""
    h, e = math.radians(heading), math.radians(elevation)
    centre_direction = np.array([math.sin(h) * math.cos(e), math.sin(e), math.cos(h) * math.cos(e)])
    forward = -centre_direction
    right = np.cross(forward, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    # Rolling the camera by +r about its optical axis turns camera-frame points by -r.
    roll_matrix = Rotation.from_euler("z", -roll, degrees=True).as_matrix()
    return roll_matrix @ np.stack([right, down, forward])


@pytest.mark.parametrize(
    "heading, elevation, roll", [(0.0, 0.0, 0.0), (37.0, 25.0, 4.0), (-150.0, -8.0, -3.0)]
)
def test_look_at_rotation_matches_an_independent_construction(
    heading: float, elevation: float, roll: float
) -> None:
    rotation = look_at_rotation(heading, elevation, roll)
    np.testing.assert_allclose(rotation, _reference_rotation(heading, elevation, roll), atol=1e-12)
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(rotation) == pytest.approx(1.0)


def test_heading_and_elevation_mean_what_they_say() -> None:
    left = np.array([1.0, 0.0, 0.0])  # the body's left (+x), the body facing +z
    up = np.array([0.0, 1.0, 0.0])
    # In front of the body its left appears on the image right; from behind, on the left.
    assert (look_at_rotation(0.0, 0.0) @ left)[0] > 0.99
    assert (look_at_rotation(180.0, 0.0) @ left)[0] < -0.99
    # Up is image-up (negative y) without roll; from above the body's up tilts towards the
    # camera (negative depth).
    assert (look_at_rotation(30.0, 0.0) @ up)[1] < -0.99
    assert (look_at_rotation(30.0, 40.0) @ up)[2] == pytest.approx(-math.sin(math.radians(40.0)))


def test_sampled_camera_sits_at_the_drawn_distance_and_direction() -> None:
    config = VirtualCameraConfig()
    pelvis = np.array([0.1, -0.2, 0.05])
    for seed in range(5):
        camera = sample_virtual_camera(np.random.default_rng(seed), config, pelvis)
        h, e = math.radians(camera.heading_deg), math.radians(camera.elevation_deg)
        expected_centre = camera.look_at + camera.distance * np.array(
            [math.sin(h) * math.cos(e), math.sin(e), math.cos(h) * math.cos(e)]
        )
        np.testing.assert_allclose(camera.center, expected_centre, atol=1e-9)
        assert np.abs(camera.look_at - pelvis).max() <= config.look_at_offset
        assert config.distance[0] <= camera.distance <= config.distance[1]
        assert config.focal_length[0] <= camera.focal_length <= config.focal_length[1]
        np.testing.assert_allclose(camera.principal_point, [500.0, 500.0])


@pytest.mark.parametrize("train", [True, False])
def test_projection_matches_a_numpy_pinhole(train: bool) -> None:
    joints = _skeletons()
    dataset = VirtualCameraLiftingDataset(joints, train=train, keypoint_noise=0.0, seed=3)
    dataset.set_epoch(2)
    for index in (0, 7, 39):
        item = dataset[index]
        camera = dataset.camera_for(index)
        body = joints[index, list(H36M_17_INPUT_2D)]
        # Independent pinhole: camera centre and axes from the heading / elevation / roll.
        rotation = _reference_rotation(camera.heading_deg, camera.elevation_deg, camera.roll_deg)
        in_camera = (body - camera.center) @ rotation.T
        pixels = camera.focal_length * in_camera[:, :2] / in_camera[:, 2:] + camera.principal_point
        np.testing.assert_allclose(item["keypoints_2d"].numpy(), pixels, rtol=1e-6, atol=1e-3)
        relative = in_camera - in_camera[LIFTING_PELVIS]
        np.testing.assert_allclose(item["joints_3d"].numpy(), relative, atol=1e-6)
        assert float(item["joints_3d"][LIFTING_PELVIS].abs().max()) == 0.0
        # The returned extrinsics reproduce the same points: p = R X + t.
        np.testing.assert_allclose(
            body @ item["camera_rotation"].double().numpy().T
            + item["camera_translation"].double().numpy(),
            in_camera,
            atol=1e-5,
        )
        assert 2.5 < in_camera[LIFTING_PELVIS, 2] < 7.5


def test_draws_are_deterministic_per_seed_epoch_and_index() -> None:
    joints = _skeletons()
    first = VirtualCameraLiftingDataset(joints, seed=1)
    second = VirtualCameraLiftingDataset(joints, seed=1)
    assert torch.equal(first[5]["keypoints_2d"], second[5]["keypoints_2d"])
    other_seed = VirtualCameraLiftingDataset(joints, seed=2)
    assert not torch.equal(first[5]["keypoints_2d"], other_seed[5]["keypoints_2d"])
    before = first[5]["keypoints_2d"]
    first.set_epoch(1)
    assert not torch.equal(before, first[5]["keypoints_2d"])
    first.set_epoch(0)
    assert torch.equal(before, first[5]["keypoints_2d"])

    validation = VirtualCameraLiftingDataset(joints, train=False, seed=1)
    fixed = validation[5]["keypoints_2d"]
    validation.set_epoch(3)
    assert torch.equal(fixed, validation[5]["keypoints_2d"])


def test_training_noise_has_the_requested_size_relative_to_the_box() -> None:
    joints = _skeletons(200)
    noisy = VirtualCameraLiftingDataset(joints, keypoint_noise=0.02, seed=4)
    clean = VirtualCameraLiftingDataset(joints, keypoint_noise=0.0, seed=4)
    ratios = []
    for index in range(len(noisy)):
        pixels = clean[index]["keypoints_2d"].double()
        box = BOX_MARGIN * float((pixels.amax(0) - pixels.amin(0)).max())
        ratios.append(((noisy[index]["keypoints_2d"].double() - pixels) / box).flatten())
        # The noise never touches the 3D target.
        assert torch.equal(noisy[index]["joints_3d"], clean[index]["joints_3d"])
    std = float(torch.cat(ratios).std())
    assert std == pytest.approx(0.02, rel=0.05)
    # Validation items ignore the noise setting.
    validation = VirtualCameraLiftingDataset(joints, train=False, keypoint_noise=0.02, seed=4)
    validation_clean = VirtualCameraLiftingDataset(joints, train=False, keypoint_noise=0.0, seed=4)
    assert torch.equal(validation[3]["keypoints_2d"], validation_clean[3]["keypoints_2d"])


def test_frame_stride_and_npz_source(tmp_path) -> None:
    joints = _skeletons().astype(np.float32)
    path = tmp_path / "mocap.npz"
    np.savez(path, joints=joints, body_pose=np.zeros((len(joints), 72), np.float32))
    dataset = VirtualCameraLiftingDataset(path, train=False, frame_stride=3)
    assert len(dataset) == math.ceil(NUM_FRAMES / 3)
    np.testing.assert_allclose(dataset.joints[2], joints[6, list(H36M_17_INPUT_2D)], atol=1e-6)


def test_box_normalisation_equals_prohmr_crop_coordinates() -> None:
    rng = np.random.default_rng(0)
    keypoints = rng.uniform(50, 900, size=(3, 17, 2))
    normalized, center, size = box_normalize_keypoints(torch.from_numpy(keypoints))
    crop_size = 224
    for row in range(3):
        M = crop_transform(center[row].numpy(), float(size[row]), 0.0, crop_size)
        in_crop = torch.from_numpy(apply_affine(keypoints[row], M))
        expected = pixel_to_normalized(in_crop, image_size=crop_size)
        torch.testing.assert_close(normalized[row], expected, rtol=0, atol=1e-12)
        extent = keypoints[row].max(0) - keypoints[row].min(0)
        assert float(size[row]) == pytest.approx(BOX_MARGIN * extent.max())
    # Round trip, and the box halves of the larger side span [-0.5, 0.5] / margin.
    back = normalized * size[:, None, None] + center[:, None]
    torch.testing.assert_close(back, torch.from_numpy(keypoints))
    assert float(normalized.abs().max()) == pytest.approx(0.5 / BOX_MARGIN)


def test_box_normalisation_is_invariant_to_image_position_and_scale() -> None:
    keypoints = torch.rand(2, 17, 2, dtype=torch.float64) * 300
    moved = 2.5 * keypoints + torch.tensor([1000.0, -40.0], dtype=torch.float64)
    torch.testing.assert_close(
        box_normalize_keypoints(keypoints)[0], box_normalize_keypoints(moved)[0]
    )


def test_given_box_is_used() -> None:
    keypoints = torch.tensor([[[10.0, 20.0], [30.0, 60.0]]])
    normalized, _, _ = box_normalize_keypoints(
        keypoints, torch.tensor([[0.0, 0.0]]), torch.tensor([100.0])
    )
    torch.testing.assert_close(normalized, keypoints / 100.0)


def test_keypoint_stats_match_numpy() -> None:
    joints = _skeletons()
    dataset = VirtualCameraLiftingDataset(joints, seed=0)
    mean, std = compute_keypoint_stats(dataset)
    flat = []
    for index in range(len(dataset)):
        pixels = dataset[index]["keypoints_2d"].double().numpy()
        low, high = pixels.min(0), pixels.max(0)
        flat.append(((pixels - (low + high) / 2) / (BOX_MARGIN * (high - low).max())).reshape(-1))
    flat = np.stack(flat)
    np.testing.assert_allclose(mean.numpy(), flat.mean(0), atol=1e-6)
    expected_std = np.maximum(flat.std(0, ddof=1), MIN_KEYPOINT_STD)
    np.testing.assert_allclose(std.numpy(), expected_std, rtol=1e-5)
    assert mean.shape == (34,) and mean.dtype == torch.float32
    # A subset of evenly spaced items.
    sub_mean, _ = compute_keypoint_stats(dataset, max_items=5)
    assert not torch.allclose(sub_mean, mean)


# ------------------------------------------------------------------------------------ errors
def test_errors_name_the_problem(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"\(N, 44, 3\)"):
        VirtualCameraLiftingDataset(np.zeros((4, 17, 3)))
    with pytest.raises(ValueError, match="finite"):
        VirtualCameraLiftingDataset(np.full((2, 44, 3), np.nan))
    with pytest.raises(ValueError, match="'joints'"):
        VirtualCameraLiftingDataset({"body_pose": np.zeros((2, 72))})
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        VirtualCameraLiftingDataset(tmp_path / "missing.npz")
    with pytest.raises(ValueError, match="frame_stride"):
        VirtualCameraLiftingDataset(_skeletons(), frame_stride=0)
    with pytest.raises(ValueError, match="keypoint_noise"):
        VirtualCameraLiftingDataset(_skeletons(), keypoint_noise=-1.0)
    with pytest.raises(ValueError, match="elevation_deg"):
        VirtualCameraConfig(elevation_deg=(-10.0, 90.0))
    with pytest.raises(ValueError, match="distance"):
        VirtualCameraConfig(distance=(5.0, 3.0))
    with pytest.raises(ValueError, match="unknown field"):
        VirtualCameraConfig.from_dict({"fov": 1.0})
    with pytest.raises(ValueError, match=r"\(\.\.\., J, 2\)"):
        box_normalize_keypoints(torch.zeros(17, 3))
    with pytest.raises(ValueError, match="NaN"):
        box_normalize_keypoints(torch.full((17, 2), float("nan")))
    with pytest.raises(ValueError, match="no size"):
        box_normalize_keypoints(torch.ones(17, 2))
    with pytest.raises(ValueError, match="both"):
        box_normalize_keypoints(torch.rand(17, 2), box_center=torch.zeros(2))
    with pytest.raises(IndexError):
        VirtualCameraLiftingDataset(_skeletons())[NUM_FRAMES]


def test_camera_config_round_trips_through_a_dict() -> None:
    config = VirtualCameraConfig(distance=(4.0, 5.0), image_size=(640, 480))
    assert VirtualCameraConfig.from_dict(config.to_dict()) == config
    camera = sample_virtual_camera(np.random.default_rng(0), config, np.zeros(3))
    np.testing.assert_allclose(camera.principal_point, [320.0, 240.0])
