"""The ``prohmr-train`` Lightning CLI: end-to-end runs, resume, shipped configs, errors."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from lightning_modules.cli import cli, main
import prohmr
from prohmr.models.loading import load_model

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_fast_dev_run_end_to_end(
    tiny_config: dict[str, Any], write_yaml: Callable[..., Path], precision: str
) -> None:
    path = write_yaml(tiny_config)
    arguments = ["fit", "--config", str(path), "--trainer.fast_dev_run=1"]
    assert main([*arguments, f"--trainer.precision={precision}"]) == 0


def test_without_mocap_the_adversarial_prior_is_skipped(
    tiny_config: dict[str, Any], write_yaml: Callable[..., Path]
) -> None:
    tiny_config["data"]["mocap"] = None
    path = write_yaml(tiny_config)
    result = cli(["fit", "--config", str(path), "--trainer.fast_dev_run=1",
                  "--model.num_samples=3"])
    assert result.datamodule.samples_per_image == 3  # linked to model.num_samples
    assert result.model.discriminator is None
    assert len(result.trainer.optimizers) == 1
    assert result.trainer.global_step == 1  # one batch, one (generator) step


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _train_steps(path: Path) -> list[int]:
    return sorted({int(row["step"]) for row in _read_csv(path) if row.get("train/loss")})


@pytest.mark.slow  # two short runs that write four 135 MB checkpoints
def test_checkpoint_resume_and_export(
    tiny_config: dict[str, Any], write_yaml: Callable[..., Path], tmp_path: Path
) -> None:
    log_dir = tmp_path / "logs"
    tiny_config["trainer"].update(
        max_steps=4,  # 2 batches (generator + discriminator steps) = 1 epoch, then validation
        log_every_n_steps=1,
        logger=[
            {"class_path": "pytorch_lightning.loggers.CSVLogger",
             "init_args": {"save_dir": str(log_dir), "name": "run"}},
            {"class_path": "pytorch_lightning.loggers.TensorBoardLogger",
             "init_args": {"save_dir": str(log_dir / "tb"), "name": "run"}},
        ],
    )
    tiny_config["model"]["num_logged_images"] = 2
    path = write_yaml(tiny_config)

    first = cli(["fit", "--config", str(path)])
    assert first.trainer.global_step == 4
    run_dir = log_dir / "run" / "version_0"
    last = run_dir / "checkpoints" / "last.ckpt"
    assert last.is_file()
    best = sorted((run_dir / "checkpoints").glob("step*-mpjpe*.ckpt"))
    assert len(best) == 1
    validation = [row for row in _read_csv(run_dir / "metrics.csv") if row.get("val/mode_mpjpe")]
    assert len(validation) == 1
    metrics = {key: float(validation[0][key]) for key in (
        "val/mode_mpjpe", "val/mode_pa_mpjpe", "val/min_of_n_mpjpe", "val/min_of_n_pa_mpjpe"
    )}
    assert 0 < metrics["val/min_of_n_mpjpe"] <= metrics["val/mode_mpjpe"]
    assert 0 < metrics["val/min_of_n_pa_mpjpe"] <= metrics["val/mode_pa_mpjpe"]
    assert metrics["val/mode_pa_mpjpe"] <= metrics["val/mode_mpjpe"]

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir / "tb" / "run" / "version_0")).Reload()
    assert "val/samples" in events.Tags()["images"]

    # The Lightning checkpoint loads as a ProHMR, with the trained weights.
    trained = first.model.model.state_dict()
    loaded = prohmr.load_model(last)
    for key, value in loaded.state_dict().items():
        torch.testing.assert_close(value, trained[key], rtol=0, atol=0)
    exported = first.model.export_model(tmp_path / "prohmr.pt")
    assert load_model(exported).config == first.model.model.config

    second = cli(["fit", "--config", str(path), "--ckpt_path", str(last),
                  "--trainer.max_steps=8"])
    assert second.trainer.global_step == 8
    assert second.trainer.current_epoch == 2
    # The second run trained 2 batches and logged them after those of the first: it
    # continued from the checkpoint instead of starting over.
    steps_first = _train_steps(run_dir / "metrics.csv")
    steps_second = _train_steps(log_dir / "run" / "version_1" / "metrics.csv")
    assert len(steps_first) == len(steps_second) == 2
    assert min(steps_second) > max(steps_first)


@pytest.mark.parametrize("name", ["prohmr.yaml", "prohmr_synthetic.yaml"])
def test_shipped_configs_parse(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli(["fit", "--config", str(CONFIGS / name), "--print_config"])
    assert exit_info.value.code in (0, None)
    config = yaml.safe_load(capsys.readouterr().out)
    assert config["model"]["num_samples"] == 2
    weights = config["model"]["loss_weights"]
    assert (weights["keypoints_2d_mode"], weights["keypoints_2d_exp"]) == (0.01, 0.001)
    assert (weights["nll"], weights["orthonormal"], weights["adversarial"]) == (0.001, 0.1, 0.0005)
    callbacks = {c["class_path"].rsplit(".", 1)[-1]: c for c in config["trainer"]["callbacks"]}
    assert callbacks["ModelCheckpoint"]["init_args"]["monitor"] == "val/mode_mpjpe"
    loggers = {entry["class_path"].rsplit(".", 1)[-1] for entry in config["trainer"]["logger"]}
    assert loggers == {"CSVLogger", "TensorBoardLogger"}
    if name == "prohmr.yaml":
        assert config["model"]["config"]["backbone"] == "resnet50"
        assert config["model"]["config"]["flow_hidden_features"] == 1024
        assert config["data"]["batch_size"] == 64
        assert [spec["weight"] for spec in config["data"]["train"]] == [0.3, 0.1, 0.4, 0.2]
        assert config["model"]["lr"] == 1e-4 and config["model"]["weight_decay"] == 1e-4
        assert config["model"]["adversarial"] is True and config["data"]["mocap"]
    else:
        assert config["model"]["config"]["backbone"] == "resnet18"
        assert config["data"]["train"][0]["npz"] == "data/synthetic/train.npz"


def test_synthetic_config_trains(
    tiny_data: dict[str, str], write_yaml: Callable[..., Path], tmp_path: Path
) -> None:
    config = yaml.safe_load((CONFIGS / "prohmr_synthetic.yaml").read_text())
    config["data"].update(
        train=[{"npz": tiny_data["train"], "image_root": tiny_data["root"]}],
        val={"npz": tiny_data["val"], "image_root": tiny_data["root"]},
        batch_size=3,
        image_size=64,
        num_workers=0,
    )
    config["trainer"].update(default_root_dir=str(tmp_path))
    config["trainer"].pop("logger", None)
    path = write_yaml(config, "synthetic.yaml")
    result = cli(["fit", "--config", str(path), "--trainer.fast_dev_run=1"])
    assert result.trainer.global_step >= 1
    assert bool(result.model.model.initialized)


def test_missing_data_is_one_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fit", "--config", str(CONFIGS / "prohmr.yaml")]) == 2
    message = capsys.readouterr().err
    assert message.startswith("prohmr-train: error: missing training data: ")
    assert "data/h36m/train.npz" in message and "Traceback" not in message


def test_task_of_reads_the_config_task(tmp_path) -> None:
    from lightning_modules.cli import TASKS, task_of

    config = tmp_path / "c.yaml"
    config.write_text("task: proskeleton\nseed_everything: 0\n", encoding="utf-8")
    plain = tmp_path / "plain.yaml"
    plain.write_text("seed_everything: 0\n", encoding="utf-8")
    assert task_of(["fit", "--config", str(plain)]) == "prohmr"
    assert task_of(["fit", "--config", str(config)]) == "proskeleton"
    assert task_of(["fit", f"--config={config}", "--task", "pose_prior"]) == "pose_prior"
    assert set(TASKS) == {"prohmr", "pose_prior", "proskeleton"}
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        task_of(["fit", "--task", "nope"])
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        task_of(["fit", "--config", str(tmp_path / "missing.yaml")])


def test_shipped_configs_name_their_task() -> None:
    from lightning_modules.cli import task_of

    root = Path(__file__).resolve().parents[2] / "configs"
    assert task_of(["fit", "--config", str(root / "prohmr_synthetic.yaml")]) == "prohmr"
    assert task_of(["fit", "--config", str(root / "proskeleton.yaml")]) == "proskeleton"
