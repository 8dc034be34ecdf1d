"""Check subsets of the shipped models: small held-out sets anyone can regenerate.

Every shipped model file (``prohmr/pretrained/<name>.pt``) stores in its metadata, under
``"check_subset"``, the recipe of a small held-out set and the model's numbers on it; the test
suite (``tests/test_pretrained.py``) rebuilds the set from ``../shared/data``, reloads the
model by name and reproduces those numbers. The full held-out metrics (every frame of the
held-out actor, every validation image) are in the model cards.

- ``prohmr_synthetic``: :func:`lightning_modules.export_prohmr.check_subset` (8 rendered
  images of held-out poses).
- ``pose_prior`` and ``proskeleton``: :data:`MOCAP_CHECK` frames of the held-out actor mm,
  retargeted with :func:`prohmr.data.mocap.retarget.build_mocap_dataset`; the prior's mean
  NLL per pose and ProSkeleton's mode / min-of-n errors with one fixed virtual camera per
  frame.

``python -m lightning_modules.model_checks`` recomputes the numbers of the two mocap models
and writes them into their files (weights untouched).
"""

from __future__ import annotations

import logging
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from prohmr.models.loading import PRETRAINED_MODELS

__all__ = [
    "MOCAP_CHECK",
    "build_mocap_check",
    "pose_prior_check",
    "proskeleton_check",
    "store_check",
    "main",
]

logger = logging.getLogger(__name__)

#: The held-out mocap check set: arguments of ``build_mocap_dataset``.
MOCAP_CHECK: dict[str, Any] = {
    "actors": ["mm"],
    "actions": ["kickLFront1Reps", "throwBasketball"],
    "fps": 5.0,
}


def build_mocap_check(out_dir: str | Path, data_root: str | Path = "../shared/data",
                      recipe: Mapping[str, Any] = MOCAP_CHECK) -> Path:
    """Write the mocap check set (``<out_dir>/check.npz``) and return its path."""
    from prohmr.data.mocap.retarget import build_mocap_dataset

    path = Path(out_dir) / "check.npz"
    build_mocap_dataset(path, data_root=data_root, actors=tuple(recipe["actors"]),
                        actions=tuple(recipe["actions"]), fps=float(recipe["fps"]),
                        progress=False)
    return path


def pose_prior_check(prior: Any, npz: str | Path) -> dict[str, float]:
    """``{"nll_per_pose": ...}``: the prior's mean NLL (nats) of the check poses."""
    from prohmr.models.pose_prior import evaluate_nll

    with np.load(npz, allow_pickle=False) as data:
        poses = data["body_pose"]
    return {"nll_per_pose": round(float(evaluate_nll(prior, poses)), 4)}


def proskeleton_check(model: Any, npz: str | Path) -> dict[str, float]:
    """Mode and min-of-n MPJPE / PA-MPJPE (mm) of ProSkeleton on the check frames."""
    from lightning_modules.proskeleton_module import evaluate_proskeleton
    from prohmr.data.lifting import VirtualCameraLiftingDataset

    dataset = VirtualCameraLiftingDataset(npz, train=False, seed=0)
    metrics = evaluate_proskeleton(model, dataset, seed=0)
    return {name: round(float(metrics[name]), 3)
            for name in ("mode_mpjpe", "mode_pa_mpjpe", "min_of_25_mpjpe")}


def store_check(path: str | Path, recipe: Mapping[str, Any], metrics: Mapping[str, float]) -> None:
    """Put ``{"recipe", "metrics"}`` under ``metadata["check_subset"]`` of a model file."""
    path = Path(path)
    content = torch.load(path, map_location="cpu", weights_only=True)
    content.setdefault("metadata", {})["check_subset"] = {
        "recipe": dict(recipe), "metrics": dict(metrics)
    }
    torch.save(content, path)


def main() -> int:
    """Recompute and store the check numbers of the shipped pose prior and ProSkeleton."""
    from prohmr.models.loading import load_model

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory() as folder:
        npz = build_mocap_check(folder)
        for name, check in (("pose_prior", pose_prior_check),
                            ("proskeleton", proskeleton_check)):
            metrics = check(load_model(name), npz)
            store_check(PRETRAINED_MODELS[name], MOCAP_CHECK, metrics)
            logger.info("%s: %s", name, metrics)
    return 0


if __name__ == "__main__":
    sys.exit(main())
