"""Edge lists (trees, consistent with SMPL_PARENTS and the flips) and the skeleton plots."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib import colors as mcolors

from prohmr.body.joints import (
    BODY25_FLIP_PERMUTATION,
    BODY25_JOINT_NAMES,
    EXTRA_FLIP_PERMUTATION,
    H36M_17_FROM_EXTRA,
    H36M_17_INPUT_2D,
    SMPL_FLIP_PERMUTATION,
    SMPL_PARENTS,
    SMPLX_TO_BODY25,
)
from prohmr.visualization import (
    BODY25_EDGES,
    H36M17_EDGES,
    H36M17_JOINT_NAMES,
    PROHMR44_EDGES,
    SMPL_EDGES,
    VIEWS,
    edges_from_parents,
    plot_keypoints_2d,
    plot_skeleton_3d,
)

EDGE_LISTS = {
    "SMPL": (SMPL_EDGES, 24),
    "BODY25": (BODY25_EDGES, 25),
    "H36M17": (H36M17_EDGES, 17),
}


def _is_tree(edges, num_joints: int) -> bool:
    """Brute force: J - 1 edges, every child has one parent, everything reachable from one root."""
    children = [child for _, child in edges]
    if len(edges) != num_joints - 1 or len(set(children)) != len(children):
        return False
    roots = set(range(num_joints)) - set(children)
    if len(roots) != 1:
        return False
    reached, frontier = set(roots), list(roots)
    while frontier:
        node = frontier.pop()
        for parent, child in edges:
            if parent == node and child not in reached:
                reached.add(child)
                frontier.append(child)
    return len(reached) == num_joints


@pytest.mark.parametrize("name", EDGE_LISTS)
def test_edge_lists_are_trees(name: str) -> None:
    edges, num_joints = EDGE_LISTS[name]
    assert _is_tree(edges, num_joints)
    assert all(isinstance(index, int) for edge in edges for index in edge)


def test_smpl_edges_follow_smpl_parents() -> None:
    assert SMPL_EDGES == edges_from_parents(SMPL_PARENTS)
    assert {child: parent for parent, child in SMPL_EDGES} == {
        child: parent for child, parent in enumerate(SMPL_PARENTS) if parent >= 0
    }


def _smpl_path(a: int, b: int) -> set[int]:
    """Joints strictly between ``a`` and ``b`` on the SMPL tree (brute force over ancestors)."""

    def chain(joint: int) -> list[int]:
        joints = [joint]
        while SMPL_PARENTS[joints[-1]] >= 0:
            joints.append(SMPL_PARENTS[joints[-1]])
        return joints

    chain_a, chain_b = chain(a), chain(b)
    common = next(joint for joint in chain_a if joint in chain_b)
    path = chain_a[: chain_a.index(common) + 1] + chain_b[: chain_b.index(common)]
    return set(path) - {a, b}


def test_body25_edges_agree_with_the_smpl_tree() -> None:
    # Each BODY_25 edge between two SMPL joints follows the SMPL tree without skipping a joint
    # that BODY_25 also has (no hip-to-ankle edge past the knee), so the trees agree.
    body25_smpl_joints = {joint for joint in SMPLX_TO_BODY25 if joint < 24}
    checked = 0
    for parent, child in BODY25_EDGES:
        smpl_parent, smpl_child = SMPLX_TO_BODY25[parent], SMPLX_TO_BODY25[child]
        if smpl_parent < 24 and smpl_child < 24:
            assert not _smpl_path(smpl_parent, smpl_child) & body25_smpl_joints, (parent, child)
            checked += 1
    assert checked == 13  # neck-midhip, arms (6), legs (6)
    assert _smpl_path(0, 7) == {1, 4}  # the helper itself: pelvis - left hip - knee - ankle
    assert PROHMR44_EDGES == BODY25_EDGES


@pytest.mark.parametrize(
    "edges, flip",
    [
        (SMPL_EDGES, SMPL_FLIP_PERMUTATION),
        (BODY25_EDGES, BODY25_FLIP_PERMUTATION),
        (H36M17_EDGES, tuple(H36M_17_FROM_EXTRA.index(EXTRA_FLIP_PERMUTATION[e])
                             for e in H36M_17_FROM_EXTRA)),
    ],
    ids=["SMPL", "BODY25", "H36M17"],
)
def test_edge_lists_are_left_right_symmetric(edges, flip) -> None:
    assert {(flip[a], flip[b]) for a, b in edges} == set(edges)


@pytest.mark.parametrize(
    "edges, indices, longest",
    [
        (BODY25_EDGES, tuple(range(25)), 0.6),
        (H36M17_EDGES, H36M_17_INPUT_2D, 0.6),
        (SMPL_EDGES, None, 0.5),
    ],
    ids=["BODY25", "H36M17", "SMPL"],
)
def test_edges_join_nearby_joints_of_a_real_body(body, edges, indices, longest) -> None:
    joints = body.smpl_joints if indices is None else body.joints[list(indices)]
    lengths = [float((joints[a] - joints[b]).norm()) for a, b in edges]
    assert 0.02 < min(lengths) and max(lengths) < longest


def test_h36m17_names_and_order() -> None:
    assert H36M17_JOINT_NAMES[:3] == ("R_Ankle", "R_Knee", "R_Hip")
    assert H36M17_JOINT_NAMES[13] == "Pelvis_MPII" and len(H36M17_JOINT_NAMES) == 17
    assert BODY25_JOINT_NAMES[BODY25_EDGES[0][0]] == "MidHip"


def _segments(figure, axes_index: int, gid: str) -> np.ndarray:
    (collection,) = [c for c in figure.axes[axes_index].collections if c.get_gid() == gid]
    return np.asarray(collection.get_segments())


@pytest.mark.parametrize("views", [("front",), ("front", "side", "top")])
def test_plot_skeleton_3d_axes_save_and_projection(body, views, tmp_path, assert_png) -> None:
    joints = body.body_frame_smpl_joints
    path = tmp_path / "deep" / "folder" / "skeleton.png"
    figure = plot_skeleton_3d(joints, SMPL_EDGES, views=views, others=[joints.numpy() + 0.1],
                              labels=["prediction", "truth"], title="t", save=path)
    assert len(figure.axes) == len(views)
    assert_png(path)
    # The drawn segments are the orthographic projections of the edges, from scratch.
    points = joints.numpy().astype(np.float64)
    for index, view in enumerate(views):
        (h, hs), (v, vs), _ = VIEWS[view]
        expected = np.array([[[hs * points[a, h], vs * points[a, v]],
                              [hs * points[b, h], vs * points[b, v]]] for a, b in SMPL_EDGES])
        np.testing.assert_allclose(_segments(figure, index, "skeleton 0"), expected, atol=1e-6)
        np.testing.assert_allclose(
            _segments(figure, index, "skeleton 1"), expected + 0.1 * np.array([hs, vs]), atol=1e-6
        )
        axes = figure.axes[index]
        width = np.diff(axes.get_xlim())[0]
        assert width == pytest.approx(np.diff(axes.get_ylim())[0])  # square window
        assert axes.get_aspect() == 1.0


def test_plot_skeleton_3d_camera_frame_equals_flipped_body_frame(body) -> None:
    camera = plot_skeleton_3d(body.smpl_joints, SMPL_EDGES, up="-y")
    world = plot_skeleton_3d(body.body_frame_smpl_joints, SMPL_EDGES, up="y")
    for index in range(3):
        np.testing.assert_allclose(
            _segments(camera, index, "skeleton 0"), _segments(world, index, "skeleton 0"),
            atol=1e-6,
        )
    # Front view of a camera-frame skeleton: the head is drawn above the neck, and the
    # subject's left shoulder (image right, +x) on the right.
    segments = _segments(camera, 0, "skeleton 0")
    neck_to_head = segments[SMPL_EDGES.index((12, 15))]
    assert neck_to_head[1, 1] > neck_to_head[0, 1]
    assert neck_to_head[1, 0] == pytest.approx(float(body.smpl_joints[15, 0]), abs=1e-6)
    left, right = segments[SMPL_EDGES.index((13, 16))], segments[SMPL_EDGES.index((14, 17))]
    assert left[1, 0] > right[1, 0]


def test_plot_skeleton_3d_draws_only_joints_with_edges(body) -> None:
    figure = plot_skeleton_3d(body.joints, PROHMR44_EDGES, views=("front",), up="-y")
    (points,) = [c for c in figure.axes[0].collections if c.get_gid() is None]
    assert len(points.get_offsets()) == 25


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"joints": np.zeros((24, 2))}, r"joints must have shape \(J, 3\)"),
        ({"joints": np.full((24, 3), np.nan)}, "joints contains NaN"),
        ({"others": [np.zeros((23, 3))]}, r"others\[0\] must have shape \(24, 3\)"),
        ({"edges": ((0, 24),)}, r"edges must index joints in \[0, 24\)"),
        ({"edges": ((0, 1, 2),)}, r"edges must have shape \(E, 2\)"),
        ({"views": ("back",)}, "views must be"),
        ({"labels": ["one", "two"]}, "labels must be a sequence of 1"),
        ({"up": "z"}, "up must be one of"),
    ],
)
def test_plot_skeleton_3d_rejects_bad_input(kwargs, match) -> None:
    arguments = {"joints": torch.zeros(24, 3), "edges": SMPL_EDGES, **kwargs}
    with pytest.raises(ValueError, match=match):
        plot_skeleton_3d(**arguments)


def test_plot_keypoints_2d_confidence_and_pixel_frame(tmp_path, assert_png) -> None:
    image = np.zeros((40, 30, 3), dtype=np.uint8)
    keypoints = np.array([[5.0, 5.0, 0.9], [10.0, 20.0, 0.3], [20.0, 30.0, 0.0], [1.0, 2.0, 1.0]])
    edges = ((0, 1), (1, 2), (0, 3))
    figure = plot_keypoints_2d(image, keypoints, edges, others=[keypoints[:, :2] + 1],
                               labels=["a", "b"], min_confidence=0.5, save=tmp_path / "k.png")
    assert_png(tmp_path / "k.png")
    (axes,) = figure.axes
    assert axes.get_xlim() == (0, 30) and axes.get_ylim() == (40, 0)
    assert axes.images[0].get_extent() == [0, 30, 40, 0]
    # Joints 1 (below 0.5) and 2 (zero confidence) are hidden, so only edge (0, 3) is left.
    np.testing.assert_allclose(_segments(figure, 0, "keypoints 0"), [[[5, 5], [1, 2]]])
    # The second set has no confidence: all three edges.
    assert len(_segments(figure, 0, "keypoints 1")) == 3
    scatter = [c for c in axes.collections if c.get_gid() is None]
    assert [len(c.get_offsets()) for c in scatter] == [2, 4]
    assert mcolors.same_color(scatter[0].get_facecolor()[0], "C0")


def test_plot_keypoints_2d_without_image_and_with_tensors() -> None:
    figure = plot_keypoints_2d(None, torch.tensor([[0.0, 0.0], [10.0, 5.0]]), ((0, 1),))
    axes = figure.axes[0]
    assert axes.get_ylim()[0] > axes.get_ylim()[1]  # image convention: y grows downwards


@pytest.mark.parametrize(
    "image, keypoints, match",
    [
        (np.zeros((10, 10)), np.zeros((2, 2)), r"image must have shape \(H, W, 3\)"),
        (np.full((10, 10, 3), 2.0), np.zeros((2, 2)), r"in \[0, 1\]"),
        (np.zeros((10, 10, 3)), np.zeros((2, 4)), r"keypoints must have shape \(J, 2\) or"),
        (np.zeros((10, 10, 3)), np.array([[0.0, np.nan], [1, 1]]), "keypoints contains NaN"),
    ],
)
def test_plot_keypoints_2d_rejects_bad_input(image, keypoints, match) -> None:
    with pytest.raises(ValueError, match=match):
        plot_keypoints_2d(image, keypoints, ((0, 1),))
