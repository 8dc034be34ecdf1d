"""Tests for prohmr.models.pose_prior: conversions, densities, sampling, files, bad inputs.

Whether training gives real poses a higher likelihood than random or broken ones is tested
with the training module (tests/lightning/test_pose_prior_module.py).
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from prohmr.fitting import fit_prior_joints_3d
from prohmr.fitting.optimizer import LBFGSSettings
from prohmr.body.model import create_body_model
from prohmr.models.pose_prior import (
    POSE_PRIOR_FORMAT,
    POSE_PRIOR_FORMAT_VERSION,
    PosePrior,
    PosePriorConfig,
    axis_angle_to_pose_6d,
    evaluate_nll,
    load_pose_prior,
    save_pose_prior,
)

TINY = PosePriorConfig(hidden_features=16, num_layers=2, num_blocks_per_layer=1)


def _random_axis_angle(count: int, scale: float = 0.4, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return scale * torch.randn(count, 72, generator=generator, dtype=torch.float64)


@pytest.fixture(scope="module")
def trained() -> PosePrior:
    """A tiny prior, ActNorm initialised, every weight and statistic perturbed (so no layer
    is the identity), in eval mode, float32 on the CPU."""
    torch.manual_seed(0)
    prior = PosePrior(TINY)
    prior.initialize(axis_angle_to_pose_6d(_random_axis_angle(64)).float())
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, tensor in prior.state_dict().items():
            if tensor.is_floating_point():
                noise = torch.randn(tensor.shape, generator=generator)
                tensor.add_(0.1 * noise.abs() if name.endswith("running_var") else 0.05 * noise)
    return prior.eval()


@pytest.fixture
def prior(trained: PosePrior, device: torch.device, dtype: torch.dtype) -> PosePrior:
    return copy.deepcopy(trained).to(device=device, dtype=dtype)


# ----------------------------------------------------------------------------- config
def test_config_round_trip_and_validation() -> None:
    config = PosePriorConfig(hidden_features=32, num_layers=3, dropout_probability=0.25)
    assert PosePriorConfig.from_dict(config.to_dict()) == config
    assert PosePriorConfig.from_dict({}) == PosePriorConfig()
    with pytest.raises(ValueError, match="hidden_features"):
        PosePriorConfig(hidden_features=0)
    with pytest.raises(ValueError, match="dropout_probability"):
        PosePriorConfig(dropout_probability=1.0)
    with pytest.raises(ValueError, match="unknown field"):
        PosePriorConfig.from_dict({"context_features": 2048})
    with pytest.raises(ValueError, match="config"):
        PosePrior("small")  # type: ignore[arg-type]


def test_flow_is_the_unconditional_144_d_glow_the_fitting_functions_take() -> None:
    prior = PosePrior(PosePriorConfig(hidden_features=24, num_layers=3, num_blocks_per_layer=1,
                                      dropout_probability=0.1, batch_norm=False))
    flow = prior.flow
    assert (flow.features, flow.context_features, flow.hidden_features) == (144, 0, 24)
    assert (flow.num_layers, flow.num_blocks_per_layer) == (3, 1)
    assert (flow.dropout_probability, flow.batch_norm) == (0.1, False)
    assert all(key.startswith("flow._transform._transforms.") for key in prior.state_dict())


# ---------------------------------------------------------------------------- conversions
def test_axis_angle_to_pose_6d_matches_scipy() -> None:
    aa = _random_axis_angle(5, scale=1.0)
    matrices = Rotation.from_rotvec(aa.reshape(-1, 3).numpy()).as_matrix().reshape(5, 24, 3, 3)
    # ProHMR's layout: column 0 then column 1 of every rotation.
    expected = np.concatenate([matrices[..., :, 0], matrices[..., :, 1]], axis=-1).reshape(5, 144)
    np.testing.assert_allclose(axis_angle_to_pose_6d(aa).numpy(), expected, atol=1e-12)
    assert axis_angle_to_pose_6d(aa.reshape(5, 1, 72)).shape == (5, 1, 144)


def test_rotation_matrix_and_6d_inputs_give_identical_log_prob(
    prior: PosePrior, device: torch.device, dtype: torch.dtype
) -> None:
    aa = _random_axis_angle(6).to(device=device, dtype=dtype).reshape(2, 3, 72)
    matrices = Rotation.from_rotvec(aa.reshape(-1, 3).cpu().double().numpy()).as_matrix()
    matrices = torch.from_numpy(matrices).to(device=device, dtype=dtype).reshape(2, 3, 24, 3, 3)
    from_matrices = prior.log_prob(matrices)
    from_6d = prior.log_prob(axis_angle_to_pose_6d(aa))
    assert from_matrices.shape == (2, 3) and from_matrices.dtype == dtype
    tolerance = 1e-10 if dtype == torch.float64 else 1e-3
    torch.testing.assert_close(from_matrices, from_6d, atol=tolerance, rtol=0)
    # Leading dimensions are only a reshape of the flow's own (B, 144) call.
    flat, _ = prior.flow.log_prob(axis_angle_to_pose_6d(aa).reshape(6, 144))
    torch.testing.assert_close(from_6d.reshape(6), flat, atol=tolerance, rtol=0)
    assert prior.log_prob(matrices[0, 0]).shape == ()


def test_log_prob_is_the_change_of_variables_density(trained: PosePrior) -> None:
    """log p(x) = log N(f(x); 0, I) + log|det ∂f/∂x| with the Jacobian from float64 autograd."""
    prior = copy.deepcopy(trained).double()
    x = axis_angle_to_pose_6d(_random_axis_angle(2, seed=3))
    for point in x:
        mapping = lambda value: prior.flow._transform(value[None])[0][0]  # noqa: E731
        jacobian = torch.autograd.functional.jacobian(mapping, point)
        z = mapping(point)
        expected = (
            -0.5 * (z * z).sum() - 72.0 * math.log(2.0 * math.pi)
            + torch.linalg.slogdet(jacobian).logabsdet
        )
        torch.testing.assert_close(prior.log_prob(point), expected, atol=1e-9, rtol=0)


# ----------------------------------------------------------------------------- sampling
def test_sample_then_log_prob_and_the_mode(
    prior: PosePrior, device: torch.device, dtype: torch.dtype
) -> None:
    generator = torch.Generator(device=device).manual_seed(0)
    drawn = prior.sample(7, generator=generator)
    assert drawn.rotations.shape == (7, 24, 3, 3) and drawn.log_prob.shape == (7,)
    assert drawn.rotations.dtype == dtype and drawn.rotations.device.type == device.type
    tolerance = 1e-9 if dtype == torch.float64 else 2e-3
    torch.testing.assert_close(prior.log_prob(drawn.pose_6d), drawn.log_prob, atol=tolerance,
                               rtol=0)
    eye = torch.eye(3, dtype=dtype, device=device)
    gram = drawn.rotations.transpose(-1, -2) @ drawn.rotations
    torch.testing.assert_close(gram, eye.expand_as(gram), atol=100 * tolerance, rtol=0)
    torch.testing.assert_close(drawn.global_orient, drawn.rotations[:, :1])
    assert drawn.body_pose.shape == (7, 23, 3, 3)
    # The latents are N(0, T^2): the same generator state with T = 0.5 halves them.
    half = prior.sample(7, generator=torch.Generator(device=device).manual_seed(0),
                        temperature=0.5)
    torch.testing.assert_close(half.z, 0.5 * drawn.z)
    # Constant log-determinant: the mode (z = 0) is the most likely pose.
    mode = prior.mode()
    assert mode.rotations.shape == (1, 24, 3, 3)
    assert bool((mode.z == 0).all())
    assert bool((drawn.log_prob < mode.log_prob).all())
    frozen = prior.sample(3, temperature=0.0)
    torch.testing.assert_close(frozen.pose_6d, mode.pose_6d.expand(3, 144))


def test_sample_is_reproducible_and_differentiable(trained: PosePrior) -> None:
    first = trained.sample(4, generator=torch.Generator().manual_seed(5))
    second = trained.sample(4, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(first.pose_6d, second.pose_6d)
    (first.pose_6d.sum() + first.log_prob.sum()).backward()  # reparameterised
    assert all(parameter.grad is not None for parameter in trained.parameters())
    trained.zero_grad(set_to_none=True)


def test_nll_body_pose(trained: PosePrior) -> None:
    rotations = trained.sample(3, generator=torch.Generator().manual_seed(2)).rotations.detach()
    global_orient, body_pose = rotations[:, :1], rotations[:, 1:]
    torch.testing.assert_close(
        trained.nll_body_pose(body_pose, global_orient), -trained.log_prob(rotations)
    )
    # Without a global orientation the mode's raw 6D stands in for it.
    mode_6d = trained.mode().pose_6d[0, :6]
    body_6d = trained.to_pose_6d(rotations)[:, 6:]
    expected = -trained.log_prob(torch.cat([mode_6d.expand(3, 6), body_6d], dim=-1))
    torch.testing.assert_close(trained.nll_body_pose(body_pose), expected)
    body_pose = body_pose.clone().requires_grad_(True)
    trained.nll_body_pose(body_pose).sum().backward()
    assert body_pose.grad is not None and bool(torch.isfinite(body_pose.grad).all())
    trained.zero_grad(set_to_none=True)
    # In training mode the stand-in is still the eval-mode mode's (and the mode is kept).
    training = copy.deepcopy(trained)
    eval_global = training.mode().pose_6d[0, :6].detach()
    training.train()
    assert torch.equal(training._mode_global_6d(), eval_global) and training.training
    assert bool(torch.isfinite(training.nll_body_pose(body_pose.detach())).all())


def test_evaluate_nll_matches_log_prob_for_every_input_form(trained: PosePrior) -> None:
    aa = _random_axis_angle(10).float()
    expected = -trained.log_prob(axis_angle_to_pose_6d(aa)).double().mean().item()
    assert evaluate_nll(trained, aa, batch_size=3) == pytest.approx(expected, abs=1e-4)
    assert evaluate_nll(trained, aa.numpy()) == pytest.approx(expected, abs=1e-4)
    assert evaluate_nll(trained, axis_angle_to_pose_6d(aa)) == pytest.approx(expected, abs=1e-4)
    trained.train()
    evaluate_nll(trained, aa)
    assert trained.training  # the mode is restored
    trained.eval()


def test_the_prior_plugs_into_prior_fitting(trained: PosePrior) -> None:
    body = create_body_model()
    eye = torch.eye(3).expand(1, 24, 3, 3)
    target = body(eye[:, :1], eye[:, 1:], torch.zeros(1, 10)).smpl_joints
    fit = fit_prior_joints_3d(trained.flow, body, target, joint_set="smpl24",
                              settings=LBFGSSettings(max_steps=1))
    assert fit.body_pose.shape == (1, 1, 23, 3, 3)


# ------------------------------------------------------------------------------ files
def test_save_load_round_trip(trained: PosePrior, tmp_path: Path) -> None:
    path = save_pose_prior(trained, tmp_path / "sub" / "prior.pt",
                           {"heldout_nll": -12.5, "data": {"actors": ["bd", "bk"]}})
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == POSE_PRIOR_FORMAT == "prohmr.PosePrior"
    assert raw["format_version"] == POSE_PRIOR_FORMAT_VERSION == 1
    assert raw["config"] == TINY.to_dict()
    assert set(raw) == {"format", "format_version", "config", "state_dict", "metadata"}
    loaded = load_pose_prior(path)
    assert not loaded.training and loaded.config == TINY
    assert loaded.metadata == {"heldout_nll": -12.5, "data": {"actors": ["bd", "bk"]}}
    for key, value in trained.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value, atol=0, rtol=0)
    poses = axis_angle_to_pose_6d(_random_axis_angle(4)).float()
    torch.testing.assert_close(loaded.log_prob(poses), trained.log_prob(poses), atol=0, rtol=0)
    # Without explicit metadata the model's own is saved.
    again = load_pose_prior(save_pose_prior(loaded, tmp_path / "again.pt"), device="cpu")
    assert again.metadata == loaded.metadata


def test_bad_files(trained: PosePrior, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not found"):
        load_pose_prior(tmp_path / "missing.pt")
    other = tmp_path / "other.pt"
    torch.save({"format": "prohmr.ProHMR", "format_version": 1}, other)
    with pytest.raises(ValueError, match="not a 'prohmr.PosePrior' file"):
        load_pose_prior(other)
    lightning = tmp_path / "run.ckpt"
    torch.save({"state_dict": {}, "pytorch-lightning_version": "2.6.0"}, lightning)
    with pytest.raises(ValueError, match="export_pose_prior"):
        load_pose_prior(lightning)
    path = save_pose_prior(trained, tmp_path / "prior.pt")
    contents = torch.load(path, weights_only=True)
    torch.save({**contents, "format_version": 2}, other)
    with pytest.raises(ValueError, match="format version 2"):
        load_pose_prior(other)
    torch.save({**contents, "config": {**contents["config"], "hidden_features": 32}}, other)
    with pytest.raises(ValueError, match="shape mismatch"):
        load_pose_prior(other)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable"):
        load_pose_prior(garbage)
    with pytest.raises(ValueError, match="JSON"):
        save_pose_prior(trained, tmp_path / "bad.pt", {"tensor": torch.zeros(1)})
    with pytest.raises(ValueError, match="PosePrior"):
        save_pose_prior(trained.flow, tmp_path / "bad.pt")  # type: ignore[arg-type]


# ------------------------------------------------------------------------- bad inputs
def test_bad_inputs(trained: PosePrior) -> None:
    with pytest.raises(ValueError, match=r"\(\.\.\., 24, 3, 3\) or \(\.\.\., 144\)"):
        trained.log_prob(torch.zeros(2, 23, 3, 3))
    with pytest.raises(ValueError, match="floating tensor"):
        trained.log_prob(torch.zeros(2, 144, dtype=torch.long))
    with pytest.raises(ValueError, match="floating tensor"):
        trained.log_prob(np.zeros((2, 144)))  # type: ignore[arg-type]
    nan = torch.zeros(2, 144)
    nan[1, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        trained.log_prob(nan)
    with pytest.raises(ValueError, match="body_pose"):
        trained.nll_body_pose(torch.zeros(2, 24, 3, 3))
    with pytest.raises(ValueError, match="global_orient"):
        trained.nll_body_pose(torch.zeros(2, 23, 3, 3), torch.zeros(3, 1, 3, 3))
    with pytest.raises(ValueError, match="num_samples"):
        trained.sample(0)
    with pytest.raises(ValueError, match="temperature"):
        trained.sample(2, temperature=-1.0)
    with pytest.raises(ValueError, match=r"\(\.\.\., 72\)"):
        axis_angle_to_pose_6d(torch.zeros(2, 69))
    with pytest.raises(ValueError, match="poses"):
        evaluate_nll(trained, torch.zeros(0, 72))
    with pytest.raises(ValueError, match="batch_size"):
        evaluate_nll(trained, torch.zeros(2, 72), batch_size=0)


def test_an_untrained_prior_refuses_to_score(tmp_path: Path) -> None:
    prior = PosePrior(TINY)
    for call in (lambda: prior.log_prob(torch.zeros(2, 144)), lambda: prior.sample(2),
                 prior.mode, lambda: prior.nll_body_pose(torch.zeros(1, 23, 3, 3))):
        with pytest.raises(ValueError, match="untrained"):
            call()
    with pytest.raises(ValueError, match="M >= 2"):
        prior.initialize(torch.zeros(1, 144))
    poses = axis_angle_to_pose_6d(_random_axis_angle(16)).float()
    prior.eval()
    assert prior.initialize(poses) is True
    assert not prior.training  # the mode is restored
    assert prior.initialize(poses) is False  # only once
    # ActNorm now standardises the initialising poses (SPEC §3: std clamped at >= 1e-3).
    actnorm = prior.flow._transform._transforms[0]
    standardised = poses * actnorm.log_scale.exp() + actnorm.shift
    torch.testing.assert_close(standardised.mean(dim=0), torch.zeros(144), atol=1e-5, rtol=0)
