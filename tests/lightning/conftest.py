"""A tiny random dataset in the SPEC §5 format, and small configs for the training tests."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from PIL import Image

#: Side of the random images and of the crops the tests train on.
IMAGE_SIDE = 64
#: Rows of the tiny training and validation files.
NUM_ROWS = 6


def write_dataset(root: Path, name: str, num_rows: int = NUM_ROWS, seed: int = 0) -> Path:
    """Random PNGs plus an ``.npz`` with every label (SMPL, 2D and 3D keypoints)."""
    rng = np.random.default_rng(seed)
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    names = []
    for row in range(num_rows):
        relative = f"images/{name}_{row:03d}.png"
        pixels = rng.integers(0, 256, size=(IMAGE_SIDE, IMAGE_SIDE, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / relative)
        names.append(relative)
    keypoints_2d = np.concatenate(
        [rng.uniform(8, IMAGE_SIDE - 8, size=(num_rows, 44, 2)), np.ones((num_rows, 44, 1))],
        axis=-1,
    )
    keypoints_3d = np.concatenate(
        [rng.normal(scale=0.3, size=(num_rows, 44, 3)), np.ones((num_rows, 44, 1))], axis=-1
    )
    path = root / f"{name}.npz"
    np.savez(
        path,
        imgname=np.array(names),
        center=np.full((num_rows, 2), IMAGE_SIDE / 2),
        scale=np.full(num_rows, IMAGE_SIDE / 200.0),
        body_pose=rng.normal(scale=0.3, size=(num_rows, 72)),
        has_body_pose=np.ones(num_rows),
        betas=rng.normal(scale=0.5, size=(num_rows, 10)),
        has_betas=np.ones(num_rows),
        body_keypoints_2d=keypoints_2d[:, :25],
        extra_keypoints_2d=keypoints_2d[:, 25:],
        body_keypoints_3d=keypoints_3d[:, :25],
        extra_keypoints_3d=keypoints_3d[:, 25:],
    )
    return path


def write_mocap(root: Path, num_rows: int = 16, seed: int = 1) -> Path:
    rng = np.random.default_rng(seed)
    path = root / "mocap.npz"
    np.savez(
        path,
        body_pose=rng.normal(scale=0.3, size=(num_rows, 72)),
        betas=rng.normal(scale=0.5, size=(num_rows, 10)),
    )
    return path


#: A ProHMR small enough for CPU tests.
TINY_MODEL: dict[str, Any] = {
    "backbone": "resnet18",
    "flow_hidden_features": 16,
    "flow_num_layers": 2,
    "flow_num_blocks_per_layer": 1,
    "head_hidden_features": 16,
}


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Paths of a tiny train/val dataset and a mocap file (shared by the session)."""
    root = tmp_path_factory.mktemp("tiny_data")
    return {
        "root": str(root),
        "train": str(write_dataset(root, "train", seed=0)),
        "val": str(write_dataset(root, "val", seed=1)),
        "mocap": str(write_mocap(root)),
    }


def _tiny_config(data: dict[str, str], log_dir: Path) -> dict[str, Any]:
    config: dict[str, Any] = {
        "seed_everything": 0,
        "trainer": {
            "accelerator": "cpu",
            "devices": 1,
            "max_steps": 2,
            "limit_val_batches": 1,
            "num_sanity_val_steps": 0,
            "enable_model_summary": False,
            "default_root_dir": str(log_dir),
            "logger": [
                {
                    "class_path": "pytorch_lightning.loggers.CSVLogger",
                    "init_args": {"save_dir": str(log_dir), "name": "tiny"},
                }
            ],
        },
        "model": {
            "config": dict(TINY_MODEL),
            "num_samples": 2,
            "val_num_samples": 3,
            "num_logged_images": 0,
        },
        "data": {
            "train": [{"npz": data["train"], "image_root": data["root"], "weight": 1.0}],
            "val": {"npz": data["val"], "image_root": data["root"]},
            "mocap": data["mocap"],
            "batch_size": 3,
            "image_size": IMAGE_SIDE,
            "num_workers": 0,
        },
    }
    return config


@pytest.fixture(autouse=True)
def _command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI reads its arguments from the tests, never from pytest's own command line."""
    monkeypatch.setattr(sys, "argv", ["prohmr-train"])


@pytest.fixture
def tiny_config(tiny_data: dict[str, str], tmp_path: Path) -> dict[str, Any]:
    """A full CLI config (a fresh dict) for the tiny dataset, logging under ``tmp_path``."""
    return _tiny_config(tiny_data, tmp_path / "logs")


@pytest.fixture
def write_yaml(tmp_path: Path) -> Callable[[dict[str, Any], str], Path]:
    """Write a config dict as YAML into ``tmp_path``; returns the path."""

    def write(config: dict[str, Any], name: str = "config.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        return path

    return write
