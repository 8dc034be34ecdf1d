"""The demo's steps: each runs one part of the library on the demo's people, scores it against
the ground truth and returns its metrics and a report :class:`Section` with its figures.

- :func:`prohmr_step`: the shipped ProHMR's mode and samples (with log-likelihoods);
- :func:`fitting_step`: keypoint fitting to noisy 2D keypoints
  (:func:`~prohmr.fitting.fit_keypoints`);
- :func:`multiview_step`: refinement across two views (:func:`~prohmr.fitting.fit_multiview`);
- :func:`proskeleton_step`: 2D → 3D lifting with the shipped ProSkeleton;
- :func:`pose_prior_step`: prior-only fitting with the shipped pose prior
  (:func:`~prohmr.fitting.fit_prior_keypoints_2d`);
- :func:`evaluation_section`: the min-of-n curves of both probabilistic models.

Errors are in millimetres: MPJPE after centring at the pelvis and PA-MPJPE after Procrustes
alignment, over ProHMR's 14 evaluation joints (:data:`~prohmr.evaluation.PROHMR_14`) or the
17 H36M joints for ProSkeleton (:data:`~prohmr.evaluation.H36M_17`). 2D errors are in pixels of
the rendered image.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from prohmr.body.joints import BODY25_JOINT_NAMES, OPENPOSE_HIPS
from prohmr.constants import POSE_6D_DIM
from prohmr.demo.figures import MeshPanel, inputs_figure, mesh_grid_figure
from prohmr.demo.scenes import (
    DISPLAY_SIZE,
    KEYPOINT_NOISE_PX,
    LIFTING_NOISE_PX,
    NUM_DROPPED_KEYPOINTS,
    SECOND_VIEW_YAW_DEG,
    DemoPerson,
    DemoView,
    crop_camera,
)
from prohmr.evaluation import H36M_17, PROHMR_14, min_of_n, mpjpe, pa_mpjpe
from prohmr.fitting import (
    KeypointFitResult,
    LBFGSSettings,
    fit_keypoints,
    fit_multiview,
    fit_prior_keypoints_2d,
)
from prohmr.geometry import perspective_projection
from prohmr.models.pose_prior import PosePrior
from prohmr.models.prohmr import ProHMR, ProHMROutput
from prohmr.models.proskeleton import ProSkeleton
from prohmr.visualization import (
    BODY25_EDGES,
    H36M17_EDGES,
    PROHMR44_EDGES,
    plot_fitting_before_after,
    plot_keypoints_2d,
    plot_mesh_overlay,
    plot_min_of_n,
    plot_sample_fan,
    plot_skeleton_3d,
    sample_colors,
)
from prohmr.visualization.figures import save_image

__all__ = [
    "DEMO_NS",
    "PRIOR_HYPOTHESES",
    "DemoModels",
    "ProHMRResult",
    "Section",
    "evaluation_section",
    "fitting_step",
    "inputs_section",
    "multiview_step",
    "pose_prior_step",
    "prohmr_step",
    "proskeleton_step",
    "sample_counts",
]

logger = logging.getLogger(__name__)

#: The n of the min-of-n errors (SPEC §7) when enough samples are drawn.
DEMO_NS: tuple[int, ...] = (1, 5, 10, 25)
#: Starts of prior-only fitting: the prior's mode and samples from it, best kept.
PRIOR_HYPOTHESES: int = 4
#: Samples shown one by one in the sample-overlay figure.
_STRIP_SAMPLES = 6
#: Random samples drawn together over each image in the overview grid.
_GRID_SAMPLES = 8
#: Colour map of log-likelihoods (as :func:`~prohmr.visualization.plot_sample_fan`'s).
_CMAP = "viridis"
_NUM_BODY25 = len(BODY25_JOINT_NAMES)


@dataclass
class DemoModels:
    """The three shipped models the demo runs.

    Attributes:
        prohmr: the image model; its crops are ``prohmr.config.image_size`` pixels (the
            shipped model's camera is expressed for the crop size it was trained on).
        proskeleton: the 2D → 3D lifting model.
        pose_prior: the unconditional pose prior.
        descriptions: one line per model for the report.
    """

    prohmr: ProHMR
    proskeleton: ProSkeleton
    pose_prior: PosePrior
    descriptions: dict[str, str] = field(default_factory=dict)


@dataclass
class Section:
    """A part of the report.

    Attributes:
        anchor: HTML id.
        title: heading.
        paragraphs: plain-text paragraphs (escaped when written).
        figures: ``(path, caption)`` per figure or image.
        table: optional rows of cells, the first row the header.
    """

    anchor: str
    title: str
    paragraphs: list[str] = field(default_factory=list)
    figures: list[tuple[Path, str]] = field(default_factory=list)
    table: list[list[str]] | None = None


@dataclass
class ProHMRResult:
    """What later steps reuse from :func:`prohmr_step`.

    Attributes:
        features: ``(2B, C)`` backbone features of every view (first views first).
        output: the samples of the first views, ``(B, N, ...)``; sample 0 is the mode.
        second_modes: the modes of the second views, ``(B, 1, ...)``.
        errors: ``{"mpjpe" | "pa_mpjpe": {n: (B,)}}`` min-of-n errors (``n = 1``: the mode).
    """

    features: torch.Tensor
    output: ProHMROutput
    second_modes: ProHMROutput
    errors: dict[str, dict[int, torch.Tensor]]


def sample_counts(num_samples: int) -> tuple[int, ...]:
    """The ``n`` of the min-of-n errors: :data:`DEMO_NS` below ``num_samples``, then it.

    Example:
        >>> sample_counts(25), sample_counts(3)
        ((1, 5, 10, 25), (1, 3))
    """
    return tuple(n for n in DEMO_NS if n < num_samples) + (num_samples,)


def _mm(value: float) -> str:
    return f"{value:.1f}"


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().double().numpy()


def _ground_truth(views: Sequence[DemoView], like: torch.Tensor) -> torch.Tensor:
    return torch.stack([view.joints_3d for view in views]).to(like)


def _errors(joints: torch.Tensor, gt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """MPJPE and PA-MPJPE ``(...)`` of ``(..., 44, 3)`` joints."""
    return mpjpe(joints, gt, PROHMR_14), pa_mpjpe(joints, gt, PROHMR_14)


def _model_camera(model: ProHMR) -> tuple[float, np.ndarray]:
    """ProHMR's crop camera in display-crop pixels."""
    focal = model.config.focal_length * DISPLAY_SIZE / model.config.image_size
    return focal, np.full(2, DISPLAY_SIZE / 2.0)


def _crop_pixels_scale(model: ProHMR, view: DemoView) -> float:
    """Image pixels per pixel of ProHMR's crop camera (its ``image_size``-pixel crop)."""
    return view.box_size / model.config.image_size


def inputs_section(
    people: Sequence[DemoPerson], source_line: str, note: str | None, figures_dir: Path,
    images_dir: Path,
) -> Section:
    """Step 1: save the rendered images and show them with their crop boxes."""
    section = Section("inputs", "1. Held-out synthetic images")
    section.paragraphs.append(
        f"{len(people)} people of the synthetic world's validation split (studio domain, "
        f"{people[0].views[0].sample.image.shape[0]}-pixel images), poses: {source_line}. "
        "Each person is also rendered from a second camera that orbits them by "
        f"{SECOND_VIEW_YAW_DEG:.0f} degrees (step 4). The network sees the dashed box, "
        "resampled to its crop size."
    )
    if note:
        section.paragraphs.append(f"Note: {note}")
    for person in people:
        for number, view in enumerate(person.views, start=1):
            name = f"person{person.index}_camera{number}.png"
            path = save_image(view.sample.image, images_dir / name)
            section.figures.append((path, f"person {person.index}, camera {number}"))
    path = inputs_figure(people, figures_dir / "01_inputs.png")
    section.figures.insert(0, (path, "The demo's images and the crop boxes the network sees."))
    return section


def prohmr_step(
    model: ProHMR,
    people: Sequence[DemoPerson],
    num_samples: int,
    generator: torch.Generator,
    figures_dir: Path,
) -> tuple[ProHMRResult, dict[str, float], Section]:
    """Step 2: ProHMR's mode and ``num_samples`` samples per image, scored and drawn.

    Returns:
        ``(result, metrics, section)``.
    """
    logger.info("demo: ProHMR mode and %d samples for %d images", num_samples, len(people))
    first = [person.views[0] for person in people]
    second = [person.views[1] for person in people]
    device = next(model.parameters()).device
    crops = torch.stack([view.crop for view in first + second]).to(device)
    with torch.no_grad():
        features = model.features(crops)
        count = len(people)
        output = model.predict_from_features(
            features[:count], num_samples, mode_first=True, generator=generator
        )
        zeros = features.new_zeros(count, 1, POSE_6D_DIM)
        second_modes = model.predict_from_features(features[count:], z=zeros)
    gt = _ground_truth(first, output.joints_3d)
    ns = sample_counts(num_samples)
    errors = {
        metric: min_of_n(output.joints_3d, gt, ns, metric, PROHMR_14)
        for metric in ("mpjpe", "pa_mpjpe")
    }
    metrics = {}
    for metric, by_n in errors.items():
        metrics[f"prohmr.mode.{metric}"] = float(by_n[1].mean())
        metrics.update({f"prohmr.min_of_{n}.{metric}": float(values.mean())
                        for n, values in by_n.items() if n > 1})
    result = ProHMRResult(features, output, second_modes, errors)

    section = Section("prohmr", "2. ProHMR: the mode and samples")
    largest = max(ns)
    section.paragraphs.append(
        f"The shipped synthetic-world ProHMR ({model.config.backbone}, "
        f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters) predicts a "
        f"distribution over bodies for each crop. Sample 0 is its mode (z = 0); {num_samples - 1} "
        "more are drawn, each with its log-likelihood under the flow. Mean over the "
        f"{len(people)} images: mode MPJPE {_mm(metrics['prohmr.mode.mpjpe'])} mm, PA-MPJPE "
        f"{_mm(metrics['prohmr.mode.pa_mpjpe'])} mm; the best of {largest} samples "
        f"{_mm(metrics[f'prohmr.min_of_{largest}.mpjpe'])} / "
        f"{_mm(metrics[f'prohmr.min_of_{largest}.pa_mpjpe'])} mm."
    )
    section.table = [["image", "mode MPJPE", "mode PA-MPJPE", f"min-of-{largest} MPJPE",
                      f"min-of-{largest} PA-MPJPE"]]
    for b in range(count):
        section.table.append([
            str(b), _mm(errors["mpjpe"][1][b]), _mm(errors["pa_mpjpe"][1][b]),
            _mm(errors["mpjpe"][largest][b]), _mm(errors["pa_mpjpe"][largest][b]),
        ])
    section.figures += _prohmr_figures(model, first, result, figures_dir)
    return result, metrics, section


def _prohmr_figures(
    model: ProHMR, views: Sequence[DemoView], result: ProHMRResult, figures_dir: Path
) -> list[tuple[Path, str]]:
    output, errors = result.output, result.errors
    faces = model.body_model.faces.cpu().numpy()
    focal, principal = _model_camera(model)
    log_prob = _numpy(output.log_prob)
    vertices = _numpy(output.vertices)
    translation = _numpy(output.camera_translation)
    # The mode is far likelier than any random draw; colours span the random samples only,
    # on one scale for every image (the colorbar's).
    sample_log_prob = log_prob[:, 1:]
    colors = sample_colors(sample_log_prob.reshape(-1), _CMAP)[:, :3]
    colors = colors.reshape(*sample_log_prob.shape, 3)
    shown = min(_GRID_SAMPLES, sample_log_prob.shape[1])
    rows = []
    for b, view in enumerate(views):
        mode = MeshPanel(vertices[b, 0], translation[b, 0], focal, principal)
        drawn = MeshPanel(vertices[b, 1 : shown + 1], translation[b, 1 : shown + 1], focal,
                          principal, colors[b, :shown])
        rows.append([
            (f"image {b}: network input", None),
            (f"mode: MPJPE {_mm(errors['mpjpe'][1][b])}, PA {_mm(errors['pa_mpjpe'][1][b])}",
             mode),
            ("mode, side view", mode),
            (f"{shown} of {sample_log_prob.shape[1]} samples", drawn),
        ])
    grid = mesh_grid_figure(
        rows, [view.display for view in views], faces, figures_dir / "02_prohmr_modes.png",
        title="ProHMR on held-out images (errors in mm)", side_columns=(2,),
        colorbar_log_prob=sample_log_prob,
    )

    gt = _ground_truth(views, output.joints_3d)
    pelvis = PROHMR_14.root
    centred = output.joints_3d[0] - output.joints_3d[0, :, pelvis : pelvis + 1]
    fan_path = figures_dir / "02_prohmr_sample_fan.png"
    plot_sample_fan(
        centred[1:], output.log_prob[0, 1:], PROHMR44_EDGES, mode=centred[0],
        ground_truth=gt[0] - gt[0, pelvis], views=("front", "side", "top"),
        title="image 0: ProHMR samples (pelvis-centred, camera axes)", save=fan_path,
    )

    order = np.argsort(-log_prob[0], kind="stable")
    shown = min(_STRIP_SAMPLES, len(order))
    picks = order[np.linspace(0, len(order) - 1, shown).round().astype(int)]
    sample_pa = pa_mpjpe(output.joints_3d[0], gt[0].expand_as(output.joints_3d[0]), PROHMR_14)
    strip = [[
        (f"{'mode' if i == 0 else f'sample {i}'}: log p {log_prob[0, i]:.1f}\n"
         f"PA-MPJPE {_mm(sample_pa[i])} mm",
         MeshPanel(vertices[0, i], translation[0, i], focal, principal,
                   None if i == 0 else colors[0, i - 1]))
        for i in picks
    ]]
    strip_path = mesh_grid_figure(
        strip, [views[0].display], faces, figures_dir / "02_prohmr_sample_overlays.png",
        title="image 0: samples from the most to the least likely",
    )
    return [
        (grid, "Each row: the network's input crop, the mode's mesh over it and from the side, "
               "and random samples over it, coloured by log-likelihood (yellow: most likely; "
               "the mode is likelier than all of them)."),
        (fan_path, "Image 0: the samples' skeletons coloured by log-likelihood, the mode "
                   "(black) and the ground truth (red, dashed), seen from the front, the side "
                   "and above."),
        (strip_path, "Image 0: the mode and samples from the most to the least likely, one "
                     "mesh each, coloured as above."),
    ]


def _display_points(view: DemoView, normalized: torch.Tensor | np.ndarray) -> np.ndarray:
    """Normalised crop coordinates ``(J, 2)`` → display-crop pixels."""
    values = _numpy(normalized) if isinstance(normalized, torch.Tensor) else normalized
    return view.to_display(values)


def _display_keypoints(view: DemoView) -> np.ndarray:
    """The view's detected keypoints ``(25, 3)`` in display-crop pixels."""
    keypoints = view.crop_keypoints()
    return np.concatenate([view.to_display(keypoints[:, :2]), keypoints[:, 2:]], axis=1)


def _fitted_keypoints(view: DemoView) -> np.ndarray:
    """``(25,)`` bool: the keypoints fitting uses (confident; hips left out, as by default)."""
    used = view.keypoints[:, 2] > 0
    used[list(OPENPOSE_HIPS)] = False
    return used


def _noise_floor(view: DemoView) -> float:
    """Mean distance in image pixels from the true joints to the noisy keypoints that
    fitting uses: the 2D error of the true body."""
    used = _fitted_keypoints(view)
    truth = view.sample.keypoints_2d[:_NUM_BODY25, :2]
    return float(np.linalg.norm(view.keypoints[used, :2] - truth[used], axis=-1).mean())


def fitting_step(
    model: ProHMR,
    people: Sequence[DemoPerson],
    prohmr_result: ProHMRResult,
    settings: LBFGSSettings,
    figures_dir: Path,
) -> tuple[KeypointFitResult, dict[str, float], Section]:
    """Step 3: fit every view (both cameras) to its noisy keypoints; score the first views.

    Returns:
        ``(fit, metrics, section)``; ``fit`` is the
        :class:`~prohmr.fitting.KeypointFitResult` of all ``2B`` views, first views first.
    """
    count = len(people)
    views = [person.views[0] for person in people] + [person.views[1] for person in people]
    logger.info("demo: keypoint fitting of %d views (%d outer L-BFGS steps at most)",
                len(views), settings.max_steps)
    features = prohmr_result.features
    keypoints = torch.from_numpy(np.stack([view.crop_keypoints() for view in views])).to(features)
    fit = fit_keypoints(model, keypoints, features=features, settings=settings)
    to_image = torch.tensor([_crop_pixels_scale(model, view) for view in views]).to(features)
    before_px = fit.initial_reprojection_error * to_image
    after_px = fit.reprojection_error * to_image
    modes = torch.cat([prohmr_result.output.joints_3d[:, 0],
                       prohmr_result.second_modes.joints_3d[:, 0]])
    gt = _ground_truth(views, modes)
    before = _errors(modes, gt)
    after = _errors(fit.joints_3d, gt)
    first = slice(0, count)
    floor = [_noise_floor(view) for view in views[:count]]
    metrics = {
        "fitting.reprojection_px.ground_truth": float(np.mean(floor)),
        "fitting.reprojection_px.before": float(before_px[first].mean()),
        "fitting.reprojection_px.after": float(after_px[first].mean()),
        "fitting.mpjpe.before": float(before[0][first].mean()),
        "fitting.mpjpe.after": float(after[0][first].mean()),
        "fitting.pa_mpjpe.before": float(before[1][first].mean()),
        "fitting.pa_mpjpe.after": float(after[1][first].mean()),
    }
    section = Section("fitting", "3. Keypoint fitting to noisy 2D keypoints")
    section.paragraphs.append(
        "A detector's output is imitated by the ground-truth BODY_25 keypoints with Gaussian "
        f"noise (std {KEYPOINT_NOISE_PX} px) and {NUM_DROPPED_KEYPOINTS} keypoints missing per "
        "image. fit_keypoints refines the latent z, the "
        "betas and the camera so that the body's joints project onto them, with the "
        "image-conditioned prior keeping the pose plausible (SPEC 6.1; hips left out as in "
        f"the original). Mean over the {count} images: 2D error "
        f"{metrics['fitting.reprojection_px.before']:.2f} → "
        f"{metrics['fitting.reprojection_px.after']:.2f} px (the true body's own error to "
        f"these noisy keypoints is {metrics['fitting.reprojection_px.ground_truth']:.2f} px: "
        "a fit below that explains part of the noise), MPJPE "
        f"{_mm(metrics['fitting.mpjpe.before'])} → {_mm(metrics['fitting.mpjpe.after'])} mm, "
        f"PA-MPJPE {_mm(metrics['fitting.pa_mpjpe.before'])} → "
        f"{_mm(metrics['fitting.pa_mpjpe.after'])} mm."
    )
    section.table = [["image", "2D error before (px)", "after (px)", "true body (px)",
                      "MPJPE before", "after", "PA-MPJPE before", "after", "L-BFGS steps"]]
    for b in range(count):
        section.table.append([
            str(b), f"{float(before_px[b]):.2f}", f"{float(after_px[b]):.2f}",
            f"{floor[b]:.2f}",
            _mm(before[0][b]), _mm(after[0][b]), _mm(before[1][b]), _mm(after[1][b]),
            str(int(fit.iterations[b])),
        ])

    view = views[0]
    output = prohmr_result.output
    focal, principal = _model_camera(model)
    path = figures_dir / "03_fitting_before_after.png"
    plot_fitting_before_after(
        view.display, _display_keypoints(view),
        _display_points(view, output.joints_2d[0, 0, :_NUM_BODY25]),
        _display_points(view, fit.joints_2d[0, :_NUM_BODY25]), BODY25_EDGES,
        before_mesh=_numpy(output.vertices[0, 0]), after_mesh=_numpy(fit.vertices[0]),
        faces=model.body_model.faces.cpu().numpy(),
        camera_translation_before=_numpy(output.camera_translation[0, 0]),
        camera_translation_after=_numpy(fit.camera_translation[0]),
        focal_length=focal, principal_point=principal,
        errors={
            "2D error (px)": (float(before_px[0]), float(after_px[0])),
            "PA-MPJPE (mm)": (float(before[1][0]), float(after[1][0])),
        },
        title="image 0: the mode (before) and the fitted body (after)", save=path,
    )
    section.figures.append((
        path, "Image 0 before (ProHMR's mode) and after fitting: target keypoints in green, "
              "the body's projected joints in orange, residuals in white.",
    ))
    return fit, metrics, section


def multiview_step(
    model: ProHMR,
    people: Sequence[DemoPerson],
    prohmr_result: ProHMRResult,
    single_fit: KeypointFitResult,
    settings: LBFGSSettings,
    figures_dir: Path,
) -> tuple[dict[str, float], Section]:
    """Step 4: refine each person across their two views; compare with single-view fitting."""
    count = len(people)
    logger.info("demo: multi-view refinement of %d people x 2 views", count)
    features = prohmr_result.features
    pairs = torch.stack([features[:count], features[count:]], dim=1)
    keypoints = torch.from_numpy(np.stack([
        np.stack([view.crop_keypoints() for view in person.views]) for person in people
    ])).to(features)
    joint = fit_multiview(model, features=pairs, keypoints_2d=keypoints, settings=settings)

    def by_view(flat: torch.Tensor) -> torch.Tensor:
        return torch.stack([flat[:count], flat[count:]], dim=1)

    modes = by_view(torch.cat([prohmr_result.output.joints_3d[:, 0],
                               prohmr_result.second_modes.joints_3d[:, 0]]))
    single = by_view(single_fit.joints_3d)
    gt = torch.stack([_ground_truth(person.views, modes) for person in people])
    results = {"mode": _errors(modes, gt), "single_view_fit": _errors(single, gt),
               "two_view_fit": _errors(joint.joints_3d, gt)}
    metrics = {
        f"multiview.{name}.{metric}": float(values.mean())
        for name, pair in results.items() for metric, values in zip(("mpjpe", "pa_mpjpe"), pair)
    }
    metrics["multiview.body_pose_spread.before"] = float(joint.initial_body_pose_spread.mean())
    metrics["multiview.body_pose_spread.after"] = float(joint.body_pose_spread.mean())

    section = Section("multiview", "4. Multi-view refinement")
    section.paragraphs.append(
        f"Each person is seen by two cameras {SECOND_VIEW_YAW_DEG:.0f} degrees apart. "
        "fit_multiview looks for one "
        "latent per view whose body poses agree (SPEC 6.2), here with each view's "
        "reprojection term on its noisy keypoints as well; the betas are the mean of the "
        "views' regressions. Errors per view, averaged over both views of the "
        f"{count} people: PA-MPJPE {_mm(metrics['multiview.mode.pa_mpjpe'])} mm (modes), "
        f"{_mm(metrics['multiview.single_view_fit.pa_mpjpe'])} mm (each view fitted alone), "
        f"{_mm(metrics['multiview.two_view_fit.pa_mpjpe'])} mm (both views together); "
        f"disagreement of the views' body poses {metrics['multiview.body_pose_spread.before']:.3f}"
        f" → {metrics['multiview.body_pose_spread.after']:.3f}."
    )
    section.table = [["", "MPJPE (mm)", "PA-MPJPE (mm)"]] + [
        [name.replace("_", " "), _mm(metrics[f"multiview.{name}.mpjpe"]),
         _mm(metrics[f"multiview.{name}.pa_mpjpe"])]
        for name in results
    ]

    faces = model.body_model.faces.cpu().numpy()
    focal, principal = _model_camera(model)
    person = people[0]
    rows = []
    modes_out = (prohmr_result.output, prohmr_result.second_modes)
    for v in range(len(person.views)):
        index = v * count
        mode = modes_out[v]
        rows.append([
            (f"camera {v + 1}", None),
            (f"mode: PA {_mm(results['mode'][1][0, v])}", MeshPanel(
                _numpy(mode.vertices[0, 0]), _numpy(mode.camera_translation[0, 0]), focal,
                principal)),
            (f"view alone: PA {_mm(results['single_view_fit'][1][0, v])}", MeshPanel(
                _numpy(single_fit.vertices[index]), _numpy(single_fit.camera_translation[index]),
                focal, principal)),
            (f"two views: PA {_mm(results['two_view_fit'][1][0, v])}", MeshPanel(
                _numpy(joint.vertices[0, v]), _numpy(joint.camera_translation[0, v]), focal,
                principal)),
        ])
    grid = mesh_grid_figure(
        rows, [view.display for view in person.views], faces,
        figures_dir / "04_multiview.png",
        title="person 0 seen by two cameras (PA-MPJPE in mm)",
    )
    pelvis = PROHMR_14.root
    skeletons = [gt[0, 0], single[0, 0], joint.joints_3d[0, 0]]
    centred = [_numpy(s - s[pelvis]) for s in skeletons]
    skeleton_path = figures_dir / "04_multiview_skeletons.png"
    plot_skeleton_3d(
        centred[0], PROHMR44_EDGES, others=centred[1:],
        labels=["ground truth", "camera 1 alone", "both cameras"],
        title="person 0 in camera 1's axes (pelvis-centred)", save=skeleton_path, up="-y",
    )
    section.figures += [
        (grid, "Person 0, one row per camera: the mode, the view fitted alone, and the views "
               "fitted together."),
        (skeleton_path, "Person 0 in camera 1's axes: the side and top views show the depth "
                        "that a single view leaves ambiguous."),
    ]
    return metrics, section


def proskeleton_step(
    proskeleton: ProSkeleton,
    people: Sequence[DemoPerson],
    num_samples: int,
    generator: torch.Generator,
    figures_dir: Path,
) -> tuple[dict[str, dict[int, torch.Tensor]], dict[str, float], Section]:
    """Step 5: lift lightly noised 2D H36M-17 joints to 3D hypotheses with ProSkeleton.

    Returns:
        ``(errors, metrics, section)``; ``errors`` as :attr:`ProHMRResult.errors`.
    """
    logger.info("demo: ProSkeleton, %d hypotheses for %d skeletons", num_samples, len(people))
    views = [person.views[0] for person in people]
    like = proskeleton.keypoints_mean
    keypoints = torch.from_numpy(np.stack([view.lifting_keypoints for view in views])).to(like)
    with torch.no_grad():
        output = proskeleton.sample(keypoints, num_samples, generator=generator)
    gt = torch.stack([view.lifting_joints_3d for view in views]).to(like)
    ns = sample_counts(num_samples)
    errors = {metric: min_of_n(output.joints_3d, gt, ns, metric, H36M_17)
              for metric in ("mpjpe", "pa_mpjpe")}
    metrics = {}
    for metric, by_n in errors.items():
        metrics[f"proskeleton.mode.{metric}"] = float(by_n[1].mean())
        metrics.update({f"proskeleton.min_of_{n}.{metric}": float(values.mean())
                        for n, values in by_n.items() if n > 1})
    largest = max(ns)
    section = Section("proskeleton", "5. ProSkeleton: lifting a 2D skeleton to 3D")
    section.paragraphs.append(
        "The shipped ProSkeleton takes 17 2D joints (H36M order, pixels of any image; here the "
        f"ground-truth joints with {LIFTING_NOISE_PX} px noise) and returns a distribution over "
        "pelvis-relative "
        f"3D skeletons. Mean over the {len(people)} people: mode MPJPE "
        f"{_mm(metrics['proskeleton.mode.mpjpe'])} mm, PA-MPJPE "
        f"{_mm(metrics['proskeleton.mode.pa_mpjpe'])} mm; best of {largest}: "
        f"{_mm(metrics[f'proskeleton.min_of_{largest}.mpjpe'])} / "
        f"{_mm(metrics[f'proskeleton.min_of_{largest}.pa_mpjpe'])} mm."
    )
    view = views[0]
    input_path = figures_dir / "05_proskeleton_input.png"
    plot_keypoints_2d(
        view.display, view.to_display(view.to_crop(view.lifting_keypoints)), H36M17_EDGES,
        title="image 0: the 2D input (17 joints)", save=input_path,
    )
    fan_path = figures_dir / "05_proskeleton_hypotheses.png"
    plot_sample_fan(
        output.joints_3d[0, 1:], output.log_prob[0, 1:], H36M17_EDGES,
        mode=output.joints_3d[0, 0], ground_truth=gt[0], views=("front", "side", "top"),
        title=(f"image 0: {num_samples} ProSkeleton hypotheses (mode PA-MPJPE "
               f"{_mm(errors['pa_mpjpe'][1][0])} mm, best {_mm(errors['pa_mpjpe'][largest][0])}"
               " mm)"),
        save=fan_path,
    )
    section.figures += [
        (input_path, "Image 0: ProSkeleton's input."),
        (fan_path, "Its 3D hypotheses coloured by log-likelihood, the mode (black) and the "
                   "ground truth (red, dashed), from the front (as the camera saw it), the "
                   "side and above: one 2D view leaves depth open, so compare the spread in "
                   "the side and top views with the front."),
    ]
    return errors, metrics, section


def pose_prior_step(
    pose_prior: PosePrior,
    model: ProHMR,
    person: DemoPerson,
    single_fit: KeypointFitResult,
    settings: LBFGSSettings,
    generator: torch.Generator,
    figures_dir: Path,
) -> tuple[dict[str, float], Section]:
    """Step 6: fit the body to one image's keypoints with the pose prior alone (no image)."""
    logger.info("demo: prior-only fitting of one body (%d starts)", PRIOR_HYPOTHESES)
    view = person.views[0]
    body = model.body_model
    like = body.layer.shapedirs
    keypoints = torch.from_numpy(view.keypoints[None]).to(like)
    height, width = view.sample.image.shape[:2]
    image_size = torch.tensor([[float(width), float(height)]]).to(like)
    fit = fit_prior_keypoints_2d(
        pose_prior.flow, body, keypoints, image_size, focal_length=view.sample.focal_length,
        num_hypotheses=PRIOR_HYPOTHESES, generator=generator, settings=settings,
    )
    joints = fit.joints[0, 0]
    gt = view.joints_3d.to(joints)
    error, pa_error = _errors(joints, gt)
    principal = np.array([width / 2.0, height / 2.0])
    projected = perspective_projection(joints, joints.new_zeros(3), view.sample.focal_length,
                                       joints.new_tensor(principal))
    used = torch.from_numpy(_fitted_keypoints(view))
    residual = projected[:_NUM_BODY25][used] - keypoints[0, :, :2][used]
    reprojection = float(residual.norm(dim=-1).mean())
    prohmr_pa = float(pa_mpjpe(single_fit.joints_3d[0], gt, PROHMR_14))
    metrics = {
        "pose_prior.fit.mpjpe": float(error),
        "pose_prior.fit.pa_mpjpe": float(pa_error),
        "pose_prior.fit.reprojection_px": reprojection,
    }
    section = Section("pose_prior", "6. Prior-only fitting with the pose prior")
    section.paragraphs.append(
        "SMPLify-style fitting without the image: the body is fitted to image 0's noisy "
        "keypoints in the true camera, with the shipped unconditional pose prior as the only "
        f"pose regulariser (fit_prior_keypoints_2d, {PRIOR_HYPOTHESES} starts: the prior's mode "
        "and samples from it, the best kept). Result: 2D error "
        f"{reprojection:.2f} px, MPJPE {_mm(float(error))} mm, PA-MPJPE {_mm(float(pa_error))} "
        f"mm, against {_mm(prohmr_pa)} mm PA-MPJPE for ProHMR's keypoint fit of the same image "
        "(step 3), whose prior also sees the image."
    )
    focal, centre = crop_camera(view.sample.focal_length, principal, view)
    path = figures_dir / "06_pose_prior_fit.png"
    plot_mesh_overlay(
        view.display, _numpy(fit.vertices[0, 0]), body.faces.cpu().numpy(), np.zeros(3),
        focal, centre,
        title=f"image 0, pose prior only: PA-MPJPE {_mm(float(pa_error))} mm "
              f"(ProHMR fit: {_mm(prohmr_pa)} mm)",
        save=path,
    )
    section.figures.append((path, "The body fitted with the pose prior alone, over the image "
                                  "and from the side."))
    return metrics, section


def evaluation_section(
    prohmr_errors: dict[str, dict[int, torch.Tensor]],
    proskeleton_errors: dict[str, dict[int, torch.Tensor]],
    figures_dir: Path,
) -> Section:
    """Step 7: the min-of-n curves of both probabilistic models."""
    ns = list(prohmr_errors["mpjpe"])
    curves = {
        f"{name} {label}": [float(errors[metric][n].mean()) for n in ns]
        for name, errors in (("ProHMR", prohmr_errors), ("ProSkeleton", proskeleton_errors))
        for metric, label in (("mpjpe", "MPJPE"), ("pa_mpjpe", "PA-MPJPE"))
    }
    path = figures_dir / "07_min_of_n.png"
    plot_min_of_n(ns, curves, ylabel="error (mm)", save=path,
                  title="best of the first N samples (sample 1 = the mode)")
    section = Section("evaluation", "7. Evaluation against the ground truth")
    section.paragraphs.append(
        "Every number of the demo is in the metrics table at the top. MPJPE: mean joint "
        "error after centring at the pelvis; "
        "PA-MPJPE: after the best similarity alignment. ProHMR and the fits: 14 LSP joints of "
        "ProHMR's 44; ProSkeleton: 17 H36M joints. Min-of-n: the error of the best of the "
        "first n samples, the mode included (so it never exceeds the mode's)."
    )
    section.figures.append((path, "Min-of-n error against the number of samples."))
    return section
