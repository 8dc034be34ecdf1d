"""The ``prohmr`` command.

Sub-commands import their heavy modules lazily so that ``prohmr --help`` stays fast.
Errors a user can fix (missing file, bad format) are reported in one line with exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main", "build_parser"]


def _body_convert(args: argparse.Namespace) -> int:
    from prohmr.body.smpl_io import convert_smpl_file

    out = convert_smpl_file(args.src, args.dst, overwrite=args.overwrite)
    print(f"wrote {out}")
    return 0


def _body_build(args: argparse.Namespace) -> int:
    from prohmr.body.procedural import default_body_model_dir

    print(default_body_model_dir(args.cache_dir))
    return 0


def _data_synthesize(args: argparse.Namespace) -> int:
    from prohmr.data.synthetic import synthesize_dataset

    path = synthesize_dataset(
        args.out, args.num_images, split=args.split, domain=args.domain, seed=args.seed,
        image_size=args.image_size, pose_source=args.pose_source, workers=args.workers,
        data_root=args.data_root, mocap_fps=args.mocap_fps, image_format=args.image_format,
        overwrite=args.overwrite, progress=True,
    )
    print(path)
    return 0


def _data_mocap(args: argparse.Namespace) -> int:
    from prohmr.data.mocap.retarget import run_mocap_command

    for line in run_mocap_command(
        args.out, data_root=args.data_root, actors=args.actors,
        exclude_actors=args.exclude_actors, fps=args.fps, overwrite=args.overwrite,
    ):
        print(line)
    return 0


def _fit(args: argparse.Namespace) -> int:
    from prohmr.fitting.command import run_fit_command

    report = run_fit_command(
        args.image, args.keypoints, model=args.model, views=args.views, out_dir=args.out,
        device=args.device, use_hips=args.use_hips, trust_checkpoint=args.trust_checkpoint,
    )
    for line in report.table_lines:
        print(line)
    return 0


def _eval(args: argparse.Namespace) -> int:
    from prohmr.evaluation.evaluator import run_eval_command

    lines = run_eval_command(
        args.model, args.dataset, args.image_root, args.protocol, args.num_samples, args.out,
        args.device, args.max_items, args.trust_checkpoint,
        min_of_n=args.min_of_n, kmeans=args.kmeans, batch_size=args.batch_size, seed=args.seed,
    )
    for line in lines:
        print(line)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from prohmr.demo import run_demo

    report = run_demo(Path(args.out))
    for line in report.summary_lines:
        print(line)
    print(f"figures in {report.figures_dir.resolve()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``prohmr`` command."""
    parser = argparse.ArgumentParser(
        prog="prohmr", description="Probabilistic 3D human mesh recovery (ProHMR)."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    commands = parser.add_subparsers(dest="command", required=True)

    body = commands.add_parser("body", help="body-model files")
    body_commands = body.add_subparsers(dest="body_command", required=True)
    convert = body_commands.add_parser(
        "convert", help="rewrite an official SMPL .pkl without chumpy objects"
    )
    convert.add_argument("src", help="official SMPL pickle (may contain chumpy arrays)")
    convert.add_argument("dst", help="output file, or a folder to write the same file name into")
    convert.add_argument(
        "--overwrite", action="store_true", help="replace DST if it exists (never SRC)"
    )
    convert.set_defaults(handler=_body_convert)
    build = body_commands.add_parser(
        "build", help="build (or find cached) the procedural default body; print its folder"
    )
    build.add_argument("--cache-dir", default=None, help="cache root (default: PROHMR_CACHE_DIR)")
    build.set_defaults(handler=_body_build)

    data = commands.add_parser("data", help="datasets")
    data_commands = data.add_subparsers(dest="data_command", required=True)
    synth = data_commands.add_parser(
        "synthesize", help="render a synthetic image dataset in the library's .npz format"
    )
    synth.add_argument("--out", required=True, help="output folder")
    synth.add_argument("--num-images", type=int, required=True)
    synth.add_argument("--split", choices=("train", "val"), default="train")
    synth.add_argument("--domain", choices=("studio", "outdoor"), default="studio")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--image-size", type=int, default=128)
    synth.add_argument("--pose-source", choices=("auto", "mocap", "random"), default="auto")
    synth.add_argument("--data-root", default="../shared/data", help="open mocap data folder")
    synth.add_argument("--mocap-fps", type=float, default=10.0)
    synth.add_argument("--image-format", choices=("jpg", "png"), default="jpg")
    synth.add_argument("--workers", type=int, default=2)
    synth.add_argument("--overwrite", action="store_true", help="replace an existing split")
    synth.set_defaults(handler=_data_synthesize)
    mocap = data_commands.add_parser(
        "mocap", help="retarget the HDM05 mocap onto the body model and write a mocap .npz"
    )
    mocap.add_argument(
        "--out", required=True, help="output .npz (a sibling .json gets the residuals)"
    )
    mocap.add_argument("--data-root", default="../shared/data", help="open mocap data folder")
    mocap.add_argument("--actors", nargs="+", default=None, help="HDM05 actors (default: all)")
    mocap.add_argument(
        "--exclude-actors", nargs="+", default=(), help="actors to leave out, e.g. mm"
    )
    mocap.add_argument(
        "--fps", type=float, default=10.0, help="frames kept per second (HDM05: 120)"
    )
    mocap.add_argument("--overwrite", action="store_true", help="replace an existing file")
    mocap.set_defaults(handler=_data_mocap)

    fit = commands.add_parser("fit", help="fit bodies to 2D keypoints of an image")
    fit.add_argument("--image", required=True, help="image file")
    fit.add_argument(
        "--keypoints", default=None,
        help="OpenPose BODY_25 or COCO keypoint JSON (default: <image stem>_keypoints.json)",
    )
    fit.add_argument("--model", default=None, help="model name or checkpoint path")
    fit.add_argument("--views", nargs="*", default=(), help="other views of the same person")
    fit.add_argument("--out", default="fit_output", help="output folder")
    fit.add_argument("--device", default=None, help="torch device (default: cpu)")
    fit.add_argument("--use-hips", action="store_true", help="keep the hip keypoints")
    fit.add_argument(
        "--trust-checkpoint", action="store_true",
        help="allow arbitrary unpickling when loading the checkpoint (only for files you trust)",
    )
    fit.set_defaults(handler=_fit)

    evaluation = commands.add_parser(
        "eval", help="evaluate a model on a dataset .npz under a protocol"
    )
    evaluation.add_argument("--model", required=True, help="model name or checkpoint path")
    evaluation.add_argument("--dataset", required=True, help="dataset .npz (SPEC §5 format)")
    evaluation.add_argument(
        "--image-root", default=None,
        help="folder imgname is relative to (default: images/ beside the .npz, else its folder)",
    )
    evaluation.add_argument(
        "--protocol", default="synthetic",
        help="h36m-p2, 3dpw, mpi-inf-3dhp or synthetic (default: synthetic)",
    )
    evaluation.add_argument(
        "--num-samples", type=int, default=25, help="samples per image, mode included"
    )
    evaluation.add_argument("--min-of-n", type=int, nargs="+", default=None, help="n of min-of-n")
    evaluation.add_argument("--kmeans", action="store_true", help="also K-means min-of-n (slow)")
    evaluation.add_argument("--batch-size", type=int, default=8)
    evaluation.add_argument("--seed", type=int, default=0)
    evaluation.add_argument("--out", default=None, help="write the results as JSON here")
    evaluation.add_argument("--device", default=None, help="torch device (default: cpu)")
    evaluation.add_argument(
        "--max-items", type=int, default=None, help="evaluate only the first N selected rows"
    )
    evaluation.add_argument(
        "--trust-checkpoint", action="store_true",
        help="allow arbitrary unpickling when loading the checkpoint (only for files you trust)",
    )
    evaluation.set_defaults(handler=_eval)

    demo = commands.add_parser(
        "demo",
        help="run the shipped models end to end on held-out synthetic people; writes "
        "<out>/index.html",
    )
    demo.add_argument("--out", default="demo_output", help="output folder (default: demo_output)")
    demo.set_defaults(handler=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``prohmr`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.handler(args)
    except (FileNotFoundError, FileExistsError, ValueError) as error:
        print(f"prohmr {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
