"""Keypoint fitting with the image-conditioned prior (SPEC §6.1) on synthetic people."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np
import pytest
import torch

from prohmr.constants import IMAGENET_MEAN, IMAGENET_STD
from prohmr.data.cropping import crop_image, crop_transform
from prohmr.data.synthetic import generate_samples
from prohmr.evaluation import pa_mpjpe
from prohmr.fitting import (
    HIP_JOINTS,
    KeypointFitWeights,
    LBFGSSettings,
    fit_keypoints,
)
from prohmr.geometry import (
    axis_angle_to_matrix,
    crop_to_full_frame_translation,
    matrix_to_axis_angle,
    rot6d_to_matrix,
    weak_perspective_to_translation,
)
from prohmr.models.prohmr import ProHMR

FOCAL, CROP = 5000.0, 224
SHORT = LBFGSSettings(max_steps=4)


class Scene(NamedTuple):
    features: torch.Tensor  # (B, C)
    keypoints: torch.Tensor  # (B, 44, 3) normalised crop coordinates, all confident
    joints_3d: torch.Tensor  # (B, 44, 3) ground truth
    z: torch.Tensor  # (B, 144) ground-truth latents
    start_joints_3d: torch.Tensor  # (B, 44, 3) the regression's


def _scene(model: ProHMR, count: int, seed: int, z_scale: float = 0.6) -> Scene:
    """People posed by the flow at random latents, with perturbed betas and cameras."""
    dtype = model.flow.flow.dtype
    generator = torch.Generator().manual_seed(seed)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator, dtype=torch.float64).to(dtype)

    features = randn(count, model.flow.context_features)
    z = z_scale * randn(count, 144)
    with torch.no_grad():
        start = model.predict_from_features(features, z=torch.zeros_like(z)[:, None])
        pose = model.flow.flow.sample(context=features, z=z[:, None]).samples[:, 0]
        rotations = rot6d_to_matrix(pose.reshape(count, 24, 6))
        betas = start.betas[:, 0] + 0.3 * randn(count, 10)
        translation = start.camera_translation[:, 0] + randn(count, 3) * torch.tensor(
            [0.05, 0.05, 3.0], dtype=dtype
        )
        joints = model.body_model(rotations[:, :1], rotations[:, 1:], betas).joints
        camera = joints + translation[:, None]
        normalised = FOCAL * camera[..., :2] / camera[..., 2:] / CROP
    keypoints = torch.cat([normalised, torch.ones(count, 44, 1, dtype=dtype)], dim=-1)
    return Scene(features, keypoints, joints, z, start.joints_3d[:, 0])


def _gmof(residual: torch.Tensor, sigma: float = 100.0) -> torch.Tensor:
    return sigma**2 * residual**2 / (sigma**2 + residual**2)


def test_clean_keypoints_fit_in_2d_without_hurting_3d(make_model: Callable[..., ProHMR]) -> None:
    model = make_model(torch.float64)
    scene = _scene(model, 4, seed=1)
    fit = fit_keypoints(model, scene.keypoints, features=scene.features, use_hips=True,
                        settings=LBFGSSettings(max_steps=8))
    assert (fit.initial_reprojection_error > 5.0).all()
    assert (fit.reprojection_error < 0.05 * fit.initial_reprojection_error).all()
    before = pa_mpjpe(scene.start_joints_3d, scene.joints_3d).mean()
    after = pa_mpjpe(fit.joints_3d, scene.joints_3d).mean()
    assert after < before
    assert (fit.loss < fit.initial_loss).all()


def test_result_matches_an_independent_computation(make_model: Callable[..., ProHMR]) -> None:
    """Poses, joints, projections and every loss term recomputed from scratch (float64)."""
    model = make_model(torch.float64)
    scene = _scene(model, 2, seed=2)
    keypoints = scene.keypoints.clone()
    keypoints[..., 2] = torch.linspace(0.2, 1.0, 44, dtype=torch.float64)
    fit = fit_keypoints(model, keypoints, features=scene.features, settings=SHORT)
    confidence = keypoints[..., 2].clone()
    confidence[:, list(HIP_JOINTS)] = 0.0

    with torch.no_grad():
        pose = model.flow.flow.sample(context=scene.features, z=fit.z[:, None]).samples[:, 0]
        rotations = rot6d_to_matrix(pose.reshape(2, 24, 6))
        body = model.body_model(rotations[:, :1], rotations[:, 1:], fit.betas)
        head = model.flow.fc_head(scene.features)
        start_translation = weak_perspective_to_translation(head.cam[:, 0])

    def terms(joints: torch.Tensor, translation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        camera = joints + translation[:, None]
        pixels = FOCAL * camera[..., :2] / camera[..., 2:]
        residual = _gmof(pixels - keypoints[..., :2] * CROP).sum(-1)
        loss = (1000.0 / CROP) ** 2 * (confidence**2 * residual).sum(-1)
        used = confidence > 0
        error = ((pixels - keypoints[..., :2] * CROP).norm(dim=-1) * used).sum(-1) / used.sum(-1)
        return loss, error

    torch.testing.assert_close(fit.global_orient, rotations[:, :1])
    torch.testing.assert_close(fit.body_pose, rotations[:, 1:])
    torch.testing.assert_close(fit.pose_6d, pose)
    torch.testing.assert_close(fit.vertices, body.vertices)
    torch.testing.assert_close(fit.joints_3d, body.joints)
    camera = body.joints + fit.camera_translation[:, None]
    torch.testing.assert_close(fit.joints_2d, FOCAL * camera[..., :2] / camera[..., 2:] / CROP)
    reprojection, error = terms(body.joints, fit.camera_translation)
    torch.testing.assert_close(fit.reprojection_loss, reprojection)
    torch.testing.assert_close(fit.reprojection_error, error)
    torch.testing.assert_close(fit.pose_prior_loss, 16.0 * (fit.z**2).sum(-1))
    torch.testing.assert_close(fit.shape_prior_loss, 36.0 * (fit.betas**2).sum(-1))
    torch.testing.assert_close(fit.loss, reprojection + fit.pose_prior_loss + fit.shape_prior_loss)
    # The start: the mode, the head's betas and camera.
    initial_reprojection, initial_error = terms(scene.start_joints_3d, start_translation)
    initial_shape_prior = 36.0 * (head.betas[:, 0] ** 2).sum(-1)
    torch.testing.assert_close(fit.initial_loss, initial_reprojection + initial_shape_prior)
    torch.testing.assert_close(fit.initial_reprojection_error, initial_error)
    assert fit.mode == "crop" and fit.focal_length == FOCAL
    torch.testing.assert_close(fit.principal_point, torch.full((2, 2), 112.0, dtype=torch.float64))
    assert (fit.iterations >= 1).all() and (fit.iterations <= SHORT.max_steps).all()


def test_batched_fitting_equals_fitting_each_person_alone(make_model: Callable[..., ProHMR]) -> None:
    model = make_model(torch.float64)
    scene = _scene(model, 3, seed=3)
    settings = LBFGSSettings(max_steps=3)
    batched = fit_keypoints(model, scene.keypoints, features=scene.features, settings=settings)
    for index in range(3):
        alone = fit_keypoints(model, scene.keypoints[index : index + 1],
                              features=scene.features[index : index + 1], settings=settings)
        for name in ("z", "betas", "camera_translation", "loss", "joints_3d"):
            # Equal up to the round-off of batched matrix products (1e-16), which L-BFGS
            # amplifies a little over ~100 evaluations.
            torch.testing.assert_close(getattr(alone, name)[0], getattr(batched, name)[index],
                                       rtol=1e-5, atol=1e-6)
        assert alone.iterations[0] == batched.iterations[index]
        assert alone.evaluations[0] == batched.evaluations[index]


def test_inputs_and_model_are_left_unchanged(make_model: Callable[..., ProHMR]) -> None:
    model = make_model(torch.float32).train()
    model.flow.fc_head.requires_grad_(False)
    flags = {name: p.requires_grad for name, p in model.named_parameters()}
    modes = {name: m.training for name, m in model.named_modules()}
    state = {name: value.clone() for name, value in model.state_dict().items()}
    scene = _scene(model.eval(), 2, seed=4)
    model.train()
    inputs = (scene.keypoints, scene.features, 0.1 * torch.ones(2, 144))
    copies = [value.clone() for value in inputs]
    fit = fit_keypoints(model, inputs[0], features=inputs[1], init_z=inputs[2], settings=SHORT)
    for value, copy in zip(inputs, copies):
        assert torch.equal(value, copy)
    assert {name: p.requires_grad for name, p in model.named_parameters()} == flags
    assert {name: m.training for name, m in model.named_modules()} == modes
    for name, value in model.state_dict().items():
        assert torch.equal(value, state[name]), name
    assert all(p.grad is None for p in model.parameters())
    assert not fit.z.requires_grad and not fit.vertices.requires_grad
    # Evaluation mode was used inside although the model was training: deterministic.
    again = fit_keypoints(model, inputs[0], features=inputs[1], init_z=inputs[2], settings=SHORT)
    assert torch.equal(fit.z, again.z)


def test_hips_option(make_model: Callable[..., ProHMR]) -> None:
    model = make_model(torch.float64)
    scene = _scene(model, 2, seed=5)
    moved = scene.keypoints.clone()
    moved[:, list(HIP_JOINTS), :2] += 0.2
    settings = LBFGSSettings(max_steps=2)
    ignored = fit_keypoints(model, scene.keypoints, features=scene.features, settings=settings)
    ignored_moved = fit_keypoints(model, moved, features=scene.features, settings=settings)
    assert torch.equal(ignored.z, ignored_moved.z)
    used = fit_keypoints(model, scene.keypoints, features=scene.features, settings=settings,
                         use_hips=True)
    used_moved = fit_keypoints(model, moved, features=scene.features, settings=settings,
                               use_hips=True)
    assert (used.z - used_moved.z).abs().max() > 1e-2
    assert (used_moved.reprojection_error > 5 * used.reprojection_error).all()


def test_crop_and_full_frame_agree_for_a_centred_crop_box(make_model: Callable[..., ProHMR]) -> None:
    """A 224-px box centred on a 224 x 224 image makes both cameras the same."""
    model = make_model(torch.float64)
    scene = _scene(model, 2, seed=6)
    crop = fit_keypoints(model, scene.keypoints, features=scene.features, settings=SHORT)
    pixels = scene.keypoints.clone()
    pixels[..., :2] = (pixels[..., :2] + 0.5) * CROP
    full = fit_keypoints(
        model, pixels, features=scene.features, settings=SHORT, mode="full_frame",
        box_center=torch.full((2, 2), 112.0), box_size=torch.full((2,), 224.0),
        image_size=torch.full((2, 2), 224.0),
    )
    for name in ("z", "betas", "camera_translation", "loss", "reprojection_error"):
        torch.testing.assert_close(getattr(full, name), getattr(crop, name), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(full.joints_2d, (crop.joints_2d + 0.5) * CROP)
    torch.testing.assert_close(full.principal_point, crop.principal_point)


def test_full_frame_fitting_in_image_pixels(make_model: Callable[..., ProHMR]) -> None:
    model = make_model(torch.float32)
    scene = _scene(model, 2, seed=7)
    image_size = torch.tensor([[1000.0, 600.0], [640.0, 480.0]])
    box_center = torch.tensor([[700.0, 250.0], [200.0, 300.0]])
    box_size = torch.tensor([300.0, 150.0])
    pixels = scene.keypoints.clone()
    pixels[..., :2] = box_center[:, None] + pixels[..., :2] * box_size[:, None, None]
    fit = fit_keypoints(model, pixels, features=scene.features, settings=SHORT,
                        mode="full_frame", box_center=box_center, box_size=box_size,
                        image_size=image_size, use_hips=True)
    camera = fit.joints_3d + fit.camera_translation[:, None]
    projected = FOCAL * camera[..., :2] / camera[..., 2:] + 0.5 * image_size[:, None]
    torch.testing.assert_close(fit.joints_2d, projected)
    torch.testing.assert_close(fit.principal_point, 0.5 * image_size)
    with torch.no_grad():
        cam = model.flow.fc_head(scene.features).cam[:, 0]
        start = crop_to_full_frame_translation(cam, box_center, box_size, image_size)
        start_camera = scene.start_joints_3d + start[:, None]
        start_pixels = FOCAL * start_camera[..., :2] / start_camera[..., 2:] + 0.5 * image_size[:, None]
    initial_error = (start_pixels - pixels[..., :2]).norm(dim=-1).mean(-1)
    torch.testing.assert_close(fit.initial_reprojection_error, initial_error)
    assert (fit.reprojection_error < 0.2 * fit.initial_reprojection_error).all()


def test_synthetic_world_images_in_the_full_frame_camera(make_model: Callable[..., ProHMR]) -> None:
    """Images of the synthetic world (exact labels; at 224 px its camera is ProHMR's
    full-frame camera): crop, regress, fit to the true keypoints in image pixels."""
    model = make_model(torch.float32)
    samples = generate_samples([0, 1, 2], image_size=CROP, seed=3)

    def stack(name: str) -> torch.Tensor:
        return torch.tensor(np.stack([getattr(sample, name) for sample in samples]))

    rotations = axis_angle_to_matrix(stack("body_pose").reshape(3, 24, 3))
    with torch.no_grad():
        truth = model.body_model(rotations[:, :1], rotations[:, 1:], stack("betas"))
    camera = truth.joints + stack("camera_translation")[:, None]
    keypoints = stack("keypoints_2d")
    torch.testing.assert_close(FOCAL * camera[..., :2] / camera[..., 2:] + CROP / 2,
                               keypoints[..., :2], atol=1e-3, rtol=0)
    mean = torch.tensor(IMAGENET_MEAN)[:, None, None]
    std = torch.tensor(IMAGENET_STD)[:, None, None]
    crops = []
    for sample in samples:
        transform = crop_transform(sample.center, 200 * sample.scale, 0.0, CROP)
        pixels = torch.tensor(crop_image(sample.image, transform, CROP), dtype=torch.float32)
        crops.append((pixels.permute(2, 0, 1) / 255 - mean) / std)
    crops = torch.stack(crops)
    fit = fit_keypoints(
        model, keypoints, images=crops, mode="full_frame", box_center=stack("center"),
        box_size=200 * stack("scale"), image_size=torch.full((3, 2), float(CROP)),
        use_hips=True, settings=LBFGSSettings(max_steps=6),
    )
    assert (fit.reprojection_error < 0.1 * fit.initial_reprojection_error).all()
    with torch.no_grad():
        start = model.predict_from_features(model.features(crops), z=torch.zeros(3, 1, 144))
    joints_3d = stack("keypoints_3d")[..., :3]
    assert (pa_mpjpe(fit.joints_3d, joints_3d) < pa_mpjpe(start.joints_3d[:, 0], joints_3d)).all()


def test_prior_keeps_poses_plausible_with_noisy_and_missing_keypoints(
    make_model: Callable[..., ProHMR], pose_mean: Callable[..., torch.Tensor]
) -> None:
    """Half the joints missing, 6 px noise: without the ‖z‖² term the pose leaves the
    distribution the prior was built on (measured independently, in axis-angle space)."""
    model = make_model(torch.float64)
    scene = _scene(model, 3, seed=8, z_scale=0.5)
    generator = torch.Generator().manual_seed(9)
    noisy = scene.keypoints.clone()
    noisy[..., :2] += 6.0 / CROP * torch.randn(3, 44, 2, generator=generator, dtype=torch.float64)
    noisy[..., 2] = (torch.rand(3, 44, generator=generator, dtype=torch.float64) > 0.5).double()
    settings = LBFGSSettings(max_steps=10)
    results = {
        weight: fit_keypoints(model, noisy, features=scene.features, use_hips=True,
                              settings=settings, weights=KeypointFitWeights(pose_prior=weight))
        for weight in (4.0, 0.0)
    }

    def implausibility(body_pose: torch.Tensor) -> torch.Tensor:
        deviation = matrix_to_axis_angle(body_pose) - pose_mean()
        return (deviation**2).mean(dim=(-1, -2)) / 0.3**2  # 1 on the prior's own poses

    with_prior, without = results[4.0], results[0.0]
    assert (with_prior.z.norm(dim=-1) < 0.6 * without.z.norm(dim=-1)).all()
    assert implausibility(with_prior.body_pose).mean() < 0.6 * implausibility(without.body_pose).mean()
    assert pa_mpjpe(with_prior.joints_3d, scene.joints_3d).mean() < pa_mpjpe(
        without.joints_3d, scene.joints_3d).mean()


def test_images_give_the_same_fit_as_their_features(make_model: Callable[..., ProHMR]) -> None:
    model = make_model(torch.float32)
    images = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(10))
    with torch.no_grad():
        features = model.features(images)
        start = model.predict_from_features(features, z=torch.zeros(2, 1, 144))
    keypoints = torch.cat([start.joints_2d[:, 0] + 0.02, torch.ones(2, 44, 1)], dim=-1)
    settings = LBFGSSettings(max_steps=2)
    from_images = fit_keypoints(model, keypoints, images=images, settings=settings)
    from_features = fit_keypoints(model, keypoints, features=features, settings=settings)
    torch.testing.assert_close(from_images.z, from_features.z)


def test_body25_keypoints_are_padded_with_missing_extra_joints(
    make_model: Callable[..., ProHMR],
) -> None:
    model = make_model(torch.float64)
    scene = _scene(model, 1, seed=11)
    padded = scene.keypoints.clone()
    padded[:, 25:] = 0.0
    settings = LBFGSSettings(max_steps=2)
    short = fit_keypoints(model, scene.keypoints[:, :25], features=scene.features, settings=settings)
    full = fit_keypoints(model, padded, features=scene.features, settings=settings)
    assert torch.equal(short.z, full.z)


def test_runs_on_every_device(make_model: Callable[..., ProHMR], device: torch.device) -> None:
    model = make_model(torch.float32)
    scene = _scene(model, 2, seed=12)
    reference = fit_keypoints(model, scene.keypoints, features=scene.features, settings=SHORT)
    fit = fit_keypoints(model.to(device), scene.keypoints, features=scene.features, settings=SHORT)
    assert fit.z.device.type == device.type and fit.vertices.device.type == device.type
    torch.testing.assert_close(fit.reprojection_error.cpu(), reference.reprojection_error,
                               rtol=0.05, atol=0.05)


@pytest.mark.parametrize(
    "case, message",
    [
        ({"keypoints_2d": torch.zeros(2, 44, 2)}, "keypoints_2d"),
        ({"keypoints_2d": torch.full((2, 44, 3), float("nan"))}, "NaN"),
        ({"keypoints_2d": torch.zeros(2, 44, 3)}, "confidence > 0"),
        ({"keypoints_2d": -torch.ones(2, 44, 3)}, "negative"),
        ({"mode": "weak"}, "mode"),
        ({"mode": "full_frame"}, "box_center"),
        ({"features": torch.zeros(2, 7)}, "features"),
        ({"features": None}, "exactly one"),
        ({"init_z": torch.zeros(2, 10)}, "init_z"),
        ({"weights": {"pose_prior": 1.0}}, "weights"),
    ],
)
def test_bad_inputs_are_rejected(make_model: Callable[..., ProHMR], case: dict, message: str) -> None:
    model = make_model(torch.float32)
    arguments = {"keypoints_2d": torch.ones(2, 44, 3), "features": torch.zeros(2, 512)}
    arguments.update(case)
    with pytest.raises(ValueError, match=message):
        fit_keypoints(model, **arguments)


def test_only_hip_keypoints_is_an_error_unless_hips_are_used(make_model: Callable[..., ProHMR]) -> None:
    keypoints = torch.zeros(1, 44, 3)
    keypoints[0, list(HIP_JOINTS), 2] = 1.0
    with pytest.raises(ValueError, match="use_hips"):
        fit_keypoints(make_model(torch.float32), keypoints, features=torch.zeros(1, 512))
    with pytest.raises(ValueError, match="ProHMR"):
        not_a_model: Any = torch.nn.Linear(2, 2)
        fit_keypoints(not_a_model, keypoints, features=torch.zeros(1, 512))
