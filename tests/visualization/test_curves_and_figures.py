"""Curves (min-of-N, losses), save_figure, and the orthographic body views."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image

from prohmr.body.joints import SMPL_PARENTS
from prohmr.visualization import (
    plot_body_views,
    plot_loss_curve,
    plot_min_of_n,
    save_figure,
    save_image,
)


def test_min_of_n_lines_axis_and_save(tmp_path, assert_png) -> None:
    ns = [1, 5, 10, 100]
    errors = {"ProHMR": [80.0, 70.5, 66.0, 59.0], "k-means": torch.tensor([80.0, 69, 64, 58])}
    figure = plot_min_of_n(ns, errors, ylabel="PA-MPJPE (mm)", save=tmp_path / "m" / "n.png")
    assert_png(tmp_path / "m" / "n.png")
    (axes,) = figure.axes
    assert axes.get_xscale() == "log" and axes.get_ylabel() == "PA-MPJPE (mm)"
    assert [line.get_label() for line in axes.lines] == ["ProHMR", "k-means"]
    np.testing.assert_allclose(axes.lines[1].get_xdata(), ns)
    np.testing.assert_allclose(axes.lines[1].get_ydata(), [80, 69, 64, 58])
    assert [tick.get_text() for tick in axes.get_xticklabels()] == ["1", "5", "10", "100"]


@pytest.mark.parametrize(
    "ns, errors, match",
    [
        ([1, 5], {"a": [1.0, 2.0, 3.0]}, r"errors\['a'\] must have shape \(2,\)"),
        ([5, 1], {"a": [1.0, 2.0]}, "increasing order"),
        ([0, 1], {"a": [1.0, 2.0]}, "positive integers"),
        ([1, 2.5], {"a": [1.0, 2.0]}, "positive integers"),
        ([1, 2], {}, "non-empty dict"),
        ([1, 2], {"a": [1.0, np.nan]}, r"errors\['a'\] contains NaN"),
    ],
)
def test_min_of_n_rejects_bad_input(ns, errors, match) -> None:
    with pytest.raises(ValueError, match=match):
        plot_min_of_n(ns, errors)


def test_loss_curve_forms_and_scales(tmp_path, assert_png) -> None:
    single = plot_loss_curve(np.exp(-np.arange(20.0)), save=tmp_path / "l.png")
    assert_png(tmp_path / "l.png")
    (axes,) = single.axes
    assert axes.get_yscale() == "log" and len(axes.lines) == 1
    np.testing.assert_allclose(axes.lines[0].get_xdata(), np.arange(20))
    columns = plot_loss_curve(np.ones((5, 2)), labels=["data", "prior"], log_y=False)
    assert [line.get_label() for line in columns.axes[0].lines] == ["data", "prior"]
    assert columns.axes[0].get_yscale() == "linear"
    signed = plot_loss_curve({"total": [3.0, 1.0], "prior": [-2.0, -2.5, -2.7]})
    assert signed.axes[0].get_yscale() == "symlog"
    assert [len(line.get_xdata()) for line in signed.axes[0].lines] == [2, 3]


@pytest.mark.parametrize(
    "losses, labels, match",
    [
        ({"a": [1.0]}, ["a"], "labels must be None"),
        (np.ones((4, 2)), ["a"], "labels must have 2 names"),
        (np.ones((2, 2, 2)), None, r"losses must have shape \(T,\) or \(T, K\)"),
        ([1.0, np.inf], None, "losses contains NaN or infinite"),
        ({"a": []}, None, r"losses\['a'\] must have shape \(T,\) with T >= 1"),
    ],
)
def test_loss_curve_rejects_bad_input(losses, labels, match) -> None:
    with pytest.raises(ValueError, match=match):
        plot_loss_curve(losses, labels=labels)


def test_save_figure_creates_folders_and_keeps_the_suffix(tmp_path, assert_png) -> None:
    figure = plot_loss_curve([3.0, 2.0, 1.0])
    path = save_figure(figure, str(tmp_path / "x" / "y" / "loss"), dpi=50)
    assert path == tmp_path / "x" / "y" / "loss"
    assert_png(path)
    pdf = save_figure(figure, tmp_path / "loss.pdf")
    assert pdf.read_bytes()[:4] == b"%PDF"
    with pytest.raises(ValueError, match="figure must be a matplotlib Figure"):
        save_figure("not a figure", tmp_path / "z.png")


def test_body_views(body, tmp_path, assert_png) -> None:
    figure = plot_body_views(body.vertices, body.faces, body.smpl_joints, SMPL_PARENTS,
                             views=("front", "side", "top"), up="-y", save=tmp_path / "b.png")
    assert isinstance(figure, Figure) and len(figure.axes) == 3
    assert_png(tmp_path / "b.png")
    with pytest.raises(ValueError, match=r"faces must index vertices"):
        plot_body_views(body.vertices[:10], body.faces)
    with pytest.raises(ValueError, match=r"joints must have shape \(24, 3\)"):
        plot_body_views(body.vertices, body.faces, body.joints, SMPL_PARENTS)


def test_save_image_round_trips(tmp_path) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, size=(6, 5, 3), dtype=np.uint8)
    path = save_image(pixels, tmp_path / "a" / "image")
    with Image.open(path) as opened:
        assert opened.format == "PNG"
        np.testing.assert_array_equal(np.asarray(opened), pixels)
    save_image(pixels / 255.0, tmp_path / "b.png")
    with Image.open(tmp_path / "b.png") as opened:
        np.testing.assert_array_equal(np.asarray(opened), pixels)
    with pytest.raises(ValueError, match=r"image must have shape \(H, W, 3\)"):
        save_image(np.zeros((4, 4), dtype=np.uint8), tmp_path / "c.png")
