"""Prior-only (SMPLify-style) fitting with an unconditional learned pose prior (SPEC §6.3)."""

from __future__ import annotations

from typing import Callable, NamedTuple

import pytest
import torch

from prohmr.body.model import BodyModel
from prohmr.fitting import (
    LBFGSSettings,
    PriorFitWeights,
    fit_prior_joints_3d,
    fit_prior_keypoints_2d,
)
from prohmr.flows import ConditionalGlow
from prohmr.geometry import axis_angle_to_matrix, matrix_to_axis_angle, rot6d_to_matrix

WEAK = PriorFitWeights(pose_prior=0.01, shape_prior=0.01)
FOCAL = 5000.0
IMAGE = (1000.0, 800.0)


class People(NamedTuple):
    global_orient: torch.Tensor  # (B, 1, 3, 3)
    body_pose: torch.Tensor  # (B, 23, 3, 3)
    betas: torch.Tensor  # (B, 10)
    translation: torch.Tensor  # (B, 3)


def _people(poses: Callable[..., torch.Tensor], count: int, seed: int) -> People:
    generator = torch.Generator().manual_seed(seed)
    rotations = poses(count, generator)
    return People(
        rotations[:, :1],
        rotations[:, 1:],
        0.5 * torch.randn(count, 10, generator=generator, dtype=torch.float64),
        torch.tensor([0.1, 0.2, 12.0], dtype=torch.float64).expand(count, 3).clone(),
    )


def test_recovers_a_known_pose_from_its_3d_joints(
    trained_prior: ConditionalGlow,
    make_body_model: Callable[[torch.dtype], BodyModel],
    poses: Callable[..., torch.Tensor],
) -> None:
    body = make_body_model(torch.float64)
    people = _people(poses, 3, seed=0)
    heading = axis_angle_to_matrix(torch.randn(3, 3, generator=torch.Generator().manual_seed(1),
                                               dtype=torch.float64))[:, None]
    truth = body(heading, people.body_pose, people.betas, people.translation)
    targets = torch.cat([truth.joints, torch.ones(3, 44, 1, dtype=torch.float64)], dim=-1)
    fit = fit_prior_joints_3d(trained_prior, body, targets, weights=WEAK,
                              settings=LBFGSSettings(max_steps=8))
    joint_error = (fit.joints[:, 0] - truth.joints).norm(dim=-1).mean(dim=-1)
    assert (joint_error < 0.004).all()
    vertex_error = (fit.vertices[:, 0] - truth.vertices).norm(dim=-1).mean(dim=-1)
    assert (vertex_error < 0.04).all()
    torch.testing.assert_close(fit.global_orient[:, 0], heading, atol=0.1, rtol=0)
    # Loss terms recomputed: Σ conf ‖(J + t − X) / 1 cm‖² + w²‖z‖² + w²‖β‖².
    data = (((fit.joints[:, 0] - truth.joints) / 0.01) ** 2).sum(dim=(-1, -2))
    torch.testing.assert_close(fit.data_loss[:, 0], data)
    torch.testing.assert_close(fit.pose_prior_loss, 1e-4 * (fit.z**2).sum(-1))
    with torch.no_grad():
        pose = trained_prior.sample(z=fit.z[:, 0, None])
    rotations = rot6d_to_matrix(pose.samples[:, 0].reshape(3, 24, 6))
    torch.testing.assert_close(fit.body_pose[:, 0], rotations[:, 1:])
    torch.testing.assert_close(fit.prior_log_prob[:, 0], pose.log_prob[:, 0])


def test_smpl_joints_with_missing_joints_and_multiple_hypotheses(
    trained_prior: ConditionalGlow,
    make_body_model: Callable[[torch.dtype], BodyModel],
    poses: Callable[..., torch.Tensor],
) -> None:
    """Mocap-style targets (SMPL's 24 joints); hypotheses come back sorted by loss, and the
    first start gives the same result as a single-hypothesis fit (the fits are independent)."""
    body = make_body_model(torch.float64)
    people = _people(poses, 2, seed=2)
    truth = body(people.global_orient, people.body_pose, people.betas, people.translation)
    targets = torch.cat([truth.smpl_joints, torch.ones(2, 24, 1, dtype=torch.float64)], dim=-1)
    targets[:, [10, 11, 22, 23], 3] = 0.0  # feet and hands missing
    settings = LBFGSSettings(max_steps=4)
    several = fit_prior_joints_3d(trained_prior, body, targets, joint_set="smpl24", weights=WEAK,
                                  num_hypotheses=4, settings=settings,
                                  generator=torch.Generator().manual_seed(3))
    assert several.body_pose.shape == (2, 4, 23, 3, 3)
    assert (several.loss[:, 1:] >= several.loss[:, :-1]).all()
    assert torch.equal(several.hypothesis.sort(dim=1).values, torch.arange(4).expand(2, 4))
    one = fit_prior_joints_3d(trained_prior, body, targets, joint_set="smpl24", weights=WEAK,
                              settings=settings)
    first = (several.hypothesis == 0).nonzero()[:, 1]
    torch.testing.assert_close(several.z[torch.arange(2), first], one.z[:, 0], rtol=1e-5, atol=1e-6)
    used = targets[..., 3] > 0
    error = (one.smpl_joints[:, 0] - truth.smpl_joints).norm(dim=-1)[used]
    assert error.mean() < 0.01
    # The random starts really are different draws from the prior.
    assert (several.z[:, 0] - several.z[:, 1]).abs().max() > 0.1


def _keypoints(body: BodyModel, people: People) -> torch.Tensor:
    truth = body(people.global_orient, people.body_pose, people.betas, people.translation)
    camera = truth.joints
    pixels = FOCAL * camera[..., :2] / camera[..., 2:] + 0.5 * torch.tensor(IMAGE, dtype=torch.float64)
    return torch.cat([pixels, torch.ones(len(pixels), 44, 1, dtype=torch.float64)], dim=-1)


def test_2d_fitting_matches_the_keypoints(
    trained_prior: ConditionalGlow,
    make_body_model: Callable[[torch.dtype], BodyModel],
    poses: Callable[..., torch.Tensor],
) -> None:
    body = make_body_model(torch.float64)
    people = _people(poses, 2, seed=4)
    keypoints = _keypoints(body, people)
    size = torch.tensor(IMAGE, dtype=torch.float64).expand(2, 2)
    fit = fit_prior_keypoints_2d(trained_prior, body, keypoints, size, use_hips=True,
                                 weights=PriorFitWeights(pose_prior=1.0, shape_prior=2.0),
                                 settings=LBFGSSettings(max_steps=6))
    projected = FOCAL * fit.joints[:, 0, :, :2] / fit.joints[:, 0, :, 2:] + 0.5 * size[:, None]
    error = (projected - keypoints[..., :2]).norm(dim=-1).mean(dim=-1)
    assert (error < 4.0).all()  # pixels of a 1000 x 800 image
    residual = projected - keypoints[..., :2]
    gmof = 100.0**2 * residual**2 / (100.0**2 + residual**2)
    torch.testing.assert_close(fit.data_loss[:, 0], (1000.0 / 1000.0) ** 2 * gmof.sum(dim=(-1, -2)))
    torch.testing.assert_close(fit.shape_prior_loss[:, 0], 4.0 * (fit.betas[:, 0] ** 2).sum(-1))
    torch.testing.assert_close(fit.pose_prior_loss[:, 0], (fit.z[:, 0] ** 2).sum(-1))


def test_the_prior_keeps_2d_fits_plausible_under_noise(
    trained_prior: ConditionalGlow,
    make_body_model: Callable[[torch.dtype], BodyModel],
    poses: Callable[..., torch.Tensor],
    pose_mean: Callable[..., torch.Tensor],
) -> None:
    """Noisy keypoints with half the joints missing: with the prior term the fitted poses stay
    in the training distribution (measured in axis-angle space, independently of the prior);
    without it they wander off while explaining the noise."""
    body = make_body_model(torch.float64)
    people = _people(poses, 3, seed=5)
    generator = torch.Generator().manual_seed(6)
    keypoints = _keypoints(body, people)
    noisy = keypoints.clone()
    noisy[..., :2] += 4.0 * torch.randn(3, 44, 2, generator=generator, dtype=torch.float64)
    noisy[..., 2] = (torch.rand(3, 44, generator=generator, dtype=torch.float64) > 0.5).double()
    size = torch.tensor(IMAGE, dtype=torch.float64).expand(3, 2)
    settings = LBFGSSettings(max_steps=8)
    fits = {
        weight: fit_prior_keypoints_2d(trained_prior, body, noisy, size, use_hips=True,
                                       settings=settings,
                                       weights=PriorFitWeights(pose_prior=weight, shape_prior=6.0))
        for weight in (4.0, 0.0)
    }

    def implausibility(body_pose: torch.Tensor) -> torch.Tensor:
        deviation = matrix_to_axis_angle(body_pose) - pose_mean()
        return (deviation**2).mean(dim=(-1, -2)) / 0.3**2  # about 1 for training poses

    with_prior, without = fits[4.0], fits[0.0]
    plausible = implausibility(with_prior.body_pose[:, 0]).mean()
    assert plausible < 0.7 * implausibility(without.body_pose[:, 0]).mean()
    assert (with_prior.prior_log_prob[:, 0] > without.prior_log_prob[:, 0]).all()
    # Both still explain the keypoints: the prior does not simply override them.
    assert (with_prior.data_loss[:, 0] < 2.0 * without.data_loss[:, 0]).all()


def test_inputs_and_prior_are_left_unchanged(
    trained_prior: ConditionalGlow,
    make_body_model: Callable[[torch.dtype], BodyModel],
    poses: Callable[..., torch.Tensor],
) -> None:
    body = make_body_model(torch.float64)
    people = _people(poses, 1, seed=7)
    keypoints = _keypoints(body, people)
    copy = keypoints.clone()
    trained_prior.train()
    state = {name: value.clone() for name, value in trained_prior.state_dict().items()}
    fit_prior_keypoints_2d(trained_prior, body, keypoints, torch.tensor([IMAGE], dtype=torch.float64),
                           settings=LBFGSSettings(max_steps=1),
                           camera_settings=LBFGSSettings(max_steps=1))
    assert torch.equal(keypoints, copy)
    assert trained_prior.training
    assert all(torch.equal(value, state[name]) for name, value in trained_prior.state_dict().items())
    assert all(p.requires_grad and p.grad is None for p in trained_prior.parameters())


def test_bad_inputs_are_rejected(
    trained_prior: ConditionalGlow, make_body_model: Callable[[torch.dtype], BodyModel]
) -> None:
    body = make_body_model(torch.float64)
    targets = torch.zeros(1, 44, 3, dtype=torch.float64)
    conditional = ConditionalGlow(hidden_features=8, num_layers=1, context_features=4)
    with pytest.raises(ValueError, match="unconditional"):
        fit_prior_joints_3d(conditional, body, targets)
    with pytest.raises(ValueError, match="dtype"):
        fit_prior_joints_3d(trained_prior, make_body_model(torch.float32), targets)
    with pytest.raises(ValueError, match="joint_set"):
        fit_prior_joints_3d(trained_prior, body, targets, joint_set="h36m")
    with pytest.raises(ValueError, match=r"\(B, 24, 3 or 4\)"):
        fit_prior_joints_3d(trained_prior, body, targets, joint_set="smpl24")
    with pytest.raises(ValueError, match="num_hypotheses"):
        fit_prior_joints_3d(trained_prior, body, targets, num_hypotheses=0)
    with pytest.raises(ValueError, match="at least 3 joints"):
        unconfident = torch.cat([targets, torch.zeros(1, 44, 1, dtype=torch.float64)], dim=-1)
        fit_prior_joints_3d(trained_prior, body, unconfident)
    with pytest.raises(ValueError, match="image_size"):
        fit_prior_keypoints_2d(trained_prior, body, torch.ones(1, 44, 3, dtype=torch.float64),
                               torch.zeros(1, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="NaN"):
        nan = torch.full((1, 44, 3), float("nan"), dtype=torch.float64)
        fit_prior_keypoints_2d(trained_prior, body, nan, torch.ones(1, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="pose_prior"):
        PriorFitWeights(pose_prior=-1.0, shape_prior=1.0)
