"""Training the unconditional pose prior (:class:`prohmr.models.pose_prior.PosePrior`) on mocap.

- :class:`MocapPoseDataModule` reads the mocap ``.npz`` files of the library (``body_pose
  (N, 72)`` axis-angle, global orientation first; other keys are ignored): a training file,
  optionally mirrored left/right (:func:`prohmr.data.augmentation.flip_smpl_pose`), and a
  validation file (the held-out actor).
- :class:`PosePriorModule` minimises the negative log-likelihood of the training poses in
  ProHMR's 6D layout plus ``pose_noise`` Gaussian noise (as ProHMR's NLL term, SPEC §4.2),
  with AdamW and an optional cosine learning-rate decay. Before the first step the flow's
  ActNorm layers are initialised from the first batch (plus ``actnorm_init_noise``: mocap
  retargets leave some joints constant, and ActNorm would otherwise scale those features by
  1/1e-3). It logs ``train/nll`` and ``val/nll``: the mean NLL per pose in nats (validation:
  clean poses, eval mode).
- :func:`cli` / :func:`main`: Lightning's CLI for the two (``prohmr-train fit --config
  configs/pose_prior.yaml``, which picks this module by the config's ``task: pose_prior``;
  or ``python -m lightning_modules.pose_prior_module fit ...``), plus an ``export``
  sub-command running :func:`export_pose_prior`, which turns a checkpoint into the library's
  pose-prior file (``prohmr.PosePrior``) with its metrics.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI
from torch import Tensor
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from lightning_modules.cli import add_task_argument, default_loggers
from lightning_modules.schedules import LR_SCHEDULES, optimizer_config
from prohmr.data.augmentation import flip_smpl_pose
from prohmr.models.pose_prior import (
    PosePrior,
    PosePriorConfig,
    axis_angle_to_pose_6d,
    evaluate_nll,
    save_pose_prior,
)

__all__ = [
    "DEFAULT_CALLBACKS",
    "DEFAULT_LOGGERS",
    "LR_SCHEDULES",
    "MONITOR",
    "MocapPoseDataModule",
    "MocapPoseDataset",
    "PosePriorCLI",
    "PosePriorModule",
    "cli",
    "export_pose_prior",
    "main",
    "read_body_pose",
]

logger = logging.getLogger(__name__)

#: The metric that selects the best checkpoint.
MONITOR = "val/nll"
#: Prefix of the prior's keys in the module's checkpoints (``self.prior``).
CHECKPOINT_PREFIX = "prior."
#: Axis-angle values of one pose.
_POSE_DIM = 72

#: Loggers unless the config sets ``trainer.logger``.
DEFAULT_LOGGERS: list[dict[str, object]] = default_loggers("pose_prior")

#: Callbacks unless the config sets ``trainer.callbacks``: the best checkpoint by ``val/nll``
#: and ``last.ckpt``, rewritten at every validation. (``save_last=True`` would only refresh
#: ``last.ckpt`` when a new best is saved, leaving it stale once the held-out NLL stops
#: improving.)
DEFAULT_CALLBACKS: list[dict[str, object]] = [
    {
        "class_path": "pytorch_lightning.callbacks.ModelCheckpoint",
        "init_args": {
            "monitor": MONITOR,
            "mode": "min",
            "save_top_k": 1,
            "filename": "step{step:06d}-nll{val/nll:.2f}",
            "auto_insert_metric_name": False,
        },
    },
    {
        "class_path": "pytorch_lightning.callbacks.ModelCheckpoint",
        "init_args": {"monitor": None, "save_top_k": 1, "filename": "last"},
    },
]


# ----------------------------------------------------------------------------------- data
def read_body_pose(npz_path: str | Path) -> np.ndarray:
    """The ``body_pose`` column of a mocap ``.npz`` (other keys are not read).

    Arguments:
        npz_path: ``.npz`` with ``body_pose (N, 72)`` axis-angle, global orientation first.

    Returns:
        ``(N, 72)`` float32.

    Raises:
        FileNotFoundError: no such file. ValueError: unreadable, no ``body_pose``, a wrong
        shape, no rows or non-finite values.
    """
    path = Path(npz_path)
    if not path.is_file():
        raise FileNotFoundError(f"mocap file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            if "body_pose" not in data.files:
                raise ValueError(f"{path}: missing required key 'body_pose'")
            body_pose = np.asarray(data["body_pose"])
    except (OSError, EOFError) as error:
        raise ValueError(f"{path} is not a readable .npz file: {error}") from error
    if body_pose.ndim != 2 or body_pose.shape[1] != _POSE_DIM or len(body_pose) == 0:
        raise ValueError(
            f"{path}: 'body_pose' must have shape (N, {_POSE_DIM}) with N >= 1, "
            f"got {body_pose.shape}"
        )
    if not np.issubdtype(body_pose.dtype, np.number) or not np.all(np.isfinite(body_pose)):
        raise ValueError(f"{path}: 'body_pose' must hold finite numbers")
    return body_pose.astype(np.float32)


class MocapPoseDataset(Dataset):
    """SMPL poses of a mocap ``.npz``, optionally with their left/right mirror images.

    Indexing with an int gives one pose, with a list or tensor of indices a whole batch (so
    a ``BatchSampler`` can feed a DataLoader without per-item collation).

    Arguments:
        npz_path: ``.npz`` with ``body_pose (N, 72)``.
        augment_flip: also hold every pose mirrored (``2N`` items: the poses, then their
            mirror images).

    Items: ``{"body_pose": (72,)}`` or ``{"body_pose": (B, 72)}`` float32.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "mocap.npz"
        >>> np.savez(path, body_pose=np.zeros((5, 72)))
        >>> dataset = MocapPoseDataset(path, augment_flip=True)
        >>> len(dataset), tuple(dataset[[0, 7]]["body_pose"].shape)
        (10, (2, 72))
    """

    def __init__(self, npz_path: str | Path, augment_flip: bool = False) -> None:
        super().__init__()
        self.npz_path = Path(npz_path)
        body_pose = read_body_pose(self.npz_path)
        if augment_flip:
            body_pose = np.concatenate([body_pose, flip_smpl_pose(body_pose)])
        self.body_pose = torch.from_numpy(np.ascontiguousarray(body_pose))

    def __len__(self) -> int:
        return len(self.body_pose)

    def __getitem__(self, index: int | Sequence[int] | Tensor) -> dict[str, Tensor]:
        if not isinstance(index, int):
            index = torch.as_tensor(index, dtype=torch.long)
        return {"body_pose": self.body_pose[index]}


def _check_positive(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return value


class MocapPoseDataModule(pl.LightningDataModule):
    """Training and validation poses for the pose prior.

    Training batches are ``{"body_pose": (B, 72)}``, reshuffled every epoch (``drop_last``);
    validation batches the same, in file order.

    Arguments:
        train_npz: the training poses (``body_pose (N, 72)``; Contract A files carry more
            keys, which are ignored).
        val_npz: the validation poses (the held-out actor); None for no validation.
        batch_size: poses per training batch.
        val_batch_size: poses per validation batch (default: ``4 * batch_size``).
        augment_flip: add every training pose's left/right mirror image.
        num_workers: DataLoader worker processes (the data is in memory: 0 is fastest).
        seed: seed of the shuffling.

    Raises:
        FileNotFoundError: a file does not exist (every missing one is named).
        ValueError: a non-positive size.
    """

    def __init__(
        self,
        train_npz: str,
        val_npz: str | None = None,
        batch_size: int = 256,
        val_batch_size: int | None = None,
        augment_flip: bool = True,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        _check_positive(batch_size, "batch_size")
        if val_batch_size is not None:
            _check_positive(val_batch_size, "val_batch_size")
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"num_workers must be an integer >= 0, got {num_workers!r}")
        missing = [
            f"{name} {path}"
            for name, path in (("train_npz", train_npz), ("val_npz", val_npz))
            if path is not None and not Path(path).is_file()
        ]
        if missing:
            raise FileNotFoundError(
                "missing mocap data: " + "; ".join(missing) + " (paths are relative to the "
                f"working directory {Path.cwd()}; edit the `data:` section of the config)"
            )
        self.train_npz = train_npz
        self.val_npz = val_npz
        self.batch_size = batch_size
        self.val_batch_size = val_batch_size or 4 * batch_size
        self.augment_flip = bool(augment_flip)
        self.num_workers = num_workers
        self.seed = seed
        self.train_dataset: MocapPoseDataset | None = None
        self.val_dataset: MocapPoseDataset | None = None

    def setup(self, stage: str | None = None) -> None:
        """Read the files needed by ``stage``."""
        if stage in (None, "fit") and self.train_dataset is None:
            self.train_dataset = MocapPoseDataset(self.train_npz, augment_flip=self.augment_flip)
            if len(self.train_dataset) < self.batch_size:
                raise ValueError(
                    f"{self.train_npz} gives {len(self.train_dataset)} training poses, fewer "
                    f"than one batch ({self.batch_size})"
                )
        if self.val_npz is not None and self.val_dataset is None and stage != "predict":
            self.val_dataset = MocapPoseDataset(self.val_npz)

    def train_dataloader(self) -> DataLoader:
        """Shuffled batches of ``batch_size`` training poses."""
        if self.train_dataset is None:
            self.setup("fit")
        assert self.train_dataset is not None
        generator = torch.Generator().manual_seed(self.seed)
        sampler = BatchSampler(
            RandomSampler(self.train_dataset, generator=generator), self.batch_size, drop_last=True
        )
        return DataLoader(
            self.train_dataset, sampler=sampler, batch_size=None, num_workers=self.num_workers
        )

    def val_dataloader(self) -> DataLoader | list[DataLoader]:
        """The validation poses in order (an empty list without ``val_npz``)."""
        if self.val_npz is None:
            return []
        if self.val_dataset is None:
            self.setup("validate")
        assert self.val_dataset is not None
        sampler = BatchSampler(
            SequentialSampler(self.val_dataset), self.val_batch_size, drop_last=False
        )
        return DataLoader(
            self.val_dataset, sampler=sampler, batch_size=None, num_workers=self.num_workers
        )

    def test_dataloader(self) -> DataLoader | list[DataLoader]:
        """The validation poses again (``test`` reports ``test/nll`` on them)."""
        return self.val_dataloader()


# --------------------------------------------------------------------------------- module
class PosePriorModule(pl.LightningModule):
    """Maximum-likelihood training of a :class:`PosePrior` on mocap poses.

    Arguments:
        config: the prior's architecture (:class:`PosePriorConfig`, or a dict of its fields).
        lr, weight_decay: AdamW.
        lr_schedule: ``"constant"`` or ``"cosine"`` (decay to
            ``lightning_modules.schedules.COSINE_FINAL_LR_FRACTION * lr`` at ``trainer.max_steps``, per step).
        pose_noise: std of the Gaussian noise added to the training poses' 6D features
            (ProHMR's NLL uses 0.005).
        actnorm_init_noise: std of the noise added to the poses that initialise ActNorm
            (default ``pose_noise``; see the module docstring).

    Batches: ``{"body_pose": (B, 72)}`` axis-angle, global orientation first.
    """

    def __init__(
        self,
        config: PosePriorConfig = PosePriorConfig(),
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        lr_schedule: str = "cosine",
        pose_noise: float = 0.005,
        actnorm_init_noise: float | None = None,
    ) -> None:
        super().__init__()
        if isinstance(config, Mapping):
            config = PosePriorConfig.from_dict(config)
        if not isinstance(config, PosePriorConfig):
            raise ValueError(
                f"config must be a PosePriorConfig or a dict, got {type(config).__name__}"
            )
        if actnorm_init_noise is None:
            actnorm_init_noise = pose_noise
        for name, value in (
            ("lr", lr),
            ("weight_decay", weight_decay),
            ("pose_noise", pose_noise),
            ("actnorm_init_noise", actnorm_init_noise),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                math.isfinite(value) and value >= 0.0
            ):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if lr <= 0.0:
            raise ValueError(f"lr must be > 0, got {lr!r}")
        if lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {lr_schedule!r}")
        self.config = config
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.lr_schedule = lr_schedule
        self.pose_noise = float(pose_noise)
        self.actnorm_init_noise = float(actnorm_init_noise)
        # Plain values only: checkpoints then load with torch.load(weights_only=True).
        self.save_hyperparameters(
            {
                "config": config.to_dict(),
                "lr": self.lr,
                "weight_decay": self.weight_decay,
                "lr_schedule": lr_schedule,
                "pose_noise": self.pose_noise,
                "actnorm_init_noise": self.actnorm_init_noise,
            }
        )
        self.prior = PosePrior(config)
        self._val_sum = 0.0
        self._val_count = 0

    def configure_optimizers(self) -> Any:
        """AdamW on the flow; with ``"cosine"`` a per-step cosine decay over ``max_steps``."""
        optimizer = torch.optim.AdamW(
            self.prior.parameters(), lr=self.lr, weight_decay=self.weight_decay
        )
        max_steps = self.trainer.max_steps if self._trainer is not None else None
        return optimizer_config(optimizer, self.lr, self.lr_schedule, max_steps)

    def nll(self, pose_6d: Tensor, noise: float = 0.0) -> Tensor:
        """``−mean log p(pose_6d + noise · N(0, 1))`` per pose (a differentiable scalar)."""
        if noise > 0.0:
            pose_6d = pose_6d + noise * torch.randn_like(pose_6d)
        return -self.prior.log_prob(pose_6d).mean()

    def training_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> Tensor:
        """NLL of the noised poses; ActNorm is initialised from the first batch."""
        pose_6d = axis_angle_to_pose_6d(batch["body_pose"])
        if not self.prior.initialized:
            init = pose_6d
            if self.actnorm_init_noise > 0.0:
                init = init + self.actnorm_init_noise * torch.randn_like(init)
            self.prior.initialize(init)
        loss = self.nll(pose_6d, self.pose_noise)
        if not bool(torch.isfinite(loss)):
            raise FloatingPointError(f"the NLL is not finite at step {self.global_step}")
        self.log("train/nll", loss.detach(), prog_bar=True, batch_size=len(pose_6d))
        return loss

    def _accumulate(self, batch: Mapping[str, Tensor]) -> None:
        if not self.prior.initialized:
            return  # Lightning's sanity check runs before the first training batch.
        log_prob = self.prior.log_prob(axis_angle_to_pose_6d(batch["body_pose"]))
        self._val_sum += float(-log_prob.double().sum())
        self._val_count += len(log_prob)

    def _log_mean(self, name: str) -> None:
        if self._val_count > 0:
            self.log(name, self._val_sum / self._val_count, prog_bar=True)
        self._val_sum, self._val_count = 0.0, 0

    def validation_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> None:
        """Accumulate the NLL of the clean validation poses."""
        self._accumulate(batch)

    def on_validation_epoch_end(self) -> None:
        """Log ``val/nll``: mean NLL per held-out pose (nats, clean poses, eval mode)."""
        self._log_mean("val/nll")

    def test_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> None:
        """As :meth:`validation_step`."""
        self._accumulate(batch)

    def on_test_epoch_end(self) -> None:
        """Log ``test/nll``."""
        self._log_mean("test/nll")


# ------------------------------------------------------------------------------------ CLI
class PosePriorCLI(LightningCLI):
    """LightningCLI with the pose prior's default loggers and checkpointing (``val/nll``);
    accepts the config's ``task: pose_prior`` entry (``prohmr-train`` dispatches on it)."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        add_task_argument(parser, "pose_prior")
        parser.set_defaults(
            {"trainer.logger": DEFAULT_LOGGERS, "trainer.callbacks": DEFAULT_CALLBACKS}
        )


def cli(args: Sequence[str] | None = None, run: bool = True) -> PosePriorCLI:
    """Build (and with ``run`` execute) the CLI on ``args`` (default ``sys.argv[1:]``).

    Arguments:
        args: e.g. ``["fit", "--config", "configs/pose_prior.yaml"]``; without ``run`` no
            sub-command is given.
        run: run the sub-command; False only instantiates model, data and trainer.

    Returns:
        The :class:`PosePriorCLI` (``.model``, ``.datamodule``, ``.trainer``).
    """
    return PosePriorCLI(
        PosePriorModule,
        MocapPoseDataModule,
        args=None if args is None else list(args),
        run=run,
        save_config_kwargs={"overwrite": True},
    )


def _data_summary(npz_path: str | Path, body_pose: np.ndarray) -> dict[str, Any]:
    """Path, size and (for Contract A files) actors and source of a mocap file."""
    summary: dict[str, Any] = {"path": str(npz_path), "num_poses": int(len(body_pose))}
    with np.load(npz_path, allow_pickle=False) as data:
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


def export_pose_prior(
    checkpoint_path: str | Path,
    out_path: str | Path,
    metadata: Mapping[str, Any] | None = None,
    *,
    train_npz: str | Path | None = None,
    val_npz: str | Path | None = None,
) -> Path:
    """Write the library's pose-prior file (``prohmr.PosePrior``) from a training checkpoint.

    The stored metadata holds the architecture (``config``), the training settings
    (``training``: the module's hyper-parameters), the checkpoint (``checkpoint``: file
    name, step, epoch) and, for each given data file, ``data.train`` / ``data.val`` (path,
    number of poses, actors, source) with ``train_nll`` / ``heldout_nll``: the mean NLL per
    pose in nats of the clean poses (no mirror images) in eval mode. ``metadata`` entries
    (e.g. ``command``, ``licence``) are added last and win.

    Arguments:
        checkpoint_path: a Lightning checkpoint of :class:`PosePriorModule`.
        out_path: the file to write.
        metadata: more JSON-able entries.
        train_npz, val_npz: mocap files to measure the NLL on (optional).

    Returns:
        The path written.

    Raises:
        FileNotFoundError: a missing file. ValueError: not a PosePriorModule checkpoint.
    """
    path = Path(checkpoint_path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(checkpoint, Mapping):
        checkpoint = {}
    state_dict = checkpoint.get("state_dict")
    hyper_parameters = checkpoint.get("hyper_parameters")
    if not isinstance(state_dict, Mapping) or not isinstance(hyper_parameters, Mapping) or not any(
        key.startswith(CHECKPOINT_PREFIX) for key in state_dict
    ):
        raise ValueError(
            f"{path} is not a PosePriorModule checkpoint (no {CHECKPOINT_PREFIX}* keys)"
        )
    config = PosePriorConfig.from_dict(hyper_parameters.get("config") or {})
    prior = PosePrior(config)
    prior.load_state_dict(
        {
            key[len(CHECKPOINT_PREFIX):]: value
            for key, value in state_dict.items()
            if key.startswith(CHECKPOINT_PREFIX)
        }
    )
    prior.eval()
    stored: dict[str, Any] = {
        "config": config.to_dict(),
        "training": {key: value for key, value in hyper_parameters.items() if key != "config"},
        "checkpoint": {
            "file": path.name,
            "global_step": int(checkpoint.get("global_step", -1)),
            "epoch": int(checkpoint.get("epoch", -1)),
        },
    }
    data: dict[str, Any] = {}
    for split, npz, metric in (("train", train_npz, "train_nll"), ("val", val_npz, "heldout_nll")):
        if npz is None:
            continue
        body_pose = read_body_pose(npz)
        data[split] = _data_summary(npz, body_pose)
        stored[metric] = evaluate_nll(prior, body_pose)
        logger.info("%s: %.2f nats per pose over %d poses", metric, stored[metric], len(body_pose))
    if data:
        stored["data"] = data
    stored.update(dict(metadata or {}))
    return save_pose_prior(prior, out_path, stored)


def _export_command(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lightning_modules.pose_prior_module export",
        description="Write the prohmr.PosePrior file of a PosePriorModule checkpoint.",
    )
    parser.add_argument("--checkpoint", required=True, help="the Lightning checkpoint")
    parser.add_argument("--out", required=True, help="the pose-prior file to write")
    parser.add_argument("--train-npz", help="training poses to report train_nll on")
    parser.add_argument("--val-npz", help="held-out poses to report heldout_nll on")
    parser.add_argument("--command", help="the training command, recorded in the metadata")
    parser.add_argument("--metadata", help="more metadata: a JSON object")
    arguments = parser.parse_args(list(argv))
    extra: dict[str, Any] = json.loads(arguments.metadata) if arguments.metadata else {}
    if not isinstance(extra, dict):
        parser.error("--metadata must be a JSON object")
    if arguments.command:
        extra["command"] = arguments.command
    out = export_pose_prior(
        arguments.checkpoint,
        arguments.out,
        extra,
        train_npz=arguments.train_npz,
        val_npz=arguments.val_npz,
    )
    print(f"wrote {out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``{fit,validate,test} --config ...`` (Lightning) or ``export ...``; the exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        if arguments and arguments[0] == "export":
            return _export_command(arguments[1:])
        cli(arguments)
    except FileNotFoundError as error:
        print(f"pose prior: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
