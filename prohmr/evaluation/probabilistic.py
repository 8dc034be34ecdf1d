"""Metrics for predictions with a sample axis: mode error, min-of-n and calibration.

Predictions are ``(..., N, J, 3)`` joints in metres, images first, then samples; sample 0 is
the mode (ProHMR's convention, SPEC §7). Ground truth is ``(..., J, 3)``. Errors are in
millimetres and follow a :class:`~prohmr.evaluation.metrics.JointProtocol` (default
``PROHMR_14``).

- :func:`min_of_n` takes the **first** ``n`` samples, so the mode is always included and
  ``n = 1`` is the mode error.
- :func:`min_of_n_kmeans` follows the paper for small ``n``: many samples (e.g. 4096) are
  quantised to ``n`` K-means cluster centres per image and the best **centre** counts. The
  centres are means of samples, so the mode is *not* included and ``n = 1`` scores the sample
  mean.
- :func:`sample_quantile_calibration` and :func:`radial_calibration` measure how often the
  ground truth falls inside central sample intervals; a calibrated model covers a fraction
  close to each nominal level.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, cast

import numpy as np
import torch

from prohmr.evaluation.metrics import (
    PROHMR_14,
    JointProtocol,
    _check_points,
    _check_protocol_fits,
    _centre_and_select,
    _joint_error,
)
from prohmr.geometry.procrustes import procrustes_align

__all__ = [
    "Metric",
    "METRICS",
    "DEFAULT_NUM_SAMPLES",
    "DEFAULT_LEVELS",
    "sample_errors",
    "mode_error",
    "min_of_n",
    "min_of_n_kmeans",
    "sample_quantile_calibration",
    "radial_calibration",
]

Metric = Literal["mpjpe", "pa_mpjpe"]
#: Names accepted by the ``metric`` arguments.
METRICS: tuple[str, ...] = ("mpjpe", "pa_mpjpe")
#: The paper's sample counts for min-of-n.
DEFAULT_NUM_SAMPLES: tuple[int, ...] = (1, 5, 10, 25)
#: Nominal coverage levels of the calibration metrics.
DEFAULT_LEVELS: tuple[float, ...] = (0.5, 0.8, 0.9, 0.95)


def _check_samples(
    samples: object, gt: object, protocol: object, function: str, name: str = "pred"
) -> None:
    """Validate ``(..., N, J, 3)`` samples against ``(..., J, 3)`` ground truth."""
    _check_points(samples, name, function)
    _check_points(gt, "gt", function)
    samples, gt = cast(torch.Tensor, samples), cast(torch.Tensor, gt)
    if samples.ndim < 3:
        raise ValueError(
            f"{function}: `{name}` must have shape (..., N, J, 3) with a sample axis, "
            f"got {tuple(samples.shape)}"
        )
    expected = tuple(samples.shape[:-3]) + tuple(samples.shape[-2:])
    if tuple(gt.shape) != expected:
        raise ValueError(
            f"{function}: `gt` must have shape {expected} (`{name}` without its sample axis), "
            f"got {tuple(gt.shape)}"
        )
    if samples.device != gt.device or samples.dtype != gt.dtype:
        raise ValueError(
            f"{function}: `{name}` and `gt` must share device and dtype, got "
            f"{samples.device}/{samples.dtype} and {gt.device}/{gt.dtype}"
        )
    if not isinstance(protocol, JointProtocol):
        raise ValueError(
            f"{function}: `protocol` must be a JointProtocol, got {type(protocol).__name__}"
        )
    _check_protocol_fits(protocol, samples.shape[-2], function)


def _check_metric(metric: str, function: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"{function}: unknown `metric` {metric!r}; expected one of {METRICS}")


def _check_counts(ns: Sequence[int], available: int, function: str, name: str) -> tuple[int, ...]:
    counts = tuple(ns)
    if not counts or not all(isinstance(n, int) and not isinstance(n, bool) for n in counts):
        raise ValueError(f"{function}: `ns` must be a non-empty sequence of ints, got {ns!r}")
    if min(counts) < 1 or max(counts) > available:
        raise ValueError(
            f"{function}: every n in `ns` must lie in [1, {available}] (the size of the sample "
            f"axis of `{name}`), got {counts}"
        )
    return counts


def _errors(selected: torch.Tensor, gt_selected: torch.Tensor, metric: str) -> torch.Tensor:
    """Errors of root-centred ``(..., N, K, 3)`` predictions against ``(..., K, 3)``."""
    gt_selected = gt_selected[..., None, :, :].expand_as(selected)
    if metric == "pa_mpjpe":
        selected = cast(torch.Tensor, procrustes_align(selected, gt_selected))
    return _joint_error(selected, gt_selected)


def sample_errors(
    pred: torch.Tensor,
    gt: torch.Tensor,
    metric: Metric = "mpjpe",
    protocol: JointProtocol = PROHMR_14,
) -> torch.Tensor:
    """Error of every sample against the ground truth.

    Arguments:
        pred: ``(..., N, J, 3)`` sampled joints in metres.
        gt: ``(..., J, 3)`` ground-truth joints in metres.
        metric: ``"mpjpe"`` or ``"pa_mpjpe"``.
        protocol: the :class:`~prohmr.evaluation.metrics.JointProtocol`.

    Returns:
        ``(..., N)`` errors in millimetres.
    """
    function = "sample_errors"
    _check_samples(pred, gt, protocol, function)
    _check_metric(metric, function)
    return _errors(_centre_and_select(pred, protocol), _centre_and_select(gt, protocol), metric)


def mode_error(
    pred: torch.Tensor,
    gt: torch.Tensor,
    metric: Metric = "mpjpe",
    protocol: JointProtocol = PROHMR_14,
) -> torch.Tensor:
    """Error of the mode, sample 0.

    Arguments:
        pred: ``(..., N, J, 3)`` sampled joints in metres, sample 0 the mode.
        gt: ``(..., J, 3)`` ground-truth joints in metres.
        metric: ``"mpjpe"`` or ``"pa_mpjpe"``.
        protocol: the :class:`~prohmr.evaluation.metrics.JointProtocol`.

    Returns:
        ``(...)`` errors in millimetres.
    """
    function = "mode_error"
    _check_samples(pred, gt, protocol, function)
    _check_metric(metric, function)
    mode = _centre_and_select(pred[..., :1, :, :], protocol)
    return _errors(mode, _centre_and_select(gt, protocol), metric)[..., 0]


def min_of_n(
    pred: torch.Tensor,
    gt: torch.Tensor,
    ns: Sequence[int] = DEFAULT_NUM_SAMPLES,
    metric: Metric = "mpjpe",
    protocol: JointProtocol = PROHMR_14,
) -> dict[int, torch.Tensor]:
    """Minimum error over the first ``n`` samples (mode included), for each ``n``.

    Arguments:
        pred: ``(..., N, J, 3)`` sampled joints in metres, sample 0 the mode.
        gt: ``(..., J, 3)`` ground-truth joints in metres.
        ns: sample counts, each in ``[1, N]``.
        metric: ``"mpjpe"`` or ``"pa_mpjpe"``.
        protocol: the :class:`~prohmr.evaluation.metrics.JointProtocol`.

    Returns:
        ``{n: (...) errors in millimetres}``; non-increasing in ``n``, and ``n = 1`` equals
        :func:`mode_error`.

    Example:
        >>> gt = torch.zeros(1, 2, 3)
        >>> pred = torch.zeros(1, 3, 2, 3)  # one image, three samples, two joints
        >>> pred[0, :, :, 0] = torch.tensor([0.03, 0.05, 0.01])[:, None]
        >>> errors = min_of_n(pred, gt, (1, 2, 3), protocol=JointProtocol("all", None, None))
        >>> {n: round(e.item(), 3) for n, e in errors.items()}
        {1: 30.0, 2: 30.0, 3: 10.0}
    """
    function = "min_of_n"
    _check_samples(pred, gt, protocol, function)
    _check_metric(metric, function)
    counts = _check_counts(ns, pred.shape[-3], function, "pred")
    first = pred[..., : max(counts), :, :]
    errors = _errors(_centre_and_select(first, protocol), _centre_and_select(gt, protocol), metric)
    running_min = torch.cummin(errors, dim=-1).values
    return {n: running_min[..., n - 1] for n in counts}


def min_of_n_kmeans(
    samples: torch.Tensor,
    gt: torch.Tensor,
    ns: Sequence[int] = DEFAULT_NUM_SAMPLES,
    seed: int = 0,
    metric: Metric = "mpjpe",
    protocol: JointProtocol = PROHMR_14,
    n_init: int = 1,
) -> dict[int, torch.Tensor]:
    """Min-of-n after quantising many samples to ``n`` K-means centres per image (the paper).

    For each image the ``M`` samples are root-centred and reduced to the protocol's ``K``
    joints, flattened to ``(M, 3K)`` and clustered with scikit-learn's ``KMeans`` (k-means++,
    ``random_state=seed``). The ``n`` cluster centres, reshaped to ``(n, K, 3)``, are scored as
    predictions and the minimum over centres is returned. Centres are means of samples: the
    mode is not treated specially (include it in ``samples`` if it was drawn), ``n = 1``
    scores the sample mean, and ``n = M`` (distinct samples) gives the brute-force minimum
    over all samples. Unlike :func:`min_of_n`, the result need not decrease with ``n``: a few
    centres average out sample noise and can beat every individual sample.

    Arguments:
        samples: ``(..., M, J, 3)`` sampled joints in metres.
        gt: ``(..., J, 3)`` ground-truth joints in metres.
        ns: numbers of clusters, each in ``[1, M]``.
        seed: K-means random state, for reproducible centres.
        metric: ``"mpjpe"`` or ``"pa_mpjpe"`` (Procrustes is applied to each centre).
        protocol: the :class:`~prohmr.evaluation.metrics.JointProtocol`.
        n_init: K-means restarts per fit (the best inertia wins).

    Returns:
        ``{n: (...) errors in millimetres}`` on the device and dtype of ``samples``.

    Example:
        >>> gt = torch.zeros(1, 2, 3)
        >>> shifts = torch.tensor([-0.02, -0.01, 0.01, 0.02])[:, None, None]
        >>> samples = gt[:, None] + shifts * torch.tensor([1.0, 0.0, 0.0])
        >>> protocol = JointProtocol("all", None, None)
        >>> errors = min_of_n_kmeans(samples, gt, ns=(1, 2, 4), protocol=protocol)
        >>> {n: round(e.item(), 3) for n, e in errors.items()}
        {1: 0.0, 2: 15.0, 4: 10.0}
    """
    # scikit-learn is imported here: it is only needed by this function and slow to import.
    from sklearn.cluster import KMeans

    function = "min_of_n_kmeans"
    _check_samples(samples, gt, protocol, function, name="samples")
    _check_metric(metric, function)
    counts = _check_counts(ns, samples.shape[-3], function, "samples")
    if not isinstance(n_init, int) or n_init < 1:
        raise ValueError(f"{function}: `n_init` must be a positive int, got {n_init!r}")
    selected = _centre_and_select(samples, protocol)
    gt_selected = _centre_and_select(gt, protocol)
    batch_shape = selected.shape[:-3]
    num_samples, num_joints = selected.shape[-3], selected.shape[-2]
    flat = selected.reshape(-1, num_samples, num_joints * 3).detach().cpu().double().numpy()
    gt_flat = gt_selected.reshape(-1, num_joints, 3)
    results: dict[int, torch.Tensor] = {}
    for n in counts:
        centres = np.stack(
            [
                KMeans(n_clusters=n, n_init=n_init, random_state=seed).fit(image).cluster_centers_
                for image in flat
            ]
        )
        centres_tensor = torch.as_tensor(centres, dtype=samples.dtype, device=samples.device)
        errors = _errors(centres_tensor.reshape(-1, n, num_joints, 3), gt_flat, metric)
        results[n] = errors.min(dim=-1).values.reshape(batch_shape)
    return results


def _check_levels(levels: Sequence[float], function: str) -> tuple[float, ...]:
    values = tuple(levels)
    if not values or not all(
        isinstance(level, (int, float)) and 0.0 < level < 1.0 for level in values
    ):
        raise ValueError(
            f"{function}: `levels` must be a non-empty sequence of numbers in (0, 1), "
            f"got {levels!r}"
        )
    return tuple(float(level) for level in values)


def _calibration_inputs(
    samples: torch.Tensor, gt: torch.Tensor, protocol: JointProtocol, function: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Root-centred evaluated joints, minus a single root joint (identically zero)."""
    _check_samples(samples, gt, protocol, function, name="samples")
    if samples.shape[-3] < 2:
        raise ValueError(
            f"{function}: `samples` needs at least 2 samples on axis -3, got {tuple(samples.shape)}"
        )
    if isinstance(protocol.root, int):
        indices = protocol.joint_indices or tuple(range(samples.shape[-2]))
        kept = tuple(index for index in indices if index != protocol.root)
        if not kept:
            raise ValueError(
                f"{function}: protocol {protocol.name!r} evaluates only its root joint, whose "
                "root-relative position is always zero"
            )
        protocol = JointProtocol(protocol.name, kept, protocol.root)
    return _centre_and_select(samples, protocol), _centre_and_select(gt, protocol)


def _quantile(sorted_values: torch.Tensor, q: float, dim: int) -> torch.Tensor:
    """Linear-interpolation quantile (numpy's default) of values sorted along ``dim``."""
    position = q * (sorted_values.shape[dim] - 1)
    lower = math.floor(position)
    upper = min(lower + 1, sorted_values.shape[dim] - 1)
    weight = position - lower
    low = sorted_values.select(dim, lower)
    return low + weight * (sorted_values.select(dim, upper) - low)


def sample_quantile_calibration(
    samples: torch.Tensor,
    gt: torch.Tensor,
    levels: Sequence[float] = DEFAULT_LEVELS,
    protocol: JointProtocol = PROHMR_14,
) -> dict[float, torch.Tensor]:
    """Coverage of the ground truth by central per-joint, per-axis sample intervals.

    Samples and ground truth are root-centred and reduced to the protocol's joints (a single
    root joint inside that set is dropped: it is zero for every sample). For each level ``p``,
    image, joint and axis, the interval between the sample quantiles ``(1 - p) / 2`` and
    ``(1 + p) / 2`` (linear interpolation, as ``numpy.quantile``) covers the ground-truth
    coordinate or not (bounds inclusive). For a calibrated model the coverage is close to
    ``p``; an over-confident one covers less.

    Arguments:
        samples: ``(..., M, J, 3)`` sampled joints in metres, ``M >= 2``.
        gt: ``(..., J, 3)`` ground-truth joints in metres.
        levels: nominal coverages in ``(0, 1)``.
        protocol: the :class:`~prohmr.evaluation.metrics.JointProtocol`.

    Returns:
        ``{level: (...) covered fraction per image}``. Every image has the same number of
        (joint, axis) pairs, so ``.mean()`` is the fraction over all (image, joint, axis).

    Example:
        >>> samples = torch.linspace(-1.0, 1.0, 101)[:, None, None].expand(101, 1, 3)
        >>> gt = torch.tensor([[0.3, -0.6, 0.95]])
        >>> protocol = JointProtocol("all", None, None)
        >>> coverage = sample_quantile_calibration(samples, gt, (0.5, 0.9), protocol)
        >>> {level: round(value.item(), 4) for level, value in coverage.items()}
        {0.5: 0.3333, 0.9: 0.6667}
    """
    function = "sample_quantile_calibration"
    nominal = _check_levels(levels, function)
    selected, gt_selected = _calibration_inputs(samples, gt, protocol, function)
    ordered = selected.sort(dim=-3).values
    coverage: dict[float, torch.Tensor] = {}
    for level in nominal:
        lower = _quantile(ordered, (1.0 - level) / 2.0, dim=-3)
        upper = _quantile(ordered, (1.0 + level) / 2.0, dim=-3)
        inside = (gt_selected >= lower) & (gt_selected <= upper)
        coverage[level] = inside.to(samples.dtype).mean(dim=(-2, -1))
    return coverage


def radial_calibration(
    samples: torch.Tensor,
    gt: torch.Tensor,
    levels: Sequence[float] = DEFAULT_LEVELS,
    protocol: JointProtocol = PROHMR_14,
) -> dict[float, torch.Tensor]:
    """Coverage of the ground truth by per-joint balls around the sample mean.

    After the same root centring and selection as :func:`sample_quantile_calibration`, for
    each image and joint the radius ``r_p`` is the ``p``-quantile of the distances of the
    samples to their mean; the joint is covered when the ground truth lies within ``r_p`` of
    the sample mean (inclusive). A calibrated model covers a fraction close to ``p``.

    Arguments:
        samples: ``(..., M, J, 3)`` sampled joints in metres, ``M >= 2``.
        gt: ``(..., J, 3)`` ground-truth joints in metres.
        levels: nominal coverages in ``(0, 1)``.
        protocol: the :class:`~prohmr.evaluation.metrics.JointProtocol`.

    Returns:
        ``{level: (...) covered fraction of joints per image}``.
    """
    function = "radial_calibration"
    nominal = _check_levels(levels, function)
    selected, gt_selected = _calibration_inputs(samples, gt, protocol, function)
    mean = selected.mean(dim=-3)
    distances = (selected - mean[..., None, :, :]).norm(dim=-1).sort(dim=-2).values
    gt_distance = (gt_selected - mean).norm(dim=-1)
    coverage: dict[float, torch.Tensor] = {}
    for level in nominal:
        radius = _quantile(distances, level, dim=-2)
        coverage[level] = (gt_distance <= radius).to(samples.dtype).mean(dim=-1)
    return coverage
