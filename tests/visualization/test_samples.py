"""The sample fan: colours follow the log-likelihood through the colormap, mode and truth styles."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib import colormaps
from matplotlib import colors as mcolors

from prohmr.visualization import SMPL_EDGES, plot_sample_fan, sample_colors
from prohmr.visualization.samples import GROUND_TRUTH_COLOR


def _fan(body, num_samples: int = 12, seed: int = 0):
    rng = np.random.default_rng(seed)
    rest = body.smpl_joints.numpy().astype(np.float64)
    samples = rest + 0.03 * rng.standard_normal((num_samples, 24, 3))
    log_prob = rng.normal(size=num_samples) * 3.0
    return rest, samples, log_prob


def _collections(axes) -> dict:
    return {c.get_gid(): c for c in axes.collections if c.get_gid() is not None}


@pytest.mark.parametrize("cmap", ["viridis", "magma"])
def test_sample_colours_are_the_colormap_at_the_normalised_log_prob(body, cmap) -> None:
    rest, samples, log_prob = _fan(body)
    figure = plot_sample_fan(samples, log_prob, SMPL_EDGES, mode=rest, cmap=cmap)
    low, high = log_prob.min(), log_prob.max()
    lookup = colormaps[cmap](np.linspace(0.0, 1.0, colormaps[cmap].N))[:, :3]
    for axes in figure.axes[:2]:
        collections = _collections(axes)
        positions = []
        for i in range(len(log_prob)):
            rgb = collections[f"sample {i}"].get_colors()[0][:3]
            expected = colormaps[cmap]((log_prob[i] - low) / (high - low))[:3]
            np.testing.assert_allclose(rgb, expected, atol=1e-12)
            positions.append(int(np.argmin(((lookup - rgb) ** 2).sum(axis=1))))
        # Monotone: a likelier sample sits further along the colormap.
        order = np.argsort(log_prob)
        assert np.all(np.diff(np.asarray(positions)[order]) >= 0)
        assert positions[order[0]] == 0 and positions[order[-1]] == colormaps[cmap].N - 1
        # Drawn from the least to the most likely, so the likeliest ends on top.
        drawn = [c.get_gid() for c in axes.collections if str(c.get_gid()).startswith("sample")]
        assert drawn == [f"sample {i}" for i in order]


def test_sample_fan_layout_mode_ground_truth_and_save(body, tmp_path, assert_png) -> None:
    rest, samples, log_prob = _fan(body)
    path = tmp_path / "fan" / "fan.png"
    figure = plot_sample_fan(
        torch.from_numpy(samples), torch.from_numpy(log_prob), SMPL_EDGES, mode=rest,
        ground_truth=rest + 0.05, views=("front", "side", "top"), save=path,
    )
    assert_png(path)
    assert len(figure.axes) == 4  # three views and the colorbar
    colorbar = figure.axes[-1]
    assert colorbar.get_ylabel() == "log-likelihood"
    np.testing.assert_allclose(colorbar.get_ylim(), (log_prob.min(), log_prob.max()))
    collections = _collections(figure.axes[0])
    mode, truth = collections["mode"], collections["ground_truth"]
    assert mcolors.same_color(mode.get_colors()[0], "black")
    assert mode.get_linewidths()[0] > 2 * collections["sample 0"].get_linewidths()[0]
    assert mcolors.same_color(truth.get_colors()[0], GROUND_TRUTH_COLOR)
    offset, dashes = truth.get_linestyles()[0]
    assert dashes is not None and len(dashes) >= 2  # dashed
    # Camera frame (up="-y"): the front view shows x right and -y up.
    np.testing.assert_allclose(
        mode.get_segments()[0], [[rest[0, 0], -rest[0, 1]], [rest[1, 0], -rest[1, 1]]]
    )


def test_equal_log_probs_give_one_colour() -> None:
    colours = sample_colors(np.array([2.0, 2.0, 2.0]))
    np.testing.assert_allclose(colours, np.repeat(colours[:1], 3, axis=0))


@pytest.mark.parametrize(
    "samples, log_prob, kwargs, match",
    [
        (np.zeros((5, 24)), np.zeros(5), {}, r"samples must have shape \(N, J, 3\)"),
        (np.zeros((5, 24, 3)), np.zeros(4), {}, r"log_prob must have shape \(5,\)"),
        (np.zeros((5, 24, 3)), np.array([0, 1, np.nan, 0, 0]), {}, "log_prob contains NaN"),
        (np.full((5, 24, 3), np.inf), np.zeros(5), {}, "samples contains NaN"),
        (np.zeros((5, 24, 3)), np.zeros(5), {"mode": np.zeros((23, 3))}, r"mode must have"),
        (np.zeros((5, 24, 3)), np.zeros(5), {"cmap": "no-such-map"}, "cmap must be"),
        (np.zeros((5, 24, 3)), np.zeros(5), {"views": "front"}, "views must be"),
    ],
)
def test_sample_fan_rejects_bad_input(samples, log_prob, kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        plot_sample_fan(samples, log_prob, SMPL_EDGES, **kwargs)
