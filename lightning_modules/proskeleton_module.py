"""Training ProSkeleton (SPEC §8): 2D → 3D lifting learnt from mocap through virtual cameras.

- :class:`ProSkeletonDataModule`: :class:`prohmr.data.lifting.VirtualCameraLiftingDataset` over
  a training mocap file (random cameras every epoch, 2D noise; shuffled) and a validation
  file (the held-out actor; one fixed camera per frame, no noise). It also computes the
  input statistics (:func:`prohmr.data.lifting.compute_keypoint_stats`) of the training set,
  which the module stores in the model before training.
- :class:`ProSkeletonModule`: per batch, ActNorm data initialisation from the first batch's
  ground truth (once), then SPEC §8's loss: L1 of the mode's 16 root-relative joints (summed
  over joints and coordinates, averaged over the batch; weight 1.0), optionally L1 of the
  other samples (weight 0 by default, as the original), and the NLL of the ground truth plus
  Gaussian noise of ``joint_noise`` metres (weight 0.001). Adam, with a constant learning
  rate (SPEC §8) or a per-step cosine decay.
  Validation: mode and min-of-n (n = 1, 5, 10, 25; the first n samples, the mode included)
  MPJPE and PA-MPJPE in millimetres on the 17 joints (:data:`prohmr.evaluation.H36M_17`).
- :func:`cli` / :func:`main`: Lightning's CLI for the two (``python -m
  lightning_modules.proskeleton_module fit --config configs/proskeleton.yaml``), plus an
  ``export`` sub-command that evaluates a checkpoint on the held-out file and writes the
  library's model file (``prohmr.ProSkeleton``) with the metrics in its metadata.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shlex
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI
from torch import Tensor
from torch.utils.data import DataLoader, Sampler

from lightning_modules.cli import add_task_argument, default_loggers
from lightning_modules.schedules import COSINE_FINAL_LR_FRACTION, LR_SCHEDULES, optimizer_config
from prohmr._utils import check_weight_fields
from prohmr.data.lifting import (
    DEFAULT_KEYPOINT_NOISE,
    LIFTING_OUTPUT_POSITIONS,
    VirtualCameraConfig,
    VirtualCameraLiftingDataset,
    compute_keypoint_stats,
)
from prohmr.evaluation.metrics import H36M_17
from prohmr.evaluation.probabilistic import min_of_n
from prohmr.models.proskeleton import (
    ProSkeleton,
    ProSkeletonConfig,
    export_proskeleton,
    load_proskeleton,
    save_proskeleton,
)

__all__ = [
    "DEFAULT_CALLBACKS",
    "DEFAULT_LOGGERS",
    "COSINE_FINAL_LR_FRACTION",
    "DEFAULT_JOINT_NOISE",
    "EVAL_NUM_SAMPLES",
    "LR_SCHEDULES",
    "MONITOR",
    "ProSkeletonCLI",
    "ProSkeletonDataModule",
    "ProSkeletonLossWeights",
    "ProSkeletonModule",
    "ShuffledEpochSampler",
    "cli",
    "evaluate_proskeleton",
    "evaluation_sums",
    "export_command",
    "main",
]

logger = logging.getLogger(__name__)

#: Std (metres) of the Gaussian noise added to the ground-truth joints of the NLL (SPEC §8).
DEFAULT_JOINT_NOISE: float = 0.005
#: The paper's sample counts for min-of-n (the largest is the number of samples drawn).
EVAL_NUM_SAMPLES: tuple[int, ...] = (1, 5, 10, 25)
#: The metric that selects the best checkpoints.
MONITOR = "val/mode_mpjpe"
#: ActNorm's data initialisation needs a standard deviation, so at least this many skeletons.
MIN_SKELETONS_FOR_ACTNORM_INIT: int = 2

#: Loggers unless the config sets ``trainer.logger``.
DEFAULT_LOGGERS: list[dict[str, object]] = default_loggers("proskeleton", tensorboard=False)
#: Callbacks unless the config sets ``trainer.callbacks``.
DEFAULT_CALLBACKS: list[dict[str, object]] = [
    {
        "class_path": "pytorch_lightning.callbacks.ModelCheckpoint",
        "init_args": {
            "monitor": MONITOR,
            "mode": "min",
            "save_top_k": 1,
            "save_last": True,
            "filename": "step{step:07d}-mpjpe{val/mode_mpjpe:.1f}",
            "auto_insert_metric_name": False,
        },
    },
]


# ------------------------------------------------------------------------------------ data
class ShuffledEpochSampler(Sampler[int]):
    """A fresh permutation every epoch, seeded by ``(seed, epoch)``; ``set_epoch`` also
    reaches the dataset (whose random cameras depend on the epoch).

    Lightning calls ``set_epoch`` on a loader's sampler before every epoch.

    *Arguments*
        dataset: a dataset with ``__len__`` and ``set_epoch(epoch)``.
        seed: seed of the permutations.
    """

    def __init__(self, dataset: VirtualCameraLiftingDataset, seed: int = 0) -> None:
        super().__init__()
        self.dataset = dataset
        self.seed = int(seed)
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.dataset)

    def __iter__(self) -> Iterator[int]:
        order = np.random.default_rng((self.seed, self.epoch)).permutation(len(self.dataset))
        return iter(order.tolist())

    def set_epoch(self, epoch: int) -> None:
        """Select the permutation and the dataset draws of ``epoch``."""
        self.epoch = int(epoch)
        self.dataset.set_epoch(epoch)


class ProSkeletonDataModule(pl.LightningDataModule):
    """Virtual-camera lifting data from mocap files (Contract A ``joints``).

    Batches: ``keypoints_2d (B, 17, 2)`` pixels, ``joints_3d (B, 17, 3)`` pelvis-relative
    camera-frame joints (metres) and the cameras (see
    :class:`~prohmr.data.lifting.VirtualCameraLiftingDataset`).

    *Arguments*
        train_npz: training mocap file (e.g. ``data/mocap/hdm05_train.npz``).
        val_npz: validation mocap file, the held-out actor (None: no validation).
        batch_size: training batch size (64).
        val_batch_size: validation batch size (default ``batch_size``).
        camera: the virtual camera ranges (:class:`~prohmr.data.lifting.VirtualCameraConfig`
            fields; None: the defaults).
        keypoint_noise: std of the 2D noise of training items, fraction of the person box.
        val_frame_stride: validate on every ``val_frame_stride``-th frame.
        stats_items: training items (epoch-0 draws, evenly spaced) behind the input
            statistics; None: all.
        num_workers: DataLoader workers.
        seed: seed of the cameras, noise and shuffling.

    *Raises*
        FileNotFoundError naming every missing file; ValueError for bad sizes.
    """

    def __init__(
        self,
        train_npz: str,
        val_npz: str | None = None,
        batch_size: int = 64,
        val_batch_size: int | None = None,
        camera: dict[str, Any] | None = None,
        keypoint_noise: float = DEFAULT_KEYPOINT_NOISE,
        val_frame_stride: int = 1,
        stats_items: int | None = None,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        missing = [
            path for path in (train_npz, val_npz) if path is not None and not Path(path).is_file()
        ]
        if missing:
            raise FileNotFoundError(
                "missing mocap file(s): " + ", ".join(missing) + f" (paths are relative to the "
                f"working directory {Path.cwd()}; edit the `data:` section of the config)"
            )
        for name, value in (("batch_size", batch_size), ("val_frame_stride", val_frame_stride)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if val_batch_size is not None and val_batch_size < 1:
            raise ValueError(f"val_batch_size must be >= 1, got {val_batch_size}")
        if num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {num_workers}")
        self.train_npz = train_npz
        self.val_npz = val_npz
        self.batch_size = batch_size
        self.val_batch_size = val_batch_size or batch_size
        self.camera = VirtualCameraConfig.from_dict(camera or {})
        self.keypoint_noise = keypoint_noise
        self.val_frame_stride = val_frame_stride
        self.stats_items = stats_items
        self.num_workers = num_workers
        self.seed = seed
        self.train_dataset: VirtualCameraLiftingDataset | None = None
        self.val_dataset: VirtualCameraLiftingDataset | None = None
        self._stats: tuple[Tensor, Tensor] | None = None

    def setup(self, stage: str | None = None) -> None:
        """Open the datasets that ``stage`` needs."""
        if stage in (None, "fit") and self.train_dataset is None:
            self.train_dataset = VirtualCameraLiftingDataset(
                self.train_npz, train=True, camera=self.camera,
                keypoint_noise=self.keypoint_noise, seed=self.seed,
            )
        if self.val_npz is not None and self.val_dataset is None and stage != "predict":
            self.val_dataset = VirtualCameraLiftingDataset(
                self.val_npz, train=False, camera=self.camera,
                frame_stride=self.val_frame_stride, seed=self.seed,
            )

    def keypoint_stats(self) -> tuple[Tensor, Tensor]:
        """``mean (34,)``, ``std (34,)`` of the training inputs (computed once)."""
        if self._stats is None:
            if self.train_dataset is None:
                self.setup("fit")
            assert self.train_dataset is not None
            epoch = self.train_dataset.epoch
            self.train_dataset.set_epoch(0)
            self._stats = compute_keypoint_stats(self.train_dataset, max_items=self.stats_items)
            self.train_dataset.set_epoch(epoch)
        return self._stats

    def _loader_kwargs(self) -> dict[str, Any]:
        return {"num_workers": self.num_workers, "persistent_workers": False}

    def train_dataloader(self) -> DataLoader:
        """Shuffled training loader (a new permutation and new cameras every epoch)."""
        if self.train_dataset is None:
            self.setup("fit")
        assert self.train_dataset is not None
        return DataLoader(
            self.train_dataset,
            batch_size=self.batch_size,
            sampler=ShuffledEpochSampler(self.train_dataset, self.seed),
            drop_last=True,
            **self._loader_kwargs(),
        )

    def val_dataloader(self) -> DataLoader | list[DataLoader]:
        """The validation loader (an empty list without a validation file)."""
        if self.val_npz is None:
            return []
        if self.val_dataset is None:
            self.setup("validate")
        return DataLoader(
            self.val_dataset, batch_size=self.val_batch_size, shuffle=False, **self._loader_kwargs()
        )

    def test_dataloader(self) -> DataLoader | list[DataLoader]:
        """The validation data again."""
        return self.val_dataloader()


# ---------------------------------------------------------------------------------- module
@dataclass(frozen=True)
class ProSkeletonLossWeights:
    """Weights of the loss terms (SPEC §8 defaults); a term with weight 0 is not computed.

    *Fields*
        keypoints_3d_mode: L1 of the mode's root-relative joints (1.0).
        keypoints_3d_exp: L1 of the random samples (0.0; needs ``num_samples >= 2``).
        nll: negative log-likelihood of the noised ground truth (0.001).
    """

    keypoints_3d_mode: float = 1.0
    keypoints_3d_exp: float = 0.0
    nll: float = 0.001

    def __post_init__(self) -> None:
        check_weight_fields(self)


def _l1_per_sample(joints_3d: Tensor, gt_joints_3d: Tensor) -> Tensor:
    """``(B, N)`` L1 over the 16 output joints × 3 of ``(B, N, 17, 3)`` vs ``(B, 17, 3)``."""
    outputs = list(LIFTING_OUTPUT_POSITIONS)
    difference = joints_3d[:, :, outputs] - gt_joints_3d[:, None, outputs]
    return difference.abs().sum(dim=(-1, -2))


class ProSkeletonModule(pl.LightningModule):
    """ProSkeleton training (SPEC §8).

    *Arguments*
        config: the architecture (:class:`ProSkeletonConfig` or a dict of its fields).
        loss_weights: :class:`ProSkeletonLossWeights` (or a dict).
        num_samples: samples per training input (1: the mode only, as the loss needs; more
            when ``keypoints_3d_exp`` > 0).
        val_num_samples: samples per validation input; min-of-n is reported for every n of
            :data:`EVAL_NUM_SAMPLES` up to it.
        lr, weight_decay: Adam.
        lr_schedule: ``"constant"`` (SPEC §8) or ``"cosine"`` (per-step decay to
            ``COSINE_FINAL_LR_FRACTION * lr`` at ``trainer.max_steps``).
        joint_noise: std (metres) of the noise added to the ground truth of the NLL.
        val_seed: seed of the validation samples (the same hypotheses every validation).

    Batches: ``keypoints_2d (B, 17, 2)`` and ``joints_3d (B, 17, 3)``
    (:class:`ProSkeletonDataModule`). Before training the model's input statistics are set
    from the DataModule's training set (when the DataModule has them).
    """

    def __init__(
        self,
        config: ProSkeletonConfig = ProSkeletonConfig(),
        loss_weights: ProSkeletonLossWeights = ProSkeletonLossWeights(),
        num_samples: int = 1,
        val_num_samples: int = max(EVAL_NUM_SAMPLES),
        lr: float = 1e-4,
        weight_decay: float = 0.0,
        lr_schedule: str = "constant",
        joint_noise: float = DEFAULT_JOINT_NOISE,
        val_seed: int = 0,
    ) -> None:
        super().__init__()
        if isinstance(config, Mapping):
            config = ProSkeletonConfig.from_dict(config)
        if isinstance(loss_weights, Mapping):
            loss_weights = ProSkeletonLossWeights(**loss_weights)
        if not isinstance(config, ProSkeletonConfig):
            raise ValueError(
                f"config must be a ProSkeletonConfig or a dict, got {type(config).__name__}"
            )
        if not isinstance(loss_weights, ProSkeletonLossWeights):
            raise ValueError(
                "loss_weights must be a ProSkeletonLossWeights or a dict, got "
                f"{type(loss_weights).__name__}"
            )
        for name, value, minimum in (
            ("num_samples", num_samples, 1),
            ("val_num_samples", val_num_samples, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
        if loss_weights.keypoints_3d_exp > 0.0 and num_samples < 2:
            raise ValueError(
                "loss_weights.keypoints_3d_exp > 0 needs num_samples >= 2 (sample 0 is the mode)"
            )
        if not any(asdict(loss_weights).values()):
            raise ValueError("loss_weights: at least one weight must be > 0")
        if lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {lr_schedule!r}")
        for name, value in (
            ("lr", lr), ("weight_decay", weight_decay), ("joint_noise", joint_noise)
        ):
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        self.config = config
        self.loss_weights = loss_weights
        self.num_samples = num_samples
        self.val_num_samples = val_num_samples
        self.lr = lr
        self.weight_decay = weight_decay
        self.lr_schedule = lr_schedule
        self.joint_noise = joint_noise
        self.val_seed = val_seed
        # Plain values only: checkpoints then load with torch.load(weights_only=True).
        self.save_hyperparameters(
            {
                "config": config.to_dict(),
                "loss_weights": asdict(loss_weights),
                "num_samples": num_samples,
                "val_num_samples": val_num_samples,
                "lr": lr,
                "weight_decay": weight_decay,
                "lr_schedule": lr_schedule,
                "joint_noise": joint_noise,
                "val_seed": val_seed,
            }
        )
        self.model = ProSkeleton(config)
        self._eval_sums: dict[str, Tensor] = {}

    @property
    def eval_counts(self) -> tuple[int, ...]:
        """The n of min-of-n that validation reports: those of :data:`EVAL_NUM_SAMPLES` up to
        ``val_num_samples``, and ``val_num_samples`` itself."""
        counts = tuple(n for n in EVAL_NUM_SAMPLES if n <= self.val_num_samples)
        return counts if self.val_num_samples in counts else counts + (self.val_num_samples,)

    # ------------------------------------------------------------------------------ set-up
    def setup(self, stage: str) -> None:
        """Before fitting a fresh model, store the DataModule's training input statistics."""
        datamodule = getattr(self._trainer, "datamodule", None)
        fresh = not bool(self.model.initialized)
        if stage == "fit" and fresh and hasattr(datamodule, "keypoint_stats"):
            mean, std = datamodule.keypoint_stats()
            self.model.set_keypoint_stats(mean, std)
            logger.info("input statistics set from the training data")

    def configure_optimizers(self) -> Any:
        """Adam over the whole model; with ``"cosine"`` a per-step decay over ``max_steps``."""
        optimizer = torch.optim.Adam(
            self.model.parameters(), lr=self.lr, weight_decay=self.weight_decay
        )
        max_steps = self.trainer.max_steps if self._trainer is not None else None
        return optimizer_config(optimizer, self.lr, self.lr_schedule, max_steps)

    # ------------------------------------------------------------------------------ losses
    def loss_terms(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """The unweighted loss terms whose weight is not 0 (keys: the weight names).

        ``keypoints_3d_mode``: ``Σ |mode − GT|`` over the 16 joints × 3, mean over the batch;
        ``keypoints_3d_exp``: the same averaged over samples ``1..N-1``; ``nll``:
        ``−mean log p(GT + noise | 2D)``.
        """
        keypoints_2d, gt = batch["keypoints_2d"], batch["joints_3d"]
        weights = self.loss_weights
        context = self.model.context(keypoints_2d)
        terms: dict[str, Tensor] = {}
        if weights.keypoints_3d_mode > 0.0 or weights.keypoints_3d_exp > 0.0:
            num_samples = self.num_samples if weights.keypoints_3d_exp > 0.0 else 1
            output = self.model.sample_from_context(context, num_samples)
            per_sample = _l1_per_sample(output.joints_3d, gt)
            if weights.keypoints_3d_mode > 0.0:
                terms["keypoints_3d_mode"] = per_sample[:, 0].mean()
            if weights.keypoints_3d_exp > 0.0:
                terms["keypoints_3d_exp"] = per_sample[:, 1:].mean()
        if weights.nll > 0.0:
            noised = gt + self.joint_noise * torch.randn_like(gt) if self.joint_noise > 0.0 else gt
            log_prob, _ = self.model.log_prob_from_context(context, noised)
            terms["nll"] = -log_prob.mean()
        return terms

    def weighted_total(self, terms: Mapping[str, Tensor]) -> Tensor:
        """``Σ weight[term] · value``."""
        weights = asdict(self.loss_weights)
        return torch.stack([weights[name] * value for name, value in terms.items()]).sum()

    def training_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> Tensor:
        """ActNorm initialisation (first batch), then the weighted loss."""
        keypoints_2d, gt = batch["keypoints_2d"], batch["joints_3d"]
        if not bool(self.model.initialized) and gt.shape[0] >= MIN_SKELETONS_FOR_ACTNORM_INIT:
            self.model.initialize_flow(keypoints_2d, gt)
        terms = self.loss_terms(batch)
        loss = self.weighted_total(terms)
        if not bool(torch.isfinite(loss)):
            bad = sorted(name for name, value in terms.items() if not torch.isfinite(value))
            raise FloatingPointError(f"the ProSkeleton loss is not finite (terms: {bad})")
        batch_size = gt.shape[0]
        self.log_dict({f"train/{name}": value.detach() for name, value in terms.items()},
                      batch_size=batch_size)
        self.log("train/loss", loss.detach(), prog_bar=True, batch_size=batch_size)
        return loss

    # -------------------------------------------------------------------------- evaluation
    def evaluation_sums(self, batch: Mapping[str, Tensor], batch_idx: int) -> dict[str, Tensor]:
        """:func:`evaluation_sums` of one batch, samples seeded by ``(val_seed, batch_idx)``."""
        keypoints_2d = batch["keypoints_2d"]
        generator = torch.Generator(device=keypoints_2d.device).manual_seed(
            _batch_seed(self.val_seed, batch_idx)
        )
        return evaluation_sums(
            self.model, keypoints_2d, batch["joints_3d"], self.eval_counts, generator
        )

    def _accumulate(self, batch: Mapping[str, Tensor], batch_idx: int) -> None:
        for name, value in self.evaluation_sums(batch, batch_idx).items():
            self._eval_sums[name] = self._eval_sums.get(name, 0.0) + value.detach().double()

    def _log_eval(self, stage: str) -> None:
        count = float(self._eval_sums.pop("count", 0.0))
        for name, total in self._eval_sums.items():
            value = float(total) / count if count > 0 else float("nan")
            self.log(f"{stage}/{name}", value, prog_bar=name == "mode_mpjpe")
        self._eval_sums = {}

    def on_validation_epoch_start(self) -> None:
        self._eval_sums = {}

    def validation_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> None:
        """Accumulate the mode and min-of-n errors (H36M-17 joints, mm)."""
        self._accumulate(batch, batch_idx)

    def on_validation_epoch_end(self) -> None:
        """Log ``val/mode_mpjpe``, ``val/mode_pa_mpjpe``, ``val/min_of_{n}_mpjpe``, ..."""
        self._log_eval("val")

    def on_test_epoch_start(self) -> None:
        self._eval_sums = {}

    def test_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> None:
        """As :meth:`validation_step`, logged under ``test/``."""
        self._accumulate(batch, batch_idx)

    def on_test_epoch_end(self) -> None:
        self._log_eval("test")


def _batch_seed(seed: int, batch_idx: int) -> int:
    """Seed of the samples of one evaluation batch."""
    return int(seed) * 1_000_003 + int(batch_idx)


def evaluation_sums(
    model: ProSkeleton,
    keypoints_2d: Tensor,
    gt_joints_3d: Tensor,
    counts: Sequence[int],
    generator: torch.Generator | None = None,
) -> dict[str, Tensor]:
    """Summed errors (mm) over a batch: ``mode_*`` and ``min_of_{n}_*`` for MPJPE and
    PA-MPJPE on the 17 joints (:data:`prohmr.evaluation.H36M_17`), plus ``count``.

    *Arguments*
        model: the model (its current mode is used).
        keypoints_2d: ``(B, 17, 2)`` pixels.
        gt_joints_3d: ``(B, 17, 3)`` ground truth.
        counts: the n of min-of-n (1 is always added); ``max(counts)`` samples are drawn,
            the mode first.
        generator: random generator of the samples.

    *Returns*
        ``{name: scalar sum}``.
    """
    counts = tuple(sorted(set(counts) | {1}))
    output = model.sample(keypoints_2d, max(counts), generator=generator)
    pred = output.joints_3d.to(gt_joints_3d.dtype)
    sums: dict[str, Tensor] = {"count": gt_joints_3d.new_tensor(float(gt_joints_3d.shape[0]))}
    for metric in ("mpjpe", "pa_mpjpe"):
        errors = min_of_n(pred, gt_joints_3d, counts, metric, H36M_17)
        sums[f"mode_{metric}"] = errors[1].sum()
        for n, value in errors.items():
            sums[f"min_of_{n}_{metric}"] = value.sum()
    return sums


def evaluate_proskeleton(
    model: ProSkeleton,
    dataset: VirtualCameraLiftingDataset,
    ns: Sequence[int] = EVAL_NUM_SAMPLES,
    batch_size: int = 256,
    seed: int = 0,
) -> dict[str, float]:
    """Mode and min-of-n MPJPE / PA-MPJPE (mm, H36M-17 joints) of a model on a dataset.

    *Arguments*
        model: the model (put in eval mode here).
        dataset: e.g. the held-out actor with fixed cameras (``train=False``).
        ns: the n of min-of-n; ``max(ns)`` samples are drawn per input (the mode first).
        batch_size: inputs per forward pass.
        seed: seed of the samples (batch ``i`` uses the seed validation uses for it).

    *Returns*
        ``{"mode_mpjpe", "mode_pa_mpjpe", "min_of_{n}_mpjpe", "min_of_{n}_pa_mpjpe",
        "count"}``.
    """
    model.eval()
    device = model.keypoints_mean.device
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    sums: dict[str, float] = {}
    with torch.no_grad():
        for batch_idx, batch in enumerate(loader):
            generator = torch.Generator(device=device).manual_seed(_batch_seed(seed, batch_idx))
            batch_sums = evaluation_sums(
                model,
                batch["keypoints_2d"].to(device),
                batch["joints_3d"].to(device),
                tuple(ns),
                generator,
            )
            for name, value in batch_sums.items():
                sums[name] = sums.get(name, 0.0) + float(value)
    count = sums.pop("count")
    results = {name: total / count for name, total in sums.items()}
    results["count"] = count
    return results


# ------------------------------------------------------------------------------------- CLI
class ProSkeletonCLI(LightningCLI):
    """LightningCLI with ProSkeleton's default loggers and checkpointing (``val/mode_mpjpe``)."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        add_task_argument(parser, "proskeleton")
        parser.set_defaults(
            {"trainer.logger": DEFAULT_LOGGERS, "trainer.callbacks": DEFAULT_CALLBACKS}
        )


def cli(args: Sequence[str] | None = None, run: bool = True) -> ProSkeletonCLI:
    """Build (and with ``run`` execute) the CLI on ``args`` (default ``sys.argv[1:]``).

    *Arguments*
        args: e.g. ``["fit", "--config", "configs/proskeleton.yaml"]``; without ``run`` no
            sub-command is given.
        run: run the sub-command; False only instantiates model, data and trainer.

    *Returns*
        The :class:`ProSkeletonCLI` (``.model``, ``.datamodule``, ``.trainer``).
    """
    return ProSkeletonCLI(
        ProSkeletonModule,
        ProSkeletonDataModule,
        args=None if args is None else list(args),
        run=run,
        save_config_kwargs={"overwrite": True},
    )


def _data_summary(npz_path: str | Path) -> dict[str, Any]:
    """Path, frame count, actors, fps and source of a Contract A file."""
    with np.load(npz_path, allow_pickle=False) as data:
        summary: dict[str, Any] = {"path": str(npz_path), "num_frames": int(len(data["joints"]))}
        if "actor" in data.files:
            summary["actors"] = sorted({str(actor) for actor in data["actor"]})
        if "fps" in data.files:
            summary["fps"] = float(data["fps"])
        if "source" in data.files:
            source = str(data["source"])
            try:
                summary["source"] = json.loads(source)
            except ValueError:
                summary["source"] = source
    return summary


def export_command(argv: Sequence[str]) -> int:
    """``export --checkpoint C --out F [--val-npz V] [--train-npz T] [--command S]
    [--metadata JSON]``: evaluate on ``V`` (fixed cameras, every frame) and write ``F``."""
    parser = argparse.ArgumentParser(
        prog="python -m lightning_modules.proskeleton_module export",
        description="Write the prohmr.ProSkeleton file of a ProSkeletonModule checkpoint.",
    )
    parser.add_argument("--checkpoint", required=True, help="the Lightning checkpoint")
    parser.add_argument("--out", required=True, help="the model file to write")
    parser.add_argument("--val-npz", help="held-out mocap file to report the metrics on")
    parser.add_argument("--train-npz", help="training mocap file (recorded in the metadata)")
    parser.add_argument("--val-frame-stride", type=int, default=1, help="evaluate every k-th frame")
    parser.add_argument("--seed", type=int, default=0, help="seed of cameras and samples")
    parser.add_argument("--command", help="the training command, recorded in the metadata")
    parser.add_argument("--metadata", help="more metadata: a JSON object")
    arguments = parser.parse_args(list(argv))
    extra: dict[str, Any] = json.loads(arguments.metadata) if arguments.metadata else {}
    if not isinstance(extra, dict):
        parser.error("--metadata must be a JSON object")
    checkpoint = torch.load(arguments.checkpoint, map_location="cpu", weights_only=True)
    stored: dict[str, Any] = {
        "training": {
            key: value for key, value in checkpoint.get("hyper_parameters", {}).items()
            if key != "config"
        },
        "checkpoint": {
            "file": Path(arguments.checkpoint).name,
            "global_step": int(checkpoint.get("global_step", -1)),
            "epoch": int(checkpoint.get("epoch", -1)),
        },
        "export_command": "python -m lightning_modules.proskeleton_module export "
        + shlex.join(argv),
    }
    out = export_proskeleton(arguments.checkpoint, arguments.out, stored)
    data: dict[str, Any] = {}
    if arguments.train_npz:
        data["train"] = _data_summary(arguments.train_npz)
    if arguments.val_npz:
        data["val"] = _data_summary(arguments.val_npz)
        dataset = VirtualCameraLiftingDataset(
            arguments.val_npz, train=False, frame_stride=arguments.val_frame_stride,
            seed=arguments.seed,
        )
        stored["heldout_metrics_mm"] = evaluate_proskeleton(
            load_proskeleton(out), dataset, seed=arguments.seed
        )
        stored["evaluation"] = {
            "protocol": H36M_17.name,
            "cameras": "one fixed virtual camera per frame, seeded by (seed, frame)",
            "seed": arguments.seed,
            "frame_stride": arguments.val_frame_stride,
            "min_of_n": "the first n samples, the mode (z = 0) included",
        }
    if data:
        stored["data"] = data
    if arguments.command:
        stored["command"] = arguments.command
    stored.update(extra)
    save_proskeleton(load_proskeleton(out), out, stored)
    print(json.dumps(stored.get("heldout_metrics_mm", {}), indent=1))
    print(f"wrote {out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``{fit,validate,test} --config ...`` (Lightning) or ``export ...``; the exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        if arguments and arguments[0] == "export":
            return export_command(arguments[1:])
        cli(arguments)
    except FileNotFoundError as error:
        print(f"proskeleton: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
