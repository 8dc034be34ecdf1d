"""Line plots: error against the number of samples (min-of-N), loss against iteration."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from prohmr.visualization.figures import PathLike, as_numpy, new_figure, save_figure

__all__ = ["plot_loss_curve", "plot_min_of_n"]

#: With a symmetric-log axis, the linear region reaches at least this fraction of the largest
#: magnitude.
_SYMLOG_RANGE = 1e-3


def plot_min_of_n(
    ns: Sequence[int] | Any,
    errors: Mapping[str, Any],
    ylabel: str = "MPJPE (mm)",
    save: PathLike | None = None,
    *,
    title: str | None = None,
) -> Figure:
    """Best-of-N error against the number of samples N, one line per method or metric.

    The x axis is logarithmic with a tick at every N. The figure is not registered with
    pyplot (nothing to close).

    Arguments:
        ns: ``(M,)`` positive sample counts, increasing.
        errors: ``label -> (M,)`` error at each N.
        ylabel: y-axis label.
        save: if given, the figure is also written there as PNG (folders created).
        title: axes title.

    Returns:
        The figure, one axes with one line per label (in the order of ``errors``).

    Example:
        >>> figure = plot_min_of_n([1, 5, 10], {"ProHMR": [80.0, 70.0, 66.0]})
        >>> figure.axes[0].lines[0].get_ydata().tolist()
        [80.0, 70.0, 66.0]
    """
    counts = as_numpy(ns, "ns")
    if counts.ndim != 1 or len(counts) == 0:
        raise ValueError(f"ns must have shape (M,) with M >= 1, got {counts.shape}")
    if (counts < 1).any() or (counts != np.round(counts)).any() or (np.diff(counts) <= 0).any():
        raise ValueError(f"ns must be positive integers in increasing order, got {counts.tolist()}")
    if not isinstance(errors, Mapping) or not errors:
        raise ValueError("errors must be a non-empty dict of label -> errors at each N")
    curves = {}
    for label, values in errors.items():
        curve = as_numpy(values, f"errors[{label!r}]")
        if curve.shape != counts.shape:
            raise ValueError(
                f"errors[{label!r}] must have shape ({len(counts)},) (one per N), "
                f"got {curve.shape}"
            )
        curves[str(label)] = curve

    figure = new_figure(4.5, 3.2)
    axes = figure.add_subplot()
    for label, curve in curves.items():
        axes.plot(counts, curve, marker="o", markersize=4, label=label)
    axes.set_xscale("log")
    axes.set_xticks(counts, [str(int(n)) for n in counts])
    axes.xaxis.set_minor_formatter(NullFormatter())
    axes.set_xlabel("number of samples N")
    axes.set_ylabel(ylabel)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    if title:
        axes.set_title(title, fontsize=10)
    if save is not None:
        save_figure(figure, save)
    return figure


def _loss_curves(losses: Any, labels: Sequence[str] | str | None) -> dict[str, np.ndarray]:
    if isinstance(losses, Mapping):
        if labels is not None:
            raise ValueError("labels must be None when losses is a dict (its keys are the labels)")
        if not losses:
            raise ValueError("losses must not be empty")
        curves = {
            str(name): as_numpy(values, f"losses[{name!r}]") for name, values in losses.items()
        }
        for name, curve in curves.items():
            if curve.ndim != 1 or len(curve) == 0:
                raise ValueError(
                    f"losses[{name!r}] must have shape (T,) with T >= 1, got {curve.shape}"
                )
        return curves
    array = as_numpy(losses, "losses")
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[0] == 0:
        raise ValueError(f"losses must have shape (T,) or (T, K), or be a dict, got {array.shape}")
    names = [labels] if isinstance(labels, str) else labels
    if names is None:
        names = ["loss"] if array.shape[1] == 1 else [f"loss {k}" for k in range(array.shape[1])]
    if len(names) != array.shape[1]:
        raise ValueError(
            f"labels must have {array.shape[1]} names (one per curve), got {len(names)}"
        )
    return {str(name): array[:, k] for k, name in enumerate(names)}


def plot_loss_curve(
    losses: Any,
    labels: Sequence[str] | str | None = None,
    log_y: bool = True,
    save: PathLike | None = None,
    *,
    title: str | None = None,
) -> Figure:
    """Loss per iteration, one line per curve.

    With ``log_y`` the y axis is logarithmic, or symmetric-logarithmic when some value is not
    positive (negative log-likelihood terms can be). The figure is not registered with pyplot
    (nothing to close).

    Arguments:
        losses: ``(T,)`` one curve, ``(T, K)`` K curves, or a dict ``label -> (T_k,)``.
        labels: names of the curves of an array (one string for a single curve); must be
            ``None`` for a dict.
        log_y: logarithmic y axis.
        save: if given, the figure is also written there as PNG (folders created).
        title: axes title.

    Returns:
        The figure, one axes with one line per curve (x = iteration, from 0).

    Example:
        >>> figure = plot_loss_curve({"total": [4.0, 2.0, 1.0], "prior": [1.0, 0.5, 0.5]})
        >>> [line.get_label() for line in figure.axes[0].lines], figure.axes[0].get_yscale()
        (['total', 'prior'], 'log')
    """
    curves = _loss_curves(losses, labels)
    figure = new_figure(4.5, 3.2)
    axes = figure.add_subplot()
    for name, curve in curves.items():
        axes.plot(np.arange(len(curve)), curve, label=name)
    if log_y:
        values = np.concatenate(list(curves.values()))
        if (values > 0).all():
            axes.set_yscale("log")
        else:
            # Linear within the smallest non-zero magnitude (but at least a thousandth of the
            # largest), logarithmic beyond.
            magnitudes = np.abs(values[values != 0])
            largest = float(magnitudes.max()) if len(magnitudes) else 1.0
            smallest = float(magnitudes.min()) if len(magnitudes) else 1.0
            axes.set_yscale("symlog", linthresh=max(smallest, largest * _SYMLOG_RANGE))
    axes.set_xlabel("iteration")
    axes.set_ylabel("loss")
    axes.grid(alpha=0.3)
    if len(curves) > 1 or labels is not None:
        axes.legend(fontsize=8)
    if title:
        axes.set_title(title, fontsize=10)
    if save is not None:
        save_figure(figure, save)
    return figure
