"""Augmentation draws, the left/right flips and the in-plane rotation of poses and joints."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from prohmr.body.joints import PROHMR_FLIP_PERMUTATION, PROHMR_JOINT_NAMES, SMPL_FLIP_PERMUTATION
from prohmr.data.augmentation import (
    EXTREME_CROP_REGIONS,
    AugmentationConfig,
    AugmentationParams,
    augment_box,
    camera_roll_matrix,
    eligible_extreme_crop_regions,
    extreme_crop_box,
    flip_keypoints,
    flip_smpl_pose,
    flip_smpl_rotation_matrices,
    rotate_keypoints_3d,
    rotate_smpl_pose,
    sample_augmentation,
)
from prohmr.data.cropping import apply_affine, crop_transform
from prohmr.geometry.cameras import perspective_projection
from prohmr.geometry.rotations import axis_angle_to_matrix

def _random_pose(rng: np.random.Generator, batch: int) -> np.ndarray:
    return rng.uniform(-1.2, 1.2, size=(batch, 72))


# --- flips ------------------------------------------------------------------------------


def test_mirrored_rotation_is_axis_angle_with_y_and_z_negated() -> None:
    """For R = exp(aa), D R D with D = diag(-1, 1, 1) equals exp((x, -y, -z)) (scipy)."""
    rng = np.random.default_rng(0)
    aa = rng.uniform(-np.pi, np.pi, size=(200, 3))
    D = np.diag([-1.0, 1.0, 1.0])
    mirrored = D @ Rotation.from_rotvec(aa).as_matrix() @ D
    expected = Rotation.from_rotvec(aa * np.array([1.0, -1.0, -1.0])).as_matrix()
    np.testing.assert_allclose(mirrored, expected, atol=1e-12)


def test_flip_smpl_pose_matches_scipy_mirror_joint_by_joint() -> None:
    rng = np.random.default_rng(1)
    pose = _random_pose(rng, 4)
    flipped = flip_smpl_pose(pose).reshape(4, 24, 3)
    D = np.diag([-1.0, 1.0, 1.0])
    source = Rotation.from_rotvec(pose.reshape(-1, 3)).as_matrix().reshape(4, 24, 3, 3)
    for joint, other in enumerate(SMPL_FLIP_PERMUTATION):
        expected = D @ source[:, other] @ D
        got = Rotation.from_rotvec(flipped[:, joint]).as_matrix()
        np.testing.assert_allclose(got, expected, atol=1e-12)


def test_flip_smpl_pose_left_hip_becomes_right_hip() -> None:
    pose = np.zeros(72)
    pose[3:6] = (0.1, 0.2, 0.3)  # SMPL joint 1 = left_hip
    flipped = flip_smpl_pose(pose)
    np.testing.assert_array_equal(flipped[6:9], [0.1, -0.2, -0.3])  # joint 2 = right_hip
    np.testing.assert_array_equal(flipped[3:6], 0.0)


def test_flips_twice_are_exact_identities(device: torch.device, dtype: torch.dtype) -> None:
    generator = torch.Generator().manual_seed(2)
    pose = torch.randn(3, 5, 72, generator=generator, dtype=dtype).to(device)
    assert torch.equal(flip_smpl_pose(flip_smpl_pose(pose)), pose)
    keypoints = torch.randn(3, 44, 4, generator=generator, dtype=dtype).to(device)
    assert torch.equal(flip_keypoints(flip_keypoints(keypoints)), keypoints)
    once = flip_smpl_pose(pose)
    assert once.dtype == dtype and once.device.type == device.type
    rotations = axis_angle_to_matrix(pose.reshape(3, 5, 24, 3))
    assert torch.equal(flip_smpl_rotation_matrices(flip_smpl_rotation_matrices(rotations)),
                       rotations)
    pixels = np.random.default_rng(2).uniform(0, 640, size=(44, 3))
    np.testing.assert_allclose(flip_keypoints(flip_keypoints(pixels, 640.0), 640.0), pixels,
                               atol=1e-12)


def test_flip_rotation_matrices_agrees_with_axis_angle_flip(dtype: torch.dtype) -> None:
    pose = torch.tensor(_random_pose(np.random.default_rng(3), 6), dtype=dtype)
    from_axis_angle = axis_angle_to_matrix(flip_smpl_pose(pose).reshape(6, 24, 3))
    from_matrices = flip_smpl_rotation_matrices(axis_angle_to_matrix(pose.reshape(6, 24, 3)))
    tolerance = 1e-6 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(from_matrices, from_axis_angle, atol=tolerance, rtol=0)


def test_flip_keypoints_swaps_sides_and_mirrors_x() -> None:
    keypoints = np.arange(44 * 3, dtype=float).reshape(44, 3)
    flipped = flip_keypoints(keypoints)
    for joint, other in enumerate(PROHMR_FLIP_PERMUTATION):
        np.testing.assert_array_equal(flipped[joint], [-keypoints[other, 0], *keypoints[other, 1:]])
    # Left/right names really swap; centre joints stay.
    names = PROHMR_JOINT_NAMES
    assert names[PROHMR_FLIP_PERMUTATION[names.index("RWrist")]] == "LWrist"
    assert names[PROHMR_FLIP_PERMUTATION[names.index("R_Ankle")]] == "L_Ankle"
    assert PROHMR_FLIP_PERMUTATION[names.index("Nose")] == names.index("Nose")
    in_pixels = flip_keypoints(keypoints, image_width=100.0)
    np.testing.assert_array_equal(
        in_pixels[:, 0], 100.0 - keypoints[list(PROHMR_FLIP_PERMUTATION), 0]
    )


def test_flip_validation() -> None:
    with pytest.raises(ValueError, match=r"\(\.\.\., 72\)"):
        flip_smpl_pose(np.zeros(69))
    with pytest.raises(ValueError, match=r"\(\.\.\., 44, C\)"):
        flip_keypoints(np.zeros((25, 3)))
    with pytest.raises(ValueError, match=r"\(\.\.\., 24, 3, 3\)"):
        flip_smpl_rotation_matrices(np.zeros((23, 3, 3)))


# --- rotation -----------------------------------------------------------------------------


def test_rotate_smpl_pose_premultiplies_the_camera_roll() -> None:
    rng = np.random.default_rng(4)
    pose = _random_pose(rng, 8)
    for angle in (-60.0, 12.5, 45.0, 179.0):
        rotated = rotate_smpl_pose(pose, angle)
        np.testing.assert_array_equal(rotated[:, 3:], pose[:, 3:])
        # Independent reference: rotation about +z by -angle (scipy), applied on the left.
        roll = Rotation.from_euler("z", -angle, degrees=True)
        expected = (roll * Rotation.from_rotvec(pose[:, :3])).as_matrix()
        np.testing.assert_allclose(Rotation.from_rotvec(rotated[:, :3]).as_matrix(), expected,
                                   atol=1e-10)
    np.testing.assert_allclose(camera_roll_matrix(30.0),
                               Rotation.from_euler("z", -30.0, degrees=True).as_matrix(),
                               atol=1e-15)


def test_rotate_functions_keep_type_dtype_device(device: torch.device, dtype: torch.dtype) -> None:
    pose = torch.randn(2, 72, dtype=dtype, device=device)
    rotated = rotate_smpl_pose(pose, 20.0)
    assert rotated.dtype == dtype and rotated.device.type == device.type
    keypoints = torch.randn(2, 44, 4, dtype=dtype, device=device)
    turned = rotate_keypoints_3d(keypoints, 20.0)
    assert turned.dtype == dtype and turned.device.type == device.type
    assert torch.equal(turned[..., 3], keypoints[..., 3])
    roll = torch.tensor(camera_roll_matrix(20.0), dtype=dtype, device=device)
    tolerance = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(turned[..., :3], keypoints[..., :3] @ roll.T, atol=tolerance,
                               rtol=0)


@pytest.mark.parametrize("angle", [-50.0, 17.0, 60.0])
def test_rotated_global_orientation_projects_onto_the_rotated_crop_keypoints(angle: float) -> None:
    """Project body points posed with the new global orientation; they must land on the
    2D keypoints carried through the rotated crop (perspective camera, crop centre on the
    optical axis)."""
    rng = np.random.default_rng(5)
    body_points = torch.tensor(rng.uniform(-0.8, 0.8, size=(30, 3)))
    pose = np.zeros(72)
    pose[:3] = rng.uniform(-1.0, 1.0, size=3)
    translation = torch.tensor([0.0, 0.0, 12.0], dtype=torch.float64)
    focal, center, box = 1500.0, np.array([320.0, 240.0]), 260.0

    def project(global_orient: np.ndarray, focal_length: float, principal: object) -> np.ndarray:
        rotation = axis_angle_to_matrix(torch.tensor(global_orient))
        return perspective_projection(body_points, translation, focal_length, principal,
                                      rotation=rotation).numpy()

    image_keypoints = project(pose[:3], focal, torch.tensor(center))
    M = crop_transform(center, box, angle, 224)
    crop_keypoints = apply_affine(image_keypoints, M) / 224 - 0.5
    rotated = rotate_smpl_pose(pose, angle)
    expected = project(rotated[:3], focal / box, 0.0)
    np.testing.assert_allclose(crop_keypoints, expected, atol=1e-10)
    # 3D keypoints turn the same way as the posed points.
    posed = body_points.numpy() @ axis_angle_to_matrix(torch.tensor(pose[:3])).numpy().T
    np.testing.assert_allclose(
        rotate_keypoints_3d(posed, angle),
        body_points.numpy() @ axis_angle_to_matrix(torch.tensor(rotated[:3])).numpy().T,
        atol=1e-10,
    )


# --- sampling -----------------------------------------------------------------------------


def _full_body_keypoints() -> np.ndarray:
    rng = np.random.default_rng(6)
    keypoints = np.ones((44, 3))
    keypoints[:, :2] = rng.uniform(100, 300, size=(44, 2))
    return keypoints


def test_sampled_parameters_follow_the_configured_distributions() -> None:
    rng = np.random.default_rng(7)
    config = AugmentationConfig()
    keypoints = _full_body_keypoints()
    draws = [sample_augmentation(config, rng, keypoints) for _ in range(4000)]
    scale = np.array([d.scale for d in draws])
    rotation = np.array([d.rotation_deg for d in draws])
    translation = np.array([d.translation for d in draws])
    colors = np.array([d.color_scale for d in draws])
    assert scale.min() >= 0.7 and scale.max() <= 1.3
    assert np.mean(scale == 1.3) == pytest.approx(0.1587, abs=0.02)  # P(N > 1) clipped
    rotated = rotation != 0
    assert rotated.mean() == pytest.approx(0.6, abs=0.025)
    assert np.abs(rotation).max() == 60.0
    assert np.std(np.clip(rotation[rotated], -40, 40)) == pytest.approx(26.5, abs=1.5)
    assert np.abs(translation).max() == pytest.approx(0.02)
    assert colors.min() >= 0.8 and colors.max() <= 1.2
    assert np.mean(colors) == pytest.approx(1.0, abs=0.01)
    assert np.mean([d.flip for d in draws]) == pytest.approx(0.5, abs=0.025)
    regions = [d.extreme_crop for d in draws]
    assert np.mean([r is not None for r in regions]) == pytest.approx(0.1, abs=0.015)
    chosen = [r for r in regions if r is not None]
    assert chosen.count("hips") / len(chosen) == pytest.approx(0.7, abs=0.07)
    assert chosen.count("head") > 0 and chosen.count("shoulders") > 0


def test_sampling_is_deterministic_and_disabled_config_is_identity() -> None:
    keypoints = _full_body_keypoints()
    first = [sample_augmentation(AugmentationConfig(), np.random.default_rng(8), keypoints)]
    again = [sample_augmentation(AugmentationConfig(), np.random.default_rng(8), keypoints)]
    assert first == again
    other = sample_augmentation(AugmentationConfig(), np.random.default_rng(9), keypoints)
    assert other != first[0]
    rng = np.random.default_rng(10)
    for _ in range(50):
        assert sample_augmentation(AugmentationConfig.disabled(), rng, keypoints) == (
            AugmentationParams()
        )


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="flip_probability"):
        AugmentationConfig(flip_probability=1.5)
    with pytest.raises(ValueError, match="scale_factor"):
        AugmentationConfig(scale_factor=1.0)
    with pytest.raises(ValueError, match="extreme_crop_weights"):
        AugmentationConfig(extreme_crop_weights=(1.0, -1.0, 0.0))
    with pytest.raises(ValueError, match="rotation_probability"):
        dataclasses.replace(AugmentationConfig(), rotation_probability=-0.1)


# --- extreme crop ---------------------------------------------------------------------------


def test_extreme_crop_regions_are_nested_and_named() -> None:
    hips, shoulders, head = (set(EXTREME_CROP_REGIONS[k]) for k in ("hips", "shoulders", "head"))
    assert head < shoulders < hips
    names = {PROHMR_JOINT_NAMES[i] for i in hips}
    assert "RHip" in names and "RKnee" not in names and "L_Ankle" not in names


def test_extreme_crop_eligibility_rule() -> None:
    keypoints = _full_body_keypoints()
    assert eligible_extreme_crop_regions(keypoints) == ["hips", "shoulders", "head"]
    upper_only = keypoints.copy()
    upper_only[[i for i in range(44) if i not in EXTREME_CROP_REGIONS["hips"]], 2] = 0
    assert eligible_extreme_crop_regions(upper_only) == ["shoulders", "head"]
    head_only = keypoints.copy()
    head_only[[i for i in range(44) if i not in EXTREME_CROP_REGIONS["head"]], 2] = 0
    assert eligible_extreme_crop_regions(head_only) == []
    two_head_joints = keypoints.copy()
    two_head_joints[list(EXTREME_CROP_REGIONS["head"])[2:], 2] = 0
    assert "head" not in eligible_extreme_crop_regions(two_head_joints)


def test_extreme_crop_box_surrounds_the_region_and_never_grows() -> None:
    keypoints = _full_body_keypoints()
    keypoints[0, 2] = 0  # an invisible nose must not count
    keypoints[0, :2] = (10_000.0, -5_000.0)
    center, size = extreme_crop_box(keypoints, "shoulders", margin=1.2)
    visible = keypoints[list(EXTREME_CROP_REGIONS["shoulders"])]
    visible = visible[visible[:, 2] > 0, :2]
    low, high = visible.min(axis=0), visible.max(axis=0)
    np.testing.assert_allclose(center, (low + high) / 2)
    assert size == pytest.approx(1.2 * np.max(high - low))
    params = AugmentationParams(extreme_crop="shoulders")
    box_center, box_size = augment_box(np.array([0.0, 0.0]), 50.0, params, keypoints)
    np.testing.assert_allclose(box_center, center)
    assert box_size == 50.0  # the region box is larger than the original: keep the original
    with pytest.raises(ValueError, match="region"):
        extreme_crop_box(keypoints, "feet")
    with pytest.raises(ValueError, match="keypoints_2d"):
        augment_box(np.zeros(2), 10.0, params)
