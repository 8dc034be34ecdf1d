"""The ``prohmr-train`` command: Lightning's CLI for :class:`ProHMRModule` and its data.

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

import sys
from collections.abc import Sequence

from pytorch_lightning.cli import LightningArgumentParser, LightningCLI

from lightning_modules.datamodule import ProHMRDataModule
from lightning_modules.prohmr_module import ProHMRModule

__all__ = ["DEFAULT_CALLBACKS", "DEFAULT_LOGGERS", "ProHMRCLI", "cli", "main"]

#: The metric that selects the best checkpoints.
MONITOR = "val/mode_mpjpe"

#: Loggers unless the config sets ``trainer.logger``: CSV first, so that checkpoints and
#: ``config.yaml`` land next to ``metrics.csv``.
DEFAULT_LOGGERS: list[dict[str, object]] = [
    {
        "class_path": "pytorch_lightning.loggers.CSVLogger",
        "init_args": {"save_dir": "logs", "name": "prohmr"},
    },
    {
        "class_path": "pytorch_lightning.loggers.TensorBoardLogger",
        "init_args": {"save_dir": "logs/tensorboard", "name": "prohmr"},
    },
]

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


class ProHMRCLI(LightningCLI):
    """LightningCLI with ProHMR's defaults for loggers and callbacks and one link:
    ``model.num_samples`` → ``data.samples_per_image``."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
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
    try:
        cli(argv)
    except FileNotFoundError as error:
        print(f"prohmr-train: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
