"""The evaluator against per-image numpy references, on a tiny model and a synthetic dataset."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.optimize import minimize
from scipy.spatial.transform import Rotation

from prohmr.data.image_dataset import ImageDataset
from prohmr.data.synthetic import synthesize_dataset
from prohmr.evaluation import PROTOCOLS, EvaluationResult, evaluate, pa_mpjpe, run_eval_command
from prohmr.evaluation.evaluator import sample_latents
from prohmr.models import ProHMR, ProHMRConfig, save_model

PELVIS = 39
LSP_14 = [25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 43]
NUM_SAMPLES = 5
NS = (1, 2, 5)
SEED = 3
# Images pass through convolutions in batches of different sizes here and in the evaluator.
ATOL_MM = 2e-3


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synthetic")
    return synthesize_dataset(out, 5, split="val", image_size=64, pose_source="random")


@pytest.fixture(scope="module")
def model() -> ProHMR:
    torch.manual_seed(0)
    config = ProHMRConfig(backbone="resnet18", flow_hidden_features=32, flow_num_layers=2,
                          head_hidden_features=32, image_size=64)
    model = ProHMR(config).eval()
    # A fresh flow is close to the identity, where every valid 6D pose has the same density;
    # perturbed weights make the likelihood depend on the pose and the image.
    with torch.no_grad():
        for parameter in model.flow.flow.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    return model


@pytest.fixture(scope="module")
def result(model: ProHMR, synthetic: Path) -> EvaluationResult:
    return evaluate(model, synthetic, num_samples=NUM_SAMPLES, min_of_n=NS, batch_size=3,
                    progress=False, seed=SEED)


@pytest.fixture(scope="module")
def reference(model: ProHMR, synthetic: Path) -> dict[str, np.ndarray]:
    """Predictions of every sample, re-drawn from the documented latents in one batch."""
    dataset = ImageDataset(synthetic, synthetic.parent / "images", image_size=64)
    items = [dataset[i] for i in range(len(dataset))]
    images = torch.stack([item["img"] for item in items])
    z = torch.zeros(len(items), NUM_SAMPLES, 144)
    for row in range(len(items)):
        rng = np.random.default_rng((SEED, row))
        z[row, 1:] = torch.from_numpy(rng.standard_normal((NUM_SAMPLES - 1, 144)))
    data = np.load(synthetic)
    pose = Rotation.from_rotvec(data["body_pose"].reshape(-1, 3)).as_matrix()
    pose = torch.from_numpy(pose.reshape(len(items), 24, 3, 3)).float()
    betas = torch.from_numpy(data["betas"]).float()
    with torch.no_grad():
        out = model(images, z=z)
        mode = model.mode(images)
        gt_body = model.body_model(pose[:, :1], pose[:, 1:], betas)
        log_prob, _ = model.log_prob(images, {"global_orient": pose[:, :1], "body_pose": pose[:, 1:]})
    gt_joints = np.concatenate([data["body_keypoints_3d"], data["extra_keypoints_3d"]], axis=1)
    return {
        "joints": out.joints_3d.double().numpy(),
        "vertices": out.vertices.double().numpy(),
        "mode_joints": mode.joints_3d[:, 0].double().numpy(),
        "gt_joints": gt_joints[..., :3].astype(np.float64),
        "gt_vertices": gt_body.vertices.double().numpy(),
        "log_prob": log_prob.double().numpy(),
    }


def _centred_14(points: np.ndarray) -> np.ndarray:
    return (points - points[PELVIS])[LSP_14]


def _mpjpe(pred: np.ndarray, gt: np.ndarray) -> float:
    return 1000.0 * float(np.mean(np.linalg.norm(_centred_14(pred) - _centred_14(gt), axis=1)))


def _similarity_fit(pred: np.ndarray, gt: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """``pred`` mapped by ``rotation`` with the least-squares scale (>= 0: a negative scale
    would be a reflection) and translation."""
    x, y = pred - pred.mean(0), gt - gt.mean(0)
    rotated = x @ rotation.T
    scale = max(0.0, float(np.sum(rotated * y) / np.sum(x * x)))
    return scale * rotated + gt.mean(0)


def _pa_mpjpe(pred: np.ndarray, gt: np.ndarray) -> float:
    """PA-MPJPE with scipy's Kabsch rotation (proper rotations only)."""
    p, g = _centred_14(pred), _centred_14(gt)
    rotation, _ = Rotation.align_vectors(g - g.mean(0), p - p.mean(0))
    aligned = _similarity_fit(p, g, rotation.as_matrix())
    return 1000.0 * float(np.mean(np.linalg.norm(aligned - g, axis=1)))


def _pa_mpjpe_brute_force(pred: np.ndarray, gt: np.ndarray) -> float:
    """PA-MPJPE with the rotation found by Nelder-Mead over rotation vectors, many starts."""
    p, g = _centred_14(pred), _centred_14(gt)

    def squared(vector: np.ndarray) -> float:
        aligned = _similarity_fit(p, g, Rotation.from_rotvec(vector).as_matrix())
        return float(np.sum((aligned - g) ** 2))

    starts = Rotation.random(12, random_state=0).as_rotvec()
    best = min(
        (minimize(squared, start, method="Nelder-Mead",
                  options={"xatol": 1e-10, "fatol": 1e-14, "maxiter": 4000}) for start in starts),
        key=lambda fit: fit.fun,
    )
    aligned = _similarity_fit(p, g, Rotation.from_rotvec(best.x).as_matrix())
    return 1000.0 * float(np.mean(np.linalg.norm(aligned - g, axis=1)))


def test_reference_procrustes_and_the_reflection_case() -> None:
    """The numpy references agree with a brute-force search, and a mirrored skeleton is not
    aligned by a reflection."""
    rng = np.random.default_rng(0)
    gt = rng.normal(scale=0.3, size=(44, 3))
    pred = gt + rng.normal(scale=0.05, size=(44, 3))
    assert _pa_mpjpe(pred, gt) == pytest.approx(_pa_mpjpe_brute_force(pred, gt), abs=1e-4)
    mirrored = gt * np.array([-1.0, 1.0, 1.0])
    expected = _pa_mpjpe_brute_force(mirrored, gt)
    assert _pa_mpjpe(mirrored, gt) == pytest.approx(expected, abs=1e-4)
    library = pa_mpjpe(torch.from_numpy(mirrored), torch.from_numpy(gt)).item()
    assert library == pytest.approx(expected, abs=1e-6)
    assert expected > 50.0  # an improper (reflecting) fit would reach 0


def test_metrics_match_numpy_reference(
    result: EvaluationResult, reference: dict[str, np.ndarray]
) -> None:
    assert result.rows.tolist() == [0, 1, 2, 3, 4]
    assert result.gt_source.tolist() == ["keypoints_3d"] * 5
    joints, gt = reference["joints"], reference["gt_joints"]
    for item in range(5):
        errors = {
            "mpjpe": [_mpjpe(joints[item, s], gt[item]) for s in range(NUM_SAMPLES)],
            "pa_mpjpe": [_pa_mpjpe(joints[item, s], gt[item]) for s in range(NUM_SAMPLES)],
            "pve": [
                1000.0 * float(np.mean(np.linalg.norm(
                    reference["vertices"][item, s] - reference["gt_vertices"][item], axis=1)))
                for s in range(NUM_SAMPLES)
            ],
        }
        for metric, per_sample in errors.items():
            got = result.per_item[f"{metric}/mode"][item]
            assert got == pytest.approx(per_sample[0], abs=ATOL_MM), (metric, item)
            for n in NS:
                best = per_sample[0]
                for sample in range(1, n):
                    best = min(best, per_sample[sample])
                got = result.per_item[f"{metric}/min_of_{n}"][item]
                assert got == pytest.approx(best, abs=ATOL_MM), (metric, n, item)
    np.testing.assert_allclose(result.per_item["log_likelihood"], reference["log_prob"],
                               rtol=1e-5, atol=1e-3)
    assert np.ptp(reference["log_prob"]) > 0.1


def test_calibration_matches_numpy_quantiles(
    result: EvaluationResult, reference: dict[str, np.ndarray]
) -> None:
    for item in range(5):
        samples = np.stack([_centred_14(s) for s in reference["joints"][item, 1:]])
        truth = _centred_14(reference["gt_joints"][item])
        for level in (0.5, 0.9):
            lower = np.quantile(samples, (1 - level) / 2, axis=0)
            upper = np.quantile(samples, (1 + level) / 2, axis=0)
            covered = np.mean((truth >= lower) & (truth <= upper))
            got = result.per_item[f"coverage_quantile/{level}"][item]
            assert got == pytest.approx(covered, abs=1e-12)


def test_mode_is_sample_zero_and_min_of_n_decreases(
    result: EvaluationResult, reference: dict[str, np.ndarray]
) -> None:
    for item in range(5):
        mode_error = _mpjpe(reference["mode_joints"][item], reference["gt_joints"][item])
        assert result.per_item["mpjpe/mode"][item] == pytest.approx(mode_error, abs=ATOL_MM)
    for metric in ("mpjpe", "pa_mpjpe", "pve"):
        np.testing.assert_array_equal(result.per_item[f"{metric}/min_of_1"],
                                      result.per_item[f"{metric}/mode"])
        curve = np.stack([result.per_item[f"{metric}/min_of_{n}"] for n in NS])
        assert np.all(np.diff(curve, axis=0) <= 0.0)
    # Some sample beats the mode somewhere, or the test above would be vacuous.
    assert np.any(result.per_item["pa_mpjpe/min_of_5"] < result.per_item["pa_mpjpe/mode"])


def test_deterministic_across_batch_size_and_max_items(
    model: ProHMR, synthetic: Path, result: EvaluationResult
) -> None:
    again = evaluate(model, synthetic, num_samples=NUM_SAMPLES, min_of_n=NS, batch_size=2,
                     max_items=4, progress=False, seed=SEED)
    assert again.rows.tolist() == [0, 1, 2, 3]
    for name, values in again.per_item.items():
        np.testing.assert_allclose(values, result.per_item[name][:4], rtol=1e-5, atol=ATOL_MM)
    z = sample_latents([2], NUM_SAMPLES, SEED)
    assert torch.equal(z[0, 0], torch.zeros(144))
    assert not torch.equal(z, sample_latents([2], NUM_SAMPLES, SEED + 1))


def test_kmeans_and_ground_truth_from_smpl_parameters(
    model: ProHMR, synthetic: Path, result: EvaluationResult, tmp_path: Path
) -> None:
    """Without 3D keypoints the ground truth comes from the SMPL labels through the body
    model; the synthetic keypoints are that same body's joints, so the errors agree."""
    data = dict(np.load(synthetic))
    for key in ("body_keypoints_3d", "extra_keypoints_3d"):
        del data[key]
    path = tmp_path / "no_keypoints.npz"
    np.savez(path, **data)
    other = evaluate(model, path, image_root=synthetic.parent / "images", num_samples=NUM_SAMPLES,
                     min_of_n=NS, kmeans=True, batch_size=5, progress=False, seed=SEED)
    assert other.gt_source.tolist() == ["body_model"] * 5
    assert any("body model posed with the ground-truth SMPL" in note for note in other.notes)
    for name in ("mpjpe/mode", "pa_mpjpe/min_of_5", "pve/mode"):
        np.testing.assert_allclose(other.per_item[name], result.per_item[name], atol=0.05)
    # K-means over all samples with n = N centres recovers every sample: the plain minimum.
    np.testing.assert_allclose(other.per_item["mpjpe/kmeans_5"], other.per_item["mpjpe/min_of_5"],
                               atol=1e-6)
    assert any(line.startswith("PA-MPJPE k-means") for line in other.table_lines())


def test_json_round_trip(result: EvaluationResult, tmp_path: Path) -> None:
    path = result.to_json(tmp_path / "out" / "results.json")
    record = json.loads(path.read_text())
    assert record["protocol"]["name"] == "synthetic"
    assert record["units"]["errors"] == "mm"
    assert record["n"] == list(NS) and record["num_samples"] == NUM_SAMPLES
    assert record["joint_set"] == {"name": "prohmr_14", "joint_indices": LSP_14, "num_joints": 14}
    assert record["pelvis"] == "joint 39"
    assert record["aggregates"]["mpjpe/mode"] == pytest.approx(
        float(np.mean(result.per_item["mpjpe/mode"])))
    assert record["dataset"]["rows_evaluated"] == 5
    assert record["model"]["config"]["backbone"] == "resnet18"
    loaded = EvaluationResult.from_json(path)
    assert loaded.protocol == result.protocol and loaded.ns == result.ns
    assert loaded.imgname.tolist() == result.imgname.tolist()
    assert loaded.aggregate == result.aggregate
    for name, values in result.per_item.items():
        np.testing.assert_array_equal(loaded.per_item[name], values)
    # Undefined values (no label) are written as null and read back as NaN.
    values = dict(result.per_item, log_likelihood=np.array([np.nan, 1.5, np.nan, 2.5, np.nan]))
    partial = replace(result, per_item=values)
    record = json.loads(partial.to_json(tmp_path / "partial.json", per_item=True).read_text())
    assert record["per_item"]["metrics"]["log_likelihood"][0] is None
    assert record["aggregates"]["log_likelihood"] == 2.0
    assert record["counts"]["log_likelihood"] == 2
    back = EvaluationResult.from_json(tmp_path / "partial.json")
    np.testing.assert_array_equal(back.per_item["log_likelihood"], values["log_likelihood"])
    summary = json.loads(result.to_json(tmp_path / "summary.json", per_item=False).read_text())
    assert "per_item" not in summary
    with pytest.raises(ValueError, match="per_item=False"):
        EvaluationResult.from_json(tmp_path / "summary.json")


def test_table(result: EvaluationResult) -> None:
    lines = result.table_lines()
    text = "\n".join(lines)
    assert lines[0].startswith("protocol  synthetic")
    header = next(line for line in lines if line.startswith("metric"))
    assert header.split() == ["metric", "mode", "min-of-1", "min-of-2", "min-of-5"]
    row = next(line for line in lines if line.startswith("MPJPE *"))
    aggregate = result.aggregate
    expected = [f"{aggregate[f'mpjpe/{key}']:.1f}" for key in ("mode", "min_of_1", "min_of_2",
                                                                 "min_of_5")]
    assert row.split()[2:] == expected
    assert any(line.startswith("PA-MPJPE ") for line in lines)
    assert any(line.startswith("PVE ") for line in lines)
    assert f"{aggregate['log_likelihood']:.2f} nats" in text
    assert "coverage (per-axis quantile" in text
    assert all(f"note: {note}" in lines for note in PROTOCOLS["synthetic"].notes)


def _write_h36m_dataset(folder: Path, head_confidence: float = 1.0) -> tuple[Path, list[int]]:
    """A hand-made dataset with SPIN-style H36M names and 3D joints in SPIN's H36M slots."""
    names = [
        "S9_Eating.60457274_000001.jpg", "S9_Eating.60457274_000002.jpg",
        "S9_Eating.54138969_000001.jpg", "S11_Sitting_Down.60457274_000006.jpg",
        "S1_Eating.60457274_000001.jpg", "S11_Sitting_Down.60457274_000011.jpg",
    ]
    (folder / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in names:
        pixels = rng.integers(0, 255, size=(48, 48, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / "images" / name)
    extra = np.zeros((len(names), 19, 4))
    h36m_slots = [*range(13), 14, 16, 17, 18]
    extra[:, h36m_slots, :3] = rng.normal(scale=0.3, size=(len(names), 17, 3))
    extra[:, h36m_slots, 3] = 1.0
    extra[:, 18, 3] = head_confidence
    path = folder / "h36m.npz"
    np.savez(path, imgname=np.array([f"images/{name}" for name in names]),
             center=np.full((len(names), 2), 24.0), scale=np.full(len(names), 0.2),
             extra_keypoints_3d=extra)
    return path, [0, 3, 5]


def test_h36m_protocol_selects_rows_by_name(model: ProHMR, tmp_path: Path) -> None:
    path, expected = _write_h36m_dataset(tmp_path / "a")
    p2 = evaluate(model, path, image_root=tmp_path / "a", protocol="h36m-p2", num_samples=1,
                  min_of_n=(1,), progress=False)
    assert p2.rows.tolist() == expected
    assert p2.dataset["rows_selected"] == 3 and p2.dataset["rows_in_file"] == 6
    assert set(p2.per_item) == {"mpjpe/mode", "mpjpe/min_of_1", "pa_mpjpe/mode",
                                "pa_mpjpe/min_of_1", "log_likelihood"}
    assert np.isnan(p2.per_item["log_likelihood"]).all()
    assert p2.aggregate["log_likelihood"] is None
    assert any("num_samples >= 3" in note for note in p2.notes)
    mpi = evaluate(model, path, image_root=tmp_path / "a", protocol="mpi-inf-3dhp",
                   num_samples=1, min_of_n=(1,), max_items=2, progress=False)
    assert mpi.rows.tolist() == [0, 1]

    path, _ = _write_h36m_dataset(tmp_path / "b", head_confidence=0.0)
    with pytest.raises(ValueError, match=r"3 of 3 selected rows|no 3D ground truth"):
        evaluate(model, path, image_root=tmp_path / "b", protocol="h36m-p2", num_samples=1,
                 min_of_n=(1,), progress=False)


def test_errors(model: ProHMR, synthetic: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="dataset file not found"):
        evaluate(model, tmp_path / "missing.npz", progress=False)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ValueError, match="expected a dataset .npz"):
        evaluate(model, text, image_root=tmp_path, progress=False)
    fake = tmp_path / "fake.npz"
    fake.write_text("not a zip")
    with pytest.raises(ValueError, match="not a readable .npz"):
        evaluate(model, fake, image_root=tmp_path, progress=False)
    bare = tmp_path / "bare.npz"
    np.savez(bare, imgname=np.array(["a.jpg", "b.jpg"]), center=np.zeros((2, 2)),
             scale=np.ones(2))
    with pytest.raises(ValueError, match="has no 3D ground truth for protocol 'synthetic'"):
        evaluate(model, bare, image_root=tmp_path, progress=False)
    with pytest.raises(FileNotFoundError, match="image root folder not found"):
        evaluate(model, bare, image_root=tmp_path / "nowhere", progress=False)
    with pytest.raises(ValueError, match="unknown evaluation protocol 'h36m-p1'"):
        evaluate(model, synthetic, protocol="h36m-p1", progress=False)
    with pytest.raises(ValueError, match="do not follow it"):
        evaluate(model, synthetic, protocol="h36m-p2", progress=False)
    with pytest.raises(ValueError, match=r"`min_of_n` must be integers in \[1, num_samples=5\]"):
        evaluate(model, synthetic, num_samples=5, min_of_n=(1, 10), progress=False)
    with pytest.raises(ValueError, match="`model` must be a ProHMR"):
        evaluate(torch.nn.Linear(2, 2), synthetic, progress=False)  # type: ignore[arg-type]
    training = ImageDataset(synthetic, synthetic.parent / "images", train=True)
    with pytest.raises(ValueError, match="train=False"):
        evaluate(model, training, progress=False)
    with pytest.raises(ValueError, match="`max_items` must be an integer >= 1"):
        evaluate(model, synthetic, max_items=0, progress=False)


def test_run_eval_command(model: ProHMR, synthetic: Path, tmp_path: Path) -> None:
    checkpoint = save_model(model, tmp_path / "tiny.pt")
    out = tmp_path / "results.json"
    lines = run_eval_command(str(checkpoint), synthetic, None, "synthetic", 2, out, "cpu", 2,
                             False, progress=False)
    assert lines[-1] == f"wrote {out}"
    assert any(line.startswith("MPJPE *") for line in lines)
    record = json.loads(out.read_text())
    assert record["num_items"] == 2 and record["n"] == [1, 2]
    assert record["model"]["name"] == str(checkpoint)
    with pytest.raises(ValueError, match="unknown evaluation protocol"):
        run_eval_command(tmp_path / "missing.pt", synthetic, protocol="coco")
    with pytest.raises(FileNotFoundError, match="dataset file not found"):
        run_eval_command(checkpoint, tmp_path / "missing.npz")
    with pytest.raises(FileNotFoundError, match="checkpoint file not found"):
        run_eval_command(tmp_path / "missing.pt", synthetic)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")
def test_cuda_matches_cpu(model: ProHMR, synthetic: Path, result: EvaluationResult) -> None:
    on_gpu = copy.deepcopy(model)
    gpu = evaluate(on_gpu, synthetic, num_samples=NUM_SAMPLES, min_of_n=NS, batch_size=3,
                   device="cuda", progress=False, seed=SEED)
    assert next(on_gpu.parameters()).is_cuda
    for name, values in gpu.per_item.items():
        # TF32 convolutions on the GPU: the errors of a random model agree to a few mm.
        np.testing.assert_allclose(values, result.per_item[name], rtol=1e-2, atol=2.0)
