"""Before / after fitting figures: panels, titles from the errors, residuals, mesh overlays."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib import colors as mcolors

from prohmr.geometry import perspective_projection
from prohmr.visualization import BODY25_EDGES, plot_fitting_before_after, render_mesh_overlay
from prohmr.visualization.fitting import PREDICTION_COLOR, TARGET_COLOR, format_errors

HEIGHT, WIDTH, FOCAL = 80, 64, 150.0
BEFORE = torch.tensor([0.2, 0.1, 5.0])
AFTER = torch.tensor([0.0, 0.0, 5.0])


def _setup(body):
    centre = torch.tensor([WIDTH / 2, HEIGHT / 2])
    joints = body.joints[:25]
    before = perspective_projection(joints, BEFORE, FOCAL, centre)
    after = perspective_projection(joints, AFTER, FOCAL, centre)
    confidence = torch.ones(25, 1)
    confidence[[3, 19]] = 0.0  # an elbow and a toe are missing
    keypoints = torch.cat([after + 0.5, confidence], dim=1)
    return keypoints, before, after


def _collection(axes, gid: str):
    (found,) = [c for c in axes.collections if c.get_gid() == gid]
    return found


def test_before_after_panels_titles_and_residuals(body, tmp_path, assert_png) -> None:
    keypoints, before, after = _setup(body)
    image = np.full((HEIGHT, WIDTH, 3), 0.5)
    path = tmp_path / "out" / "fit.png"
    figure = plot_fitting_before_after(
        image, keypoints, before, after, BODY25_EDGES,
        errors={"reprojection (px)": (12.345, 0.5), "iterations": 17}, title="person 0",
        save=path,
    )
    assert_png(path)
    assert len(figure.axes) == 2
    assert [a.get_title() for a in figure.axes] == [
        "before\nreprojection (px): 12.35", "after\nreprojection (px): 0.5",
    ]
    assert figure.get_suptitle() == "person 0\niterations: 17"
    for axes, projected in zip(figure.axes, (before, after)):
        residuals = np.asarray(_collection(axes, "residuals").get_segments())
        visible = np.flatnonzero(keypoints[:, 2].numpy() > 0)
        assert len(residuals) == 23
        np.testing.assert_allclose(residuals[:, 0], projected[visible].numpy(), atol=1e-5)
        np.testing.assert_allclose(residuals[:, 1], keypoints[visible, :2].numpy(), atol=1e-5)
        target = _collection(axes, "target")
        # Edges touching the two missing keypoints are not drawn for the target.
        missing = sum(3 in edge or 19 in edge for edge in BODY25_EDGES)
        assert len(target.get_segments()) == len(BODY25_EDGES) - missing
        assert len(_collection(axes, "projected").get_segments()) == len(BODY25_EDGES)
        assert mcolors.same_color(target.get_colors()[0], TARGET_COLOR)
        assert mcolors.same_color(_collection(axes, "projected").get_colors()[0],
                                  PREDICTION_COLOR)


def test_before_after_with_meshes_shows_the_overlays(body) -> None:
    keypoints, before, after = _setup(body)
    image = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
    figure = plot_fitting_before_after(
        image, keypoints, before, after, BODY25_EDGES, before_mesh=body.vertices,
        after_mesh=body.vertices, faces=body.faces, camera_translation_before=BEFORE,
        camera_translation_after=AFTER, focal_length=FOCAL,
    )
    for axes, translation in zip(figure.axes, (BEFORE, AFTER)):
        expected = render_mesh_overlay(image, body.vertices, body.faces, translation, FOCAL)
        np.testing.assert_array_equal(axes.images[0].get_array(), expected)
    assert not np.array_equal(figure.axes[0].images[0].get_array(),
                              figure.axes[1].images[0].get_array())


def test_format_errors() -> None:
    assert format_errors(None) == ([], [], [])
    assert format_errors({"a": np.float32(1.5), "b": np.array([3, 4])}) == (
        ["a: 1.5"], ["b: 3"], ["b: 4"],
    )
    assert format_errors({"t": torch.tensor(2.25), "p": torch.tensor([1.0, 0.123456])}) == (
        ["t: 2.25"], ["p: 1"], ["p: 0.1235"],
    )
    with pytest.raises(ValueError, match=r"errors\['c'\] must be a number or a"):
        format_errors({"c": "large"})


@pytest.mark.parametrize(
    "change, match",
    [
        ({"before_joints_2d": np.zeros((24, 2))}, r"before_joints_2d must have shape \(25, 2\)"),
        ({"after_joints_2d": np.full((25, 2), np.nan)}, "after_joints_2d contains NaN"),
        ({"keypoints": np.zeros((25, 4))}, r"keypoints must have shape"),
        ({"before_mesh": np.zeros((10, 3))}, "before_mesh needs faces"),
        ({"errors": {"x": (1.0, 2.0, 3.0)}}, "must be a number or a"),
        ({"image": np.zeros((3, 8, 8))}, r"image must have shape \(H, W, 3\)"),
    ],
)
def test_before_after_rejects_bad_input(change, match) -> None:
    arguments = {
        "image": np.zeros((HEIGHT, WIDTH, 3)), "keypoints": np.ones((25, 3)),
        "before_joints_2d": np.zeros((25, 2)), "after_joints_2d": np.zeros((25, 2)),
        "edges": BODY25_EDGES, **change,
    }
    with pytest.raises(ValueError, match=match):
        plot_fitting_before_after(**arguments)
