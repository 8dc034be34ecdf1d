"""ProSkeletonModule and its DataModule: SPEC §8 losses, input statistics, evaluation, CLI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
import yaml

from lightning_modules.proskeleton_module import (
    ProSkeletonDataModule,
    ProSkeletonLossWeights,
    ProSkeletonModule,
    ShuffledEpochSampler,
    cli,
    evaluate_proskeleton,
    evaluation_sums,
    main,
)
from prohmr.body.model import create_body_model
from prohmr.data.lifting import LIFTING_OUTPUT_POSITIONS, VirtualCameraLiftingDataset
from prohmr.data.pose_sources import random_pose
from prohmr.evaluation import H36M_17, mpjpe, pa_mpjpe
from prohmr.geometry import axis_angle_to_matrix
from prohmr.models.proskeleton import load_proskeleton

REPO_ROOT = Path(__file__).resolve().parents[2]
TINY: dict[str, Any] = {
    "context_features": 64,
    "context_num_blocks": 1,
    "flow_hidden_features": 32,
    "flow_num_layers": 2,
    "flow_num_blocks_per_layer": 1,
}


@pytest.fixture
def single_thread() -> Iterator[None]:
    """One intra-op thread: on a shared 2-core machine this is several times faster."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _body_joints(num_poses: int, seed: int) -> np.ndarray:
    """``(N, 44, 3)`` joints of the default body in random poses (Contract A frame)."""
    poses = torch.from_numpy(random_pose(num_poses, np.random.default_rng(seed))).float()
    rotations = axis_angle_to_matrix(poses.reshape(num_poses, 24, 3))
    with torch.no_grad():
        output = create_body_model()(rotations[:, :1], rotations[:, 1:], torch.zeros(num_poses, 10))
    return output.joints.numpy()


@pytest.fixture(scope="module")
def mocap_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Training and held-out files with Contract A's ``joints`` (random body poses)."""
    root = tmp_path_factory.mktemp("proskeleton_data")
    paths = {}
    for name, count, seed in (("train", 1200, 0), ("val", 200, 1)):
        path = root / f"{name}.npz"
        np.savez(path, joints=_body_joints(count, seed).astype(np.float32),
                 actor=np.array(["mm" if name == "val" else "bd"] * count))
        paths[name] = str(path)
    return paths


def _batch(dataset: VirtualCameraLiftingDataset, count: int) -> dict[str, torch.Tensor]:
    items = [dataset[index] for index in range(count)]
    keys = ("keypoints_2d", "joints_3d")
    return {key: torch.stack([item[key] for item in items]) for key in keys}


def test_loss_terms_follow_spec_8(mocap_files: dict[str, str]) -> None:
    torch.manual_seed(0)
    module = ProSkeletonModule(TINY, ProSkeletonLossWeights(keypoints_3d_exp=0.5), num_samples=3,
                               joint_noise=0.0)
    batch = _batch(VirtualCameraLiftingDataset(mocap_files["train"]), 8)
    module.model.train()
    module.model.initialize_flow(batch["keypoints_2d"], batch["joints_3d"])
    module.model.eval()  # deterministic (no dropout) so that the terms can be recomputed
    torch.manual_seed(1)
    terms = module.loss_terms(batch)
    torch.manual_seed(1)
    context = module.model.context(batch["keypoints_2d"])
    output = module.model.sample_from_context(context, 3)
    gt = batch["joints_3d"]
    # L1 summed over the 16 output joints and 3 coordinates, averaged over the batch; the
    # pelvis (0 in both) adds nothing.
    brute_mode = sum(
        float(abs(output.joints_3d[b, 0, j, c] - gt[b, j, c]))
        for b in range(8) for j in LIFTING_OUTPUT_POSITIONS for c in range(3)
    ) / 8
    assert float(terms["keypoints_3d_mode"]) == pytest.approx(brute_mode, rel=1e-5)
    brute_exp = float((output.joints_3d[:, 1:] - gt[:, None]).abs().sum(dim=(-1, -2)).mean())
    assert float(terms["keypoints_3d_exp"]) == pytest.approx(brute_exp, rel=1e-5)
    log_prob, _ = module.model.log_prob(batch["keypoints_2d"], gt)
    assert float(terms["nll"]) == pytest.approx(-float(log_prob.mean()), rel=1e-5)
    total = module.weighted_total(terms)
    expected = terms["keypoints_3d_mode"] + 0.5 * terms["keypoints_3d_exp"] + 0.001 * terms["nll"]
    torch.testing.assert_close(total, expected)
    # With the default weights only the mode term and the NLL are computed.
    assert set(ProSkeletonModule(TINY).loss_terms(batch)) == {"keypoints_3d_mode", "nll"}


def test_evaluation_sums_match_the_metrics(mocap_files: dict[str, str]) -> None:
    torch.manual_seed(0)
    module = ProSkeletonModule(TINY, val_num_samples=5).eval()
    batch = _batch(VirtualCameraLiftingDataset(mocap_files["val"], train=False), 6)
    generator = torch.Generator().manual_seed(4)
    with torch.no_grad():
        sums = evaluation_sums(
            module.model, batch["keypoints_2d"], batch["joints_3d"], (1, 5), generator
        )
        samples = module.model.sample(batch["keypoints_2d"], 5,
                                      generator=torch.Generator().manual_seed(4)).joints_3d
    gt = batch["joints_3d"]
    assert float(sums["count"]) == 6
    mode = mpjpe(samples[:, 0], gt, H36M_17)
    assert float(sums["mode_mpjpe"]) == pytest.approx(float(mode.sum()), rel=1e-5)
    brute = sum(
        min(float(pa_mpjpe(samples[b, s], gt[b], H36M_17)) for s in range(5)) for b in range(6)
    )
    assert float(sums["min_of_5_pa_mpjpe"]) == pytest.approx(brute, rel=1e-4)
    assert float(sums["min_of_5_mpjpe"]) <= float(sums["mode_mpjpe"])


def test_shuffled_sampler_changes_order_and_cameras_every_epoch(
    mocap_files: dict[str, str]
) -> None:
    dataset = VirtualCameraLiftingDataset(mocap_files["val"])
    sampler = ShuffledEpochSampler(dataset, seed=3)
    first = list(sampler)
    assert sorted(first) == list(range(len(dataset))) and first != sorted(first)
    assert list(sampler) == first
    sampler.set_epoch(1)
    assert list(sampler) != first and dataset.epoch == 1


def test_datamodule_reports_missing_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope_train.npz.*nope_val.npz"):
        ProSkeletonDataModule(str(tmp_path / "nope_train.npz"), str(tmp_path / "nope_val.npz"))


def test_module_refuses_bad_settings() -> None:
    with pytest.raises(ValueError, match="num_samples >= 2"):
        ProSkeletonModule(TINY, ProSkeletonLossWeights(keypoints_3d_exp=1.0), num_samples=1)
    with pytest.raises(ValueError, match="ProSkeletonLossWeights.nll"):
        ProSkeletonLossWeights(nll=-1.0)
    with pytest.raises(ValueError, match="at least one weight"):
        ProSkeletonModule(TINY, ProSkeletonLossWeights(0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="lr"):
        ProSkeletonModule(TINY, lr=float("nan"))


def test_tiny_training_beats_the_mean_pose(
    mocap_files: dict[str, str], tmp_path: Path, single_thread: None
) -> None:
    """A short run sets the statistics and ActNorm, and lifts the held-out skeletons much
    better than predicting the mean training skeleton."""
    pl.seed_everything(0)
    data = ProSkeletonDataModule(mocap_files["train"], mocap_files["val"], batch_size=64,
                                 stats_items=400)
    module = ProSkeletonModule(TINY, lr=1e-3, val_num_samples=5)
    trainer = pl.Trainer(
        max_steps=150, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
        default_root_dir=tmp_path,
    )
    trainer.fit(module, data)
    mean, std = data.keypoint_stats()
    assert torch.equal(module.model.keypoints_mean, mean)
    assert torch.equal(module.model.keypoints_std, std)
    assert bool(module.model.initialized)

    validation = VirtualCameraLiftingDataset(mocap_files["val"], train=False)
    training = VirtualCameraLiftingDataset(mocap_files["train"])
    mean_pose = torch.stack([training[i]["joints_3d"] for i in range(len(training))]).mean(0)
    gt = torch.stack([validation[i]["joints_3d"] for i in range(len(validation))])
    baseline = float(mpjpe(mean_pose.expand_as(gt), gt, H36M_17).mean())
    metrics = evaluate_proskeleton(module.model, validation, ns=(1, 5))
    assert metrics["count"] == len(validation)
    assert metrics["mode_mpjpe"] < 0.6 * baseline, (metrics, baseline)
    assert metrics["min_of_5_mpjpe"] <= metrics["mode_mpjpe"]


def _config(mocap_files: dict[str, str], log_dir: Path) -> dict[str, Any]:
    config = yaml.safe_load((REPO_ROOT / "configs" / "proskeleton.yaml").read_text())
    config["trainer"].update(
        max_steps=2, val_check_interval=2, limit_val_batches=1, num_sanity_val_steps=0,
        enable_progress_bar=False, enable_model_summary=False,
        logger=[{"class_path": "pytorch_lightning.loggers.CSVLogger",
                 "init_args": {"save_dir": str(log_dir), "name": "tiny"}}],
    )
    config["model"]["config"] = dict(TINY)
    config["model"]["val_num_samples"] = 3
    config["data"].update(train_npz=mocap_files["train"], val_npz=mocap_files["val"],
                          batch_size=8, stats_items=50, num_workers=0)
    return config


def test_cli_trains_checkpoints_and_exports(
    mocap_files: dict[str, str], tmp_path: Path, single_thread: None
) -> None:
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(_config(mocap_files, tmp_path / "logs")))
    assert main(["fit", "--config", str(config_path)]) == 0
    run = tmp_path / "logs" / "tiny" / "version_0"
    metrics = (run / "metrics.csv").read_text()
    assert "val/mode_mpjpe" in metrics and "val/min_of_3_pa_mpjpe" in metrics
    checkpoint = run / "checkpoints" / "last.ckpt"
    # The shipped config decays the learning rate over trainer.max_steps (2 here).
    assert torch.load(checkpoint, weights_only=True)["lr_schedulers"][0]["T_max"] == 2
    out = tmp_path / "proskeleton.pt"
    assert main(["export", "--checkpoint", str(checkpoint), "--out", str(out),
                 "--val-npz", mocap_files["val"], "--val-frame-stride", "20",
                 "--metadata", '{"licence": "test"}']) == 0
    model = load_proskeleton(out)
    assert model.metadata["licence"] == "test"
    assert model.metadata["data"]["val"]["actors"] == ["mm"]
    heldout = model.metadata["heldout_metrics_mm"]
    assert heldout["count"] == 10
    assert {"mode_mpjpe", "min_of_25_mpjpe", "min_of_10_pa_mpjpe"} <= set(heldout)
    assert heldout["min_of_25_mpjpe"] <= heldout["min_of_5_mpjpe"] <= heldout["mode_mpjpe"]
    assert bool(model.initialized) and not torch.equal(model.keypoints_std, torch.ones(34))


def test_shipped_config_instantiates(mocap_files: dict[str, str], tmp_path: Path) -> None:
    config = yaml.safe_load((REPO_ROOT / "configs" / "proskeleton.yaml").read_text())
    config["data"].update(train_npz=mocap_files["train"], val_npz=mocap_files["val"])
    config["trainer"]["logger"] = False
    config_path = tmp_path / "shipped.yaml"
    config_path.write_text(yaml.safe_dump(config))
    built = cli(["--config", str(config_path)], run=False)
    assert isinstance(built.model, ProSkeletonModule)
    assert built.datamodule.batch_size == 64
    size_mb = sum(p.numel() for p in built.model.model.state_dict().values()) * 4 / 1e6
    assert size_mb < 12.0


def test_missing_data_is_one_line_with_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    config = yaml.safe_load((REPO_ROOT / "configs" / "proskeleton.yaml").read_text())
    config["data"].update(train_npz=str(tmp_path / "absent.npz"), val_npz=None)
    config_path = tmp_path / "absent.yaml"
    config_path.write_text(yaml.safe_dump(config))
    assert main(["fit", "--config", str(config_path)]) == 2
    assert "absent.npz" in capsys.readouterr().err
