"""Time ``prohmr.fitting.fit_keypoints`` against the original keypoint-fitting procedure.

Both fit ProHMR's default-size flow (hidden 1024, 4 layers, 2048-d context) with the
original's loss and L-BFGS settings (lr 1, strong Wolfe, 20 inner iterations, relative-change
stop) to synthetic keypoints in the crop camera. Image features are random 2048-d vectors
(fitting never runs the backbone). The flow's ActNorm layers are data-initialised on
plausible poses, as after training, so that the mode is a valid pose.

- **reference**: the original procedure, literally: the flow (and head) stay trainable,
  ``model.flow(features, z=z)`` recomputes the context projections and the head at every
  closure call, the full body model (6890 vertices) gives the joints, one image at a time,
  ``torch.optim.LBFGS`` on ``[z, betas, camera_translation]``;
- **project**: ``fit_keypoints`` (frozen weights, context computed once, joints from the
  vertex subset that defines them, one L-BFGS state per person), one image per call and 32
  people in one call.

Reported: wall time per image (median over the reference images), time per loss evaluation,
final losses (the two optimisers take slightly different paths, so the losses are shown to
compare quality), and throughput for 32 people.

Run: ``python benchmarks/bench_fitting.py``. Environment: ``PROHMR_BENCH_THREADS`` (default
2), ``PROHMR_BENCH_STEPS`` (outer L-BFGS steps, default 10 as in the original demo),
``PROHMR_BENCH_IMAGES`` (images timed one at a time, default 3), ``PROHMR_BENCH_BATCH``
(people fitted at once, default 32).
"""

from __future__ import annotations

import os
import platform
import statistics
import time

import torch

from prohmr.constants import NUM_BETAS
from prohmr.fitting import KeypointFitWeights, LBFGSSettings, fit_keypoints, gmof
from prohmr.geometry import axis_angle_to_matrix, perspective_projection
from prohmr.models.config import ProHMRConfig
from prohmr.models.prohmr import ProHMR

FACING_CAMERA = torch.diag(torch.tensor([1.0, -1.0, -1.0]))


def build_model(generator: torch.Generator) -> ProHMR:
    """Default-size ProHMR whose prior is centred on plausible poses (no trained weights)."""
    means = {"shape": torch.zeros(NUM_BETAS), "cam": torch.tensor([0.9, 0.0, 0.0])}
    model = ProHMR(ProHMRConfig(), mean_params=means)
    count = 256
    body = 0.3 * torch.randn(count, 23, 3, generator=generator)
    rotations = torch.cat(
        [FACING_CAMERA.expand(count, 1, 3, 3), axis_angle_to_matrix(body)], dim=1
    )
    features = torch.randn(count, 2048, generator=generator).abs()
    model.train()
    model.initialize_flow(
        {"global_orient": rotations[:, :1], "body_pose": rotations[:, 1:]}, features
    )
    with torch.no_grad():
        for net in model.flow.flow.coupling_nets():
            net.final_layer.weight.normal_(0.0, 0.3 / 1024**0.5, generator=generator)
    return model.eval()


def synthetic_people(
    model: ProHMR, count: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Features ``(count, 2048)`` and all-confident keypoints ``(count, 44, 3)`` (crop coords)."""
    features = torch.randn(count, 2048, generator=generator).abs()
    z = 0.6 * torch.randn(count, 1, 144, generator=generator)
    with torch.no_grad():
        truth = model.predict_from_features(features, z=z)
    keypoints = torch.cat([truth.joints_2d[:, 0], torch.ones(count, 44, 1)], dim=-1)
    return features, keypoints


def reference_fit(
    model: ProHMR, features: torch.Tensor, keypoints: torch.Tensor, steps: int
) -> tuple[float, int]:
    """The original procedure for one image; returns the final loss and the evaluations."""
    weights = KeypointFitWeights()
    config = model.config
    with torch.no_grad():
        start = model.predict_from_features(features, z=torch.zeros(1, 1, 144))
    z = torch.zeros(1, 144, requires_grad=True)
    betas = start.betas[:, 0].detach().clone().requires_grad_(True)
    translation = start.camera_translation[:, 0].detach().clone().requires_grad_(True)
    pixels = keypoints.clone()
    pixels[..., :2] = pixels[..., :2] * config.image_size
    scale = (weights.keypoint_scale / config.image_size) ** 2
    optimizer = torch.optim.LBFGS(
        [z, betas, translation], lr=1, max_iter=20, line_search_fn="strong_wolfe"
    )
    evaluations = 0

    def loss_of() -> torch.Tensor:
        params = model.flow(features, z=z[:, None])
        body = model.body_model(params.global_orient[:, 0], params.body_pose[:, 0], betas)
        projected = perspective_projection(body.joints, translation, config.focal_length)
        residual = gmof(projected - pixels[..., :2], weights.gmof_sigma).sum(-1)
        reprojection = scale * (pixels[..., 2] ** 2 * residual).sum(-1)
        loss = (
            reprojection
            + weights.pose_prior**2 * (z**2).sum(-1)
            + weights.shape_prior**2 * (betas**2).sum(-1)
        ).sum()
        return loss

    def closure() -> torch.Tensor:
        nonlocal evaluations
        evaluations += 1
        optimizer.zero_grad()
        loss = loss_of()
        loss.backward()
        return loss

    previous = None
    for _ in range(steps):
        loss = float(optimizer.step(closure).detach())
        if previous is not None and abs(previous - loss) / max(abs(previous), abs(loss), 1) < 1e-9:
            break
        previous = loss
    with torch.no_grad():
        final = float(loss_of())
    return final, evaluations


def main() -> None:
    threads = int(os.environ.get("PROHMR_BENCH_THREADS", "2"))
    steps = int(os.environ.get("PROHMR_BENCH_STEPS", "10"))
    images = int(os.environ.get("PROHMR_BENCH_IMAGES", "3"))
    batch = int(os.environ.get("PROHMR_BENCH_BATCH", "32"))
    torch.set_num_threads(threads)
    generator = torch.Generator().manual_seed(0)
    model = build_model(generator)
    features, keypoints = synthetic_people(model, batch, generator)
    settings = LBFGSSettings(max_steps=steps)

    reference_times, reference_losses, reference_evaluations = [], [], []
    project_times, project_losses, project_evaluations = [], [], []
    for index in range(images):
        one = slice(index, index + 1)
        started = time.perf_counter()
        loss, evaluations = reference_fit(model, features[one], keypoints[one], steps)
        reference_times.append(time.perf_counter() - started)
        reference_losses.append(loss)
        reference_evaluations.append(evaluations)
        started = time.perf_counter()
        fit = fit_keypoints(model, keypoints[one], features=features[one], use_hips=True,
                            settings=settings)
        project_times.append(time.perf_counter() - started)
        project_losses.append(float(fit.loss[0]))
        project_evaluations.append(int(fit.evaluations[0]))
    started = time.perf_counter()
    batched = fit_keypoints(model, keypoints, features=features, use_hips=True, settings=settings)
    batched_time = time.perf_counter() - started

    reference_per_image = statistics.median(reference_times)
    project_per_image = statistics.median(project_times)
    reference_per_evaluation = sum(reference_times) / sum(reference_evaluations)
    project_per_evaluation = sum(project_times) / sum(project_evaluations)
    print(
        f"# bench_fitting: torch {torch.__version__}, {threads} threads, "
        f"{platform.processor() or platform.machine()}, {steps} outer steps, "
        f"{images} images one at a time, {batch} people batched"
    )
    print()
    print("| case | time per image (s) | evaluations per image | ms per evaluation | "
          "final loss (mean) | people/s |")
    print("|---|---:|---:|---:|---:|---:|")
    print(
        f"| reference, one image at a time | {reference_per_image:.2f} | "
        f"{statistics.mean(reference_evaluations):.0f} | {1000 * reference_per_evaluation:.1f} | "
        f"{statistics.mean(reference_losses):.2f} | {1 / reference_per_image:.2f} |"
    )
    print(
        f"| project, one image at a time | {project_per_image:.2f} | "
        f"{statistics.mean(project_evaluations):.0f} | {1000 * project_per_evaluation:.1f} | "
        f"{statistics.mean(project_losses):.2f} | {1 / project_per_image:.2f} |"
    )
    print(
        f"| project, {batch} people in one call | {batched_time / batch:.2f} | "
        f"{float(batched.evaluations.float().mean()):.0f} | - | "
        f"{float(batched.loss[:images].mean()):.2f} (first {images}) | {batch / batched_time:.2f} |"
    )
    print()
    print(f"per-image speed-up: {reference_per_image / project_per_image:.1f}x; "
          f"batched throughput vs one-at-a-time reference: "
          f"{(batch / batched_time) * reference_per_image:.1f}x")


if __name__ == "__main__":
    main()
