"""The ``prohmr-train`` command: Lightning's CLI for the library's training tasks.

A config's top-level ``task`` entry picks what is trained (:data:`TASKS`; default
``prohmr``): ``prohmr`` (:class:`ProHMRModule` and its data, described below),
``pose_prior`` (:mod:`lightning_modules.pose_prior_module`) or ``proskeleton``
(:mod:`lightning_modules.proskeleton_module`). ``prohmr-train fit --config
configs/pose_prior.yaml`` is the same as ``python -m lightning_modules.pose_prior_module fit
--config configs/pose_prior.yaml``.

``prohmr-train {fit,validate,test,predict} --config configs/<name>.yaml [--key=value ...]``.
The YAML has the sections ``seed_everything``, ``trainer``, ``model`` (the arguments of
:class:`~lightning_modules.prohmr_module.ProHMRModule`, with the architecture under
``model.config``) and ``data`` (:class:`~lightning_modules.datamodule.ProHMRDataModule`);
``--print_config`` shows every setting with its value. ``model.num_samples`` also sets
``data.samples_per_image`` (the size of the mocap batches).

Unless the config says otherwise the trainer logs to ``logs/``: CSV metrics in
``logs/prohmr/version_N/`` (with ``config.yaml`` and ``checkpoints/``: the best three by
``val/mode_mpjpe`` and ``last.ckpt``) and TensorBoard events in
``logs/tensorboard/prohmr/version_N/``. ``--ckpt_path <file>`` resumes a run.

Errors a user can fix (a missing data file) are reported in one line with exit code 2, as
by the ``prohmr`` command.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from pytorch_lightning.cli import LightningArgumentParser, LightningCLI

from lightning_modules.datamodule import ProHMRDataModule
from lightning_modules.prohmr_module import ProHMRModule

__all__ = [
    "DEFAULT_CALLBACKS",
    "DEFAULT_LOGGERS",
    "TASKS",
    "ProHMRCLI",
    "add_task_argument",
    "default_loggers",
    "cli",
    "main",
    "task_of",
]

#: Training tasks: ``task`` entry of a config -> the module whose ``cli`` trains it.
TASKS: dict[str, str] = {
    "prohmr": "lightning_modules.cli",
    "pose_prior": "lightning_modules.pose_prior_module",
    "proskeleton": "lightning_modules.proskeleton_module",
}

#: The metric that selects the best checkpoints.
MONITOR = "val/mode_mpjpe"

def default_loggers(name: str, tensorboard: bool = True) -> list[dict[str, object]]:
    """A task's loggers unless its config sets ``trainer.logger``: CSV in ``logs/<name>/``
    first (so that checkpoints and ``config.yaml`` land next to ``metrics.csv``), then
    optionally TensorBoard in ``logs/tensorboard/<name>/``."""
    loggers: list[dict[str, object]] = [
        {
            "class_path": "pytorch_lightning.loggers.CSVLogger",
            "init_args": {"save_dir": "logs", "name": name},
        },
    ]
    if tensorboard:
        loggers.append({
            "class_path": "pytorch_lightning.loggers.TensorBoardLogger",
            "init_args": {"save_dir": "logs/tensorboard", "name": name},
        })
    return loggers


#: ProHMR's loggers unless the config sets ``trainer.logger``.
DEFAULT_LOGGERS: list[dict[str, object]] = default_loggers("prohmr")

#: Callbacks unless the config sets ``trainer.callbacks`` (Lightning adds its progress bar
#: itself; ``--trainer.enable_progress_bar=false`` turns it off).
DEFAULT_CALLBACKS: list[dict[str, object]] = [
    {
        "class_path": "pytorch_lightning.callbacks.ModelCheckpoint",
        "init_args": {
            "monitor": MONITOR,
            "mode": "min",
            "save_top_k": 3,
            "save_last": True,
            "filename": "step{step:08d}-mpjpe{val/mode_mpjpe:.1f}",
            "auto_insert_metric_name": False,
        },
    },
]


def add_task_argument(parser: LightningArgumentParser, task: str) -> None:
    """Accept the config's ``task`` entry (it must name ``task``) in a task's CLI parser."""
    parser.add_argument(
        "--task", default=task, choices=[task], help=f"training task (this CLI trains {task!r})"
    )


def task_of(args: Sequence[str]) -> str:
    """The ``task`` of the configs in ``args`` (``--config FILE`` or ``--config=FILE``; the
    last config that sets it wins), or of a ``--task NAME`` argument; default ``"prohmr"``.

    Raises:
        FileNotFoundError: a config file does not exist. ValueError: an unknown task.
    """
    task = "prohmr"
    args = list(args)
    for index, arg in enumerate(args):
        value = None
        if arg in ("--config", "--task") and index + 1 < len(args):
            value = args[index + 1]
        elif arg.startswith(("--config=", "--task=")):
            value = arg.split("=", 1)[1]
        if value is None:
            continue
        if arg.startswith("--task"):
            task = value
            continue
        path = Path(value)
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        content = yaml.safe_load(path.read_text(encoding="utf-8"))
        if isinstance(content, dict) and "task" in content:
            task = content["task"]
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r} in the config; valid tasks: {', '.join(TASKS)}")
    return task


class ProHMRCLI(LightningCLI):
    """LightningCLI with ProHMR's defaults for loggers and callbacks and one link:
    ``model.num_samples`` → ``data.samples_per_image``."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        add_task_argument(parser, "prohmr")
        parser.link_arguments("model.num_samples", "data.samples_per_image")
        parser.set_defaults(
            {"trainer.logger": DEFAULT_LOGGERS, "trainer.callbacks": DEFAULT_CALLBACKS}
        )


def cli(args: Sequence[str] | None = None, run: bool = True) -> ProHMRCLI:
    """Build (and with ``run`` execute) the CLI on ``args`` (default ``sys.argv[1:]``).

    Arguments:
        args: command-line arguments, e.g. ``["fit", "--config", "configs/prohmr.yaml"]``;
            without ``run`` no sub-command is given (``["--config", ...]``).
        run: run the sub-command; False only instantiates model, data and trainer.

    Returns:
        The :class:`ProHMRCLI` (``.model``, ``.datamodule``, ``.trainer``).
    """
    return ProHMRCLI(
        ProHMRModule,
        ProHMRDataModule,
        args=None if args is None else list(args),
        run=run,
        save_config_kwargs={"overwrite": True},
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``prohmr-train`` console script; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        task = task_of(args)
        if task == "prohmr":
            cli(args)
        else:
            importlib.import_module(TASKS[task]).cli(args)
    except (FileNotFoundError, ValueError) as error:
        print(f"prohmr-train: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
