""":func:`run_demo`: every step of the demo, then the report (see :mod:`prohmr.demo`)."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from prohmr._utils import single_thread
from prohmr.data.pose_sources import DEFAULT_DATA_ROOT
from prohmr.data.synthetic import SyntheticRenderer
from prohmr.demo.body_figures import body_model_figures
from prohmr.demo.report import metric_rows, write_html, write_markdown, write_metrics
from prohmr.demo.scenes import (
    DEMO_DOMAIN,
    DEMO_IMAGE_SIZE,
    make_people,
    resolve_pose_source,
)
from prohmr.demo.steps import (
    DemoModels,
    Section,
    evaluation_section,
    fitting_step,
    inputs_section,
    multiview_step,
    pose_prior_step,
    prohmr_step,
    proskeleton_step,
)
from prohmr.fitting import LBFGSSettings
from prohmr.models.loading import load_model

__all__ = [
    "DEMO_FIT_STEPS",
    "FIGURES_DIRNAME",
    "IMAGES_DIRNAME",
    "REPORT_NAME",
    "DemoReport",
    "DemoSettings",
    "load_demo_models",
    "run_demo",
]

logger = logging.getLogger(__name__)

#: Sub-folder of the output folder holding the figures.
FIGURES_DIRNAME: str = "figures"
#: Sub-folder holding the rendered input images.
IMAGES_DIRNAME: str = "images"
#: Name of the HTML report.
REPORT_NAME: str = "index.html"
#: Outer L-BFGS steps of the demo's fits: the original ProHMR demo's setting.
DEMO_FIT_STEPS: int = 10
_TITLE = "prohmr demo"


@dataclass(frozen=True)
class DemoSettings:
    """How much the demo does.

    Attributes:
        num_images: held-out people (each rendered from two cameras).
        num_samples: ProHMR samples and ProSkeleton hypotheses per image (mode included).
        seed: seeds the images (the validation split's seed), the keypoint noise and every
            random draw, so a run is reproducible.
        fit_steps: outer L-BFGS steps of every fit (10, the original ProHMR demo's setting;
            SPEC 6.1 allows up to 30).
        body_figures: draw the body-model section.
    """

    num_images: int = 4
    num_samples: int = 25
    seed: int = 0
    fit_steps: int = DEMO_FIT_STEPS
    body_figures: bool = True

    def __post_init__(self) -> None:
        for name, minimum in (("num_images", 1), ("num_samples", 2), ("seed", 0),
                              ("fit_steps", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(
                    f"DemoSettings: `{name}` must be an int >= {minimum}, got {value!r}"
                )


@dataclass
class DemoReport:
    """What :func:`run_demo` wrote and measured.

    Attributes:
        out_dir: the output folder.
        report_path: the HTML report (``out_dir/index.html``).
        markdown_path: the same report as Markdown.
        metrics_path: the metrics as JSON.
        metrics: every number of the report, by key (millimetres, pixels, seconds).
        figures: every PNG written (figures and input images), in report order.
        summary_lines: five short lines: the report, ProHMR, fitting, multi-view,
            ProSkeleton.
        seconds: wall time of the whole run.
        notes: warnings shown in the report (e.g. random poses without the mocap data).
    """

    out_dir: Path
    report_path: Path
    markdown_path: Path
    metrics_path: Path
    metrics: dict[str, float] = field(default_factory=dict)
    figures: list[Path] = field(default_factory=list)
    summary_lines: list[str] = field(default_factory=list)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def figures_dir(self) -> Path:
        """The folder of the figures."""
        return self.out_dir / FIGURES_DIRNAME


#: Metadata entries quoted in the report's description of a shipped model.
_MODEL_FACTS: tuple[str, ...] = ("licence", "train_nll", "heldout_nll", "held_out_actor")


def _describe_model(name: str, model: torch.nn.Module, metadata: dict[str, Any]) -> str:
    size = sum(parameter.numel() for parameter in model.parameters()) / 1e6
    line = f"{name}: {type(model).__name__}, {size:.2f} M parameters"
    # Short facts only: commands and attribution texts belong in the model card.
    facts = [f"{key} {value:.1f}" if isinstance(value, float) else f"{key} {value}"
             for key, value in metadata.items()
             if key in _MODEL_FACTS and isinstance(value, (str, int, float))
             and not isinstance(value, bool)]
    card = f"model card prohmr/pretrained/{name}.md"
    return line + f" ({'; '.join([*facts, card])})"


def load_demo_models(device: str | torch.device | None = None) -> DemoModels:
    """The three models shipped in the package: ``prohmr_synthetic``, ``proskeleton`` and
    ``pose_prior`` (see :func:`prohmr.models.load_model`).

    Raises:
        FileNotFoundError: naming the missing model file.
    """
    loaded = {}
    descriptions = {}
    for name in ("prohmr_synthetic", "proskeleton", "pose_prior"):
        try:
            model = load_model(name, device=device)
        except FileNotFoundError as error:
            raise FileNotFoundError(
                f"the demo needs the shipped model {name!r}: {error}"
            ) from error
        # The pose prior and ProSkeleton keep their file's metadata; ProHMR's holds none of
        # the facts quoted, so no file is read a second time.
        metadata = getattr(model, "metadata", None) or {}
        loaded[name] = model
        descriptions[name] = _describe_model(name, model, metadata)
    return DemoModels(
        prohmr=loaded["prohmr_synthetic"], proskeleton=loaded["proskeleton"],
        pose_prior=loaded["pose_prior"], descriptions=descriptions,
    )


class _Clock:
    """Wall time per step, logged with the CPU time (all threads) as each step ends."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.last = self.start
        self.last_cpu = time.process_time()
        self.steps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now, cpu = time.perf_counter(), time.process_time()
        self.steps[name] = now - self.last
        logger.info("demo: %s done in %.1f s (CPU %.1f s; %.1f s so far)", name,
                    self.steps[name], cpu - self.last_cpu, now - self.start)
        self.last, self.last_cpu = now, cpu

    @property
    def total(self) -> float:
        return time.perf_counter() - self.start


def _summary(report: DemoReport, settings: DemoSettings) -> list[str]:
    metrics, n = report.metrics, settings.num_samples
    figures = [path for path in report.figures if path.parent == report.figures_dir]
    return [
        f"report: {report.report_path} ({len(figures)} figures, {settings.num_images} "
        f"held-out people, {report.seconds:.0f} s)",
        f"ProHMR: mode MPJPE {metrics['prohmr.mode.mpjpe']:.1f} mm, PA-MPJPE "
        f"{metrics['prohmr.mode.pa_mpjpe']:.1f} mm; min-of-{n} "
        f"{metrics[f'prohmr.min_of_{n}.mpjpe']:.1f} / "
        f"{metrics[f'prohmr.min_of_{n}.pa_mpjpe']:.1f} mm",
        f"keypoint fitting: 2D error {metrics['fitting.reprojection_px.before']:.2f} -> "
        f"{metrics['fitting.reprojection_px.after']:.2f} px, PA-MPJPE "
        f"{metrics['fitting.pa_mpjpe.before']:.1f} -> {metrics['fitting.pa_mpjpe.after']:.1f} mm",
        f"multi-view: PA-MPJPE {metrics['multiview.single_view_fit.pa_mpjpe']:.1f} mm (one "
        f"view) -> {metrics['multiview.two_view_fit.pa_mpjpe']:.1f} mm (two views)",
        f"ProSkeleton: mode MPJPE {metrics['proskeleton.mode.mpjpe']:.1f} mm, PA-MPJPE "
        f"{metrics['proskeleton.mode.pa_mpjpe']:.1f} mm; min-of-{n} "
        f"{metrics[f'proskeleton.min_of_{n}.mpjpe']:.1f} / "
        f"{metrics[f'proskeleton.min_of_{n}.pa_mpjpe']:.1f} mm",
    ]


def run_demo(
    out_dir: Path | str = "demo_output",
    models: DemoModels | None = None,
    settings: DemoSettings | None = None,
    *,
    data_root: Path | str = DEFAULT_DATA_ROOT,
) -> DemoReport:
    """Run the demo and write its report into ``out_dir`` (see :mod:`prohmr.demo`).

    Only files of fixed names inside ``out_dir`` are written (``index.html``, ``report.md``,
    ``metrics.json``, ``figures/*.png``, ``images/*.png``); nothing else is touched.

    Arguments:
        out_dir: output folder (created).
        models: the models to run (put in eval mode); default the shipped ones
            (:func:`load_demo_models`).
        settings: :class:`DemoSettings` (default: 4 people, 25 samples, seed 0).
        data_root: the open-data folder; without ``hdm05/`` in it the images show random
            poses instead of held-out mocap (noted in the report).

    Returns:
        :class:`DemoReport`.

    Raises:
        FileNotFoundError: a shipped model is missing.
    """
    settings = DemoSettings() if settings is None else settings
    if not isinstance(settings, DemoSettings):
        raise ValueError(f"run_demo: `settings` must be a DemoSettings, got {settings!r}")
    with single_thread():
        return _run(Path(out_dir).expanduser(), models, settings, data_root)


def _run(
    out: Path, models: DemoModels | None, settings: DemoSettings, data_root: Path | str
) -> DemoReport:
    """:func:`run_demo` after validation, with one torch thread."""
    clock = _Clock()
    models = load_demo_models() if models is None else models
    figures_dir, images_dir = out / FIGURES_DIRNAME, out / IMAGES_DIRNAME
    figures_dir.mkdir(parents=True, exist_ok=True)
    images_dir.mkdir(parents=True, exist_ok=True)
    model = models.prohmr.eval()
    models.proskeleton.eval()
    models.pose_prior.eval()
    clock.lap("loading the models")

    body = model.body_model
    pose_source = resolve_pose_source(data_root, body)
    renderer = SyntheticRenderer(DEMO_IMAGE_SIZE, DEMO_DOMAIN, body)
    people = make_people(settings.num_images, settings.seed, pose_source, renderer,
                         model.config.image_size)
    sections = [inputs_section(people, pose_source.description, pose_source.note, figures_dir,
                               images_dir)]
    clock.lap("rendering the images")

    seed = settings.seed
    fit_settings = LBFGSSettings(max_steps=settings.fit_steps)
    metrics: dict[str, float] = {}
    result, step_metrics, section = prohmr_step(
        model, people, settings.num_samples, torch.Generator().manual_seed(seed), figures_dir
    )
    metrics.update(step_metrics)
    sections.append(section)
    clock.lap("ProHMR")
    fit, step_metrics, section = fitting_step(model, people, result, fit_settings, figures_dir)
    metrics.update(step_metrics)
    sections.append(section)
    clock.lap("keypoint fitting")
    step_metrics, section = multiview_step(model, people, result, fit, fit_settings, figures_dir)
    metrics.update(step_metrics)
    sections.append(section)
    clock.lap("multi-view refinement")
    lifting_errors, step_metrics, section = proskeleton_step(
        models.proskeleton, people, settings.num_samples,
        torch.Generator().manual_seed(seed + 1), figures_dir,
    )
    metrics.update(step_metrics)
    sections.append(section)
    clock.lap("ProSkeleton")
    step_metrics, section = pose_prior_step(
        models.pose_prior, model, people[0], fit, fit_settings,
        torch.Generator().manual_seed(seed + 2), figures_dir,
    )
    metrics.update(step_metrics)
    sections.append(section)
    clock.lap("pose prior")

    if settings.body_figures:
        body_section = Section("body_model", "Appendix: the embedded body model")
        body_section.paragraphs.append(
            "The procedural body model that every step above uses (a stand-in in SMPL's "
            "format, not SMPL), posed and shaped; linear blend skinning keeps every bone "
            "length, so the largest bone-length change must be ~0 mm."
        )
        body_section.figures = body_model_figures(figures_dir, body)
        clock.lap("body-model figures")
    metrics.update({f"time.{name.replace(' ', '_').replace('-', '_')}_s": seconds
                    for name, seconds in clock.steps.items()})
    metrics["time.total_s"] = clock.total
    sections.append(evaluation_section(result.errors, lifting_errors, figures_dir))
    if settings.body_figures:
        sections.append(body_section)

    report = DemoReport(
        out_dir=out, report_path=out / REPORT_NAME, markdown_path=out / "report.md",
        metrics_path=out / "metrics.json", metrics=metrics,
        figures=[path for section in sections for path, _ in section.figures],
        notes=[pose_source.note] if pose_source.note else [],
    )
    report.seconds = clock.total
    report.summary_lines = _summary(report, settings)
    facts = [
        f"seed {seed}; {settings.num_images} people x 2 cameras; {settings.num_samples} "
        f"samples per image; fits with up to {settings.fit_steps} outer L-BFGS steps",
        f"poses: {pose_source.description}",
        f"ProHMR crops: {model.config.image_size} px from {DEMO_IMAGE_SIZE}-px {DEMO_DOMAIN} "
        "images",
        *models.descriptions.values(),
        f"one torch thread; total {report.seconds:.1f} s",
    ]
    bad = sorted(key for key, value in metrics.items() if not math.isfinite(value))
    if bad:
        logger.warning("demo: non-finite metrics %s", bad)
    table = metric_rows(metrics)
    write_html(report.report_path, _TITLE, report.summary_lines, facts, report.notes, table,
               sections)
    write_markdown(report.markdown_path, _TITLE, report.summary_lines, facts, report.notes,
                   table, sections)
    write_metrics(report.metrics_path, metrics, {**asdict(settings), "data_root": str(data_root),
                                                 "poses": pose_source.description})
    logger.info("demo: report written to %s in %.1f s", report.report_path, report.seconds)
    return report
