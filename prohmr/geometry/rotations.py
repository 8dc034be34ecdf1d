"""Rotation conversions: 6D (both layouts), axis-angle, quaternions and Gram-Schmidt.

Every function accepts arbitrary leading batch dimensions, float32 or float64, on any device,
and is differentiable. Rotation matrices act on column vectors (``y = R @ x``).

The 6D representation (SPEC §1.1) stores two columns of a rotation matrix. Two layouts exist
and are not interchangeable:

- ``"prohmr"`` (default, ProHMR's flow variable): the first two **columns** of ``R`` in
  column-major order, ``(R00, R10, R20, R01, R11, R21)``.
- ``"interleaved"`` (SPIN, HMR, BOA, MAED): the 3x2 matrix ``R[:, :2]`` in row-major order,
  ``(R00, R01, R10, R11, R20, R21)``.

Quaternions are ``(w, x, y, z)``, real part first.
"""

from __future__ import annotations

from typing import Literal

import torch

__all__ = [
    "ROT6D_LAYOUTS",
    "Rot6DLayout",
    "GRAM_SCHMIDT_EPS",
    "SMALL_ANGLE_SQ",
    "gram_schmidt",
    "rot6d_to_matrix",
    "matrix_to_rot6d",
    "axis_angle_to_matrix",
    "matrix_to_axis_angle",
    "quaternion_to_matrix",
    "matrix_to_quaternion",
]

Rot6DLayout = Literal["prohmr", "interleaved"]
#: Names accepted by the ``layout`` argument of the 6D conversions.
ROT6D_LAYOUTS: tuple[str, ...] = ("prohmr", "interleaved")

#: Lower bound on a vector norm before dividing by it in Gram-Schmidt (as ``F.normalize``).
GRAM_SCHMIDT_EPS: float = 1e-12
#: Below this squared angle (rad^2) the axis-angle formulas switch to Taylor series, which
#: stay exact and differentiable at zero. The truncation error there is below 1e-17.
SMALL_ANGLE_SQ: float = 1e-3
#: Floor under the square roots of the quaternion candidates that are *not* selected in
#: ``matrix_to_quaternion``; it only keeps them (and their gradients) finite. The selected
#: candidate is always >= 1, so the floor never changes a result.
_UNSELECTED_CANDIDATE_FLOOR: float = 0.1


def _check_tensor(value: object, name: str, trailing: tuple[int, ...], function: str) -> None:
    """Raise ``ValueError`` unless ``value`` is a floating tensor of shape ``(..., *trailing)``."""
    expected = "(..., " + ", ".join(str(size) for size in trailing) + ")"
    if not isinstance(value, torch.Tensor):
        raise ValueError(
            f"{function}: `{name}` must be a torch.Tensor of shape {expected}, "
            f"got {type(value).__name__}"
        )
    if value.ndim < len(trailing) or tuple(value.shape[-len(trailing):]) != trailing:
        raise ValueError(
            f"{function}: `{name}` must have shape {expected}, got {tuple(value.shape)}"
        )
    if not value.is_floating_point():
        raise ValueError(f"{function}: `{name}` must be floating point, got {value.dtype}")


def _check_layout(layout: str, function: str) -> None:
    if layout not in ROT6D_LAYOUTS:
        raise ValueError(
            f"{function}: unknown 6D `layout` {layout!r}; expected one of {ROT6D_LAYOUTS}"
        )


def _normalize(vector: torch.Tensor) -> torch.Tensor:
    norm = vector.norm(dim=-1, keepdim=True).clamp_min(GRAM_SCHMIDT_EPS)
    return vector / norm


def gram_schmidt(a: torch.Tensor) -> torch.Tensor:
    """Orthonormalise two 3D columns into a rotation matrix.

    The first output column is ``a[..., :, 0]`` normalised, the second is ``a[..., :, 1]``
    made orthogonal to it and normalised, the third is their cross product, so the result is
    a proper rotation (determinant +1).

    Arguments:
        a: ``(..., 3, 2)`` two column vectors, not parallel.

    Returns:
        ``(..., 3, 3)`` rotation matrices.

    Example:
        >>> a = torch.tensor([[2.0, 1.0], [0.0, 1.0], [0.0, 0.0]])
        >>> gram_schmidt(a)
        tensor([[1., 0., 0.],
                [0., 1., 0.],
                [0., 0., 1.]])
    """
    _check_tensor(a, "a", (3, 2), "gram_schmidt")
    return _gram_schmidt(a)


def _gram_schmidt(a: torch.Tensor) -> torch.Tensor:
    b1 = _normalize(a[..., :, 0])
    a2 = a[..., :, 1]
    b2 = _normalize(a2 - (b1 * a2).sum(dim=-1, keepdim=True) * b1)
    b3 = torch.linalg.cross(b1, b2, dim=-1)
    return torch.stack((b1, b2, b3), dim=-1)


def rot6d_to_matrix(x: torch.Tensor, layout: Rot6DLayout = "prohmr") -> torch.Tensor:
    """Decode the 6D rotation representation into rotation matrices.

    ``"prohmr"`` reshapes to ``(2, 3)`` (two columns) and transposes to ``(3, 2)``;
    ``"interleaved"`` reshapes to ``(3, 2)`` directly. Both then run :func:`gram_schmidt`.

    Arguments:
        x: ``(..., 6)`` 6D vectors.
        layout: ``"prohmr"`` (default) or ``"interleaved"``; see the module docstring.

    Returns:
        ``(..., 3, 3)`` rotation matrices.

    Example:
        >>> x = torch.tensor([0.0, 1.0, 0.0, -1.0, 0.0, 0.0])  # columns e_y, -e_x
        >>> rot6d_to_matrix(x, layout="prohmr")[:, :2]
        tensor([[ 0., -1.],
                [ 1.,  0.],
                [ 0.,  0.]])
    """
    _check_tensor(x, "x", (6,), "rot6d_to_matrix")
    _check_layout(layout, "rot6d_to_matrix")
    if layout == "prohmr":
        columns = x.reshape(*x.shape[:-1], 2, 3).transpose(-1, -2)
    else:
        columns = x.reshape(*x.shape[:-1], 3, 2)
    return _gram_schmidt(columns)


def matrix_to_rot6d(R: torch.Tensor, layout: Rot6DLayout = "prohmr") -> torch.Tensor:
    """Encode rotation matrices as 6D vectors (their first two columns).

    Arguments:
        R: ``(..., 3, 3)`` rotation matrices.
        layout: ``"prohmr"`` (default) or ``"interleaved"``; see the module docstring.

    Returns:
        ``(..., 6)``; ``rot6d_to_matrix(matrix_to_rot6d(R, layout), layout)`` returns ``R``.

    Example:
        >>> R = torch.arange(9.0).reshape(3, 3)
        >>> matrix_to_rot6d(R, "prohmr")
        tensor([0., 3., 6., 1., 4., 7.])
        >>> matrix_to_rot6d(R, "interleaved")
        tensor([0., 1., 3., 4., 6., 7.])
    """
    _check_tensor(R, "R", (3, 3), "matrix_to_rot6d")
    _check_layout(layout, "matrix_to_rot6d")
    columns = R[..., :, :2]
    if layout == "prohmr":
        columns = columns.transpose(-1, -2)
    return columns.reshape(*R.shape[:-2], 6)


def _skew(v: torch.Tensor) -> torch.Tensor:
    """``(..., 3)`` -> ``(..., 3, 3)`` cross-product matrices, ``skew(v) @ u = v x u``."""
    x, y, z = v.unbind(-1)
    zero = torch.zeros_like(x)
    return torch.stack(
        (zero, -z, y, z, zero, -x, -y, x, zero), dim=-1
    ).reshape(*v.shape[:-1], 3, 3)


def axis_angle_to_matrix(aa: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula: axis-angle vectors to rotation matrices.

    Computes ``R = I + A K + B K^2`` with ``K = skew(aa)``, ``A = sin(t)/t`` and
    ``B = (1 - cos t)/t^2`` for ``t = |aa|``; below ``SMALL_ANGLE_SQ`` both coefficients come
    from their Taylor series, so the function is exact and smoothly differentiable at 0.

    Arguments:
        aa: ``(..., 3)`` rotation axis times angle in radians.

    Returns:
        ``(..., 3, 3)`` rotation matrices.

    Example:
        >>> import math
        >>> R = axis_angle_to_matrix(torch.tensor([0.0, 0.0, math.pi / 2]))
        >>> R.round(decimals=6) + 0.0  # + 0.0 turns -0. into 0.
        tensor([[ 0., -1.,  0.],
                [ 1.,  0.,  0.],
                [ 0.,  0.,  1.]])
    """
    _check_tensor(aa, "aa", (3,), "axis_angle_to_matrix")
    theta_sq = (aa * aa).sum(dim=-1)
    small = theta_sq < SMALL_ANGLE_SQ
    # The exact branch sees a harmless angle where the Taylor branch is used, so that
    # neither its value nor its gradient can become NaN.
    theta = torch.where(small, torch.ones_like(theta_sq), theta_sq).sqrt()
    half = 0.5 * theta
    exact_a = torch.sin(theta) / theta
    # (1 - cos t) / t^2 written as 2 sin^2(t/2) / t^2 avoids cancellation at small t.
    exact_b = 0.5 * (torch.sin(half) / half) ** 2
    t2, t4, t6 = theta_sq, theta_sq * theta_sq, theta_sq * theta_sq * theta_sq
    taylor_a = 1.0 - t2 / 6.0 + t4 / 120.0 - t6 / 5040.0
    taylor_b = 0.5 - t2 / 24.0 + t4 / 720.0 - t6 / 40320.0
    a = torch.where(small, taylor_a, exact_a)[..., None, None]
    b = torch.where(small, taylor_b, exact_b)[..., None, None]
    K = _skew(aa)
    eye = torch.eye(3, dtype=aa.dtype, device=aa.device)
    return eye + a * K + b * (K @ K)


def quaternion_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """Quaternions ``(w, x, y, z)`` to rotation matrices.

    The quaternion need not be unit length (it is normalised implicitly) but must not be zero.

    Arguments:
        q: ``(..., 4)`` quaternions, real part first.

    Returns:
        ``(..., 3, 3)`` rotation matrices.

    Example:
        >>> quaternion_to_matrix(torch.tensor([0.0, 1.0, 0.0, 0.0]))  # 180 deg about x
        tensor([[ 1.,  0.,  0.],
                [ 0., -1.,  0.],
                [ 0.,  0., -1.]])
    """
    _check_tensor(q, "q", (4,), "quaternion_to_matrix")
    w, x, y, z = q.unbind(-1)
    two_s = 2.0 / (q * q).sum(dim=-1)
    matrix = torch.stack(
        (
            1.0 - two_s * (y * y + z * z),
            two_s * (x * y - z * w),
            two_s * (x * z + y * w),
            two_s * (x * y + z * w),
            1.0 - two_s * (x * x + z * z),
            two_s * (y * z - x * w),
            two_s * (x * z - y * w),
            two_s * (y * z + x * w),
            1.0 - two_s * (x * x + y * y),
        ),
        dim=-1,
    )
    return matrix.reshape(*q.shape[:-1], 3, 3)


def matrix_to_quaternion(R: torch.Tensor) -> torch.Tensor:
    """Rotation matrices to unit quaternions ``(w, x, y, z)`` with ``w >= 0``.

    Robust for every rotation (Shepperd's method): of the four algebraically equivalent
    formulas, the one dividing by the largest of ``|w|, |x|, |y|, |z|`` is used, so there is
    no loss of precision near 180 degrees. The sign is fixed so that ``w >= 0``.

    Arguments:
        R: ``(..., 3, 3)`` rotation matrices.

    Returns:
        ``(..., 4)`` unit quaternions, real part first, ``w >= 0``.

    Example:
        >>> R = torch.diag(torch.tensor([-1.0, 1.0, -1.0]))  # 180 deg about y
        >>> matrix_to_quaternion(R)
        tensor([0., 0., 1., 0.])
    """
    _check_tensor(R, "R", (3, 3), "matrix_to_quaternion")
    r = R.reshape(*R.shape[:-2], 9).unbind(-1)
    r00, r01, r02, r10, r11, r12, r20, r21, r22 = r
    # 4 w^2, 4 x^2, 4 y^2, 4 z^2; they sum to 4, so the largest is >= 1.
    four_sq = torch.stack(
        (
            1.0 + r00 + r11 + r22,
            1.0 + r00 - r11 - r22,
            1.0 - r00 + r11 - r22,
            1.0 - r00 - r11 + r22,
        ),
        dim=-1,
    )
    # Row k: the quaternion times 4 q_k, where q_k is the component solved from the diagonal.
    candidates = torch.stack(
        (
            torch.stack((four_sq[..., 0], r21 - r12, r02 - r20, r10 - r01), dim=-1),
            torch.stack((r21 - r12, four_sq[..., 1], r10 + r01, r02 + r20), dim=-1),
            torch.stack((r02 - r20, r10 + r01, four_sq[..., 2], r12 + r21), dim=-1),
            torch.stack((r10 - r01, r20 + r02, r21 + r12, four_sq[..., 3]), dim=-1),
        ),
        dim=-2,
    )
    denominators = 2.0 * four_sq.clamp_min(_UNSELECTED_CANDIDATE_FLOOR).sqrt()
    candidates = candidates / denominators[..., None]
    best = four_sq.argmax(dim=-1, keepdim=True)
    q = torch.take_along_dim(candidates, best[..., None], dim=-2).squeeze(-2)
    q = q / q.norm(dim=-1, keepdim=True)
    return torch.where(q[..., :1] < 0, -q, q)


def matrix_to_axis_angle(R: torch.Tensor) -> torch.Tensor:
    """Rotation matrices to axis-angle vectors with angle in ``[0, pi]``.

    Goes through :func:`matrix_to_quaternion`, so it is accurate at exactly 180 degrees and
    for tiny angles. At exactly 180 degrees ``aa`` and ``-aa`` describe the same rotation and
    either may be returned.

    Arguments:
        R: ``(..., 3, 3)`` rotation matrices.

    Returns:
        ``(..., 3)`` axis times angle in radians.

    Example:
        >>> R = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
        >>> matrix_to_axis_angle(R)  # 90 deg about x
        tensor([1.5708, 0.0000, 0.0000])
    """
    _check_tensor(R, "R", (3, 3), "matrix_to_axis_angle")
    q = matrix_to_quaternion(R)
    w, v = q[..., :1], q[..., 1:]
    sin_half_sq = (v * v).sum(dim=-1, keepdim=True)
    # Same small-angle switch as axis_angle_to_matrix, on sin^2(t/2) ~ t^2/4.
    small = sin_half_sq < 0.25 * SMALL_ANGLE_SQ
    sin_half = torch.where(small, torch.ones_like(sin_half_sq), sin_half_sq).sqrt()
    exact = 2.0 * torch.atan2(sin_half, w) / sin_half
    # 2 atan(u) / (u w) with u = sin_half / w, expanded in u^2; w ~ 1 where it is used,
    # and the other entries see w = 1 so that no inf reaches the gradient.
    w_small = torch.where(small, w, torch.ones_like(w))
    u_sq = sin_half_sq / (w_small * w_small)
    series = 1.0 - u_sq * (1 / 3 - u_sq * (1 / 5 - u_sq * (1 / 7 - u_sq / 9)))
    taylor = 2.0 * series / w_small
    return torch.where(small, taylor, exact) * v
