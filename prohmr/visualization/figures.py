"""Figure plumbing shared by every plot in :mod:`prohmr.visualization`.

Figures are built as :class:`matplotlib.figure.Figure` objects directly, never through
``pyplot``: nothing is registered with a global figure manager, so nothing leaks and nothing
needs ``plt.close`` (a figure is freed when its last reference goes; calling ``plt.close`` on
it is a harmless no-op). PNGs are written by the Agg renderer whatever the session's backend.
No plotting function ever calls ``plt.show``.

The input checks here turn numpy arrays, nested sequences or torch tensors (any device or
dtype; detached, moved to the CPU) into float64 numpy arrays and raise ``ValueError`` naming
the argument, the expected shape, or the NaN found.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from PIL import Image

__all__ = [
    "DEFAULT_DPI",
    "PathLike",
    "as_numpy",
    "check_edges",
    "check_image",
    "check_points",
    "image_axes",
    "new_figure",
    "save_figure",
    "save_image",
]

PathLike = Union[str, os.PathLike]

#: Resolution of saved PNGs (dots per inch of the figure size).
DEFAULT_DPI: int = 100


def new_figure(width: float, height: float) -> Figure:
    """A pyplot-free figure of ``width x height`` inches with a constrained layout.

    Example:
        >>> figure = new_figure(4, 3)
        >>> figure.get_size_inches().tolist(), len(figure.axes)
        ([4.0, 3.0], 0)
    """
    return Figure(figsize=(width, height), layout="constrained")


def save_figure(figure: Figure, path: PathLike, dpi: int = DEFAULT_DPI) -> Path:
    """Write ``figure`` to ``path`` (parent folders are created) and return the path.

    Arguments:
        figure: a matplotlib figure.
        path: output file; its suffix picks the format (``.png``, or PNG when it has none).
        dpi: dots per inch.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Example:
        >>> import tempfile
        >>> figure = new_figure(2, 2)
        >>> _ = figure.add_subplot().plot([0, 1], [1, 0])
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = save_figure(figure, Path(folder) / "plots" / "line.png")
        ...     path.read_bytes()[:4]
        b'\\x89PNG'
    """
    if not isinstance(figure, Figure):
        raise ValueError(f"figure must be a matplotlib Figure, got {type(figure).__name__}")
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi, format=None if path.suffix else "png")
    return path


def save_image(image: Any, path: PathLike) -> Path:
    """Write an RGB image to ``path`` (format from the suffix, PNG without one; parent folders
    are created) and return the path.

    Arguments:
        image: ``(H, W, 3)`` uint8, or float in ``[0, 1]`` (e.g. from
            :func:`~prohmr.visualization.overlays.render_mesh_overlay`).
        path: output file.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    pixels = image if isinstance(image, np.ndarray) and image.dtype == np.uint8 else None
    if pixels is None or pixels.ndim != 3 or pixels.shape[2] != 3:
        pixels = np.round(check_image(image) * 255).astype(np.uint8)
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format=None if path.suffix else "PNG")
    return path


def as_numpy(value: Any, name: str) -> np.ndarray:
    """``value`` (array, sequence or tensor) as a float64 numpy array, rejecting NaN and inf.

    Example:
        >>> as_numpy(torch.tensor([1.0, 2.0]), "x").tolist()
        [1.0, 2.0]
    """
    if isinstance(value, torch.Tensor):
        array = value.detach().to(device="cpu", dtype=torch.float64).numpy()
    else:
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{name} must be numeric, got {type(value).__name__}") from error
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def check_points(
    value: Any, name: str, dims: Sequence[int], num_joints: int | None = None
) -> np.ndarray:
    """``value`` as a float64 ``(J, d)`` array with ``d`` in ``dims`` (and ``J = num_joints``).

    Example:
        >>> check_points([[0.0, 1.0, 2.0]], "joints", (3,)).shape
        (1, 3)
    """
    array = as_numpy(value, name)
    joints = "J" if num_joints is None else str(num_joints)
    expected = " or ".join(f"({joints}, {d})" for d in dims)
    if (
        array.ndim != 2
        or array.shape[1] not in dims
        or (num_joints is not None and array.shape[0] != num_joints)
    ):
        raise ValueError(f"{name} must have shape {expected}, got {array.shape}")
    return array


def check_edges(edges: Any, num_joints: int, name: str = "edges") -> np.ndarray:
    """``edges`` as an int ``(E, 2)`` array of joint index pairs, each index in ``[0, J)``.

    Example:
        >>> check_edges(((0, 1), (1, 2)), 3).tolist()
        [[0, 1], [1, 2]]
    """
    try:
        array = np.asarray(edges, dtype=np.int64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be a sequence of (parent, child) index pairs") from error
    if array.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    if array.ndim != 2 or array.shape[1] != 2:
        raise ValueError(f"{name} must have shape (E, 2) (index pairs), got {array.shape}")
    if array.min() < 0 or array.max() >= num_joints:
        raise ValueError(f"{name} must index joints in [0, {num_joints}), some do not")
    return array


def check_image(image: Any, name: str = "image") -> np.ndarray:
    """An ``(H, W, 3)`` RGB image (uint8, or float in ``[0, 1]``) as float64 in ``[0, 1]``.

    Example:
        >>> float(check_image(np.full((2, 3, 3), 255, dtype=np.uint8)).max())
        1.0
    """
    is_uint8 = (isinstance(image, np.ndarray) and image.dtype == np.uint8) or (
        isinstance(image, torch.Tensor) and image.dtype == torch.uint8
    )
    array = as_numpy(image, name)
    if array.ndim != 3 or array.shape[2] != 3 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{name} must have shape (H, W, 3), got {array.shape}")
    if is_uint8:
        return array / 255.0
    if array.min() < 0.0 or array.max() > 1.0:
        raise ValueError(f"{name} must be uint8 or float in [0, 1], got values outside [0, 1]")
    return array


def image_axes(axes: Axes, image: np.ndarray, title: str | None = None) -> None:
    """Show ``image (H, W, 3)`` in pixel coordinates: pixel ``(i, j)`` covers
    ``[j, j + 1) x [i, i + 1)`` (the rasteriser's convention), so points in pixel coordinates
    land where :func:`~prohmr.geometry.perspective_projection` puts them."""
    height, width = image.shape[:2]
    axes.imshow(image, extent=(0, width, height, 0), interpolation="nearest")
    axes.set_xlim(0, width)
    axes.set_ylim(height, 0)
    axes.set_axis_off()
    if title:
        axes.set_title(title, fontsize=9)
