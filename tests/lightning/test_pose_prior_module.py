"""Training the pose prior: data, the module, the CLI, export, and what training learns."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
import yaml
from pytorch_lightning.callbacks import ModelCheckpoint

from lightning_modules.pose_prior_module import (
    DEFAULT_CALLBACKS,
    MocapPoseDataModule,
    MocapPoseDataset,
    PosePriorModule,
    cli,
    export_pose_prior,
    main,
    read_body_pose,
)
from lightning_modules.cli import main as prohmr_train
from prohmr.data.augmentation import flip_smpl_pose
from prohmr.data.pose_sources import HELD_OUT_ACTORS, mocap_pose_bank
from prohmr.models.pose_prior import (
    PosePriorConfig,
    axis_angle_to_pose_6d,
    evaluate_nll,
    load_pose_prior,
)

ROOT = Path(__file__).resolve().parents[2]
DATA_ROOT = ROOT.parent / "shared" / "data"
TINY = {"hidden_features": 16, "num_layers": 2, "num_blocks_per_layer": 1,
        "dropout_probability": 0.0}


def _write_mocap(path: Path, num_rows: int, seed: int, actor: str) -> Path:
    """A Contract A-like mocap file (the keys the trainer and the export read)."""
    rng = np.random.default_rng(seed)
    np.savez(
        path,
        body_pose=rng.normal(scale=0.3, size=(num_rows, 72)).astype(np.float32),
        betas=np.zeros((num_rows, 10), np.float32),
        actor=np.array([actor] * num_rows),
        fps=np.float64(10.0),
        source=np.array(json.dumps({"method": "test"})),
    )
    return path


@pytest.fixture(scope="module")
def mocap_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("mocap")
    return {
        "train": _write_mocap(root / "train.npz", 48, seed=0, actor="bd"),
        "val": _write_mocap(root / "val.npz", 20, seed=1, actor="mm"),
    }


# ----------------------------------------------------------------------------------- data
def test_dataset_holds_the_poses_and_their_mirror_images(mocap_files: dict[str, Path]) -> None:
    poses = np.load(mocap_files["train"])["body_pose"]
    plain = MocapPoseDataset(mocap_files["train"])
    mirrored = MocapPoseDataset(mocap_files["train"], augment_flip=True)
    assert len(plain) == 48 and len(mirrored) == 96
    np.testing.assert_array_equal(plain[3]["body_pose"].numpy(), poses[3])
    np.testing.assert_array_equal(mirrored[48 + 3]["body_pose"].numpy(), flip_smpl_pose(poses[3]))
    batch = mirrored[torch.tensor([0, 50, 7])]["body_pose"]
    np.testing.assert_array_equal(batch.numpy(), mirrored.body_pose.numpy()[[0, 50, 7]])


def test_read_body_pose_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        read_body_pose(tmp_path / "missing.npz")
    cases = {
        "no_key.npz": ({"betas": np.zeros((2, 10))}, "missing required key 'body_pose'"),
        "shape.npz": ({"body_pose": np.zeros((2, 69))}, r"shape \(N, 72\)"),
        "nan.npz": ({"body_pose": np.full((2, 72), np.nan)}, "finite"),
    }
    for name, (arrays, message) in cases.items():
        np.savez(tmp_path / name, **arrays)
        with pytest.raises(ValueError, match=message):
            read_body_pose(tmp_path / name)


def test_datamodule_batches_and_errors(mocap_files: dict[str, Path], tmp_path: Path) -> None:
    data = MocapPoseDataModule(str(mocap_files["train"]), str(mocap_files["val"]), batch_size=32)
    data.setup("fit")
    batches = list(data.train_dataloader())
    assert [tuple(batch["body_pose"].shape) for batch in batches] == [(32, 72)] * 3  # 96 // 32
    seen = torch.cat([batch["body_pose"] for batch in batches])
    assert len(torch.unique(seen, dim=0)) == 96  # one epoch: every pose once (with mirrors)
    val = list(data.val_dataloader())
    assert sum(len(batch["body_pose"]) for batch in val) == 20
    assert MocapPoseDataModule(str(mocap_files["train"])).val_dataloader() == []
    with pytest.raises(FileNotFoundError) as error:
        MocapPoseDataModule(str(tmp_path / "a.npz"), str(tmp_path / "b.npz"))
    assert "a.npz" in str(error.value) and "b.npz" in str(error.value)
    with pytest.raises(ValueError, match="batch_size"):
        MocapPoseDataModule(str(mocap_files["train"]), batch_size=0)
    too_big = MocapPoseDataModule(str(mocap_files["train"]), batch_size=1000)
    with pytest.raises(ValueError, match="fewer than one batch"):
        too_big.setup("fit")


# --------------------------------------------------------------------------------- module
@pytest.mark.filterwarnings("ignore:You are trying to")  # self.log without a Trainer
def test_first_step_initialises_actnorm_from_noised_poses() -> None:
    torch.manual_seed(0)
    module = PosePriorModule(TINY, pose_noise=0.01, actnorm_init_noise=0.02)
    assert module.hparams["config"] == PosePriorConfig(**TINY).to_dict()
    poses = 0.3 * torch.randn(64, 72)
    poses[:, 30:33] = 0.0  # a joint that never moves: a constant 6D feature
    assert not module.prior.initialized
    loss = module.training_step({"body_pose": poses}, 0)
    assert module.prior.initialized and loss.requires_grad and bool(torch.isfinite(loss))
    # With the init noise the constant feature's std is ~0.02, not the 1e-3 clamp.
    scale = module.prior.flow._transform._transforms[0].log_scale.exp()
    constant = scale[10 * 6 : 10 * 6 + 6]  # joint 10's six features
    assert bool(((constant > 1 / 0.03) & (constant < 1 / 0.014)).all())
    # The loss is the NLL of noised poses: with zero noise it equals the exact NLL.
    module.pose_noise = 0.0
    exact = -module.prior.log_prob(axis_angle_to_pose_6d(poses)).mean()
    torch.testing.assert_close(module.training_step({"body_pose": poses}, 1), exact)


def test_module_settings_are_validated() -> None:
    for kwargs, message in (
        ({"lr": 0.0}, "lr"),
        ({"pose_noise": -1.0}, "pose_noise"),
        ({"lr_schedule": "step"}, "lr_schedule"),
        ({"config": "tiny"}, "config"),
    ):
        with pytest.raises(ValueError, match=message):
            PosePriorModule(**kwargs)
    assert PosePriorModule(TINY, pose_noise=0.003).actnorm_init_noise == 0.003


# ------------------------------------------------------------------------------ CLI, export
def _config(files: dict[str, Path], log_dir: Path) -> dict[str, Any]:
    return {
        "task": "pose_prior",
        "seed_everything": 0,
        "trainer": {
            "accelerator": "cpu",
            "devices": 1,
            "max_steps": 6,
            "val_check_interval": 3,
            "check_val_every_n_epoch": None,
            "log_every_n_steps": 1,
            "enable_model_summary": False,
            "enable_progress_bar": False,
            "logger": [{"class_path": "pytorch_lightning.loggers.CSVLogger",
                        "init_args": {"save_dir": str(log_dir), "name": "run"}}],
        },
        "model": {"config": dict(TINY), "lr": 1e-3},
        "data": {"train_npz": str(files["train"]), "val_npz": str(files["val"]),
                 "batch_size": 16},
    }


def test_cli_fit_checkpoint_and_export(mocap_files: dict[str, Path], tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(_config(mocap_files, tmp_path / "logs")), encoding="utf-8")
    run = cli(["fit", "--config", str(path)])
    assert run.trainer.global_step == 6
    run_dir = tmp_path / "logs" / "run" / "version_0"
    with (run_dir / "metrics.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    val = [float(row["val/nll"]) for row in rows if row.get("val/nll")]
    assert len(val) == 2 and all(math.isfinite(value) for value in val)
    assert any(row.get("train/nll") for row in rows)
    best = sorted((run_dir / "checkpoints").glob("step*-nll*.ckpt"))
    assert len(best) == 1
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 6

    out = export_pose_prior(best[0], tmp_path / "prior.pt", {"command": "fit"},
                            train_npz=mocap_files["train"], val_npz=mocap_files["val"])
    prior = load_pose_prior(out)
    meta = prior.metadata
    assert meta["command"] == "fit" and meta["config"] == PosePriorConfig(**TINY).to_dict()
    assert meta["training"]["lr"] == 1e-3 and meta["checkpoint"]["file"] == best[0].name
    assert meta["data"]["val"]["actors"] == ["mm"] and meta["data"]["train"]["num_poses"] == 48
    # The stored metrics are the clean-pose NLLs of the exported weights; the held-out one is
    # the best checkpoint's logged val/nll.
    assert meta["train_nll"] == pytest.approx(
        evaluate_nll(prior, read_body_pose(mocap_files["train"])), abs=1e-6)
    assert meta["heldout_nll"] == pytest.approx(min(val), abs=1e-3)

    again = tmp_path / "again.pt"
    code = main(["export", "--checkpoint", str(best[0]), "--out", str(again),
                 "--val-npz", str(mocap_files["val"]),
                 "--metadata", '{"licence": "CC BY-SA 3.0"}'])
    assert code == 0
    assert load_pose_prior(again).metadata["licence"] == "CC BY-SA 3.0"
    with pytest.raises(ValueError, match="not a PosePriorModule checkpoint"):
        export_pose_prior(out, tmp_path / "x.pt")


class _WorseningModule(PosePriorModule):
    """Logs a validation NLL that grows with the step: the best checkpoint is the first."""

    def on_validation_epoch_end(self) -> None:
        self.log("val/nll", float(self.global_step))


def test_default_checkpoints_keep_the_best_and_a_fresh_last(
    mocap_files: dict[str, Path], tmp_path: Path
) -> None:
    callbacks = [ModelCheckpoint(**entry["init_args"]) for entry in DEFAULT_CALLBACKS]
    trainer = pl.Trainer(accelerator="cpu", max_steps=6, val_check_interval=3,
                         check_val_every_n_epoch=None, callbacks=callbacks, logger=False,
                         default_root_dir=str(tmp_path), enable_progress_bar=False,
                         enable_model_summary=False)
    data = MocapPoseDataModule(str(mocap_files["train"]), str(mocap_files["val"]), batch_size=16)
    trainer.fit(_WorseningModule(TINY), data)
    checkpoints = tmp_path / "checkpoints"
    assert sorted(path.name for path in checkpoints.iterdir()) == [
        "last.ckpt", "step000003-nll3.00.ckpt"]
    assert torch.load(checkpoints / "last.ckpt", weights_only=True)["global_step"] == 6


def test_prohmr_train_dispatches_on_the_task(
    mocap_files: dict[str, Path], tmp_path: Path
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(_config(mocap_files, tmp_path / "logs")), encoding="utf-8")
    assert prohmr_train(["fit", "--config", str(path), "--trainer.max_steps=3"]) == 0
    checkpoints = tmp_path / "logs" / "run" / "version_0" / "checkpoints"
    last = torch.load(checkpoints / "last.ckpt", weights_only=True)
    assert last["global_step"] == 3
    assert all(key.startswith("prior.flow._transform.") for key in last["state_dict"])


def test_main_reports_missing_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = {"train": tmp_path / "none_train.npz", "val": tmp_path / "none_val.npz"}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(_config(files, tmp_path / "logs")), encoding="utf-8")
    assert main(["fit", "--config", str(path)]) == 2
    assert "none_train.npz" in capsys.readouterr().err


def test_shipped_config_builds(mocap_files: dict[str, Path]) -> None:
    config = ROOT / "configs" / "pose_prior.yaml"
    shipped = yaml.safe_load(config.read_text(encoding="utf-8"))
    assert shipped["task"] == "pose_prior"
    assert shipped["data"]["train_npz"] == "data/mocap/hdm05_train.npz"
    assert shipped["data"]["val_npz"] == "data/mocap/hdm05_val.npz"
    run = cli(["--config", str(config), f"--data.train_npz={mocap_files['train']}",
               f"--data.val_npz={mocap_files['val']}"], run=False)
    assert run.model.config == PosePriorConfig(**shipped["model"]["config"])
    assert run.trainer.max_steps == shipped["trainer"]["max_steps"]
    assert isinstance(run.datamodule, MocapPoseDataModule) and run.datamodule.augment_flip


# ------------------------------------------------------------------- what training learns
def _bent_backwards(poses: np.ndarray) -> np.ndarray:
    """Knees and elbows turned 90° the wrong way (knees flex about +x, the left elbow about
    −y and the right one about +y in SMPL's axes)."""
    broken = poses.reshape(-1, 24, 3).copy()
    half_pi = math.pi / 2
    for joint, axis_angle in ((4, (-half_pi, 0, 0)), (5, (-half_pi, 0, 0)),
                              (18, (0, half_pi, 0)), (19, (0, -half_pi, 0))):
        broken[:, joint] = axis_angle
    return broken.reshape(-1, 72)


@pytest.fixture
def one_thread() -> Any:
    """One torch thread: these small products gain nothing from two, and on a busy machine
    two contending threads made the training below 8x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_training_on_hdm05_prefers_real_held_out_poses(tmp_path: Path, one_thread: Any) -> None:
    if not (DATA_ROOT / "hdm05").is_dir():
        pytest.skip(f"open data not found at {DATA_ROOT} (see SPEC §10)")
    train = mocap_pose_bank(DATA_ROOT, exclude_actors=HELD_OUT_ACTORS)
    held_out = mocap_pose_bank(DATA_ROOT, actors=HELD_OUT_ACTORS)[::4]
    np.savez(tmp_path / "train.npz", body_pose=train.astype(np.float32))
    pl.seed_everything(0)
    module = PosePriorModule({"hidden_features": 64, "num_layers": 4, "num_blocks_per_layer": 1,
                              "dropout_probability": 0.0}, lr=2e-3)
    data = MocapPoseDataModule(str(tmp_path / "train.npz"), batch_size=256)
    trainer = pl.Trainer(accelerator="cpu", max_steps=300, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, gradient_clip_val=10.0,
                         limit_val_batches=0)
    trainer.fit(module, data)
    prior = module.prior.eval()

    rng = np.random.default_rng(0)
    random_poses = rng.normal(scale=0.5, size=held_out.shape)
    random_poses[:, :3] = held_out[:, :3]  # same global orientation: only the body differs
    with torch.no_grad():
        real = prior.log_prob(axis_angle_to_pose_6d(torch.from_numpy(held_out).float()))
        broken = prior.log_prob(
            axis_angle_to_pose_6d(torch.from_numpy(_bent_backwards(held_out)).float()))
        random = prior.log_prob(axis_angle_to_pose_6d(torch.from_numpy(random_poses).float()))
    # Held-out actor: far more likely than the same poses with broken joints (pose by pose)
    # and than random bodies. Measured: log p ≈ +300 real, ≈ −350 broken, ≈ −2e5 random.
    assert bool((real > broken).all()), float((real - broken).min())
    assert float((real - broken).mean()) > 200.0
    assert bool((real > random).all()) and float((real - random).mean()) > 1000.0
