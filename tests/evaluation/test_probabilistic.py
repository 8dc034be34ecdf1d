"""Sample-based metrics against brute-force numpy loops and synthetic distributions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans

from prohmr.body.joints import H36M_17_INPUT_2D, PELVIS_INDEX
from prohmr.evaluation.metrics import H36M_17, MEAN_OF_HIPS_14, PROHMR_14, JointProtocol, mpjpe, pa_mpjpe
from prohmr.evaluation.probabilistic import (
    DEFAULT_LEVELS,
    DEFAULT_NUM_SAMPLES,
    METRICS,
    min_of_n,
    min_of_n_kmeans,
    mode_error,
    radial_calibration,
    sample_errors,
    sample_quantile_calibration,
)


def _t(values, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values, dtype=np.float64), dtype=dtype, device=device)


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().double().numpy()


def _tol(dtype: torch.dtype) -> float:
    return 2e-3 if dtype == torch.float32 else 1e-8


def _centre_select_one(points: np.ndarray, root, joints) -> np.ndarray:
    origin = points[root] if isinstance(root, int) else np.mean([points[i] for i in root], axis=0)
    centred = points - origin
    return centred if joints is None else np.stack([centred[i] for i in joints])


def _umeyama_aligned(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    mu_x, mu_y = source.mean(0), target.mean(0)
    x, y = source - mu_x, target - mu_y
    u, d, vt = np.linalg.svd(y.T @ x)
    s = np.eye(3)
    if np.linalg.det(u @ vt) < 0:
        s[2, 2] = -1.0
    rotation = u @ s @ vt
    return np.trace(np.diag(d) @ s) / (x**2).sum() * x @ rotation.T + mu_y


def _error_one(pred: np.ndarray, gt: np.ndarray, metric: str) -> float:
    """Error of one centred, selected (K, 3) prediction in millimetres."""
    if metric == "pa_mpjpe":
        pred = _umeyama_aligned(pred, gt)
    return 1000.0 * float(np.mean([np.linalg.norm(p - g) for p, g in zip(pred, gt)]))


def _sampled(rng: np.random.Generator, batch: int, num_samples: int, num_joints: int = 44):
    gt = rng.normal(scale=0.3, size=(batch, num_joints, 3))
    samples = gt[:, None] + rng.normal(scale=0.06, size=(batch, num_samples, num_joints, 3))
    return samples, gt


def _brute_force(samples: np.ndarray, gt: np.ndarray, metric: str, protocol: JointProtocol) -> np.ndarray:
    """(B, N) errors, one sample at a time."""
    errors = np.zeros(samples.shape[:2])
    for b in range(samples.shape[0]):
        g = _centre_select_one(gt[b], protocol.root, protocol.joint_indices)
        for n in range(samples.shape[1]):
            p = _centre_select_one(samples[b, n], protocol.root, protocol.joint_indices)
            errors[b, n] = _error_one(p, g, metric)
    return errors


# --- per-sample errors, mode, min-of-n ---------------------------------------------------------
@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("protocol", [PROHMR_14, MEAN_OF_HIPS_14], ids=lambda p: p.name)
def test_sample_errors_mode_and_min_of_n(metric: str, protocol: JointProtocol, device: torch.device,
                                         dtype: torch.dtype) -> None:
    samples, gt = _sampled(np.random.default_rng(0), batch=4, num_samples=25)
    pred_t, gt_t = _t(samples, device, dtype), _t(gt, device, dtype)
    reference = _brute_force(samples, gt, metric, protocol)
    errors = sample_errors(pred_t, gt_t, metric, protocol)
    assert errors.shape == (4, 25) and errors.dtype == dtype
    np.testing.assert_allclose(_numpy(errors), reference, rtol=0, atol=_tol(dtype))

    mode = mode_error(pred_t, gt_t, metric, protocol)
    np.testing.assert_allclose(_numpy(mode), reference[:, 0], rtol=0, atol=_tol(dtype))
    single = {"mpjpe": mpjpe, "pa_mpjpe": pa_mpjpe}[metric](pred_t[:, 0], gt_t, protocol)
    torch.testing.assert_close(mode, single)

    result = min_of_n(pred_t, gt_t, DEFAULT_NUM_SAMPLES, metric, protocol)
    assert list(result) == [1, 5, 10, 25]
    for n, value in result.items():
        assert value.shape == (4,)
        np.testing.assert_allclose(_numpy(value), reference[:, :n].min(axis=1), rtol=0, atol=_tol(dtype))
    torch.testing.assert_close(result[1], mode)
    stacked = torch.stack([result[n] for n in DEFAULT_NUM_SAMPLES])
    assert bool((stacked[1:] <= stacked[:-1]).all())
    assert bool((stacked[-1] < stacked[0]).any())


def test_min_of_n_leading_dims_and_sample_order(device: torch.device) -> None:
    samples, gt = _sampled(np.random.default_rng(1), batch=6, num_samples=8)
    pred = _t(samples.reshape(2, 3, 8, 44, 3), device, torch.float64)
    gt_t = _t(gt.reshape(2, 3, 44, 3), device, torch.float64)
    result = min_of_n(pred, gt_t, ns=(1, 3, 8))
    reference = _brute_force(samples, gt, "mpjpe", PROHMR_14).reshape(2, 3, 8)
    for n in (1, 3, 8):
        assert result[n].shape == (2, 3)
        np.testing.assert_allclose(_numpy(result[n]), reference[..., :n].min(-1), atol=1e-8)
    # Uses the first n samples: reversing the sample axis changes min-of-3 but not min-of-8.
    reversed_result = min_of_n(pred.flip(-3), gt_t, ns=(3, 8))
    np.testing.assert_allclose(_numpy(reversed_result[3]), reference[..., -3:].min(-1), atol=1e-8)
    torch.testing.assert_close(reversed_result[8], result[8])


# --- K-means min-of-n --------------------------------------------------------------------------
@pytest.mark.parametrize("metric", METRICS)
def test_kmeans_with_n_equal_m_is_brute_force(metric: str, device: torch.device, dtype: torch.dtype) -> None:
    samples, gt = _sampled(np.random.default_rng(2), batch=3, num_samples=12)
    result = min_of_n_kmeans(_t(samples, device, dtype), _t(gt, device, dtype), ns=(12,), seed=0, metric=metric)
    reference = _brute_force(samples, gt, metric, PROHMR_14).min(axis=1)
    np.testing.assert_allclose(_numpy(result[12]), reference, rtol=0, atol=_tol(dtype))


def test_kmeans_matches_direct_clustering_and_is_deterministic(device: torch.device, dtype: torch.dtype) -> None:
    rng = np.random.default_rng(3)
    samples, gt = _sampled(rng, batch=4, num_samples=64)
    ns = (1, 3, 5)
    first = min_of_n_kmeans(_t(samples, device, dtype), _t(gt, device, dtype), ns=ns, seed=7,
                            protocol=MEAN_OF_HIPS_14)
    second = min_of_n_kmeans(_t(samples, device, dtype), _t(gt, device, dtype), ns=ns, seed=7,
                             protocol=MEAN_OF_HIPS_14)
    for n in ns:
        assert first[n].shape == (4,) and first[n].dtype == dtype
        torch.testing.assert_close(first[n], second[n], rtol=0, atol=0)
    root, joints = MEAN_OF_HIPS_14.root, MEAN_OF_HIPS_14.joint_indices
    for b in range(4):
        points = np.stack([_centre_select_one(s, root, joints).reshape(-1) for s in samples[b]])
        g = _centre_select_one(gt[b], root, joints)
        for n in ns:
            centres = KMeans(n_clusters=n, n_init=1, random_state=7).fit(points).cluster_centers_
            expected = min(_error_one(c.reshape(-1, 3), g, "mpjpe") for c in centres)
            np.testing.assert_allclose(_numpy(first[n][b]), expected, rtol=0, atol=_tol(dtype))
        # One cluster: its centre is the sample mean, which is not the mode (sample 0).
        expected_mean = _error_one(points.mean(0).reshape(-1, 3), g, "mpjpe")
        np.testing.assert_allclose(_numpy(first[1][b]), expected_mean, rtol=0, atol=_tol(dtype))


def test_kmeans_leading_dims() -> None:
    samples, gt = _sampled(np.random.default_rng(4), batch=6, num_samples=10)
    flat = min_of_n_kmeans(torch.as_tensor(samples), torch.as_tensor(gt), ns=(2, 10), seed=1)
    nested = min_of_n_kmeans(torch.as_tensor(samples.reshape(2, 3, 10, 44, 3)),
                             torch.as_tensor(gt.reshape(2, 3, 44, 3)), ns=(2, 10), seed=1)
    for n in (2, 10):
        assert nested[n].shape == (2, 3)
        torch.testing.assert_close(nested[n].reshape(-1), flat[n])


# --- calibration -------------------------------------------------------------------------------
def _quantile_reference(samples: np.ndarray, gt: np.ndarray, levels, protocol: JointProtocol) -> dict:
    """Loop over (image, joint, axis) with numpy.quantile, skipping a lone root joint."""
    joints = protocol.joint_indices or tuple(range(gt.shape[-2]))
    joints = tuple(j for j in joints if j != protocol.root)
    coverage = {}
    for level in levels:
        per_image = []
        for b in range(len(gt)):
            s = np.stack([_centre_select_one(x, protocol.root, joints) for x in samples[b]])
            g = _centre_select_one(gt[b], protocol.root, joints)
            hits = []
            for j in range(len(joints)):
                for axis in range(3):
                    low, high = np.quantile(s[:, j, axis], [(1 - level) / 2, (1 + level) / 2])
                    hits.append(low <= g[j, axis] <= high)
            per_image.append(np.mean(hits))
        coverage[level] = np.array(per_image)
    return coverage


def _radial_reference(samples: np.ndarray, gt: np.ndarray, levels, protocol: JointProtocol) -> dict:
    joints = protocol.joint_indices or tuple(range(gt.shape[-2]))
    joints = tuple(j for j in joints if j != protocol.root)
    coverage = {}
    for level in levels:
        per_image = []
        for b in range(len(gt)):
            s = np.stack([_centre_select_one(x, protocol.root, joints) for x in samples[b]])
            g = _centre_select_one(gt[b], protocol.root, joints)
            hits = []
            for j in range(len(joints)):
                mean = s[:, j].mean(0)
                radius = np.quantile(np.linalg.norm(s[:, j] - mean, axis=-1), level)
                hits.append(np.linalg.norm(g[j] - mean) <= radius)
            per_image.append(np.mean(hits))
        coverage[level] = np.array(per_image)
    return coverage


@pytest.mark.parametrize("protocol", [PROHMR_14, MEAN_OF_HIPS_14, H36M_17], ids=lambda p: p.name)
def test_calibration_matches_loops(protocol: JointProtocol, device: torch.device, dtype: torch.dtype) -> None:
    samples, gt = _sampled(np.random.default_rng(5), batch=3, num_samples=37)
    if protocol is H36M_17:
        samples, gt = samples[..., list(H36M_17_INPUT_2D), :], gt[..., list(H36M_17_INPUT_2D), :]
    levels = (0.3, 0.5, 0.9)
    for function, reference in ((sample_quantile_calibration, _quantile_reference),
                                (radial_calibration, _radial_reference)):
        actual = function(_t(samples, device, dtype), _t(gt, device, dtype), levels, protocol)
        expected = reference(samples, gt, levels, protocol)
        assert list(actual) == list(levels)
        for level in levels:
            assert actual[level].shape == (3,) and actual[level].dtype == dtype
            np.testing.assert_allclose(_numpy(actual[level]), expected[level], rtol=0, atol=1e-6)


def test_lone_root_joint_is_excluded() -> None:
    """H36M_17 evaluates its root; its zero interval must not count as covered."""
    rng = np.random.default_rng(6)
    samples = torch.as_tensor(rng.normal(size=(2, 50, 17, 3)))
    gt = torch.full((2, 17, 3), 100.0, dtype=torch.float64)  # far outside every interval...
    gt[:, H36M_17.root] = 0.0  # ...except at the root, where every sample is zero as well
    for function in (sample_quantile_calibration, radial_calibration):
        coverage = function(samples, gt, (0.9,), H36M_17)
        assert float(coverage[0.9].max()) == 0.0


def _gaussian_world(rng: np.random.Generator, batch: int, num_samples: int, spread: float):
    """Per-image, per-joint Gaussian; the GT is one more draw from it. ``spread`` scales the
    samples' standard deviation (1: calibrated, < 1: over-confident)."""
    centre = rng.normal(scale=0.3, size=(batch, 1, 44, 3))
    sigma = rng.uniform(0.01, 0.08, size=(batch, 1, 44, 3))
    # A near-deterministic pelvis keeps the joints of one image independent after centring.
    sigma[..., PELVIS_INDEX, :] = 1e-4
    gt = (centre + sigma * rng.normal(size=centre.shape))[:, 0]
    samples = centre + spread * sigma * rng.normal(size=(batch, num_samples, 44, 3))
    return torch.as_tensor(samples), torch.as_tensor(gt)


def test_calibrated_gaussian_covers_each_level() -> None:
    # The GT and the samples are independent draws of the same distribution, before and after
    # centring. 120 images x 14 joints (x 3 axes) give coverage standard deviations of at
    # most 0.013 (radial) and 0.008 (per axis).
    samples, gt = _gaussian_world(np.random.default_rng(7), batch=120, num_samples=500, spread=1.0)
    for function in (sample_quantile_calibration, radial_calibration):
        coverage = function(samples, gt, DEFAULT_LEVELS, PROHMR_14)
        for level in DEFAULT_LEVELS:
            assert abs(float(coverage[level].mean()) - level) < 0.04, (function.__name__, level)


def test_overconfident_gaussian_covers_less() -> None:
    samples, gt = _gaussian_world(np.random.default_rng(8), batch=80, num_samples=500, spread=0.4)
    for function in (sample_quantile_calibration, radial_calibration):
        coverage = function(samples, gt, DEFAULT_LEVELS, PROHMR_14)
        for level in DEFAULT_LEVELS:
            assert float(coverage[level].mean()) < level - 0.2, (function.__name__, level)


# --- validation --------------------------------------------------------------------------------
def test_validation() -> None:
    samples = torch.zeros(2, 5, 44, 3)
    gt = torch.zeros(2, 44, 3)
    with pytest.raises(ValueError, match="`gt` must have shape \\(2, 44, 3\\)"):
        min_of_n(samples, torch.zeros(5, 44, 3))
    with pytest.raises(ValueError, match="sample axis"):
        mode_error(torch.zeros(44, 3), torch.zeros(44, 3))
    with pytest.raises(ValueError, match="every n in `ns` must lie in \\[1, 5\\]"):
        min_of_n(samples, gt, ns=(1, 10))
    with pytest.raises(ValueError, match="`ns`"):
        min_of_n(samples, gt, ns=())
    with pytest.raises(ValueError, match="unknown `metric`"):
        sample_errors(samples, gt, metric="pve")  # type: ignore[arg-type]
    nan = samples.clone()
    nan[0, 3, PELVIS_INDEX, 0] = float("nan")
    with pytest.raises(ValueError, match="`pred` contains NaN"):
        min_of_n(nan, gt)
    with pytest.raises(ValueError, match="`samples` contains NaN"):
        min_of_n_kmeans(nan, gt, ns=(2,))
    with pytest.raises(ValueError, match="`n_init`"):
        min_of_n_kmeans(samples, gt, ns=(2,), n_init=0)
    with pytest.raises(ValueError, match="`levels`"):
        sample_quantile_calibration(samples, gt, levels=(0.5, 1.0))
    with pytest.raises(ValueError, match="at least 2 samples"):
        radial_calibration(samples[:, :1], gt)
    with pytest.raises(ValueError, match="protocol 'prohmr_14' indexes joint 43"):
        sample_errors(torch.zeros(2, 5, 17, 3), torch.zeros(2, 17, 3))
    with pytest.raises(ValueError, match="only its root joint"):
        sample_quantile_calibration(samples, gt, protocol=JointProtocol("root", (PELVIS_INDEX,), PELVIS_INDEX))
