"""A short CPU training run of ProHMR, evaluated against the mean pose measured in the same run.

Evidence that the training code learns (not a speed benchmark): a small ProHMR (the first
three stages of ResNet-18, flow and head width 256) is trained with the project's
:class:`~lightning_modules.prohmr_module.ProHMRModule` and
:class:`~lightning_modules.datamodule.ProHMRDataModule` and a plain Lightning ``Trainer`` on a
small synthetic dataset rendered for the run (:func:`prohmr.data.synthetic.synthesize_dataset`:
studio domain, poses from the HDM05 mocap when ``../shared/data`` has it, the validation
images posed by the held-out actor), then evaluated on the validation images with the
``PROHMR_14`` protocol (14 joints of the 44, centred at the pelvis, joint 39; millimetres):

- **the mean-pose baseline**: one constant body for every image. MPJPE centres both
  skeletons at the pelvis but does not rotate them, so the global orientation counts, and a
  fair constant is the mean training pose *in the camera frame*: per SMPL joint (global
  orientation included) the chordal mean of the training rotations, i.e. the rotation
  closest in Frobenius norm to their arithmetic mean, with the mean training betas. For
  reference the table also lists the body of ``smpl_mean_params.npz`` (the regression
  head's starting values; for the procedural default body: upright and facing the camera,
  the body in its rest pose, zero betas) and the mean of the training skeletons themselves
  (pelvis-centred joints; the best constant under squared error, though not a body);
- **the trained model**: the mode (``z = 0``, what ``val/mode_mpjpe`` reports; the script
  checks that ``Trainer.validate`` gives the same number) and min-of-n over the first ``n``
  of 25 samples, mode included (:func:`prohmr.evaluation.min_of_n`), n = 1, 5, 10, 25.

It prints the table and exits with status 1 and a message when the mode is not clearly below
the mean pose (``trained / baseline > --max-ratio`` for MPJPE) or when min-of-n does not
decrease as ``n`` grows (each value at most the previous, and n = 25 strictly below the mode).

Run: ``python benchmarks/bench_training.py``. The default run costs about 430 CPU seconds
(rendering ~30, training 900 steps at ~0.44 CPU s each, evaluation ~20): about 4-5 minutes
on 2 idle cores, 7 on one. On a loaded machine use ``--threads 1`` (or
``PROHMR_BENCH_THREADS=1``): two threads that wait for each other whenever one is
descheduled were 10x slower there. ``--steps``, ``--image-size``, ``--seed``,
``--out-json PATH`` (the table's numbers, timings and settings as JSON), ``--data-dir DIR``
(keep the rendered dataset there and reuse it when its settings match), ``--help`` for the
rest.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import resource
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from lightning_modules.datamodule import ImageDatasetSpec, ProHMRDataModule
from lightning_modules.prohmr_module import ProHMRModule
from prohmr.body.joints import EVAL_JOINTS_14, PELVIS_INDEX
from prohmr.body.model import BodyModel, load_mean_params
from prohmr.data.image_dataset import ImageDataset
from prohmr.data.synthetic import IMAGE_DIRNAME, synthesize_dataset
from prohmr.evaluation import PROHMR_14, min_of_n, mode_error, mpjpe, pa_mpjpe
from prohmr.geometry import axis_angle_to_matrix, rot6d_to_matrix
from prohmr.models.config import ProHMRConfig

__all__ = [
    "METRICS",
    "NUM_SAMPLES",
    "BASELINES",
    "RunSettings",
    "TrainingLog",
    "BenchmarkResult",
    "prepare_data",
    "build_module",
    "train",
    "chordal_mean",
    "mean_pose_baselines",
    "baseline_errors",
    "evaluate_model",
    "build_datamodule",
    "check_result",
    "format_summary",
    "format_table",
    "run_benchmark",
    "main",
]

#: The two pose metrics of the table.
METRICS: tuple[str, ...] = ("mpjpe", "pa_mpjpe")
#: Sample counts of min-of-n (the paper's); the model draws ``max(NUM_SAMPLES)`` per image.
NUM_SAMPLES: tuple[int, ...] = (1, 5, 10, 25)
#: The constant predictors: the main baseline first.
BASELINES: tuple[str, ...] = ("mean_training_pose", "mean_params_pose", "mean_training_joints")
_BASELINE_TITLES = {
    "mean_training_pose": "mean training pose (chordal mean, camera frame) + mean betas",
    "mean_params_pose": "body of smpl_mean_params.npz (the head's starting values)",
    "mean_training_joints": "mean training skeleton (pelvis-centred joints, not a body)",
}
_METRIC_TITLES = {"mpjpe": "MPJPE", "pa_mpjpe": "PA-MPJPE"}
#: Largest gap (mm) allowed between this script's mode MPJPE and ``Trainer.validate``'s.
VALIDATE_TOLERANCE_MM: float = 0.05
#: Images per evaluation batch (each carries ``max(NUM_SAMPLES)`` meshes).
EVAL_BATCH_SIZE: int = 20


@dataclass
class RunSettings:
    """Everything that defines a run (recorded in the JSON output).

    Attributes:
        steps: optimiser steps (training batches; no adversarial prior, so one per batch).
        image_size: side of the rendered images and of the crops, pixels.
        seed: seed of the dataset, the initialisation, the data draws and the samples.
        num_train, num_val: rendered training and validation images.
        pose_source: ``"auto"`` (mocap when the data folder has it), ``"mocap"``, ``"random"``.
        batch_size: training images per step.
        lr: AdamW learning rate (weight decay 1e-4 as in the configs).
        backbone_num_stages, flow_hidden_features, flow_num_layers,
            flow_num_blocks_per_layer, head_hidden_features: the architecture (ResNet-18).
        augment: augment the training crops (the project's default augmentation).
        threads: torch threads for training and evaluation.
        synthesis_workers: processes rendering the dataset.
        max_ratio: the mode's MPJPE must be at most this times the mean-pose baseline's.
    """

    steps: int = 900
    image_size: int = 64
    seed: int = 0
    num_train: int = 1500
    num_val: int = 200
    pose_source: str = "auto"
    batch_size: int = 16
    lr: float = 5e-4
    backbone_num_stages: int = 3
    flow_hidden_features: int = 256
    flow_num_layers: int = 4
    flow_num_blocks_per_layer: int = 2
    head_hidden_features: int = 256
    augment: bool = True
    threads: int = 2
    synthesis_workers: int = 1
    max_ratio: float = 0.9

    def model_config(self) -> ProHMRConfig:
        """The :class:`ProHMRConfig` of the trained model."""
        return ProHMRConfig(
            backbone="resnet18",
            backbone_num_stages=self.backbone_num_stages,
            flow_hidden_features=self.flow_hidden_features,
            flow_num_layers=self.flow_num_layers,
            flow_num_blocks_per_layer=self.flow_num_blocks_per_layer,
            head_hidden_features=self.head_hidden_features,
        )


@dataclass
class TrainingLog:
    """What the training loop recorded.

    Attributes:
        loss: the generator loss of every step (weighted sum of the terms).
        keypoints_3d: the unweighted mode 3D-keypoint L1 term of every step.
        seconds: wall time of ``Trainer.fit``.
    """

    loss: list[float] = field(default_factory=list)
    keypoints_3d: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @staticmethod
    def _window_mean(values: Sequence[float], first: bool) -> float:
        count = max(1, len(values) // 10)
        window = values[:count] if first else values[-count:]
        return float(np.mean(window)) if len(window) else math.nan

    def summary(self) -> dict[str, float]:
        """Means of the first and the last tenth of the steps."""
        return {
            "loss_first": self._window_mean(self.loss, True),
            "loss_last": self._window_mean(self.loss, False),
            "keypoints_3d_first": self._window_mean(self.keypoints_3d, True),
            "keypoints_3d_last": self._window_mean(self.keypoints_3d, False),
        }


@dataclass
class BenchmarkResult:
    """The numbers of one run (millimetres, means over the evaluated validation images).

    Attributes:
        settings: the run's :class:`RunSettings` as a dict.
        num_evaluated: validation images evaluated.
        baselines: ``{baseline: {metric: error}}`` for every name in :data:`BASELINES`.
        mode: ``{metric: error}`` of the trained model's mode.
        min_of_n: ``{metric: {n: error}}``.
        validate_mode_mpjpe: ``val/mode_mpjpe`` from ``Trainer.validate``.
        training: :meth:`TrainingLog.summary` plus the step count.
        loss_per_step: the generator loss of every training step.
        timings: wall seconds per phase, CPU seconds, load averages.
        data: where the data came from (pose source, actors).
    """

    settings: dict[str, Any]
    num_evaluated: int
    baselines: dict[str, dict[str, float]]
    mode: dict[str, float]
    min_of_n: dict[str, dict[int, float]]
    validate_mode_mpjpe: float
    training: dict[str, float]
    loss_per_step: list[float]
    timings: dict[str, Any]
    data: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (min-of-n keys as strings)."""
        values = asdict(self)
        values["min_of_n"] = {
            metric: {str(n): error for n, error in errors.items()}
            for metric, errors in self.min_of_n.items()
        }
        return values


# ----------------------------------------------------------------------------------- data
def _matching_dataset(npz: Path, num_images: int, image_size: int, seed: int) -> bool:
    """Whether ``npz`` is a synthetic dataset rendered with these settings."""
    if not npz.is_file():
        return False
    with np.load(npz, allow_pickle=False) as archive:
        if "render_settings" not in archive.files:
            return False
        settings = json.loads(str(archive["render_settings"]))
    return (
        settings.get("num_images") == num_images
        and settings.get("image_size") == image_size
        and settings.get("seed") == seed
        and settings.get("domain") == "studio"
    )


def prepare_data(settings: RunSettings, data_dir: Path) -> dict[str, Any]:
    """Render (or reuse) the training and validation sets under ``data_dir``.

    Arguments:
        settings: sizes, image size, seed and pose source.
        data_dir: the dataset folder (``train.npz``, ``val.npz``, ``images/``).

    Returns:
        ``{"train": npz path, "val": npz path, "image_root": folder, "pose_source":
        {split: description}, "reused": bool}``.
    """
    paths: dict[str, Any] = {"image_root": str(data_dir / IMAGE_DIRNAME), "pose_source": {}}
    reused = True
    for split, count in (("train", settings.num_train), ("val", settings.num_val)):
        npz = data_dir / f"{split}.npz"
        if not _matching_dataset(npz, count, settings.image_size, settings.seed):
            reused = False
            synthesize_dataset(
                data_dir, count, split=split, domain="studio", seed=settings.seed,
                image_size=settings.image_size, pose_source=settings.pose_source,
                workers=settings.synthesis_workers, overwrite=True,
            )
        with np.load(npz, allow_pickle=False) as archive:
            described = json.loads(str(archive["render_settings"]))["pose_source"]
        paths[split] = str(npz)
        paths["pose_source"][split] = described
    paths["reused"] = reused
    return paths


# ------------------------------------------------------------------------------ training
class _LossRecorder(pl.Callback):
    """Keeps the generator loss and the 3D-keypoint term of every training step."""

    def __init__(self, record: TrainingLog) -> None:
        super().__init__()
        self.record = record

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
        batch: Any, batch_idx: int,
    ) -> None:
        self.record.loss.append(float(outputs["loss"]))
        term = trainer.callback_metrics.get("train/keypoints_3d_mode")
        if term is not None:
            self.record.keypoints_3d.append(float(term))


def build_module(settings: RunSettings) -> ProHMRModule:
    """The :class:`ProHMRModule` of the run: no adversarial prior (no mocap batches), the
    NLL's and ActNorm's pose noise of ``configs/prohmr_synthetic.yaml``."""
    return ProHMRModule(
        settings.model_config(),
        num_samples=2,
        val_num_samples=max(NUM_SAMPLES),
        lr=settings.lr,
        weight_decay=1e-4,
        adversarial=False,
        pose_noise=0.005,
        actnorm_init_noise=0.005,
        num_logged_images=0,
    )


def _trainer(**settings: Any) -> pl.Trainer:
    """A CPU trainer without logger, checkpoints, progress bar or model summary."""
    return pl.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **settings,
    )


def build_datamodule(settings: RunSettings, paths: dict[str, Any]) -> ProHMRDataModule:
    """Training mixture (one dataset) and validation set of the rendered data."""
    return ProHMRDataModule(
        train=[ImageDatasetSpec(paths["train"], paths["image_root"])],
        val=ImageDatasetSpec(paths["val"], paths["image_root"]),
        batch_size=settings.batch_size,
        val_batch_size=EVAL_BATCH_SIZE,
        image_size=settings.image_size,
        augment=settings.augment,
        num_workers=0,
        seed=settings.seed,
    )


def train(module: ProHMRModule, data: ProHMRDataModule, steps: int) -> TrainingLog:
    """``steps`` optimiser steps of ``Trainer.fit`` (CPU, no logger, no checkpoints, no
    validation during training); returns the recorded losses."""
    log = TrainingLog()
    # Validation only after training (run_benchmark), not during it.
    trainer = _trainer(
        max_steps=steps, limit_val_batches=0, num_sanity_val_steps=0,
        callbacks=[_LossRecorder(log)],
    )
    start = time.perf_counter()
    trainer.fit(module, datamodule=data)
    log.seconds = time.perf_counter() - start
    return log


# ----------------------------------------------------------------------------- baselines
def chordal_mean(rotations: torch.Tensor) -> torch.Tensor:
    """The chordal L2 mean of rotations: the rotation nearest (Frobenius) to their mean.

    Arguments:
        rotations: ``(M, ..., 3, 3)`` rotation matrices; the mean is over the first axis.

    Returns:
        ``(..., 3, 3)`` rotations: ``U diag(1, 1, det(U Vᵀ)) Vᵀ`` for the SVD
        ``U S Vᵀ`` of the arithmetic mean.
    """
    mean = rotations.mean(dim=0)
    u, _, vh = torch.linalg.svd(mean)
    sign = torch.det(u @ vh)
    correction = torch.ones_like(mean[..., 0])
    correction[..., -1] = sign
    return u @ torch.diag_embed(correction) @ vh


def mean_pose_baselines(
    train_npz: str | Path, body_model: BodyModel, mean_params: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """The ``(44, 3)`` joints of every constant predictor of :data:`BASELINES`.

    Arguments:
        train_npz: the training set (``body_pose (N, 72)`` axis-angle with the global
            orientation in the camera frame, ``betas (N, 10)``, ``body_keypoints_3d`` and
            ``extra_keypoints_3d``).
        body_model: the body model the model itself uses.
        mean_params: :func:`prohmr.body.model.load_mean_params` (``pose (144,)`` in SPIN's
            interleaved 6D layout, ``shape (10,)``).

    Returns:
        ``{baseline: (44, 3) joints}`` in metres (body-model frame for the two bodies).
    """
    with np.load(train_npz, allow_pickle=False) as archive:
        body_pose = torch.as_tensor(archive["body_pose"], dtype=torch.float64)
        betas = torch.as_tensor(archive["betas"], dtype=torch.float64)
        keypoints = np.concatenate(
            [archive["body_keypoints_3d"], archive["extra_keypoints_3d"]], axis=1
        )[..., :3]
    rotations = axis_angle_to_matrix(body_pose.reshape(len(body_pose), 24, 3))
    training_pose = chordal_mean(rotations).float()
    params_pose = rot6d_to_matrix(mean_params["pose"].reshape(24, 6), layout="interleaved")
    skeletons = torch.as_tensor(keypoints, dtype=torch.float64)
    skeletons = skeletons - skeletons[:, PELVIS_INDEX : PELVIS_INDEX + 1]
    bodies = {
        "mean_training_pose": (training_pose, betas.mean(dim=0).float()),
        "mean_params_pose": (params_pose, mean_params["shape"].float()),
    }
    joints: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for name, (pose, shape) in bodies.items():
            output = body_model(pose[None, :1], pose[None, 1:], shape[None])
            joints[name] = output.joints[0]
    joints["mean_training_joints"] = skeletons.mean(dim=0).float()
    return joints


def baseline_errors(
    baseline_joints: dict[str, torch.Tensor], gt: torch.Tensor
) -> dict[str, dict[str, float]]:
    """Mean MPJPE and PA-MPJPE (``PROHMR_14``) of each constant prediction.

    Arguments:
        baseline_joints: ``{name: (44, 3)}``.
        gt: ``(V, 44, 3)`` ground-truth joints of the evaluated images.

    Returns:
        ``{name: {"mpjpe": mm, "pa_mpjpe": mm}}``.
    """
    errors: dict[str, dict[str, float]] = {}
    for name, joints in baseline_joints.items():
        pred = joints.to(gt).expand_as(gt)
        errors[name] = {
            "mpjpe": float(mpjpe(pred, gt, PROHMR_14).mean()),
            "pa_mpjpe": float(pa_mpjpe(pred, gt, PROHMR_14).mean()),
        }
    return errors


# ---------------------------------------------------------------------------- evaluation
def evaluate_model(
    module: ProHMRModule, dataset: ImageDataset, seed: int
) -> tuple[dict[str, float], dict[str, dict[int, float]], torch.Tensor]:
    """Mode and min-of-n errors of the model on a dataset (eval mode, no gradients).

    Images whose 3D keypoints miss one of the 14 evaluation joints or the pelvis are skipped
    (as in validation; the synthetic sets have all of them).

    Arguments:
        module: the trained module (its ``model`` is evaluated).
        dataset: the validation :class:`ImageDataset`.
        seed: seed of the latent samples.

    Returns:
        ``({metric: mode error}, {metric: {n: min-of-n error}}, gt (V, 44, 3))``, means over
        the ``V`` evaluated images in millimetres.
    """
    model = module.model.eval()
    generator = torch.Generator().manual_seed(seed)
    needed = list(EVAL_JOINTS_14) + [PELVIS_INDEX]
    count = max(NUM_SAMPLES)
    mode_errors: dict[str, list[torch.Tensor]] = {metric: [] for metric in METRICS}
    best_errors: dict[str, dict[int, list[torch.Tensor]]] = {
        metric: {n: [] for n in NUM_SAMPLES} for metric in METRICS
    }
    truths = []
    loader = DataLoader(dataset, batch_size=EVAL_BATCH_SIZE, shuffle=False)
    with torch.no_grad():
        for batch in loader:
            gt_3d = batch["keypoints_3d"]
            valid = (gt_3d[:, needed, 3] > 0).all(dim=1)
            if not bool(valid.any()):
                continue
            output = model(batch["img"][valid], num_samples=count, mode_first=True,
                           generator=generator)
            pred = output.joints_3d.float()
            target = gt_3d[valid, :, :3].float()
            truths.append(target)
            for metric in METRICS:
                mode_errors[metric].append(mode_error(pred, target, metric, PROHMR_14))
                for n, errors in min_of_n(pred, target, NUM_SAMPLES, metric, PROHMR_14).items():
                    best_errors[metric][n].append(errors)
    if not truths:
        raise ValueError("evaluate_model: no image has the 14 evaluation joints and the pelvis")
    mode = {metric: float(torch.cat(values).mean()) for metric, values in mode_errors.items()}
    best = {
        metric: {n: float(torch.cat(values).mean()) for n, values in per_n.items()}
        for metric, per_n in best_errors.items()
    }
    return mode, best, torch.cat(truths)


def check_result(result: BenchmarkResult, max_ratio: float) -> list[str]:
    """The failed claims, as messages (empty when the run shows what it should).

    - the mode's MPJPE is at most ``max_ratio`` times every constant baseline's;
    - min-of-n never increases with ``n`` (true by construction for the first ``n``
      samples) and the largest ``n`` is strictly below the mode (the samples help);
    - ``Trainer.validate``'s ``val/mode_mpjpe`` matches this script's mode MPJPE.
    """
    failures = []
    for name in BASELINES:
        baseline = result.baselines[name]["mpjpe"]
        ratio = result.mode["mpjpe"] / baseline
        if not ratio <= max_ratio:
            failures.append(
                f"mode MPJPE {result.mode['mpjpe']:.1f} mm is {ratio:.2f} x the "
                f"{name} baseline ({baseline:.1f} mm), above the allowed {max_ratio:.2f}"
            )
    for metric, per_n in result.min_of_n.items():
        counts = sorted(per_n)
        values = [per_n[n] for n in counts]
        if any(later > earlier for earlier, later in zip(values, values[1:])):
            failures.append(f"min-of-n {metric} increases with n: {per_n}")
        if not values[-1] < values[0]:
            failures.append(
                f"min-of-{counts[-1]} {metric} ({values[-1]:.2f} mm) is not below the mode "
                f"({values[0]:.2f} mm): the samples never beat the mode"
            )
    gap = abs(result.validate_mode_mpjpe - result.mode["mpjpe"])
    if not gap <= VALIDATE_TOLERANCE_MM:
        failures.append(
            f"Trainer.validate's val/mode_mpjpe {result.validate_mode_mpjpe:.3f} mm differs from "
            f"this script's mode MPJPE {result.mode['mpjpe']:.3f} mm"
        )
    return failures


def format_table(result: BenchmarkResult) -> str:
    """The Markdown tables: trained vs the mean-pose baseline, then every baseline."""
    main_baseline = BASELINES[0]
    lines = [
        f"| metric (val, {result.num_evaluated} images, mm) | mean-pose baseline | trained | "
        "trained / baseline |",
        "|---|---:|---:|---:|",
    ]
    for metric in METRICS:
        baseline = result.baselines[main_baseline][metric]
        for n, error in result.min_of_n[metric].items():
            label = "mode" if n == 1 else f"min of {n}"
            lines.append(
                f"| {_METRIC_TITLES[metric]}, {label} | {baseline:.1f} | {error:.1f} | "
                f"{error / baseline:.2f} |"
            )
    lines += [
        "",
        "| constant baseline | MPJPE | PA-MPJPE | trained mode MPJPE / baseline |",
        "|---|---:|---:|---:|",
    ]
    for name in BASELINES:
        errors = result.baselines[name]
        lines.append(
            f"| {_BASELINE_TITLES[name]} | {errors['mpjpe']:.1f} | {errors['pa_mpjpe']:.1f} | "
            f"{result.mode['mpjpe'] / errors['mpjpe']:.2f} |"
        )
    return "\n".join(lines)


def format_summary(result: BenchmarkResult) -> str:
    """The lines above the table: machine, data, timings, training losses."""
    settings, timings, training = result.settings, result.timings, result.training
    sources = []
    for split, description in result.data["pose_source"].items():
        source = f"{split} {description.get('kind')}"
        if description.get("kind") == "mocap":
            actors = description.get("actors")
            source += f" (actors {actors})" if actors else (
                f" (all actors but {description.get('exclude_actors')})"
            )
        sources.append(source)
    reused = " (reused)" if timings["data_reused"] else ""
    return "\n".join([
        f"torch {timings['torch']}, {timings['machine']}, {timings['threads']} threads; load "
        f"average {timings['load_average_before'][0]:.1f} before, "
        f"{timings['load_average_after'][0]:.1f} after",
        f"data: {settings['num_train']} train + {settings['num_val']} val studio images, "
        f"{settings['image_size']} px, seed {settings['seed']}; poses: {', '.join(sources)}",
        f"time: rendering {timings['synthesis_s']:.0f} s{reused}, training "
        f"{timings['training_s']:.0f} s ({training['steps']} steps of {settings['batch_size']}: "
        f"{timings['seconds_per_step']:.2f} s/step, {timings['training_cpu_s_per_step']:.2f} "
        f"CPU s/step), evaluation {timings['evaluation_s']:.0f} s; total "
        f"{timings['total_s']:.0f} s wall, {timings['cpu_s']:.0f} s CPU",
        f"training loss {training['loss_first']:.3f} -> {training['loss_last']:.3f}, 3D keypoint "
        f"L1 {training['keypoints_3d_first']:.2f} -> {training['keypoints_3d_last']:.2f} (means "
        f"of the first / last tenth of the steps); Trainer.validate: val/mode_mpjpe "
        f"{result.validate_mode_mpjpe:.1f} mm",
    ])


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_benchmark(settings: RunSettings, data_dir: Path) -> BenchmarkResult:
    """Render (or reuse) the data, train, evaluate; the numbers of :class:`BenchmarkResult`.

    Sets torch's thread count to ``settings.threads`` for the run (restored afterwards) and
    seeds Python, NumPy and torch with ``settings.seed``.
    """
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(settings.threads)
    try:
        return _run(settings, data_dir)
    finally:
        torch.set_num_threads(previous_threads)


def _run(settings: RunSettings, data_dir: Path) -> BenchmarkResult:
    load_before = os.getloadavg()
    cpu_start = _cpu_seconds()
    start = time.perf_counter()
    paths = prepare_data(settings, data_dir)
    synthesis_seconds = time.perf_counter() - start

    pl.seed_everything(settings.seed, verbose=False)
    module = build_module(settings)
    data = build_datamodule(settings, paths)
    training_cpu_start = _cpu_seconds()
    log = train(module, data, settings.steps)
    training_cpu = _cpu_seconds() - training_cpu_start

    evaluation_start = time.perf_counter()
    validated = _trainer().validate(module, datamodule=data, verbose=False)[0]
    val_dataset = ImageDataset(
        paths["val"], paths["image_root"], train=False, image_size=settings.image_size
    )
    mode, best, gt = evaluate_model(module, val_dataset, settings.seed)
    body_model = module.model.body_model
    mean_params = load_mean_params(Path(body_model.model_file).parent)
    baselines = baseline_errors(mean_pose_baselines(paths["train"], body_model, mean_params), gt)
    evaluation_seconds = time.perf_counter() - evaluation_start
    timings = {
        "synthesis_s": synthesis_seconds,
        "data_reused": paths["reused"],
        "training_s": log.seconds,
        "seconds_per_step": log.seconds / max(1, len(log.loss)),
        "training_cpu_s_per_step": training_cpu / max(1, len(log.loss)),
        "evaluation_s": evaluation_seconds,
        "total_s": time.perf_counter() - start,
        "cpu_s": _cpu_seconds() - cpu_start,
        "load_average_before": list(load_before),
        "load_average_after": list(os.getloadavg()),
        "threads": settings.threads,
        "machine": f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}",
        "torch": torch.__version__,
    }
    return BenchmarkResult(
        settings=asdict(settings),
        num_evaluated=int(gt.shape[0]),
        baselines=baselines,
        mode=mode,
        min_of_n=best,
        validate_mode_mpjpe=float(validated["val/mode_mpjpe"]),
        training={"steps": len(log.loss), **log.summary()},
        loss_per_step=list(log.loss),
        timings=timings,
        data={"pose_source": paths["pose_source"], "num_train": settings.num_train,
              "num_val": settings.num_val},
    )


def _parse(argv: Sequence[str] | None) -> tuple[RunSettings, argparse.Namespace]:
    defaults = RunSettings()
    parser = argparse.ArgumentParser(
        description="Train a small ProHMR on CPU for a few minutes and compare its validation "
        "error with the mean pose's.",
    )
    parser.add_argument("--steps", type=int, default=defaults.steps,
                        help="training steps (default %(default)s: ~4-5 minutes on 2 idle cores)")
    parser.add_argument("--image-size", type=int, default=defaults.image_size,
                        help="rendered image and crop side in pixels (default %(default)s)")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--num-train", type=int, default=defaults.num_train)
    parser.add_argument("--num-val", type=int, default=defaults.num_val)
    parser.add_argument("--pose-source", default=defaults.pose_source,
                        choices=("auto", "mocap", "random"))
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--no-augment", action="store_true",
                        help="train on the plain crops (default: the project's augmentation)")
    parser.add_argument("--threads", type=int,
                        default=int(os.environ.get("PROHMR_BENCH_THREADS", defaults.threads)))
    parser.add_argument("--synthesis-workers", type=int, default=defaults.synthesis_workers)
    parser.add_argument("--max-ratio", type=float, default=defaults.max_ratio,
                        help="largest allowed mode MPJPE / baseline MPJPE (default %(default)s)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="keep the rendered dataset here (reused when its settings match)")
    parser.add_argument("--out-json", type=Path, default=None,
                        help="write the numbers, timings and settings to this JSON file")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.num_train < args.batch_size or args.num_val < 1:
        parser.error("--steps and --num-val must be >= 1 and --num-train >= --batch-size")
    settings = RunSettings(
        steps=args.steps, image_size=args.image_size, seed=args.seed,
        num_train=args.num_train, num_val=args.num_val, pose_source=args.pose_source,
        batch_size=args.batch_size, lr=args.lr, augment=not args.no_augment, threads=args.threads,
        synthesis_workers=args.synthesis_workers, max_ratio=args.max_ratio,
    )
    return settings, args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the tables; 0 when the claims hold, 1 otherwise."""
    settings, args = _parse(argv)
    lightning_logger = logging.getLogger("pytorch_lightning")
    previous_level = lightning_logger.level
    # Lightning's start-up notes and its warnings about this deliberate set-up (no logger,
    # no DataLoader workers) would bury the table; both are restored afterwards.
    lightning_logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning)
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            warnings.filterwarnings("ignore", message=".*LeafSpec.*")
            if args.data_dir is None:
                with tempfile.TemporaryDirectory(prefix="prohmr_bench_training_") as folder:
                    result = run_benchmark(settings, Path(folder))
            else:
                args.data_dir.mkdir(parents=True, exist_ok=True)
                result = run_benchmark(settings, args.data_dir)
    finally:
        lightning_logger.setLevel(previous_level)

    print(format_summary(result))
    print()
    print(format_table(result))
    if args.out_json is not None:
        args.out_json.write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")
    failures = check_result(result, settings.max_ratio)
    if failures:
        print()
        for failure in failures:
            print(f"FAILED: {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
