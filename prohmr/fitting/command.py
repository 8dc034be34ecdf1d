"""``prohmr fit``: fit ProHMR to the people of an image (or to one person seen in several views).

:func:`run_fit_command` does everything the command does except printing: it reads the image
and its keypoints (OpenPose BODY_25 JSON or COCO), crops every person around their keypoints,
runs the model, fits (:func:`~prohmr.fitting.fit_keypoints` in the full-frame camera, or
:func:`~prohmr.fitting.fit_multiview` with its reprojection term when other views are given)
and writes, per person (or per view):

- ``<stem>.obj``: the mesh in camera space, converted to the usual viewer axes (y up, the
  camera looking down −z, i.e. ``(x, −y, −z)`` of the camera frame);
- ``<stem>_params.npz`` and ``<stem>_params.json``: SMPL parameters (rotation matrices and
  axis-angle), camera, joints, keypoints and fitting statistics;
- ``<stem>_overlay.png``: the mesh rendered over the image;
- ``<stem>_side.png``: a side view of the mesh.

``<stem>`` is ``person_00``, ``person_01``, ... (or ``view_00``, ... in multi-view mode).
Bad input raises ``FileNotFoundError`` or ``ValueError`` with a one-line message, which the
command line turns into exit code 2.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from prohmr.constants import IMAGENET_MEAN, IMAGENET_STD
from prohmr.data.cropping import apply_affine, crop_image, crop_transform
from prohmr.fitting.keypoint_fitting import HIP_JOINTS, fit_keypoints
from prohmr.fitting.keypoints_io import read_keypoints
from prohmr.fitting.multiview import fit_multiview
from prohmr.fitting.optimizer import LBFGSSettings
from prohmr.geometry import matrix_to_axis_angle, pixel_to_normalized
from prohmr.models.loading import load_model
from prohmr.models.prohmr import ProHMR
from prohmr.visualization.body_views import plot_body_views
from prohmr.visualization.figures import save_image
from prohmr.visualization.overlays import render_mesh_overlay

__all__ = [
    "BOX_RESCALE",
    "MIN_BOX_SIZE",
    "FitReport",
    "PersonFit",
    "box_from_keypoints",
    "keypoints_sidecar",
    "run_fit_command",
    "write_obj",
]

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]

#: The crop box is the keypoints' bounding box enlarged by this factor (as ProHMR's demo).
BOX_RESCALE: float = 1.2
#: Smallest crop box side in pixels (for people with very few keypoints).
MIN_BOX_SIZE: float = 32.0
_MESH_ALPHA = 0.85
# Camera frame (x right, y down, z forward) to viewer axes (y up, looking down -z).
_VIEWER_AXES = np.array([1.0, -1.0, -1.0])


@dataclass
class PersonFit:
    """One fitted person (or view) of :func:`run_fit_command`.

    *Fields*
        index: person index in the keypoint file (or view index).
        keypoints_used: joints with confidence > 0 that the fit used.
        reprojection_error_before, reprojection_error_after: mean distance in image pixels
            between the projected joints and the keypoints, at the regression and after
            fitting.
        iterations: outer L-BFGS steps.
        files: what was written, by kind (``obj``, ``npz``, ``json``, ``overlay``, ``side``).
    """

    index: int
    keypoints_used: int
    reprojection_error_before: float
    reprojection_error_after: float
    iterations: int
    files: dict[str, Path] = field(default_factory=dict)


@dataclass
class FitReport:
    """What :func:`run_fit_command` did.

    *Fields*
        out_dir: the output folder.
        people: one :class:`PersonFit` per fitted person (or view).
        skipped: indices of people without any usable keypoint.
        seconds: wall time of the fitting itself (all people at once).
        multiview: whether the views were fitted jointly.
        table_lines: the summary table, one string per line.
    """

    out_dir: Path
    people: list[PersonFit]
    skipped: list[int]
    seconds: float
    multiview: bool
    table_lines: list[str] = field(default_factory=list)


def keypoints_sidecar(image: PathLike) -> Path:
    """The keypoint file expected next to an image: ``<stem>_keypoints.json`` (OpenPose's name).

    *Example*
        >>> keypoints_sidecar("frames/img_001.jpg").as_posix()
        'frames/img_001_keypoints.json'
    """
    image = Path(image)
    return image.with_name(f"{image.stem}_keypoints.json")


def box_from_keypoints(keypoints: torch.Tensor) -> tuple[np.ndarray, float]:
    """Square crop box around the confident keypoints of one person.

    *Arguments*
        keypoints: ``(J, 3)`` ``(x, y, confidence)`` in pixels, some confidence > 0.

    *Returns*
        ``(centre (2,), side)``: the centre of their bounding box and its larger side times
        :data:`BOX_RESCALE` (at least :data:`MIN_BOX_SIZE`).

    *Example*
        >>> keypoints = torch.tensor([[10.0, 20.0, 1.0], [110.0, 220.0, 0.5], [0.0, 0.0, 0.0]])
        >>> centre, side = box_from_keypoints(keypoints)
        >>> centre.tolist(), side
        ([60.0, 120.0], 240.0)
    """
    used = keypoints[keypoints[:, 2] > 0, :2].double().cpu().numpy()
    if len(used) == 0:
        raise ValueError("box_from_keypoints: no keypoint with confidence > 0")
    low, high = used.min(axis=0), used.max(axis=0)
    side = max(BOX_RESCALE * float((high - low).max()), MIN_BOX_SIZE)
    return (low + high) / 2.0, side


def write_obj(path: PathLike, vertices: np.ndarray, faces: np.ndarray) -> Path:
    """Write a triangle mesh as Wavefront OBJ (1-based face indices).

    *Arguments*
        path: the file to write.
        vertices: ``(V, 3)``.
        faces: ``(F, 3)`` 0-based vertex indices.

    *Returns*
        The path written.
    """
    path = Path(path)
    lines = [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in np.asarray(vertices, dtype=np.float64)]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in np.asarray(faces, dtype=np.int64)]
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
    return path


def _read_image(path: PathLike) -> np.ndarray:
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    try:
        with Image.open(path) as opened:
            return np.asarray(ImageOps.exif_transpose(opened).convert("RGB"))
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"cannot read image {path}: {error}") from error


def _read_people(image: Path, keypoints: Optional[PathLike]) -> tuple[torch.Tensor, Path]:
    path = keypoints_sidecar(image) if keypoints is None else Path(keypoints).expanduser()
    if keypoints is None and not path.is_file():
        raise FileNotFoundError(
            f"no keypoints given for {image} and no {path.name} next to it; pass --keypoints "
            "(OpenPose BODY_25 JSON or COCO keypoints)"
        )
    people = read_keypoints(path, image_name=image.name)
    if people.shape[0] == 0:
        raise ValueError(f"no person in the keypoint file {path}")
    return people, path


def _crop(image: np.ndarray, centre: np.ndarray, side: float, size: int) -> torch.Tensor:
    """ImageNet-normalised ``(3, size, size)`` crop of the box."""
    pixels = crop_image(image, crop_transform(centre, side, 0.0, size), size)
    tensor = torch.from_numpy(pixels.astype(np.float32) / 255.0).permute(2, 0, 1)
    mean = torch.tensor(IMAGENET_MEAN)[:, None, None]
    std = torch.tensor(IMAGENET_STD)[:, None, None]
    return (tensor - mean) / std


def _model(model: Union[None, str, PathLike, ProHMR], device: Optional[str], trust: bool) -> ProHMR:
    if isinstance(model, ProHMR):
        return model if device is None else model.to(device)
    return load_model(model, device=device, trust_checkpoint=trust)


def _write_outputs(
    out_dir: Path,
    stem: str,
    image: np.ndarray,
    faces: torch.Tensor,
    record: dict[str, Any],
    render_camera: tuple[float, torch.Tensor],
) -> dict[str, Path]:
    """Write the mesh, parameters, overlay and side view of one person."""
    vertices_cam = record["vertices"] + record["camera_translation"][None]
    viewer = vertices_cam.detach().cpu().double().numpy() * _VIEWER_AXES
    faces_np = faces.cpu().numpy()
    files = {"obj": write_obj(out_dir / f"{stem}.obj", viewer, faces_np)}
    arrays = {
        key: value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
        for key, value in record.items()
    }
    arrays["global_orient_axis_angle"] = matrix_to_axis_angle(record["global_orient"]).cpu().numpy()
    arrays["body_pose_axis_angle"] = matrix_to_axis_angle(record["body_pose"]).cpu().numpy()
    files["npz"] = out_dir / f"{stem}_params.npz"
    np.savez(files["npz"], **arrays)
    summary = {key: value.tolist() for key, value in arrays.items() if key != "vertices"}
    files["json"] = out_dir / f"{stem}_params.json"
    files["json"].write_text(json.dumps(summary, indent=1), encoding="utf-8")
    focal, principal = render_camera
    files["overlay"] = save_image(
        render_mesh_overlay(
            image, record["vertices"], faces, record["camera_translation"], focal, principal,
            alpha=_MESH_ALPHA,
        ),
        out_dir / f"{stem}_overlay.png",
    )
    files["side"] = out_dir / f"{stem}_side.png"
    plot_body_views(viewer, faces_np, views=("side",), title=stem, save=files["side"])
    return files


def _table(people: list[PersonFit], label: str, seconds: float, multiview: bool) -> list[str]:
    lines = [
        f"{label:>6}  {'keypoints':>9}  {'error before (px)':>17}  {'error after (px)':>16}  "
        f"{'iterations':>10}"
    ]
    for person in people:
        lines.append(
            f"{person.index:>6}  {person.keypoints_used:>9}  "
            f"{person.reprojection_error_before:>17.2f}  "
            f"{person.reprojection_error_after:>16.2f}  {person.iterations:>10}"
        )
    what = "views jointly" if multiview else "people"
    lines.append(f"fitted {len(people)} {what} in {seconds:.2f} s")
    return lines


def run_fit_command(
    image: PathLike,
    keypoints: Optional[PathLike] = None,
    model: Union[None, str, PathLike, ProHMR] = None,
    views: Sequence[PathLike] = (),
    out_dir: PathLike = "fit_output",
    *,
    device: Optional[str] = None,
    use_hips: bool = False,
    max_steps: int = LBFGSSettings().max_steps,
    trust_checkpoint: bool = False,
) -> FitReport:
    """Everything ``prohmr fit`` does except printing (module docstring).

    *Arguments*
        image: the image file.
        keypoints: its keypoint file (OpenPose BODY_25 JSON, every person; or COCO
            keypoints); default ``<image stem>_keypoints.json`` next to the image.
        model: a model name, a checkpoint path (see :func:`~prohmr.models.loading.load_model`)
            or a loaded :class:`~prohmr.models.ProHMR`.
        views: other images of the same person; each needs ``<stem>_keypoints.json`` next to
            it. With views, the first person of every view's keypoints is fitted jointly by
            :func:`~prohmr.fitting.fit_multiview` with the per-view reprojection term.
        out_dir: output folder (created).
        device: where to run (default: CPU, or the given model's device).
        use_hips: keep the hip keypoints (see :func:`~prohmr.fitting.fit_keypoints`).
        max_steps: outer L-BFGS steps.
        trust_checkpoint: allow full unpickling of the checkpoint (trusted files only).

    *Returns*
        :class:`FitReport` (its ``table_lines`` are what the command prints).

    *Raises*
        FileNotFoundError for a missing image, keypoint or checkpoint file; ValueError for
        unreadable input, no person, no usable keypoint (all confidences zero) or NaN.
    """
    image_path = Path(image).expanduser()
    pixels = _read_image(image_path)
    people, keypoint_path = _read_people(image_path, keypoints)
    network = _model(model, device, trust_checkpoint)
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    settings = LBFGSSettings(max_steps=max_steps)
    if views:
        entries = [(image_path, pixels, people, keypoint_path)]
        for view in views:
            view_path = Path(view).expanduser()
            entries.append((view_path, _read_image(view_path), *_read_people(view_path, None)))
        report = _fit_views(network, entries, out, use_hips, settings)
    else:
        report = _fit_people(network, pixels, people, out, use_hips, settings)
    logger.info("prohmr fit: wrote %d result sets to %s", len(report.people), out)
    return report


def _usable(people: torch.Tensor, use_hips: bool) -> torch.Tensor:
    confidence = people[..., 2].clone()
    if not use_hips:
        confidence[..., list(HIP_JOINTS)] = 0.0
    return confidence > 0


def _fit_people(
    model: ProHMR,
    image: np.ndarray,
    people: torch.Tensor,
    out: Path,
    use_hips: bool,
    settings: LBFGSSettings,
) -> FitReport:
    usable = _usable(people, use_hips)
    keep = usable.any(dim=-1).nonzero()[:, 0].tolist()
    skipped = [index for index in range(people.shape[0]) if index not in keep]
    if not keep:
        raise ValueError(
            "no person has a usable keypoint (all confidences are zero"
            f"{'' if use_hips else ' outside the hips'})"
        )
    for index in skipped:
        logger.warning("prohmr fit: person %d has no usable keypoint; skipped", index)
    size = model.config.image_size
    boxes = [box_from_keypoints(people[index]) for index in keep]
    crops = torch.stack([_crop(image, centre, side, size) for centre, side in boxes])
    device = model.flow.flow.device
    height, width = image.shape[:2]
    count = len(keep)
    started = time.perf_counter()
    fit = fit_keypoints(
        model,
        people[keep],
        images=crops.to(device),
        mode="full_frame",
        box_center=torch.tensor(np.stack([centre for centre, _ in boxes])),
        box_size=torch.tensor([side for _, side in boxes]),
        image_size=torch.tensor([[width, height]], dtype=torch.float64).expand(count, 2),
        use_hips=use_hips,
        settings=settings,
    )
    seconds = time.perf_counter() - started
    faces = model.body_model.faces
    results = []
    for row, index in enumerate(keep):
        record = {
            "global_orient": fit.global_orient[row], "body_pose": fit.body_pose[row],
            "betas": fit.betas[row], "camera_translation": fit.camera_translation[row],
            "z": fit.z[row], "vertices": fit.vertices[row], "joints_3d": fit.joints_3d[row],
            "joints_2d": fit.joints_2d[row], "keypoints_2d": people[index],
            "focal_length": fit.focal_length, "principal_point": fit.principal_point[row],
            "box_center": boxes[row][0], "box_size": boxes[row][1],
            "image_size": np.array([width, height]),
            "loss": fit.loss[row], "reprojection_loss": fit.reprojection_loss[row],
            "pose_prior_loss": fit.pose_prior_loss[row],
            "shape_prior_loss": fit.shape_prior_loss[row],
            "reprojection_error_before": fit.initial_reprojection_error[row],
            "reprojection_error_after": fit.reprojection_error[row],
            "iterations": fit.iterations[row],
        }
        files = _write_outputs(out, f"person_{index:02d}", image, faces, record,
                               (fit.focal_length, fit.principal_point[row]))
        results.append(PersonFit(
            index=index,
            keypoints_used=int(_usable(people[index], use_hips).sum()),
            reprojection_error_before=float(fit.initial_reprojection_error[row]),
            reprojection_error_after=float(fit.reprojection_error[row]),
            iterations=int(fit.iterations[row]),
            files=files,
        ))
    table = _table(results, "person", seconds, False)
    return FitReport(out, results, skipped, seconds, False, table)


def _fit_views(
    model: ProHMR,
    entries: list[tuple[Path, np.ndarray, torch.Tensor, Path]],
    out: Path,
    use_hips: bool,
    settings: LBFGSSettings,
) -> FitReport:
    size = model.config.image_size
    crops, crop_keypoints, boxes = [], [], []
    for view_path, pixels, people, keypoint_path in entries:
        if people.shape[0] > 1:
            logger.warning("prohmr fit: %s lists %d people; fitting the first", keypoint_path,
                           people.shape[0])
        person = people[0]
        if not _usable(person, use_hips).any():
            raise ValueError(f"the person in {keypoint_path} has no usable keypoint")
        centre, side = box_from_keypoints(person)
        transform = crop_transform(centre, side, 0.0, size)
        crops.append(_crop(pixels, centre, side, size))
        in_crop = apply_affine(person.double(), transform).float()
        crop_keypoints.append(pixel_to_normalized(in_crop, size))
        boxes.append((centre, side))
    device = model.flow.flow.device
    started = time.perf_counter()
    fit = fit_multiview(
        model,
        images=torch.stack(crops)[None].to(device),
        keypoints_2d=torch.stack(crop_keypoints)[None],
        use_hips=use_hips,
        settings=settings,
    )
    seconds = time.perf_counter() - started
    faces = model.body_model.faces
    focal = float(model.config.focal_length)
    results = []
    for view, (view_path, pixels, people, _) in enumerate(entries):
        centre, side = boxes[view]
        to_image = side / size
        record = {
            "global_orient": fit.global_orient[0, view], "body_pose": fit.body_pose[0, view],
            "betas": fit.betas[0], "camera_translation": fit.camera_translation[0, view],
            "z": fit.z[0, view], "vertices": fit.vertices[0, view],
            "joints_3d": fit.joints_3d[0, view], "joints_2d_crop": fit.joints_2d[0, view],
            "keypoints_2d": people[0], "crop_focal_length": focal,
            "box_center": centre, "box_size": side,
            "image_size": np.array([pixels.shape[1], pixels.shape[0]]),
            "loss": fit.loss[0], "consistency_loss": fit.consistency_loss[0],
            "reprojection_loss": fit.reprojection_loss[0],
            "pose_prior_loss": fit.pose_prior_loss[0],
            "reprojection_error_before": fit.initial_reprojection_error[0, view] * to_image,
            "reprojection_error_after": fit.reprojection_error[0, view] * to_image,
            "iterations": fit.iterations[0],
        }
        # The crop camera seen in image pixels: focal scaled by the box, centred on the box.
        principal = torch.as_tensor(centre, dtype=torch.float32)
        files = _write_outputs(out, f"view_{view:02d}", pixels, faces, record,
                               (focal * to_image, principal))
        results.append(PersonFit(
            index=view,
            keypoints_used=int(_usable(people[0], use_hips).sum()),
            reprojection_error_before=float(fit.initial_reprojection_error[0, view]) * to_image,
            reprojection_error_after=float(fit.reprojection_error[0, view]) * to_image,
            iterations=int(fit.iterations[0]),
            files=files,
        ))
    return FitReport(out, results, [], seconds, True, _table(results, "view", seconds, True))
