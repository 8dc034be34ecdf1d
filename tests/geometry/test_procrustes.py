"""Procrustes alignment against a per-sample numpy Umeyama loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from prohmr.geometry import SimilarityTransform, procrustes_align


def _t(values, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values, dtype=np.float64), dtype=dtype, device=device)


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().double().numpy()


def _tol(dtype: torch.dtype) -> float:
    return 1e-4 if dtype == torch.float32 else 1e-10


def _umeyama(source: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Umeyama (1991), eqs. 38-42, for one (J, 3) pair: the reflection test is det(Sigma)."""
    mu_x, mu_y = source.mean(0), target.mean(0)
    x, y = source - mu_x, target - mu_y
    sigma_x = (x**2).sum() / len(x)
    covariance = y.T @ x / len(x)
    u, d, vt = np.linalg.svd(covariance)
    s = np.eye(3)
    if np.linalg.det(covariance) < 0:
        s[2, 2] = -1.0
    rotation = u @ s @ vt
    scale = np.trace(np.diag(d) @ s) / sigma_x
    return scale, rotation, mu_y - scale * rotation @ mu_x


def _reference(source: np.ndarray, target: np.ndarray):
    batch = source.shape[:-2]
    scale, rotation, translation = np.zeros(batch), np.zeros((*batch, 3, 3)), np.zeros((*batch, 3))
    for index in np.ndindex(batch):
        scale[index], rotation[index], translation[index] = _umeyama(source[index], target[index])
    rotated = source @ np.swapaxes(rotation, -1, -2)
    aligned = scale[..., None, None] * rotated + translation[..., None, :]
    return aligned, scale, rotation, translation


def _noisy_similarity(source: np.ndarray, rng: np.random.Generator, noise: float) -> np.ndarray:
    batch = source.shape[:-2]
    rotation = Rotation.random(int(np.prod(batch)), random_state=rng.integers(1 << 30)).as_matrix()
    rotation = rotation.reshape(*batch, 3, 3)
    scale = rng.uniform(0.5, 2.0, size=(*batch, 1, 1))
    shift = rng.normal(size=(*batch, 1, 3))
    noise = noise * rng.normal(size=source.shape)
    return scale * source @ np.swapaxes(rotation, -1, -2) + shift + noise


@pytest.mark.parametrize("batch", [(), (7,), (2, 3)], ids=str)
def test_matches_umeyama_loop(
    batch: tuple[int, ...], device: torch.device, dtype: torch.dtype
) -> None:
    rng = np.random.default_rng(0)
    source = rng.normal(size=(*batch, 14, 3))
    target = _noisy_similarity(source, rng, noise=0.05)
    aligned, transform = procrustes_align(
        _t(source, device, dtype), _t(target, device, dtype), return_transform=True
    )
    expected = _reference(source, target)
    tol = _tol(dtype)
    actual_values = (aligned, transform.scale, transform.rotation, transform.translation)
    for actual, reference in zip(actual_values, expected):
        assert actual.shape == reference.shape and actual.dtype == dtype
        np.testing.assert_allclose(_numpy(actual), reference, rtol=0, atol=tol)


def test_reflection_is_excluded(device: torch.device, dtype: torch.dtype) -> None:
    rng = np.random.default_rng(1)
    source = rng.normal(size=(5, 17, 3))
    mirrored = source * np.array([-1.0, 1.0, 1.0])
    target = _noisy_similarity(mirrored, rng, noise=0.01)
    # The unconstrained best orthogonal matrix is a reflection for every sample here.
    for s, t in zip(source, target):
        u, _, vt = np.linalg.svd((t - t.mean(0)).T @ (s - s.mean(0)))
        assert np.linalg.det(u @ vt) < 0
    aligned, transform = procrustes_align(
        _t(source, device, dtype), _t(target, device, dtype), return_transform=True
    )
    np.testing.assert_allclose(_numpy(torch.linalg.det(transform.rotation)), 1.0, atol=_tol(dtype))
    reference_aligned, reference_scale, reference_rotation, _ = _reference(source, target)
    np.testing.assert_allclose(
        _numpy(transform.rotation), reference_rotation, rtol=0, atol=_tol(dtype)
    )
    np.testing.assert_allclose(_numpy(transform.scale), reference_scale, rtol=0, atol=_tol(dtype))
    np.testing.assert_allclose(_numpy(aligned), reference_aligned, rtol=0, atol=_tol(dtype))


def test_exact_similarity_is_recovered(device: torch.device, dtype: torch.dtype) -> None:
    rng = np.random.default_rng(2)
    source = rng.normal(size=(4, 10, 3))
    rotation = Rotation.random(4, random_state=3).as_matrix()
    scale = np.array([0.5, 1.0, 1.5, 3.0])
    translation = rng.normal(size=(4, 3))
    target = scale[:, None, None] * source @ np.swapaxes(rotation, -1, -2) + translation[:, None]
    aligned, transform = procrustes_align(
        _t(source, device, dtype), _t(target, device, dtype), return_transform=True
    )
    tol = _tol(dtype)
    np.testing.assert_allclose(_numpy(aligned), target, rtol=0, atol=tol * 10)
    np.testing.assert_allclose(_numpy(transform.scale), scale, rtol=0, atol=tol)
    np.testing.assert_allclose(_numpy(transform.rotation), rotation, rtol=0, atol=tol)
    np.testing.assert_allclose(_numpy(transform.translation), translation, rtol=0, atol=tol * 10)


def test_transform_convention(device: torch.device, dtype: torch.dtype) -> None:
    rng = np.random.default_rng(4)
    source = _t(rng.normal(size=(3, 8, 3)), device, dtype)
    target = _t(rng.normal(size=(3, 8, 3)), device, dtype)
    aligned, transform = procrustes_align(source, target, return_transform=True)
    assert isinstance(transform, SimilarityTransform)
    rotated = source @ transform.rotation.transpose(-1, -2)
    explicit = transform.scale[:, None, None] * rotated + transform.translation[:, None]
    torch.testing.assert_close(aligned, explicit)
    torch.testing.assert_close(transform.apply(source), aligned)
    torch.testing.assert_close(procrustes_align(source, target), aligned)


def test_degenerate_source_gives_target_centroid(device: torch.device, dtype: torch.dtype) -> None:
    target = _t(np.random.default_rng(5).normal(size=(2, 6, 3)), device, dtype)
    source = _t(np.tile([[1.0, 2.0, 3.0]], (2, 6, 1)), device, dtype)
    aligned, transform = procrustes_align(source, target, return_transform=True)
    for value in (aligned, transform.scale, transform.rotation, transform.translation):
        assert torch.isfinite(value).all()
    torch.testing.assert_close(transform.scale, torch.zeros_like(transform.scale))
    torch.testing.assert_close(aligned, target.mean(dim=-2, keepdim=True).expand_as(target))
    single = procrustes_align(source[:, :1], target[:, :1])
    torch.testing.assert_close(single, target[:, :1])


def test_gradients_reach_source() -> None:
    rng = np.random.default_rng(6)
    source = torch.tensor(rng.normal(size=(2, 9, 3)), requires_grad=True)
    target = torch.tensor(rng.normal(size=(2, 9, 3)))
    assert torch.autograd.gradcheck(lambda s: procrustes_align(s, target), (source,))


def test_validation() -> None:
    with pytest.raises(ValueError, match="`source`.*\\(\\.\\.\\., 3\\)"):
        procrustes_align(torch.zeros(5, 2), torch.zeros(5, 2))
    with pytest.raises(ValueError, match="`target`.*\\(5, 3\\).*got \\(4, 3\\)"):
        procrustes_align(torch.zeros(5, 3), torch.zeros(4, 3))
    with pytest.raises(ValueError, match="`source`.*J >= 1"):
        procrustes_align(torch.zeros(0, 3), torch.zeros(0, 3))
