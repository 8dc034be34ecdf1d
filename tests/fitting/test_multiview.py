"""Multi-view refinement (SPEC §6.2) and its optional reprojection term."""

from __future__ import annotations

from typing import Callable, NamedTuple

import pytest
import torch

from prohmr.evaluation import mpjpe
from prohmr.fitting import (
    LBFGSSettings,
    MultiViewWeights,
    body_pose_spread,
    fit_keypoints,
    fit_multiview,
)
from prohmr.models.prohmr import ProHMR

FOCAL, CROP = 5000.0, 224
SETTINGS = LBFGSSettings(max_steps=6)


def test_views_come_to_agree_with_the_mean_betas(make_model: Callable[..., ProHMR]) -> None:
    model = make_model(torch.float64)
    features = torch.randn(2, 3, 512, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    fit = fit_multiview(model, features=features, settings=SETTINGS)
    assert (fit.body_pose_spread < 1e-6 * fit.initial_body_pose_spread).all()
    assert (fit.initial_body_pose_spread > 0.01).all()
    with torch.no_grad():
        head = model.flow.fc_head(features.reshape(6, 512))
        pose = model.flow.flow.sample(context=features.reshape(6, 512), z=fit.z.reshape(6, 1, 144))
    torch.testing.assert_close(fit.betas, head.betas[:, 0].reshape(2, 3, 10).mean(dim=1))
    torch.testing.assert_close(fit.pose_6d.reshape(6, 144), pose.samples[:, 0])
    # Loss terms from scratch: 300² Σ‖R − mean R‖² + Σ‖z‖² (no keypoints, no reprojection).
    deviation = fit.body_pose - fit.body_pose.mean(dim=1, keepdim=True)
    torch.testing.assert_close(fit.consistency_loss, 300.0**2 * (deviation**2).sum(dim=(1, 2, 3, 4)))
    torch.testing.assert_close(fit.pose_prior_loss, (fit.z**2).sum(dim=(1, 2)))
    assert torch.equal(fit.reprojection_loss, torch.zeros(2, dtype=torch.float64))
    torch.testing.assert_close(fit.loss, fit.consistency_loss + fit.pose_prior_loss)
    assert torch.isnan(fit.reprojection_error).all()
    # Global orientations are not tied together.
    assert (fit.global_orient[:, 0] - fit.global_orient[:, 1]).abs().max() > 1e-3
    assert (fit.loss < fit.initial_loss).all()


class Views(NamedTuple):
    features: torch.Tensor  # (1, V, C)
    keypoints: torch.Tensor  # (1, V, 44, 3) normalised crop coordinates
    modes: torch.Tensor  # (V, 23, 3, 3) the single-view regressions
    error: Callable[[torch.Tensor], torch.Tensor]  # body pose (N, 23, 3, 3) -> MPJPE (N,)


def _views_around_a_truth(model: ProHMR, views: int, spread: float, seed: int) -> Views:
    """Make every view's conditional prior an estimate of one true pose, with its own error.

    The coupling nets are made to ignore their input half, so each view's prior is a fixed
    shape shifted by a function of its features. The views' features scatter around a
    centre whose mode is the true body pose: every view's mode is the truth plus a
    view-specific error, as for a trained model seeing the subject from several cameras.
    The keypoints show the true body pose under each view's own global orientation.
    """
    with torch.no_grad():
        for net in model.flow.flow.coupling_nets():
            net.initial_layer.weight[:, : net.in_features] = 0.0
    dtype = model.flow.flow.dtype
    generator = torch.Generator().manual_seed(seed)
    centre = torch.randn(1, 512, generator=generator, dtype=torch.float64).to(dtype)
    scatter = torch.randn(views, 512, generator=generator, dtype=torch.float64).to(dtype)
    features = centre + spread * scatter
    eye = torch.eye(3, dtype=dtype).expand(1, 1, 3, 3)
    with torch.no_grad():
        truth = model.predict_from_features(centre, z=torch.zeros(1, 1, 144, dtype=dtype))
        modes = model.predict_from_features(features, z=torch.zeros(views, 1, 144, dtype=dtype))
        betas = modes.betas[:, 0].mean(dim=0, keepdim=True)
        true_body = truth.body_pose[:, 0].expand(views, 23, 3, 3)
        body = model.body_model(modes.global_orient[:, 0], true_body, betas.expand(views, 10))
        camera = body.joints + modes.camera_translation[:, 0, None]
        normalised = FOCAL * camera[..., :2] / camera[..., 2:] / CROP
        true_joints = model.body_model(eye, truth.body_pose[:, 0], betas).joints

    def error(body_pose: torch.Tensor) -> torch.Tensor:
        count = body_pose.shape[0]
        with torch.no_grad():
            posed = model.body_model(eye.expand(count, 1, 3, 3), body_pose, betas.expand(count, 10))
            joints = posed.joints
        return mpjpe(joints, true_joints.expand_as(joints))

    keypoints = torch.cat([normalised, torch.ones(views, 44, 1, dtype=dtype)], dim=-1)
    return Views(features[None], keypoints[None], modes.body_pose[:, 0], error)


def test_multiview_lowers_the_3d_error_of_single_views(make_model: Callable[..., ProHMR]) -> None:
    model = make_model(torch.float64)
    scene = _views_around_a_truth(model, views=4, spread=0.5, seed=5)
    # The original refinement (no keypoints) against the single-view regressions.
    consensus = fit_multiview(model, features=scene.features, settings=SETTINGS)
    assert consensus.body_pose_spread[0] < 1e-6
    assert scene.error(consensus.body_pose[0, :1])[0] < 0.5 * scene.error(scene.modes).mean()
    # With the reprojection term, against single-view keypoint fitting of every view.
    single = fit_keypoints(model, scene.keypoints[0], features=scene.features[0], use_hips=True,
                           settings=SETTINGS)
    joint = fit_multiview(model, features=scene.features, keypoints_2d=scene.keypoints,
                          use_hips=True, settings=SETTINGS)
    assert scene.error(joint.body_pose[0, :1])[0] < 0.5 * scene.error(single.body_pose).mean()
    # What the reprojection term changes: the views' 2D errors and the 3D error drop.
    camera = consensus.joints_3d[0] + consensus.camera_translation[0, :, None]
    consensus_2d = (FOCAL * camera[..., :2] / camera[..., 2:] - scene.keypoints[0, ..., :2] * CROP)
    assert (joint.reprojection_error[0] < 0.2 * consensus_2d.norm(dim=-1).mean(dim=-1)).all()
    assert scene.error(joint.body_pose[0, :1])[0] < 0.5 * scene.error(consensus.body_pose[0, :1])[0]
    assert (joint.reprojection_error < joint.initial_reprojection_error).all()


def test_subjects_are_independent(make_model: Callable[..., ProHMR]) -> None:
    model = make_model(torch.float64)
    generator = torch.Generator().manual_seed(1)
    features = torch.randn(2, 2, 512, generator=generator, dtype=torch.float64)
    with torch.no_grad():
        z = torch.zeros(4, 1, 144, dtype=torch.float64)
        start = model.predict_from_features(features.reshape(4, 512), z=z)
    keypoints = torch.cat([start.joints_2d[:, 0] + 0.01, torch.ones(4, 44, 1, dtype=torch.float64)], -1)
    keypoints = keypoints.reshape(2, 2, 44, 3)
    settings = LBFGSSettings(max_steps=3)
    batched = fit_multiview(model, features=features, keypoints_2d=keypoints, settings=settings)
    for subject in range(2):
        alone = fit_multiview(model, features=features[subject : subject + 1],
                              keypoints_2d=keypoints[subject : subject + 1], settings=settings)
        for name in ("z", "camera_translation", "loss"):
            torch.testing.assert_close(getattr(alone, name)[0], getattr(batched, name)[subject],
                                       rtol=1e-5, atol=1e-6)


def test_inputs_and_model_are_left_unchanged(make_model: Callable[..., ProHMR]) -> None:
    model = make_model(torch.float32).train()
    features = torch.randn(1, 2, 512, generator=torch.Generator().manual_seed(2))
    keypoints = torch.rand(1, 2, 44, 3, generator=torch.Generator().manual_seed(3)) - 0.5
    keypoints[..., 2] = 1.0
    copies = (features.clone(), keypoints.clone())
    fit_multiview(model, features=features, keypoints_2d=keypoints, settings=LBFGSSettings(max_steps=1))
    assert torch.equal(features, copies[0]) and torch.equal(keypoints, copies[1])
    assert model.training and all(p.requires_grad and p.grad is None for p in model.parameters())


def test_weights_are_validated() -> None:
    with pytest.raises(ValueError, match="consistency"):
        MultiViewWeights(consistency=-1.0)
    with pytest.raises(ValueError, match="gmof_sigma"):
        MultiViewWeights(gmof_sigma=0.0)


def test_body_pose_spread_against_a_loop() -> None:
    generator = torch.Generator().manual_seed(4)
    poses = torch.randn(2, 3, 23, 3, 3, generator=generator, dtype=torch.float64)
    expected = torch.zeros(2, dtype=torch.float64)
    for subject in range(2):
        mean = poses[subject].mean(dim=0)
        for view in range(3):
            expected[subject] += ((poses[subject, view] - mean) ** 2).sum() / 3
    torch.testing.assert_close(body_pose_spread(poses), expected)


@pytest.mark.parametrize(
    "case, message",
    [
        ({"features": torch.zeros(2, 512)}, "features"),
        ({"keypoints_2d": torch.ones(1, 3, 44, 3)}, "keypoints_2d"),
        ({"init_z": torch.zeros(1, 144)}, "init_z"),
        ({"weights": {"consistency": 1.0}}, "weights"),
    ],
)
def test_bad_inputs_are_rejected(make_model: Callable[..., ProHMR], case: dict, message: str) -> None:
    model = make_model(torch.float32)
    with pytest.raises(ValueError, match=message):
        arguments = {"features": torch.zeros(1, 2, 512)}
        arguments.update(case)
        fit_multiview(model, **arguments)
