"""Mesh overlays: pixels change where the projected mesh is, nowhere else; side views."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from prohmr.geometry import perspective_projection
from prohmr.visualization import (
    plot_mesh_overlay,
    render_mesh_overlay,
    render_side_view,
    side_view_vertices,
)

HEIGHT, WIDTH = 72, 96
FOCAL = 120.0
TRANSLATION = torch.tensor([0.1, 0.05, 5.0])


def _background() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(HEIGHT, WIDTH, 3), dtype=np.uint8)


def _projected(vertices, translation, principal=(WIDTH / 2, HEIGHT / 2)) -> np.ndarray:
    return perspective_projection(
        torch.as_tensor(vertices, dtype=torch.float64), torch.as_tensor(translation).double(),
        FOCAL, torch.tensor(principal, dtype=torch.float64),
    ).numpy().reshape(-1, 2)


def _assert_changes_only_inside(changed: np.ndarray, uv: np.ndarray) -> None:
    """Changed pixels have their centres inside the projected vertices' bounding box."""
    rows, cols = np.nonzero(changed)
    assert len(rows) > 0
    low, high = uv.min(axis=0), uv.max(axis=0)
    assert (cols + 0.5 >= low[0] - 1e-4).all() and (cols + 0.5 <= high[0] + 1e-4).all()
    assert (rows + 0.5 >= low[1] - 1e-4).all() and (rows + 0.5 <= high[1] + 1e-4).all()


def _silhouette(uv: np.ndarray, faces: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pixels whose centre lies in some projected triangle: every pixel centre of each
    triangle's bounding box goes through float64 edge tests (numpy, independent of torch)."""
    corners = uv[faces]  # (F, 3, 2)
    low = np.clip(np.ceil(corners.min(axis=1) - 0.5), 0, [width, height]).astype(int)
    high = np.clip(np.floor(corners.max(axis=1) - 0.5), -1, [width - 1, height - 1]).astype(int)
    box = np.maximum(high - low + 1, 0)
    counts = box[:, 0] * box[:, 1]
    owner = np.repeat(np.arange(len(faces)), counts)
    offset = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    col = low[owner, 0] + offset % box[owner, 0]
    row = low[owner, 1] + offset // box[owner, 0]
    point = np.stack([col + 0.5, row + 0.5], axis=1)
    a, b, c = (corners[owner, k] for k in range(3))

    def side(p, q):
        return (q[:, 0] - p[:, 0]) * (point[:, 1] - p[:, 1]) - (q[:, 1] - p[:, 1]) * (
            point[:, 0] - p[:, 0]
        )

    signs = np.stack([side(a, b), side(b, c), side(c, a)])
    inside = (signs >= 0).all(axis=0) | (signs <= 0).all(axis=0)
    mask = np.zeros((height, width), dtype=bool)
    mask[row[inside], col[inside]] = True
    return mask


def _assert_mask_matches(changed: np.ndarray, uv: np.ndarray, faces) -> None:
    """The changed pixels are the projected mesh's silhouette, up to pixel centres that sit
    on a triangle edge within float32 rounding."""
    reference = _silhouette(uv, faces.numpy(), *changed.shape)
    assert reference.sum() > 200
    assert (changed != reference).sum() <= 0.01 * reference.sum()


def test_overlay_changes_pixels_exactly_where_the_mesh_projects(body) -> None:
    image = _background()
    out = render_mesh_overlay(image, body.vertices, body.faces, TRANSLATION, FOCAL)
    assert out.shape == image.shape and out.dtype == np.uint8
    changed = (out != image).any(axis=2)
    uv = _projected(body.vertices, TRANSLATION)
    _assert_changes_only_inside(changed, uv)
    _assert_mask_matches(changed, uv, body.faces)


def test_overlay_follows_the_principal_point_and_the_translation(body) -> None:
    image = np.zeros((HEIGHT, WIDTH, 3))
    base = render_mesh_overlay(image, body.vertices, body.faces, TRANSLATION, FOCAL, alpha=1.0)
    shifted = render_mesh_overlay(
        image, body.vertices, body.faces, TRANSLATION, FOCAL,
        principal_point=(WIDTH / 2 + 7, HEIGHT / 2 - 4), alpha=1.0,
    )
    mask, moved = base.any(axis=2), shifted.any(axis=2)
    # A whole-pixel shift of the principal point moves the mask by that many pixels (7 right,
    # 4 up), up to pixel centres on triangle edges.
    assert (moved[:-4, 7:] != mask[4:, :-7]).sum() <= 0.01 * mask.sum()
    assert moved[:-4, 7:].sum() == pytest.approx(mask.sum(), rel=0.01)
    # The camera translation is applied: moved along x, the mesh lands where it projects.
    step = torch.tensor([0.4, 0.0, 0.0])
    translated = render_mesh_overlay(
        image, body.vertices, body.faces, TRANSLATION + step, FOCAL, alpha=1.0
    ).any(axis=2)
    _assert_mask_matches(translated, _projected(body.vertices, TRANSLATION + step), body.faces)


def test_overlay_blending_colour_and_inputs(body) -> None:
    image = _background()
    red = render_mesh_overlay(image, body.vertices, body.faces, TRANSLATION, FOCAL,
                              color=(1.0, 0.0, 0.0), alpha=1.0)
    changed = (red != image).any(axis=2)
    assert (red[changed][:, 1:] == 0).all() and (red[changed][:, 0] > 0).all()
    # alpha 0 leaves the image as it was; float images and tensors give the same pixels.
    unchanged = render_mesh_overlay(image, body.vertices, body.faces, TRANSLATION, FOCAL,
                                    alpha=0.0)
    np.testing.assert_array_equal(unchanged, image)
    half = render_mesh_overlay(image, body.vertices, body.faces, TRANSLATION, FOCAL, alpha=0.5)
    again = render_mesh_overlay(torch.from_numpy(image / 255.0), body.vertices.numpy(),
                                body.faces.numpy(), TRANSLATION.numpy(), (FOCAL, FOCAL),
                                alpha=0.5)
    np.testing.assert_array_equal(half, again)
    # alpha blends linearly: half-way between the image and the opaque rendering.
    opaque = render_mesh_overlay(image, body.vertices, body.faces, TRANSLATION, FOCAL, alpha=1.0)
    expected = (image.astype(float) + opaque.astype(float)) / 2
    assert np.abs(half.astype(float) - expected)[changed].max() <= 1.0


def test_several_people_share_one_depth_buffer(body) -> None:
    image = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
    vertices = torch.stack([body.vertices, body.vertices])
    far, near = torch.tensor([0.3, 0.0, 6.0]), torch.tensor([0.0, 0.0, 5.0])
    colors = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    out = render_mesh_overlay(image, vertices, body.faces, torch.stack([far, near]), FOCAL,
                              color=colors, alpha=1.0)
    alone = [
        render_mesh_overlay(image, body.vertices, body.faces, t, FOCAL, alpha=1.0).any(axis=2)
        for t in (far, near)
    ]
    both = alone[0] & alone[1]
    assert both.sum() > 50
    # Where both project, the nearer (red) person hides the farther (blue) one.
    assert (out[both][:, 0] > 0).all() and (out[both][:, 2] == 0).all()
    only_far = alone[0] & ~alone[1]
    assert only_far.sum() > 20 and (out[only_far][:, 2] > 0).all()
    assert ((out.any(axis=2)) == (alone[0] | alone[1])).all()


def test_side_view_vertices_turn_about_the_vertical_through_the_centre(body) -> None:
    turned = side_view_vertices(body.vertices, TRANSLATION, angle=90.0)[0].double().numpy()
    camera = (body.vertices + TRANSLATION).double().numpy()
    centre = (camera.min(axis=0) + camera.max(axis=0)) / 2
    expected = Rotation.from_euler("y", 90.0, degrees=True).apply(camera - centre) + centre
    np.testing.assert_allclose(turned, expected, atol=1e-5)
    # The subject faced the camera; their left side (image right) now is nearest to it.
    assert body.smpl_joints[22, 0] > body.smpl_joints[23, 0]  # left hand on the image right
    assert turned[np.argmax(camera[:, 0]), 2] == pytest.approx(turned[:, 2].min())


def test_render_side_view_stays_inside_the_turned_projection(body) -> None:
    side = render_side_view((HEIGHT, WIDTH), body.vertices, body.faces, TRANSLATION, FOCAL)
    changed = (side != 255).any(axis=2)
    turned = side_view_vertices(body.vertices, TRANSLATION)[0]
    uv = _projected(turned, torch.zeros(3))
    _assert_changes_only_inside(changed, uv)
    _assert_mask_matches(changed, uv, body.faces)


def test_plot_mesh_overlay_panels_and_save(body, tmp_path, assert_png) -> None:
    image = _background()
    path = tmp_path / "a" / "b" / "overlay.png"
    figure = plot_mesh_overlay(image, body.vertices, body.faces, TRANSLATION, FOCAL,
                               title="person", save=path)
    assert_png(path)
    assert [axes.get_title() for axes in figure.axes] == ["input", "overlay", "side view"]
    expected = render_mesh_overlay(image, body.vertices, body.faces, TRANSLATION, FOCAL)
    np.testing.assert_array_equal(figure.axes[1].images[0].get_array(), expected)
    assert figure.axes[1].images[0].get_extent() == [0, WIDTH, HEIGHT, 0]
    without = plot_mesh_overlay(image, body.vertices, body.faces, TRANSLATION, FOCAL,
                                side_view=False)
    assert len(without.axes) == 2


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"vertices": np.zeros((10, 2))}, r"vertices must have shape \(V, 3\) or \(K, V, 3\)"),
        ({"vertices": np.full((10, 3), np.nan)}, "vertices contains NaN"),
        ({"faces": np.array([[0, 1, 10]])}, r"faces must index vertices in \[0, 10\)"),
        ({"faces": np.array([0, 1, 2])}, r"faces must have shape \(F, 3\)"),
        ({"camera_translation": np.zeros((2, 3))}, r"camera_translation must have shape"),
        ({"focal_length": 0.0}, "focal_length must be a non-zero"),
        ({"principal_point": (1.0, 2.0, 3.0)}, r"principal_point must have shape \(2,\)"),
        ({"color": (2.0, 0.0, 0.0)}, r"color must be an RGB"),
        ({"alpha": 1.5}, r"alpha must be in \[0, 1\]"),
        ({"image": np.zeros((8, 8, 4))}, r"image must have shape \(H, W, 3\)"),
        ({"image": np.full((8, 8, 3), np.nan)}, "image contains NaN"),
    ],
)
def test_overlay_rejects_bad_input(kwargs, match) -> None:
    arguments = {
        "image": np.zeros((8, 8, 3)), "vertices": np.zeros((10, 3)) + [0, 0, 1.0],
        "faces": np.array([[0, 1, 2]]), "camera_translation": np.zeros(3), "focal_length": 5.0,
        **kwargs,
    }
    with pytest.raises(ValueError, match=match):
        render_mesh_overlay(**arguments)


def test_overlay_renders_tensors_on_their_device(body, device) -> None:
    image = _background()
    expected = render_mesh_overlay(image, body.vertices, body.faces, TRANSLATION, FOCAL)
    out = render_mesh_overlay(
        torch.from_numpy(image).to(device), body.vertices.to(device), body.faces.to(device),
        TRANSLATION.to(device), torch.tensor(FOCAL, device=device),
    )
    assert isinstance(out, np.ndarray) and out.dtype == np.uint8
    differs = (out != expected).any(axis=2)
    # Other hardware may round pixel centres that sit exactly on an edge the other way.
    assert differs.sum() <= 0.01 * (expected != image).any(axis=2).sum()
    assert np.abs(out.astype(int) - expected.astype(int))[~differs].max(initial=0) == 0
