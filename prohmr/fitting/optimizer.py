"""Batched L-BFGS: many independent problems solved at once, one batched evaluation per round.

Fitting many people with one L-BFGS over the *sum* of their losses couples them: the line
search picks one step length for everybody and the curvature history mixes their problems,
so a person's result depends on who else is in the batch. Here every problem keeps its own
L-BFGS state (history, step length, line search) as a small sequential solver on the host;
the solvers run in lockstep and each round of the driver asks the objective for the loss and
gradient of every unfinished problem at its own trial point, in **one** batched call (the
expensive part: flow, body model, projection). Problems that have finished drop out of the
batch. A problem's iterates therefore depend only on its own loss values: solving it alone or
in a batch gives the same result up to the round-off of the batched evaluation (exactly the
same when the objective is evaluated row by row).

The algorithm per problem follows ``torch.optim.LBFGS(lr, max_iter, line_search_fn=
"strong_wolfe")`` as driven by ProHMR's fitting loop (Nocedal & Wright, *Numerical
Optimization*, 2nd ed., Alg. 7.4 and 3.5/3.6):

- an outer **step** runs at most ``max_iterations`` L-BFGS iterations and
  ``max_evaluations`` objective evaluations (one ``LBFGS.step`` call); the history, the
  last direction and step length carry over between steps, as in PyTorch;
- the outer loop runs at most ``max_steps`` steps and stops once the relative loss change of
  a step, ``|f_before - f_after| / max(|f_before|, |f_after|, 1)``, is below
  ``relative_tolerance`` or the gradient's largest entry is at most ``tolerance_grad``;
- directions come from the two-loop recursion with ``H0 = (s·y / y·y) I``; a pair is kept
  only if ``s·y > CURVATURE_EPS``; the very first step length is ``min(1, 1 / |g|_1) * lr``;
- the step length satisfies the strong Wolfe conditions (``c1 = 1e-4``, ``c2 = 0.9``):
  bracketing with cubic extrapolation in ``[t + 0.01 (t - t_prev), 10 t]``, then zooming
  with safeguarded cubic interpolation, at most ``max_line_search_evaluations`` evaluations.

Unlike PyTorch, a step does not re-evaluate the objective at its starting point (the loss and
gradient of the previous evaluation are reused), which saves one evaluation per step.
Non-finite losses count as ``+inf`` (the line search backs off).

The optimiser state is float64 NumPy on the host whatever the objective's device: the
decisions of a line search are per problem and need the values on the host anyway.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Callable, Generator, Optional

import numpy as np

__all__ = [
    "CURVATURE_EPS",
    "WOLFE_C1",
    "WOLFE_C2",
    "BatchObjective",
    "LBFGSResult",
    "LBFGSSettings",
    "minimize_lbfgs",
]

#: Sufficient-decrease constant of the strong Wolfe conditions.
WOLFE_C1: float = 1e-4
#: Curvature constant of the strong Wolfe conditions.
WOLFE_C2: float = 0.9
#: A curvature pair ``(s, y)`` is stored only if ``s·y`` exceeds this, which keeps the
#: implicit inverse Hessian positive definite (PyTorch uses the same threshold).
CURVATURE_EPS: float = 1e-10
# Bracketing phase: the next trial step lies in [t + 0.01 (t - t_prev), 10 t].
_EXTRAPOLATION_MIN = 0.01
_EXTRAPOLATION_MAX = 10.0
# Zoom phase: trial steps keep this fraction of the bracket width away from its ends, so
# that the bracket always shrinks.
_ZOOM_MARGIN = 0.1

#: ``objective(points (P, D), problems (P,)) -> (losses (P,), gradients (P, D))``: loss and
#: gradient of problem ``problems[k]`` at ``points[k]`` for every row, all float64 arrays.
BatchObjective = Callable[[np.ndarray, np.ndarray], "tuple[np.ndarray, np.ndarray]"]


def _check_int(value: object, name: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"LBFGSSettings: `{name}` must be an integer >= {minimum}, got {value!r}")


def _check_nonnegative(value: object, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"LBFGSSettings: `{name}` must be a number >= 0, got {value!r}")


@dataclass(frozen=True)
class LBFGSSettings:
    """Settings of :func:`minimize_lbfgs`; the defaults are ProHMR's fitting (SPEC §6.1).

    *Fields*
        max_steps: outer steps (each one ``torch.optim.LBFGS.step``); 30 (the original
            demo used 10).
        max_iterations: L-BFGS iterations per step (PyTorch's ``max_iter``); 20.
        max_evaluations: objective evaluations per step; None = ``1.25 * max_iterations``
            (PyTorch's default ``max_eval``).
        history_size: curvature pairs kept; 100.
        learning_rate: scale of the initial trial step (PyTorch's ``lr``); 1.
        max_line_search_evaluations: evaluations per line search; 25.
        tolerance_grad: stop when the gradient's largest absolute entry is at most this.
        tolerance_change: end a step when the loss or the parameters change less than this.
        relative_tolerance: stop when a step changes the loss by less than this, relative.
    """

    max_steps: int = 30
    max_iterations: int = 20
    max_evaluations: Optional[int] = None
    history_size: int = 100
    learning_rate: float = 1.0
    max_line_search_evaluations: int = 25
    tolerance_grad: float = 1e-7
    tolerance_change: float = 1e-9
    relative_tolerance: float = 1e-9

    def __post_init__(self) -> None:
        _check_int(self.max_steps, "max_steps", 1)
        _check_int(self.max_iterations, "max_iterations", 1)
        if self.max_evaluations is not None:
            _check_int(self.max_evaluations, "max_evaluations", 1)
        _check_int(self.history_size, "history_size", 1)
        _check_int(self.max_line_search_evaluations, "max_line_search_evaluations", 1)
        if isinstance(self.learning_rate, bool) or not (
            isinstance(self.learning_rate, (int, float)) and self.learning_rate > 0
        ):
            raise ValueError(
                f"LBFGSSettings: `learning_rate` must be a number > 0, got {self.learning_rate!r}"
            )
        for name in ("tolerance_grad", "tolerance_change", "relative_tolerance"):
            _check_nonnegative(getattr(self, name), name)

    @property
    def evaluations_per_step(self) -> int:
        """The evaluation budget of one step."""
        if self.max_evaluations is not None:
            return self.max_evaluations
        return self.max_iterations * 5 // 4


@dataclass(frozen=True)
class LBFGSResult:
    """What :func:`minimize_lbfgs` returns, one row per problem.

    *Fields*
        x: ``(P, D)`` the solutions.
        loss: ``(P,)`` the loss at ``x``.
        initial_loss: ``(P,)`` the loss at the starting point.
        steps: ``(P,)`` outer steps run.
        evaluations: ``(P,)`` objective evaluations used (the starting point included).
        converged: ``(P,)`` whether a tolerance ended the run (False: ``max_steps`` was
            reached, or the starting loss was not finite).
    """

    x: np.ndarray
    loss: np.ndarray
    initial_loss: np.ndarray
    steps: np.ndarray
    evaluations: np.ndarray
    converged: np.ndarray


@dataclass(frozen=True)
class _Point:
    """A trial point of a line search: step length, loss, gradient and slope along d."""

    t: float
    f: float
    g: np.ndarray
    slope: float


@dataclass(frozen=True)
class _Outcome:
    x: np.ndarray
    loss: float
    initial_loss: float
    steps: int
    evaluations: int
    converged: bool


# A solver yields the point it needs evaluated and receives (loss, gradient) in return.
_Solver = Generator[np.ndarray, "tuple[float, np.ndarray]", _Outcome]
_LineSearch = Generator[np.ndarray, "tuple[float, np.ndarray]", "tuple[_Point, int]"]


def _finite_loss(value: float) -> float:
    return value if math.isfinite(value) else math.inf


def _cubic_minimizer(a: _Point, b: _Point, lower: float, upper: float) -> float:
    """Minimiser of the cubic through ``(t, f, slope)`` of ``a`` and ``b``, in ``[lower, upper]``.

    Nocedal & Wright eq. (3.59); falls back to the middle of the interval when the cubic has
    no minimiser or the data are not finite.
    """
    middle = 0.5 * (lower + upper)
    values = (a.t, a.f, a.slope, b.t, b.f, b.slope)
    if not all(math.isfinite(value) for value in values) or a.t == b.t:
        return middle
    d1 = a.slope + b.slope - 3.0 * (a.f - b.f) / (a.t - b.t)
    discriminant = d1 * d1 - a.slope * b.slope
    if discriminant < 0.0:
        return middle
    d2 = math.copysign(math.sqrt(discriminant), b.t - a.t)
    denominator = b.slope - a.slope + 2.0 * d2
    if denominator == 0.0:
        return middle
    t = b.t - (b.t - a.t) * (b.slope + d2 - d1) / denominator
    if not math.isfinite(t):
        return middle
    return min(max(t, lower), upper)


def _strong_wolfe(
    x: np.ndarray,
    start: _Point,
    direction: np.ndarray,
    t: float,
    settings: LBFGSSettings,
) -> _LineSearch:
    """Step length along ``direction`` satisfying the strong Wolfe conditions.

    Returns the accepted point (the best point with sufficient decrease when the budget runs
    out, possibly ``start`` itself) and the number of evaluations used.
    """
    f0, slope0 = start.f, start.slope
    direction_size = float(np.abs(direction).max())
    previous = start
    evaluations = 0

    def evaluate(step: float) -> Generator[np.ndarray, "tuple[float, np.ndarray]", _Point]:
        loss, grad = yield x + step * direction
        loss = _finite_loss(loss)
        return _Point(step, loss, grad, float(grad @ direction))

    # Bracketing: grow the step until it overshoots the minimum or satisfies the conditions.
    while True:
        point = yield from evaluate(t)
        evaluations += 1
        if point.f > f0 + WOLFE_C1 * t * slope0 or (evaluations > 1 and point.f >= previous.f):
            low, high = previous, point
            break
        if abs(point.slope) <= -WOLFE_C2 * slope0:
            return point, evaluations
        if point.slope >= 0.0:
            low, high = point, previous
            break
        if evaluations >= settings.max_line_search_evaluations:
            return point, evaluations
        next_t = _cubic_minimizer(
            previous,
            point,
            lower=t + _EXTRAPOLATION_MIN * (t - previous.t),
            upper=_EXTRAPOLATION_MAX * t,
        )
        previous, t = point, next_t

    # Zoom: shrink [low, high] (low has sufficient decrease and the lowest loss so far).
    while evaluations < settings.max_line_search_evaluations:
        left, right = min(low.t, high.t), max(low.t, high.t)
        if (right - left) * direction_size < settings.tolerance_change:
            break
        margin = _ZOOM_MARGIN * (right - left)
        t = _cubic_minimizer(low, high, left + margin, right - margin)
        point = yield from evaluate(t)
        evaluations += 1
        if point.f > f0 + WOLFE_C1 * t * slope0 or point.f >= low.f:
            high = point
            continue
        if abs(point.slope) <= -WOLFE_C2 * slope0:
            return point, evaluations
        if point.slope * (high.t - low.t) >= 0.0:
            high = low
        low = point
    return low, evaluations


class _History:
    """The last ``size`` curvature pairs and the two-loop recursion (N&W Alg. 7.4)."""

    def __init__(self, size: int) -> None:
        self.pairs: deque[tuple[np.ndarray, np.ndarray, float]] = deque(maxlen=size)
        self.gamma = 1.0

    def update(self, step: np.ndarray, grad_change: np.ndarray) -> None:
        curvature = float(grad_change @ step)
        if curvature > CURVATURE_EPS:
            self.pairs.append((step, grad_change, 1.0 / curvature))
            self.gamma = curvature / float(grad_change @ grad_change)

    def inverse_hessian_times(self, grad: np.ndarray) -> np.ndarray:
        q = grad.copy()
        alphas = []
        for step, grad_change, rho in reversed(self.pairs):
            alpha = rho * float(step @ q)
            q -= alpha * grad_change
            alphas.append(alpha)
        r = self.gamma * q
        for (step, grad_change, rho), alpha in zip(self.pairs, reversed(alphas)):
            beta = rho * float(grad_change @ r)
            r += (alpha - beta) * step
        return r


def _solve(x0: np.ndarray, settings: LBFGSSettings) -> _Solver:
    """One problem's L-BFGS run as a coroutine (see the module docstring)."""
    x = x0.copy()
    loss, grad = yield x
    loss = _finite_loss(loss)
    initial_loss, evaluations = loss, 1
    if not math.isfinite(loss):
        return _Outcome(x, loss, initial_loss, 0, evaluations, False)
    history = _History(settings.history_size)
    direction: Optional[np.ndarray] = None
    step_length = 0.0
    previous_grad = grad
    converged = False
    steps = 0
    while steps < settings.max_steps:
        if float(np.abs(grad).max()) <= settings.tolerance_grad:
            converged = True
            break
        steps += 1
        loss_before, step_evaluations = loss, 0
        for _ in range(settings.max_iterations):
            if direction is None:
                direction = -grad
                trial = min(1.0, 1.0 / float(np.abs(grad).sum())) * settings.learning_rate
            else:
                history.update(step_length * direction, grad - previous_grad)
                direction = -history.inverse_hessian_times(grad)
                trial = settings.learning_rate
            previous_grad = grad
            slope = float(grad @ direction)
            if slope > -settings.tolerance_change:
                break
            previous_loss = loss
            point, used = yield from _strong_wolfe(
                x, _Point(0.0, loss, grad, slope), direction, trial, settings
            )
            evaluations += used
            step_evaluations += used
            step_length, loss, grad = point.t, point.f, point.g
            x = x + step_length * direction
            if (
                step_evaluations >= settings.evaluations_per_step
                or float(np.abs(grad).max()) <= settings.tolerance_grad
                or float(np.abs(step_length * direction).max()) <= settings.tolerance_change
                or abs(loss - previous_loss) < settings.tolerance_change
            ):
                break
        change = abs(loss_before - loss) / max(abs(loss_before), abs(loss), 1.0)
        if change < settings.relative_tolerance:
            converged = True
            break
    return _Outcome(x, loss, initial_loss, steps, evaluations, converged)


def minimize_lbfgs(
    objective: BatchObjective,
    x0: np.ndarray,
    settings: Optional[LBFGSSettings] = None,
) -> LBFGSResult:
    """Minimise ``P`` independent problems with one L-BFGS state each, evaluated in batches.

    *Arguments*
        objective: ``objective(points (P', D), problems (P',)) -> (losses (P',),
            gradients (P', D))`` for the ``P'`` unfinished problems, in increasing problem
            order; float64 arrays in and out. Problem ``p``'s loss must depend only on its
            own row (that is what makes the problems independent).
        x0: ``(P, D)`` starting points.
        settings: :class:`LBFGSSettings` (default: ProHMR's).

    *Returns*
        :class:`LBFGSResult`.

    *Example*
        >>> centres = np.array([[1.0, -2.0], [3.0, 0.5]])
        >>> def objective(points, problems):
        ...     diff = points - centres[problems]
        ...     return (diff**2).sum(1), 2 * diff
        >>> result = minimize_lbfgs(objective, np.zeros((2, 2)))
        >>> np.allclose(result.x, centres), result.converged.tolist()
        (True, [True, True])
    """
    settings = LBFGSSettings() if settings is None else settings
    if not isinstance(settings, LBFGSSettings):
        raise ValueError(
            f"minimize_lbfgs: `settings` must be an LBFGSSettings, got {type(settings).__name__}"
        )
    starts = np.asarray(x0, dtype=np.float64)
    if starts.ndim != 2 or starts.shape[1] == 0:
        raise ValueError(f"minimize_lbfgs: `x0` must have shape (P, D), got {starts.shape}")
    if not np.isfinite(starts).all():
        raise ValueError("minimize_lbfgs: `x0` contains NaN or infinite values")
    num_problems, size = starts.shape
    solvers = [_solve(starts[index], settings) for index in range(num_problems)]
    pending = {index: next(solver) for index, solver in enumerate(solvers)}
    outcomes: list[Optional[_Outcome]] = [None] * num_problems
    while pending:
        problems = np.fromiter(sorted(pending), dtype=np.int64, count=len(pending))
        points = np.stack([pending[index] for index in problems])
        losses, grads = objective(points, problems)
        losses = np.asarray(losses, dtype=np.float64)
        grads = np.asarray(grads, dtype=np.float64)
        if losses.shape != (len(problems),) or grads.shape != (len(problems), size):
            raise ValueError(
                f"minimize_lbfgs: the objective must return losses ({len(problems)},) and "
                f"gradients ({len(problems)}, {size}), got {losses.shape} and {grads.shape}"
            )
        for row, index in enumerate(problems):
            try:
                pending[index] = solvers[index].send((float(losses[row]), grads[row].copy()))
            except StopIteration as finished:
                outcomes[index] = finished.value
                del pending[index]
    done = [outcome for outcome in outcomes if outcome is not None]
    return LBFGSResult(
        x=np.stack([outcome.x for outcome in done]),
        loss=np.array([outcome.loss for outcome in done]),
        initial_loss=np.array([outcome.initial_loss for outcome in done]),
        steps=np.array([outcome.steps for outcome in done], dtype=np.int64),
        evaluations=np.array([outcome.evaluations for outcome in done], dtype=np.int64),
        converged=np.array([outcome.converged for outcome in done], dtype=bool),
    )
