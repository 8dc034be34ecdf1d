"""Batched L-BFGS: correctness against scipy and PyTorch, independence of the problems."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import minimize, rosen, rosen_der

from prohmr.fitting.optimizer import LBFGSSettings, minimize_lbfgs


def _rosenbrock(points: np.ndarray, problems: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.array([rosen(p) for p in points]), np.stack([rosen_der(p) for p in points])


def test_rosenbrock_reaches_the_minimum_with_scipy_like_effort() -> None:
    starts = np.random.default_rng(0).normal(size=(6, 6))
    result = minimize_lbfgs(_rosenbrock, starts)
    np.testing.assert_allclose(result.x, 1.0, atol=1e-4)
    assert result.converged.all()
    np.testing.assert_array_equal(result.initial_loss, [rosen(x) for x in starts])
    np.testing.assert_allclose(result.loss, [rosen(x) for x in result.x], rtol=0, atol=0)
    for start, evaluations in zip(starts, result.evaluations):
        reference = minimize(rosen, start, jac=rosen_der, method="L-BFGS-B")
        assert evaluations <= 2 * reference.nfev


def test_batched_problems_equal_separate_runs_exactly() -> None:
    """Each problem keeps its own state: joining a batch changes nothing, bit for bit."""
    rng = np.random.default_rng(1)
    starts = rng.normal(size=(5, 4))
    scales = rng.uniform(0.5, 20.0, size=(5, 4))

    def objective(points: np.ndarray, problems: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # A different ill-conditioned, non-quadratic problem per row.
        s = scales[problems]
        values = (s * points**2).sum(1) + (points**4).sum(1) + np.sin(points).sum(1)
        return values, 2 * s * points + 4 * points**3 + np.cos(points)

    batched = minimize_lbfgs(objective, starts)
    for index in range(len(starts)):
        alone = minimize_lbfgs(
            lambda points, _: objective(points, np.array([index])), starts[index : index + 1]
        )
        np.testing.assert_array_equal(alone.x[0], batched.x[index])
        assert alone.evaluations[0] == batched.evaluations[index]
        assert alone.steps[0] == batched.steps[index]


def test_same_optimum_as_torch_lbfgs_on_a_convex_problem() -> None:
    """Logistic regression (strictly convex): both reach the same minimum."""
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(200, 5, generator=generator, dtype=torch.float64)
    labels = (inputs @ torch.tensor([1.0, -2.0, 0.5, 0.0, 3.0], dtype=torch.float64) > 0).double()
    labels[::7] = 1 - labels[::7]

    def loss_of(weights: torch.Tensor) -> torch.Tensor:
        logits = inputs @ weights
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, labels) + 1e-3 * (
            weights * weights
        ).sum()

    weights = torch.zeros(5, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([weights], lr=1, max_iter=20, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = loss_of(weights)
        loss.backward()
        return loss

    for _ in range(30):
        optimizer.step(closure)

    def objective(points: np.ndarray, problems: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = torch.tensor(points[0], requires_grad=True)
        loss = loss_of(x)
        (grad,) = torch.autograd.grad(loss, x)
        return np.array([loss.item()]), grad.numpy()[None]

    result = minimize_lbfgs(objective, np.zeros((1, 5)))
    np.testing.assert_allclose(result.x[0], weights.detach().numpy(), atol=1e-6)
    assert result.loss[0] == pytest.approx(loss_of(weights.detach()).item(), rel=1e-12)


def test_non_finite_losses_make_the_line_search_back_off() -> None:
    """Outside |x| < 1 the objective is NaN; the minimum at 0.9 is still found."""

    def objective(points: np.ndarray, problems: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = points[:, 0]
        with np.errstate(invalid="ignore", divide="ignore"):
            values = -np.log(1 - x**2) + 10.0 * (x - 0.9) ** 2
            grads = 2 * x / (1 - x**2) + 20.0 * (x - 0.9)
        inside = np.abs(x) < 1
        return np.where(inside, values, np.nan), np.where(inside, grads, np.nan)[:, None]

    result = minimize_lbfgs(objective, np.array([[0.0], [-0.5]]))
    stationary = 0.0  # 2x/(1-x^2) + 20(x-0.9) = 0, solved below by bisection
    low, high = 0.0, 0.99
    for _ in range(100):
        stationary = 0.5 * (low + high)
        if 2 * stationary / (1 - stationary**2) + 20 * (stationary - 0.9) > 0:
            high = stationary
        else:
            low = stationary
    np.testing.assert_allclose(result.x[:, 0], stationary, atol=1e-6)
    assert np.isfinite(result.loss).all()


def test_limits_and_stopping() -> None:
    starts = np.random.default_rng(2).normal(size=(3, 6))
    settings = LBFGSSettings(max_steps=2, max_iterations=3)
    result = minimize_lbfgs(_rosenbrock, starts, settings)
    assert (result.steps == 2).all() and not result.converged.any()
    # Per step: at most `evaluations_per_step` plus one line search's overshoot.
    budget = 1 + 2 * (settings.evaluations_per_step + settings.max_line_search_evaluations)
    assert (result.evaluations <= budget).all()
    assert (result.loss < result.initial_loss).all()
    already = minimize_lbfgs(_rosenbrock, np.ones((1, 6)))
    assert already.steps[0] == 0 and already.converged[0] and already.evaluations[0] == 1


@pytest.mark.parametrize(
    "changes",
    [{"max_steps": 0}, {"max_iterations": 1.5}, {"history_size": 0}, {"learning_rate": 0},
     {"tolerance_grad": -1.0}, {"max_evaluations": 0}, {"max_line_search_evaluations": True}],
)
def test_settings_are_validated(changes: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(changes))):
        LBFGSSettings(**changes)


def test_inputs_are_validated() -> None:
    with pytest.raises(ValueError, match="x0"):
        minimize_lbfgs(_rosenbrock, np.zeros(3))
    with pytest.raises(ValueError, match="NaN"):
        minimize_lbfgs(_rosenbrock, np.full((1, 2), np.nan))
    with pytest.raises(ValueError, match="objective must return"):
        minimize_lbfgs(lambda p, i: (np.zeros(3), np.zeros((3, 2))), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="settings"):
        minimize_lbfgs(_rosenbrock, np.zeros((1, 2)), settings={"max_steps": 3})
