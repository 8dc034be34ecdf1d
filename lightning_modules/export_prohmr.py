"""Turn a ProHMR training checkpoint into the library's model file, with its measured metrics.

``python -m lightning_modules.export_prohmr --checkpoint CKPT --out FILE --val-npz NPZ``
loads a Lightning checkpoint of :class:`~lightning_modules.prohmr_module.ProHMRModule`
(through :func:`prohmr.load_model`), optionally re-expresses its crop camera for the crop size
it was trained on, evaluates it on a held-out dataset (:func:`prohmr.evaluation.evaluate`,
the ``synthetic`` protocol) and on a small **check subset** that anyone can regenerate
(:func:`check_subset`), and writes a :func:`prohmr.models.save_model` file whose metadata
holds both. The shipped ``prohmr_synthetic`` model was made this way; its test reloads the file
and reproduces the check-subset numbers.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from prohmr.evaluation.evaluator import EvaluationResult, evaluate
from prohmr.models.loading import load_model, save_model
from prohmr.models.prohmr import ProHMR

__all__ = ["CHECK_SUBSET", "check_subset", "export_prohmr", "main"]

logger = logging.getLogger(__name__)

#: How the check subset is made: ``synthesize_dataset`` arguments (held-out split) and the
#: evaluation settings.
CHECK_SUBSET: dict[str, Any] = {
    "num_images": 8,
    "split": "val",
    "domain": "studio",
    "seed": 2024,
    "image_size": 128,
    "num_samples": 10,
    "eval_seed": 0,
}
#: Metrics kept in the metadata (keys of :attr:`EvaluationResult.aggregate`).
REPORTED = ("mpjpe/mode", "pa_mpjpe/mode", "mpjpe/min_of_5", "mpjpe/min_of_10",
            "mpjpe/min_of_25", "pa_mpjpe/min_of_25", "pve/mode", "log_likelihood")


def _selected(result: EvaluationResult) -> dict[str, float]:
    aggregate = result.aggregate
    return {name: round(float(aggregate[name]), 3) for name in REPORTED
            if aggregate.get(name) is not None}


def check_subset(model: ProHMR, data_root: str | Path = "../shared/data",
                 settings: Mapping[str, Any] = CHECK_SUBSET) -> dict[str, float]:
    """Render the check subset into a temporary folder and evaluate ``model`` on it.

    *Arguments*
        model: the ProHMR model.
        data_root: the open-data folder (the held-out mocap poses come from there).
        settings: :data:`CHECK_SUBSET`.

    *Returns*
        ``{"mpjpe/mode": ..., "pa_mpjpe/mode": ..., "mpjpe/min_of_<n>": ...}`` in mm.
    """
    from prohmr.data.synthetic import synthesize_dataset

    with tempfile.TemporaryDirectory() as folder:
        npz = synthesize_dataset(
            folder, settings["num_images"], split=settings["split"], domain=settings["domain"],
            seed=settings["seed"], image_size=settings["image_size"], pose_source="mocap",
            data_root=data_root,
        )
        num_samples = settings["num_samples"]
        result = evaluate(
            model, npz, Path(folder) / "images", num_samples=num_samples,
            min_of_n=(1, num_samples), progress=False, seed=settings["eval_seed"],
        )
    aggregate = result.aggregate
    return {
        name: round(float(aggregate[name]), 3)
        for name in ("mpjpe/mode", "pa_mpjpe/mode", f"mpjpe/min_of_{num_samples}")
    }


def export_prohmr(
    checkpoint_path: str | Path,
    out_path: str | Path,
    *,
    val_npz: str | Path | None = None,
    image_root: str | Path | None = None,
    crop_size: int | None = None,
    max_items: int | None = None,
    data_root: str | Path = "../shared/data",
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write the model file of a ProHMR checkpoint with its metrics in the metadata.

    *Arguments*
        checkpoint_path: a Lightning checkpoint of this library (or any file
            :func:`prohmr.load_model` reads).
        out_path: the file to write.
        val_npz, image_root: held-out dataset to report (25 samples per image).
        crop_size: re-express the crop camera for crops of this size (same field of view:
            ``focal_length * crop_size / image_size``), so evaluators crop the images at
            the size the backbone was trained on.
        max_items: evaluate only the first rows of ``val_npz``.
        data_root: open-data folder for :func:`check_subset`.
        metadata: more JSON-able entries (e.g. ``command``, ``licence``); they win.

    *Returns*
        The path written.
    """
    model = load_model(checkpoint_path)
    if not isinstance(model, ProHMR):
        raise ValueError(f"{checkpoint_path} does not hold a ProHMR model")
    if crop_size is not None:
        config = model.config
        model.config = config.replace(
            image_size=int(crop_size),
            focal_length=config.focal_length * crop_size / config.image_size,
        )
    stored: dict[str, Any] = {"checkpoint": Path(checkpoint_path).name}
    if val_npz is not None:
        result = evaluate(model, val_npz, image_root, num_samples=25, max_items=max_items,
                          progress=False)
        stored["heldout"] = {"dataset": str(val_npz), "num_images": result.num_items,
                             "protocol": "synthetic (14 joints, pelvis 39, mm)",
                             "metrics": _selected(result)}
        logger.info("held-out metrics: %s", stored["heldout"]["metrics"])
    stored["check_subset"] = {"recipe": dict(CHECK_SUBSET),
                              "metrics": check_subset(model, data_root)}
    stored.update(dict(metadata or {}))
    return save_model(model, out_path, stored)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lightning_modules.export_prohmr --checkpoint ... --out ...``."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="python -m lightning_modules.export_prohmr",
        description="Write the prohmr model file of a ProHMR checkpoint, with its metrics.",
    )
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--val-npz", default=None)
    parser.add_argument("--image-root", default=None)
    parser.add_argument("--crop-size", type=int, default=None)
    parser.add_argument("--max-items", type=int, default=None)
    parser.add_argument("--data-root", default="../shared/data")
    parser.add_argument("--command", default=None, help="the training command, recorded")
    args = parser.parse_args(arguments)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    extra = {"export_command": "python -m lightning_modules.export_prohmr "
             + shlex.join(arguments)}
    if args.command:
        extra["command"] = args.command
    try:
        out = export_prohmr(
            args.checkpoint, args.out, val_npz=args.val_npz, image_root=args.image_root,
            crop_size=args.crop_size, max_items=args.max_items, data_root=args.data_root,
            metadata=extra,
        )
    except (FileNotFoundError, ValueError) as error:
        print(f"export_prohmr: error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
