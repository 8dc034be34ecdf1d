"""The demo (``prohmr demo``): its inputs, its report, and one full run with the shipped models."""

from __future__ import annotations

import json
import math
import re
from html import escape
from pathlib import Path

import numpy as np
import pytest
import torch

from prohmr.data.cropping import apply_affine, crop_transform
from prohmr.data.synthetic import SyntheticRenderer, generate_samples, load_pose_source
from prohmr.demo import DemoModels, DemoReport, DemoSettings, load_demo_models, run_demo
from prohmr.demo.report import metric_rows, write_html
from prohmr.demo.scenes import (
    DEMO_DOMAIN,
    DEMO_IMAGE_SIZE,
    DEMO_SPLIT,
    DISPLAY_SIZE,
    KEYPOINT_NOISE_PX,
    NUM_DROPPED_KEYPOINTS,
    SECOND_VIEW_YAW_DEG,
    crop_camera,
    make_people,
    resolve_pose_source,
)
from prohmr.demo.steps import Section
from prohmr.geometry import perspective_projection, pixel_to_normalized
from prohmr.models import ProHMR, ProHMRConfig
from prohmr.models.loading import PRETRAINED_MODELS
from prohmr.models.pose_prior import PosePrior, PosePriorConfig, axis_angle_to_pose_6d
from prohmr.models.proskeleton import ProSkeleton, ProSkeletonConfig

DATA_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data"
SUMMARY_LINES = 5


def _image_sources(html: str) -> set[str]:
    return set(re.findall(r'<img src="([^"]+)"', html))


def _check_report(report: DemoReport) -> None:
    """What every run must satisfy: the files, their references, the numbers' sanity."""
    html = report.report_path.read_text(encoding="utf-8")
    sources = _image_sources(html)
    written = {path.relative_to(report.out_dir).as_posix()
               for path in report.out_dir.rglob("*.png")}
    assert written, "the demo wrote no PNG"
    assert written == sources, "every PNG must be in the report, and every <img> must exist"
    assert {path.relative_to(report.out_dir).as_posix() for path in report.figures} == written
    markdown = report.markdown_path.read_text(encoding="utf-8")
    assert all(f"]({source})" in markdown for source in sources)
    stored = json.loads(report.metrics_path.read_text(encoding="utf-8"))["metrics"]
    assert stored == pytest.approx(report.metrics)
    assert report.metrics and all(math.isfinite(value) for value in report.metrics.values())
    assert len(report.summary_lines) == SUMMARY_LINES
    assert str(report.report_path) in report.summary_lines[0]
    for line in report.summary_lines:
        assert escape(line) in html
    metrics = report.metrics
    assert metrics["fitting.reprojection_px.after"] < metrics["fitting.reprojection_px.before"]
    for model in ("prohmr", "proskeleton"):
        ns = sorted(int(key.split(".")[1].removeprefix("min_of_")) for key in metrics
                    if key.startswith(f"{model}.min_of_") and key.endswith(".pa_mpjpe"))
        for metric in ("mpjpe", "pa_mpjpe"):
            curve = [metrics[f"{model}.mode.{metric}"]]
            curve += [metrics[f"{model}.min_of_{n}.{metric}"] for n in ns]
            assert all(b <= a + 1e-9 for a, b in zip(curve, curve[1:]))
    assert 0 < metrics["time.total_s"] == pytest.approx(report.seconds, abs=5.0)


# ---------------------------------------------------------------------------- inputs


def test_first_views_are_the_validation_images() -> None:
    """Camera 1 of person k is image k of ``prohmr data synthesize --split val``."""
    renderer = SyntheticRenderer(DEMO_IMAGE_SIZE, DEMO_DOMAIN)
    source = resolve_pose_source("/nonexistent/data", renderer.body_model)
    people = make_people(2, 3, source, renderer, crop_size=32)
    expected = generate_samples([0, 1], seed=3, split=DEMO_SPLIT, domain=DEMO_DOMAIN,
                                image_size=DEMO_IMAGE_SIZE, renderer=renderer)
    for person, sample in zip(people, expected):
        np.testing.assert_array_equal(person.views[0].sample.image, sample.image)
        second = person.views[1].sample
        # The same body (pose below the root, shape), another heading 70 degrees away.
        np.testing.assert_array_equal(second.body_pose[3:], sample.body_pose[3:])
        np.testing.assert_array_equal(second.betas, sample.betas)
        turn = abs(second.scene.yaw_deg - sample.scene.yaw_deg)
        assert turn == pytest.approx(SECOND_VIEW_YAW_DEG)
        assert not np.array_equal(second.image, sample.image)


def test_keypoints_are_noisy_with_some_missing_and_mapped_like_the_dataset() -> None:
    renderer = SyntheticRenderer(DEMO_IMAGE_SIZE, DEMO_DOMAIN)
    source = resolve_pose_source("/nonexistent/data", renderer.body_model)
    people = make_people(8, 0, source, renderer, crop_size=32)
    residuals = []
    for person in people:
        for view in person.views:
            truth = view.sample.keypoints_2d[:25]
            kept = view.keypoints[:, 2] > 0
            assert (truth[:, 2] > 0).sum() - kept.sum() == NUM_DROPPED_KEYPOINTS
            assert kept[[8, 9, 12]].all(), "hips are never the dropped ones"
            residuals.append(view.keypoints[kept, :2] - truth[kept, :2])
            # Normalised crop coordinates as the dataset computes them (crop map, then px/S-0.5).
            transform = crop_transform(view.box_center, view.box_size, 0.0, 32)
            reference = pixel_to_normalized(
                torch.from_numpy(apply_affine(view.keypoints[:, :2], transform)), 32
            ).numpy()
            np.testing.assert_allclose(view.crop_keypoints()[:, :2], reference, atol=1e-9)
    residual = np.concatenate(residuals)
    assert abs(residual.std() - KEYPOINT_NOISE_PX) < 0.15 * KEYPOINT_NOISE_PX
    assert abs(residual.mean()) < 0.2


def test_crop_camera_projects_onto_the_display_crop() -> None:
    """A point projected with the image camera and mapped into the display crop lands where
    the display camera projects it."""
    view = type("View", (), {"box_center": np.array([70.0, 55.0]), "box_size": 90.0})()
    points = torch.tensor([[0.1, -0.3, 12.0], [-0.2, 0.4, 11.0]], dtype=torch.float64)
    focal, principal = 2857.0, np.array([64.0, 64.0])
    image = perspective_projection(points, torch.zeros(3, dtype=torch.float64), focal,
                                   torch.from_numpy(principal))
    expected = apply_affine(image.numpy(), crop_transform(view.box_center, view.box_size, 0.0,
                                                          DISPLAY_SIZE))
    display_focal, display_centre = crop_camera(focal, principal, view)
    actual = perspective_projection(points, torch.zeros(3, dtype=torch.float64), display_focal,
                                    torch.from_numpy(display_centre))
    np.testing.assert_allclose(actual.numpy(), expected, atol=1e-9)


@pytest.mark.skipif(not (DATA_ROOT / "hdm05").is_dir(), reason="open mocap data not present")
def test_poses_come_from_the_held_out_actor() -> None:
    renderer = SyntheticRenderer(DEMO_IMAGE_SIZE, DEMO_DOMAIN)
    source = resolve_pose_source(DATA_ROOT, renderer.body_model)
    bank, description = load_pose_source("mocap", "val", DATA_ROOT,
                                         body_model=renderer.body_model)
    assert source.note is None and "mm" in source.description
    np.testing.assert_array_equal(source.bank, bank)
    assert description["actors"] == ["mm"]


def test_missing_data_falls_back_to_random_poses_with_a_note(tmp_path: Path) -> None:
    renderer = SyntheticRenderer(DEMO_IMAGE_SIZE, DEMO_DOMAIN)
    source = resolve_pose_source(tmp_path, renderer.body_model)
    assert source.bank is None
    assert source.note is not None and str(tmp_path) in source.note


# ---------------------------------------------------------------------------- report


def test_metric_rows_name_units() -> None:
    rows = metric_rows({"prohmr.min_of_5.pa_mpjpe": 41.234, "fitting.reprojection_px.after": 1.5,
                        "multiview.body_pose_spread.after": 0.01234, "time.total_s": 61.0,
                        "time.ProHMR_s": 2.0})
    assert rows == [
        ["step", "quantity", "value"],
        ["ProHMR", "min-of-5 PA-MPJPE", "41.2 mm"],
        ["keypoint fitting", "2D error after", "1.50 px"],
        ["multi-view", "views' body-pose disagreement after", "0.012"],
        ["runtime", "total", "61.0 s"],
        ["runtime", "ProHMR", "2.0 s"],
    ]


def test_html_escapes_text_and_links_figures(tmp_path: Path) -> None:
    figure = tmp_path / "figures" / "a.png"
    figure.parent.mkdir()
    figure.write_bytes(b"")
    section = Section("s", "A <b> title", ["x < y & z"], [(figure, 'caption "quoted"')],
                      [["h1", "h2"], ["<1>", "2"]])
    html = write_html(tmp_path / "index.html", "t", ["line & 1"], ["fact"], ["careful <"],
                      [["step", "quantity", "value"]], [section]).read_text()
    assert '<img src="figures/a.png"' in html
    assert "A &lt;b&gt; title" in html and "x &lt; y &amp; z" in html
    assert "&lt;1&gt;" in html and "careful &lt;" in html and "<b>" not in html


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="num_samples"):
        DemoSettings(num_samples=1)
    with pytest.raises(ValueError, match="num_images"):
        DemoSettings(num_images=0)


def test_missing_shipped_model_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(PRETRAINED_MODELS, "prohmr_synthetic", tmp_path / "absent.pt")
    with pytest.raises(FileNotFoundError, match="prohmr_synthetic"):
        load_demo_models()
    with pytest.raises(FileNotFoundError, match="prohmr_synthetic"):
        run_demo(tmp_path / "out")
    assert not (tmp_path / "out").exists(), "nothing is written before the models load"


# ---------------------------------------------------------------------------- runs


def _tiny_models() -> DemoModels:
    """Small untrained models with data-initialised flows: the pipeline, not the accuracy."""
    torch.manual_seed(0)
    crop = 32  # the camera is expressed for the crop size, as in the shipped model
    prohmr = ProHMR(ProHMRConfig(backbone="resnet18", backbone_num_stages=1,
                                 flow_hidden_features=16, flow_num_layers=1,
                                 head_hidden_features=16, image_size=crop,
                                 focal_length=5000.0 * crop / 224))
    poses = 0.2 * torch.randn(16, 72)
    prior = PosePrior(PosePriorConfig(hidden_features=16, num_layers=1, num_blocks_per_layer=1))
    prior.initialize(axis_angle_to_pose_6d(poses))
    lifting = ProSkeleton(ProSkeletonConfig(context_features=16, flow_hidden_features=16,
                                            flow_num_layers=1))
    return DemoModels(prohmr=prohmr.eval(), proskeleton=lifting.eval(),
                      pose_prior=prior.eval())


def test_run_with_small_models_writes_a_complete_report(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    keep = out / "notes.txt"
    out.mkdir()
    keep.write_text("mine")
    settings = DemoSettings(num_images=1, num_samples=3, fit_steps=1, body_figures=False)
    report = run_demo(out, _tiny_models(), settings, data_root=tmp_path / "no_data")
    _check_report(report)
    assert keep.read_text() == "mine", "files of the user are left alone"
    assert report.notes and "random poses" in report.notes[0]
    assert escape(report.notes[0]) in report.report_path.read_text()
    assert "prohmr.min_of_1.mpjpe" not in report.metrics, "min-of-1 is the mode"


@pytest.fixture(scope="module")
def shipped_run(tmp_path_factory: pytest.TempPathFactory) -> DemoReport:
    missing = [f"{name} ({path})" for name, path in PRETRAINED_MODELS.items()
               if not Path(path).is_file()]
    if missing:
        pytest.fail("the demo runs the models shipped in prohmr/pretrained/, but these files are "
                    f"missing: {', '.join(missing)}")
    return run_demo(tmp_path_factory.mktemp("demo_output"), data_root=DATA_ROOT)


@pytest.mark.slow
def test_demo_with_the_shipped_models(shipped_run: DemoReport) -> None:
    _check_report(shipped_run)
    names = {path.name for path in shipped_run.figures}
    assert {"02_prohmr_modes.png", "03_fitting_before_after.png", "04_multiview.png",
            "05_proskeleton_hypotheses.png", "06_pose_prior_fit.png", "07_min_of_n.png",
            "body_pose_rest.png"} <= names
    metrics = shipped_run.metrics
    # Trained models on held-out people: errors of a useful size (untrained ones give
    # 400 mm), and a second view resolves what one view leaves open.
    assert metrics["prohmr.mode.mpjpe"] < 250.0
    assert metrics["proskeleton.mode.mpjpe"] < 150.0
    assert (metrics["multiview.two_view_fit.pa_mpjpe"]
            < metrics["multiview.single_view_fit.pa_mpjpe"])
    spread = (metrics["multiview.body_pose_spread.before"],
              metrics["multiview.body_pose_spread.after"])
    assert spread[1] < spread[0]
    html = shipped_run.report_path.read_text(encoding="utf-8")
    if (DATA_ROOT / "hdm05").is_dir():
        assert not shipped_run.notes and "held-out actor(s) mm" in html
    else:
        assert shipped_run.notes and escape(shipped_run.notes[0]) in html
