"""Rotation conversions against scipy, numpy QR and float64 autograd."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from prohmr.geometry import (
    ROT6D_LAYOUTS,
    axis_angle_to_matrix,
    gram_schmidt,
    matrix_to_axis_angle,
    matrix_to_quaternion,
    matrix_to_rot6d,
    quaternion_to_matrix,
    rot6d_to_matrix,
)

# Tiny angles, then angles on both sides of the Taylor-series switch (sqrt(SMALL_ANGLE_SQ)).
SMALL_ANGLES = (1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.03, 0.05)
HALF_TURN_AXES = (
    (1.0, 0.0, 0.0),
    (0.0, 1.0, 0.0),
    (0.0, 0.0, 1.0),
    (1.0, 1.0, 1.0),
    (1.0, -1.0, 0.0),
    (0.0, 2.0, -1.0),
)


def _unit(axis: tuple[float, ...]) -> np.ndarray:
    vector = np.asarray(axis, dtype=np.float64)
    return vector / np.linalg.norm(vector)


def _rotvecs() -> np.ndarray:
    """Random rotations plus identity, half turns, quarter turns, tiny and near-pi angles."""
    rng = np.random.default_rng(0)
    random = Rotation.random(64, random_state=1).as_rotvec()
    axes = rng.normal(size=(len(SMALL_ANGLES) + 2, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    special = [np.zeros(3)]
    special += [math.pi * _unit(axis) for axis in HALF_TURN_AXES]
    special += [0.5 * math.pi * _unit(axis) for axis in HALF_TURN_AXES[:3]]
    special += [angle * axis for angle, axis in zip(SMALL_ANGLES, axes)]
    special += [(math.pi - 1e-6) * axes[-2], (math.pi - 1e-3) * axes[-1]]
    return np.concatenate([random, np.stack(special)])


def _tol(dtype: torch.dtype) -> float:
    return 2e-6 if dtype == torch.float32 else 1e-12


def _to(array: np.ndarray, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    return torch.as_tensor(array, dtype=dtype, device=device)


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().double().numpy()


def _assert_aa_close(actual: np.ndarray, expected: np.ndarray, atol: float) -> None:
    """Axis-angle equality, where at an angle of pi either sign is the same rotation."""
    error = np.linalg.norm(actual - expected, axis=-1)
    half_turn = np.linalg.norm(expected, axis=-1) > math.pi - 1e-2
    flipped = np.linalg.norm(actual + expected, axis=-1)
    error = np.where(half_turn, np.minimum(error, flipped), error)
    assert error.max() <= atol, f"max error {error.max():.3g} at {error.argmax()}"


# --- axis-angle ---------------------------------------------------------------------------
def test_axis_angle_to_matrix_matches_scipy(device: torch.device, dtype: torch.dtype) -> None:
    aa = _to(_rotvecs(), device, dtype)
    expected = Rotation.from_rotvec(_numpy(aa)).as_matrix()
    np.testing.assert_allclose(_numpy(axis_angle_to_matrix(aa)), expected, rtol=0, atol=_tol(dtype))


def test_axis_angle_to_matrix_small_angles_are_exact(
    device: torch.device, dtype: torch.dtype
) -> None:
    # Off-diagonal entries are ~angle; check them relative to their size, not just absolutely.
    aa = _to(np.array([[angle, 0.0, 0.0] for angle in SMALL_ANGLES]), device, dtype)
    R = _numpy(axis_angle_to_matrix(aa))
    angles = _numpy(aa)[:, 0]
    np.testing.assert_allclose(R[:, 2, 1], np.sin(angles), rtol=_tol(dtype) / 10)
    np.testing.assert_allclose(R[:, 1, 2], -np.sin(angles), rtol=_tol(dtype) / 10)


def test_matrix_to_axis_angle_matches_scipy(device: torch.device, dtype: torch.dtype) -> None:
    rotvecs = _rotvecs()
    R = _to(Rotation.from_rotvec(rotvecs).as_matrix(), device, dtype)
    atol = 1e-5 if dtype == torch.float32 else 1e-11
    _assert_aa_close(_numpy(matrix_to_axis_angle(R)), rotvecs, atol)


def test_matrix_to_axis_angle_small_angles_relative(
    device: torch.device, dtype: torch.dtype
) -> None:
    rng = np.random.default_rng(2)
    axes = rng.normal(size=(len(SMALL_ANGLES), 3))
    rotvecs = np.asarray(SMALL_ANGLES)[:, None] * axes / np.linalg.norm(axes, axis=1, keepdims=True)
    R = _to(Rotation.from_rotvec(rotvecs).as_matrix(), device, dtype)
    aa = _numpy(matrix_to_axis_angle(R))
    relative = np.linalg.norm(aa - rotvecs, axis=1) / np.asarray(SMALL_ANGLES)
    assert relative.max() < (1e-6 if dtype == torch.float32 else 1e-12)


@pytest.mark.parametrize("axis", HALF_TURN_AXES)
def test_matrix_to_axis_angle_exact_half_turn(
    axis: tuple[float, ...], device: torch.device, dtype: torch.dtype
) -> None:
    n = _unit(axis)
    R = 2.0 * np.outer(n, n) - np.eye(3)  # exactly 180 degrees about n
    aa = _numpy(matrix_to_axis_angle(_to(R, device, dtype)))
    _assert_aa_close(aa[None], math.pi * n[None], 2e-6 if dtype == torch.float32 else 1e-12)


def test_axis_angle_round_trip(device: torch.device, dtype: torch.dtype) -> None:
    rotvecs = _rotvecs()
    aa = _to(rotvecs, device, dtype)
    atol = 1e-5 if dtype == torch.float32 else 1e-11
    _assert_aa_close(_numpy(matrix_to_axis_angle(axis_angle_to_matrix(aa))), _numpy(aa), atol)


# --- quaternions --------------------------------------------------------------------------
def _wxyz(xyzw: np.ndarray) -> np.ndarray:
    return xyzw[..., [3, 0, 1, 2]]


def test_quaternion_to_matrix_matches_scipy(device: torch.device, dtype: torch.dtype) -> None:
    rotations = Rotation.from_rotvec(_rotvecs())
    # Non-unit quaternions describe the same rotation.
    scales = np.random.default_rng(3).uniform(0.5, 2.0, size=(len(rotations), 1))
    q = _to(scales * _wxyz(rotations.as_quat()), device, dtype)
    np.testing.assert_allclose(
        _numpy(quaternion_to_matrix(q)), rotations.as_matrix(), rtol=0, atol=_tol(dtype)
    )


def test_matrix_to_quaternion_matches_scipy(device: torch.device, dtype: torch.dtype) -> None:
    rotations = Rotation.from_rotvec(_rotvecs())
    expected = _wxyz(rotations.as_quat())
    expected *= np.where(expected[:, :1] < 0, -1.0, 1.0)
    q = _numpy(matrix_to_quaternion(_to(rotations.as_matrix(), device, dtype)))
    assert (q[:, 0] >= 0).all()
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=_tol(dtype))
    # At exactly 180 degrees w = 0 and both signs are valid.
    error = np.minimum(np.abs(q - expected).max(axis=1), np.abs(q + expected).max(axis=1))
    assert error.max() <= (2e-6 if dtype == torch.float32 else 1e-12)


def test_matrix_to_quaternion_half_turns_exact(device: torch.device, dtype: torch.dtype) -> None:
    R = _to(np.stack([np.diag([1.0, -1.0, -1.0]), np.diag([-1.0, 1.0, -1.0]),
                      np.diag([-1.0, -1.0, 1.0])]), device, dtype)
    q = _numpy(matrix_to_quaternion(R))
    np.testing.assert_array_equal(np.abs(q), np.eye(4)[1:])


# --- 6D -----------------------------------------------------------------------------------
def test_matrix_to_rot6d_layouts_by_index(device: torch.device, dtype: torch.dtype) -> None:
    R = _to(Rotation.random(5, random_state=4).as_matrix(), device, dtype)
    prohmr = torch.stack(
        [R[:, 0, 0], R[:, 1, 0], R[:, 2, 0], R[:, 0, 1], R[:, 1, 1], R[:, 2, 1]], -1
    )
    interleaved = torch.stack(
        [R[:, 0, 0], R[:, 0, 1], R[:, 1, 0], R[:, 1, 1], R[:, 2, 0], R[:, 2, 1]], -1
    )
    torch.testing.assert_close(matrix_to_rot6d(R), prohmr, rtol=0, atol=0)
    torch.testing.assert_close(matrix_to_rot6d(R, "prohmr"), prohmr, rtol=0, atol=0)
    torch.testing.assert_close(matrix_to_rot6d(R, "interleaved"), interleaved, rtol=0, atol=0)


@pytest.mark.parametrize("layout", ROT6D_LAYOUTS)
def test_rot6d_round_trip(layout: str, device: torch.device, dtype: torch.dtype) -> None:
    R = _to(Rotation.from_rotvec(_rotvecs()).as_matrix(), device, dtype)
    decoded = rot6d_to_matrix(matrix_to_rot6d(R, layout), layout)
    np.testing.assert_allclose(_numpy(decoded), _numpy(R), rtol=0, atol=_tol(dtype))


def _gram_schmidt_reference(columns: np.ndarray) -> np.ndarray:
    """Per-matrix numpy QR with a positive diagonal, third column the cross product."""
    out = []
    for a in columns.reshape(-1, 3, 2):
        q, r = np.linalg.qr(a)
        q = q * np.sign(np.diag(r))
        out.append(np.column_stack([q, np.cross(q[:, 0], q[:, 1])]))
    return np.stack(out).reshape(*columns.shape[:-2], 3, 3)


def test_rot6d_decodes_arbitrary_vectors(device: torch.device, dtype: torch.dtype) -> None:
    x = np.random.default_rng(5).normal(size=(32, 6))
    prohmr_columns = x.reshape(-1, 2, 3).transpose(0, 2, 1)
    interleaved_columns = x.reshape(-1, 3, 2)
    xt = _to(x, device, dtype)
    atol = 1e-5 if dtype == torch.float32 else 1e-12
    for layout, columns in (("prohmr", prohmr_columns), ("interleaved", interleaved_columns)):
        R = _numpy(rot6d_to_matrix(xt, layout))
        np.testing.assert_allclose(R, _gram_schmidt_reference(columns), rtol=0, atol=atol)
        np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=atol)


def test_rot6d_layouts_differ_and_are_permutations(
    device: torch.device, dtype: torch.dtype
) -> None:
    x = _to(np.random.default_rng(6).normal(size=(8, 6)), device, dtype)
    prohmr = rot6d_to_matrix(x, "prohmr")
    interleaved = rot6d_to_matrix(x, "interleaved")
    assert (prohmr - interleaved).abs().amax(dim=(-2, -1)).min() > 1e-2
    torch.testing.assert_close(rot6d_to_matrix(x[:, [0, 3, 1, 4, 2, 5]], "interleaved"), prohmr)
    R = _to(Rotation.random(8, random_state=7).as_matrix(), device, dtype)
    assert not torch.allclose(matrix_to_rot6d(R, "prohmr"), matrix_to_rot6d(R, "interleaved"))


def test_gram_schmidt_matches_qr(device: torch.device, dtype: torch.dtype) -> None:
    a = np.random.default_rng(8).normal(size=(4, 5, 3, 2))
    R = _numpy(gram_schmidt(_to(a, device, dtype)))
    atol = 1e-5 if dtype == torch.float32 else 1e-12
    np.testing.assert_allclose(R, _gram_schmidt_reference(a), rtol=0, atol=atol)


# --- batch shapes, dtypes, devices --------------------------------------------------------
@pytest.mark.parametrize("batch", [(), (3,), (2, 1, 4)], ids=str)
def test_batch_shapes_dtype_and_device(
    batch: tuple[int, ...], device: torch.device, dtype: torch.dtype
) -> None:
    count = int(np.prod(batch))
    R = _to(Rotation.random(count, random_state=9).as_matrix().reshape(*batch, 3, 3), device, dtype)
    results = {
        "rot6d_prohmr": (matrix_to_rot6d(R), (6,)),
        "rot6d_interleaved": (matrix_to_rot6d(R, "interleaved"), (6,)),
        "decoded": (rot6d_to_matrix(matrix_to_rot6d(R)), (3, 3)),
        "aa": (matrix_to_axis_angle(R), (3,)),
        "from_aa": (axis_angle_to_matrix(matrix_to_axis_angle(R)), (3, 3)),
        "quat": (matrix_to_quaternion(R), (4,)),
        "from_quat": (quaternion_to_matrix(matrix_to_quaternion(R)), (3, 3)),
        "gram_schmidt": (gram_schmidt(R[..., :2]), (3, 3)),
    }
    for name, (value, trailing) in results.items():
        assert value.shape == (*batch, *trailing), name
        assert value.dtype == dtype and value.device.type == device.type, name
    flat = matrix_to_axis_angle(R.reshape(-1, 3, 3)).reshape(*batch, 3)
    torch.testing.assert_close(results["aa"][0], flat)


# --- gradients ----------------------------------------------------------------------------
def _double(array: np.ndarray) -> torch.Tensor:
    return torch.tensor(array, dtype=torch.float64, requires_grad=True)


@pytest.mark.parametrize("layout", ROT6D_LAYOUTS)
def test_gradcheck_rot6d_to_matrix(layout: str) -> None:
    x = _double(np.random.default_rng(10).normal(size=(4, 6)))
    assert torch.autograd.gradcheck(lambda v: rot6d_to_matrix(v, layout), (x,))


@pytest.mark.parametrize("scale", [0.0, 1e-8, 1e-3, 0.03, 1.0, 3.0], ids=lambda s: f"angle~{s:g}")
def test_gradcheck_axis_angle_to_matrix(scale: float) -> None:
    # 0.03 ~ sqrt(SMALL_ANGLE_SQ): both branches are used by the perturbed inputs.
    axes = np.random.default_rng(11).normal(size=(4, 3))
    aa = _double(scale * axes / np.linalg.norm(axes, axis=1, keepdims=True))
    assert torch.autograd.gradcheck(axis_angle_to_matrix, (aa,))


def test_gradcheck_quaternion_to_matrix() -> None:
    q = _double(np.random.default_rng(12).normal(size=(5, 4)))
    assert torch.autograd.gradcheck(quaternion_to_matrix, (q,))


def test_gradcheck_matrix_to_quaternion_and_axis_angle() -> None:
    rotvecs = [[0.3, -1.2, 0.5], [1e-6, 0.0, 2e-6], [2.0, 0.5, 1.0]]
    R = _double(Rotation.from_rotvec(rotvecs).as_matrix())
    assert torch.autograd.gradcheck(matrix_to_quaternion, (R,))
    assert torch.autograd.gradcheck(matrix_to_axis_angle, (R,))


def test_gradients_finite_at_zero_and_half_turn() -> None:
    aa = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    axis_angle_to_matrix(aa).sum().backward()
    assert torch.isfinite(aa.grad).all()
    R = torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64)).requires_grad_()
    matrix_to_axis_angle(R).sum().backward()
    assert torch.isfinite(R.grad).all()


# --- validation ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("function", "argument", "bad", "expected"),
    [
        (rot6d_to_matrix, "x", torch.zeros(4, 5), "(..., 6)"),
        (matrix_to_rot6d, "R", torch.zeros(3, 2), "(..., 3, 3)"),
        (axis_angle_to_matrix, "aa", torch.zeros(2, 4), "(..., 3)"),
        (matrix_to_axis_angle, "R", torch.zeros(9), "(..., 3, 3)"),
        (quaternion_to_matrix, "q", torch.zeros(3), "(..., 4)"),
        (matrix_to_quaternion, "R", torch.zeros(2, 3, 4), "(..., 3, 3)"),
        (gram_schmidt, "a", torch.zeros(3, 3), "(..., 3, 2)"),
    ],
)
def test_wrong_shape_raises(function, argument: str, bad: torch.Tensor, expected: str) -> None:
    with pytest.raises(ValueError) as error:
        function(bad)
    assert f"`{argument}`" in str(error.value) and expected in str(error.value)


def test_integer_and_non_tensor_inputs_raise() -> None:
    with pytest.raises(ValueError, match="floating point"):
        axis_angle_to_matrix(torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="torch.Tensor"):
        axis_angle_to_matrix(np.zeros(3))


@pytest.mark.parametrize("function", [rot6d_to_matrix, matrix_to_rot6d])
def test_unknown_layout_raises(function) -> None:
    value = torch.zeros(6) if function is rot6d_to_matrix else torch.eye(3)
    with pytest.raises(ValueError, match="layout.*'spin'.*prohmr"):
        function(value, layout="spin")
