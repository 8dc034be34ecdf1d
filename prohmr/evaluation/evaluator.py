"""Run a ProHMR model over a dataset ``.npz`` and score it under a protocol (SPEC §7).

:func:`evaluate` reads a dataset in the library's format (:class:`prohmr.data.ImageDataset`),
keeps the rows its :class:`~prohmr.evaluation.protocols.EvaluationProtocol` selects, and for
every image draws ``num_samples`` poses, sample 0 being the mode (``z = 0``). Per image it
records:

- ``"<metric>/mode"``: the error of the mode, for each metric of the protocol (MPJPE,
  PA-MPJPE, PVE; millimetres);
- ``"<metric>/min_of_<n>"``: the smallest error among the first ``n`` samples (mode
  included), for each ``n``; each metric picks its own best sample;
- ``"<metric>/kmeans_<n>"`` (``kmeans=True``, joint metrics only): all ``num_samples``
  samples quantised to ``n`` K-means centres, the best centre (the paper's procedure for
  small ``n`` with 4096 samples);
- ``"log_likelihood"``: ``log p(θ_gt | image)`` of the ground-truth pose under the flow
  (nats, density of the 144-D 6D representation), where the row has an SMPL pose label;
- ``"coverage_quantile/<level>"`` and ``"coverage_radial/<level>"``: calibration of the
  random samples (the mode excluded) against the ground truth
  (:func:`~prohmr.evaluation.sample_quantile_calibration`,
  :func:`~prohmr.evaluation.radial_calibration`); a calibrated model covers about
  ``level``.

Undefined values (no SMPL label for PVE or the likelihood) are NaN. Ground-truth joints come
from the ``.npz``'s 3D keypoints when every joint the protocol needs has confidence > 0,
otherwise from the model's body model posed with the ground-truth SMPL pose and betas (the
per-row source is recorded). PVE poses the same body model with the ground-truth parameters.

Results are deterministic: the latents of row ``r`` come from
``numpy.random.default_rng((seed, r))``, whatever the batch size, device or ``max_items``.
:class:`EvaluationResult` holds the per-image arrays and their means, and writes them as JSON.
:func:`run_eval_command` is the ``prohmr eval`` command without the printing.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset
from tqdm.auto import tqdm

from prohmr.constants import NUM_SMPL_JOINTS, POSE_6D_DIM
from prohmr.data.image_dataset import ImageDataset
from prohmr.evaluation.metrics import pve
from prohmr.evaluation.probabilistic import (
    DEFAULT_LEVELS,
    DEFAULT_NUM_SAMPLES,
    min_of_n_kmeans,
    mode_error,
    radial_calibration,
    sample_quantile_calibration,
)
from prohmr.evaluation.probabilistic import min_of_n as min_of_n_errors
from prohmr.evaluation.protocols import EvaluationProtocol, get_protocol, select_frames
from prohmr.geometry import axis_angle_to_matrix
from prohmr.models.loading import load_model
from prohmr.models.prohmr import ProHMR

__all__ = [
    "DEFAULT_EVAL_SAMPLES",
    "DEFAULT_BATCH_SIZE",
    "SAMPLES_PER_CHUNK",
    "RESULT_FORMAT",
    "RESULT_FORMAT_VERSION",
    "JOINT_METRICS",
    "METRIC_LABELS",
    "EvaluationResult",
    "default_image_root",
    "sample_latents",
    "evaluate",
    "run_eval_command",
]

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]

#: Samples per image drawn by default (the paper's largest ``n``).
DEFAULT_EVAL_SAMPLES: int = 25
#: Images per batch by default.
DEFAULT_BATCH_SIZE: int = 8
#: Images × samples posed by the body model at once; bounds the memory of the meshes.
SAMPLES_PER_CHUNK: int = 256
#: ``format`` entry of the JSON files written by :meth:`EvaluationResult.to_json`.
RESULT_FORMAT: str = "prohmr.EvaluationResult"
#: Version of that layout.
RESULT_FORMAT_VERSION: int = 1
#: Metrics computed from joints (the rest, PVE, from vertices).
JOINT_METRICS: tuple[str, ...] = ("mpjpe", "pa_mpjpe")
#: Printed names of the metrics.
METRIC_LABELS: dict[str, str] = {"mpjpe": "MPJPE", "pa_mpjpe": "PA-MPJPE", "pve": "PVE"}

_UNITS = {
    "errors": "mm",
    "log_likelihood": "nats (density of the 144-D 6D pose representation)",
    "coverage": "fraction of (joint, axis) pairs or joints",
}
_GT_KEYPOINTS = "keypoints_3d"
_GT_BODY_MODEL = "body_model"


def _mean(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else None


@dataclass
class EvaluationResult:
    """Per-image errors and their means for one model, dataset and protocol.

    Attributes:
        protocol: the :class:`~prohmr.evaluation.protocols.EvaluationProtocol`.
        num_samples: samples drawn per image (sample 0 the mode).
        ns: the ``n`` of min-of-n.
        kmeans: whether the K-means min-of-n was computed.
        seed: seed of the latents.
        levels: nominal levels of the calibration metrics.
        rows: ``(M,)`` int64 rows of the ``.npz`` that were evaluated.
        imgname: ``(M,)`` their image names.
        gt_source: ``(M,)`` ``"keypoints_3d"`` or ``"body_model"``: where each row's
            ground-truth joints came from.
        per_item: ``{name: (M,) float64}`` (names in the module docstring); NaN where a value
            is undefined for a row.
        dataset: description of the dataset (path, image root, row counts).
        model: description of the model (name, configuration, parameter count).
        notes: the protocol's caveats and those of this run.
    """

    protocol: EvaluationProtocol
    num_samples: int
    ns: tuple[int, ...]
    kmeans: bool
    seed: int
    levels: tuple[float, ...]
    rows: np.ndarray
    imgname: np.ndarray
    gt_source: np.ndarray
    per_item: dict[str, np.ndarray]
    dataset: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def num_items(self) -> int:
        """``M``, the number of evaluated images."""
        return int(len(self.rows))

    @property
    def aggregate(self) -> dict[str, float | None]:
        """``{name: mean over the images where it is defined}``; None where it never is."""
        return {name: _mean(values) for name, values in self.per_item.items()}

    @property
    def counts(self) -> dict[str, int]:
        """``{name: number of images where it is defined}``."""
        return {name: int(np.isfinite(values).sum()) for name, values in self.per_item.items()}

    def to_dict(self, per_item: bool = True) -> dict[str, Any]:
        """A JSON-able dict (NaN and undefined means become ``None``).

        Arguments:
            per_item: include the per-image arrays (``per_item`` entry).
        """
        joints = self.protocol.joints
        indices = joints.joint_indices
        result: dict[str, Any] = {
            "format": RESULT_FORMAT,
            "format_version": RESULT_FORMAT_VERSION,
            "protocol": self.protocol.to_dict(),
            "joint_set": {
                "name": joints.name,
                "joint_indices": None if indices is None else list(indices),
                "num_joints": None if indices is None else len(indices),
            },
            "pelvis": self.protocol.root_description(),
            "units": dict(_UNITS),
            "num_samples": self.num_samples,
            "n": list(self.ns),
            "kmeans": self.kmeans,
            "seed": self.seed,
            "levels": list(self.levels),
            "num_items": self.num_items,
            "aggregates": self.aggregate,
            "counts": self.counts,
            "model": self.model,
            "dataset": self.dataset,
            "notes": list(self.notes),
        }
        if per_item:
            result["per_item"] = {
                "row": self.rows.tolist(),
                "imgname": self.imgname.tolist(),
                "gt_source": self.gt_source.tolist(),
                "metrics": {
                    name: [float(v) if math.isfinite(v) else None for v in values.tolist()]
                    for name, values in self.per_item.items()
                },
            }
        return result

    def to_json(self, path: PathLike, per_item: bool = True) -> Path:
        """Write :meth:`to_dict` as JSON (parent folders are created).

        Returns:
            The path written.
        """
        path = Path(path).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_dict(per_item), indent=2, allow_nan=False)
        path.write_text(text + "\n", encoding="utf-8")
        return path

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> EvaluationResult:
        """The result written by :meth:`to_dict` (with its per-image arrays)."""
        if not isinstance(values, Mapping) or values.get("format") != RESULT_FORMAT:
            raise ValueError(
                f"EvaluationResult.from_dict: not a {RESULT_FORMAT!r} record (format "
                f"{values.get('format') if isinstance(values, Mapping) else None!r})"
            )
        if values.get("format_version") != RESULT_FORMAT_VERSION:
            raise ValueError(
                f"EvaluationResult.from_dict: format version {values.get('format_version')!r}"
                f" is not supported (this library reads {RESULT_FORMAT_VERSION})"
            )
        items = values.get("per_item")
        if not isinstance(items, Mapping):
            raise ValueError(
                "EvaluationResult.from_dict: the record has no per-image arrays (it was "
                "written with per_item=False)"
            )
        metrics = {
            name: np.array([np.nan if v is None else v for v in column], dtype=np.float64)
            for name, column in items["metrics"].items()
        }
        return cls(
            protocol=EvaluationProtocol.from_dict(values["protocol"]),
            num_samples=int(values["num_samples"]),
            ns=tuple(int(n) for n in values["n"]),
            kmeans=bool(values["kmeans"]),
            seed=int(values["seed"]),
            levels=tuple(float(level) for level in values["levels"]),
            rows=np.asarray(items["row"], dtype=np.int64),
            imgname=np.asarray(items["imgname"], dtype=str),
            gt_source=np.asarray(items["gt_source"], dtype=str),
            per_item=metrics,
            dataset=dict(values.get("dataset", {})),
            model=dict(values.get("model", {})),
            notes=tuple(values.get("notes", ())),
        )

    @classmethod
    def from_json(cls, path: PathLike) -> EvaluationResult:
        """Read a file written by :meth:`to_json`."""
        path = Path(path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"evaluation result file not found: {path}")
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"{path} is not a JSON file: {error}") from error
        return cls.from_dict(values)

    def table_lines(self) -> list[str]:
        """A readable summary: settings, one row per metric, likelihood, calibration, notes."""
        protocol = self.protocol
        aggregate = self.aggregate
        joints = protocol.joints
        num_joints = "all" if joints.joint_indices is None else len(joints.joint_indices)
        lines = [
            f"protocol  {protocol.name}: {protocol.title}",
            f"dataset   {self.dataset.get('path', '?')}: {self.num_items} images evaluated "
            f"({self.dataset.get('rows_selected', '?')} selected of "
            f"{self.dataset.get('rows_in_file', '?')} rows)",
            f"model     {self.model.get('name', '?')}",
            f"joints    {joints.name} ({num_joints} joints), root {protocol.root_description()};"
            f" {self.num_samples} samples per image, sample 0 = mode; errors in mm",
            "",
        ]
        columns = ["mode"] + [f"min-of-{n}" for n in self.ns]
        header = f"{'metric':<18}" + "".join(f"{name:>11}" for name in columns)
        lines += [header, "-" * len(header)]

        def cell(name: str) -> str:
            value = aggregate.get(name)
            return f"{'-' if value is None else f'{value:.1f}':>11}"

        for metric in protocol.metrics:
            if f"{metric}/mode" not in aggregate:
                continue
            label = METRIC_LABELS[metric] + (" *" if metric == protocol.headline else "")
            keys = [f"{metric}/mode"] + [f"{metric}/min_of_{n}" for n in self.ns]
            lines.append(f"{label:<18}" + "".join(cell(key) for key in keys))
            if self.kmeans and metric in JOINT_METRICS:
                keys = [f"{metric}/kmeans_{n}" for n in self.ns]
                lines.append(f"{label + ' k-means':<18}{'':>11}" + "".join(cell(k) for k in keys))
        lines.append(f"(* headline metric of {protocol.name}; min-of-n includes the mode)")
        counts = self.counts
        likelihood = aggregate.get("log_likelihood")
        if likelihood is not None:
            lines.append(
                f"log-likelihood of the ground-truth pose: {likelihood:.2f} nats "
                f"(mean over {counts['log_likelihood']} images with an SMPL pose)"
            )
        for kind, title in (("quantile", "per-axis quantile"), ("radial", "radial")):
            values = [aggregate.get(f"coverage_{kind}/{level}") for level in self.levels]
            if any(value is not None for value in values):
                pairs = ", ".join(
                    f"{level:.2f}: {'-' if value is None else f'{value:.2f}'}"
                    for level, value in zip(self.levels, values)
                )
                lines.append(f"coverage ({title}, nominal: observed)  {pairs}")
        lines += [f"note: {note}" for note in self.notes]
        return lines


def default_image_root(npz_path: PathLike) -> Path:
    """Where images are looked for when no image root is given: ``<npz folder>/images`` if it
    is a folder (the layout of :func:`prohmr.data.synthetic.synthesize_dataset`), else the
    ``.npz``'s folder."""
    folder = Path(npz_path).expanduser().parent
    return folder / "images" if (folder / "images").is_dir() else folder


def sample_latents(
    rows: Sequence[int], num_samples: int, seed: int = 0
) -> torch.Tensor:
    """The latents :func:`evaluate` uses: zeros for sample 0 (the mode), then standard normal
    draws from ``numpy.random.default_rng((seed, row))`` for each dataset row.

    Arguments:
        rows: the ``.npz`` rows of the images.
        num_samples: ``N >= 1``.
        seed: non-negative seed.

    Returns:
        ``(len(rows), N, 144)`` float64 tensor.

    Example:
        >>> z = sample_latents([4, 7], 3)
        >>> tuple(z.shape), bool((z[:, 0] == 0).all())
        ((2, 3, 144), True)
        >>> torch.equal(sample_latents([7], 3)[0], z[1])
        True
    """
    latents = np.zeros((len(rows), num_samples, POSE_6D_DIM))
    for position, row in enumerate(rows):
        rng = np.random.default_rng((int(seed), int(row)))
        latents[position, 1:] = rng.standard_normal((num_samples - 1, POSE_6D_DIM))
    return torch.from_numpy(latents)


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"evaluate: `{name}` must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_ns(ns: Any, num_samples: int) -> tuple[int, ...]:
    counts = tuple(ns) if isinstance(ns, (list, tuple)) else (ns,)
    if not counts or not all(
        isinstance(n, (int, np.integer)) and not isinstance(n, bool) and 1 <= n <= num_samples
        for n in counts
    ):
        raise ValueError(
            f"evaluate: `min_of_n` must be integers in [1, num_samples={num_samples}], got {ns!r}"
        )
    return tuple(sorted(set(int(n) for n in counts)))


def _check_levels(levels: Any) -> tuple[float, ...]:
    values = tuple(levels) if isinstance(levels, (list, tuple)) else ()
    if not values or not all(
        isinstance(level, (int, float)) and not isinstance(level, bool) and 0 < level < 1
        for level in values
    ):
        raise ValueError(f"evaluate: `levels` must be numbers in (0, 1), got {levels!r}")
    return tuple(float(level) for level in values)


def _open_dataset(
    dataset_or_npz: Any, image_root: PathLike | None, image_size: int
) -> ImageDataset:
    if isinstance(dataset_or_npz, ImageDataset):
        if dataset_or_npz.train:
            raise ValueError(
                "evaluate: the ImageDataset augments its items (train=True); evaluate on an "
                "ImageDataset built with train=False"
            )
        return dataset_or_npz
    if not isinstance(dataset_or_npz, (str, os.PathLike)):
        raise ValueError(
            "evaluate: `dataset_or_npz` must be an ImageDataset or the path of a dataset .npz, "
            f"got {type(dataset_or_npz).__name__}"
        )
    path = Path(dataset_or_npz).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"dataset file not found: {path}")
    if path.suffix != ".npz":
        raise ValueError(f"{path}: expected a dataset .npz file (SPEC §5 format)")
    root = default_image_root(path) if image_root is None else Path(image_root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"image root folder not found: {root}")
    return ImageDataset(path, root, train=False, image_size=image_size)


def _selection_arrays(dataset: ImageDataset, valid_key: str | None) -> dict[str, np.ndarray]:
    """``imgname`` and, when the file has it, the protocol's validity key."""
    arrays = {"imgname": dataset.imgname}
    if valid_key is not None:
        with np.load(dataset.npz_path, allow_pickle=False) as data:
            if valid_key in data.files:
                arrays[valid_key] = data[valid_key]
    return arrays


def _required_joints(protocol: EvaluationProtocol, num_joints: int) -> list[int]:
    """The joints whose ground truth the protocol reads (evaluated joints and root)."""
    joints = protocol.joints
    needed = set(range(num_joints) if joints.joint_indices is None else joints.joint_indices)
    if isinstance(joints.root, int):
        needed.add(joints.root)
    elif joints.root is not None:
        needed.update(joints.root)
    return sorted(needed)


def _ground_truth_sources(
    dataset: ImageDataset, rows: np.ndarray, protocol: EvaluationProtocol
) -> tuple[np.ndarray, np.ndarray]:
    """Per row: whether the 3D keypoints suffice, and whether SMPL pose and betas exist."""
    needed = _required_joints(protocol, dataset.keypoints_3d.shape[1])
    from_keypoints = (dataset.keypoints_3d[rows][:, needed, 3] > 0).all(axis=1)
    has_smpl = dataset.has_body_pose[rows] & dataset.has_betas[rows]
    missing = ~(from_keypoints | has_smpl)
    if missing.all():
        raise ValueError(
            f"{dataset.npz_path}: the dataset has no 3D ground truth for protocol "
            f"{protocol.name!r}: it needs body/extra_keypoints_3d with confidence > 0 at joints "
            f"{needed}, or SMPL body_pose and betas"
        )
    if missing.any():
        first = int(rows[np.flatnonzero(missing)[0]])
        raise ValueError(
            f"{dataset.npz_path}: {int(missing.sum())} of {len(rows)} selected rows have no 3D "
            f"ground truth for protocol {protocol.name!r} (e.g. row {first}, "
            f"{dataset.imgname[first]!r}): they need keypoints_3d with confidence > 0 at joints "
            f"{needed}, or SMPL body_pose and betas"
        )
    return from_keypoints, has_smpl


def _model_description(model: ProHMR, name: str | None) -> dict[str, Any]:
    return {
        "name": name if name is not None else type(model).__name__,
        "class": type(model).__name__,
        "config": model.config.to_dict(),
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "body_model": str(getattr(model.body_model, "model_file", "")),
    }


class _Accumulator:
    """Per-image values of every metric, gathered batch by batch."""

    def __init__(self) -> None:
        self.columns: dict[str, list[np.ndarray]] = {}

    def add(self, name: str, values: torch.Tensor) -> None:
        self.columns.setdefault(name, []).append(values.detach().double().cpu().numpy())

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: np.concatenate(parts) for name, parts in self.columns.items()}


@torch.no_grad()
def _evaluate_batch(
    model: ProHMR,
    batch: Mapping[str, Any],
    use_keypoints: torch.Tensor,
    has_smpl: torch.Tensor,
    settings: Mapping[str, Any],
    out: _Accumulator,
) -> None:
    """Draw the samples of one batch and add its per-image metrics to ``out``."""
    protocol: EvaluationProtocol = settings["protocol"]
    joints_protocol = protocol.joints
    device, dtype = settings["device"], settings["dtype"]
    num_samples: int = settings["num_samples"]
    ns: tuple[int, ...] = settings["ns"]
    images = batch["img"].to(device=device, dtype=dtype)
    batch_size = images.shape[0]
    rows = batch["idx"].tolist()
    features = model.features(images)

    params = batch["smpl_params"]
    axis_angle = torch.cat([params["global_orient"], params["body_pose"]], dim=-1)
    rotations = axis_angle_to_matrix(
        axis_angle.to(device=device, dtype=dtype).reshape(batch_size, NUM_SMPL_JOINTS, 3)
    )
    betas = params["betas"].to(device=device, dtype=dtype)
    need_body = bool(has_smpl.any()) and (
        "pve" in protocol.metrics or not bool(use_keypoints.all())
    )
    gt_joints = batch["keypoints_3d"][..., :3].to(device=device, dtype=torch.float64)
    gt_vertices = None
    if need_body:
        body = model.body_model(rotations[:, :1], rotations[:, 1:], betas)
        gt_joints = torch.where(
            use_keypoints.to(device)[:, None, None], gt_joints, body.joints.double()
        )
        gt_vertices = body.vertices.double()
    compute_pve = "pve" in protocol.metrics and gt_vertices is not None

    latents = sample_latents(rows, num_samples, settings["seed"]).to(device=device, dtype=dtype)
    chunk = max(1, SAMPLES_PER_CHUNK // batch_size)
    sample_joints, sample_pve = [], []
    for start in range(0, num_samples, chunk):
        prediction = model.predict_from_features(features, z=latents[:, start : start + chunk])
        sample_joints.append(prediction.joints_3d.double())
        if compute_pve:
            vertices = prediction.vertices.double()
            sample_pve.append(
                pve(vertices, gt_vertices[:, None].expand_as(vertices), protocol.pve_root_align)
            )
    joints = torch.cat(sample_joints, dim=1)

    for metric in JOINT_METRICS:
        if metric not in protocol.metrics:
            continue
        out.add(f"{metric}/mode", mode_error(joints, gt_joints, metric, joints_protocol))
        for n, errors in min_of_n_errors(joints, gt_joints, ns, metric, joints_protocol).items():
            out.add(f"{metric}/min_of_{n}", errors)
        if settings["kmeans"]:
            quantised = min_of_n_kmeans(
                joints, gt_joints, ns, seed=settings["seed"], metric=metric,
                protocol=joints_protocol,
            )
            for n, errors in quantised.items():
                out.add(f"{metric}/kmeans_{n}", errors)
    if "pve" in protocol.metrics:
        nan = torch.full((batch_size, num_samples), math.nan, dtype=torch.float64, device=device)
        per_sample = torch.cat(sample_pve, dim=1) if compute_pve else nan
        per_sample = torch.where(has_smpl.to(device)[:, None], per_sample, nan)
        out.add("pve/mode", per_sample[:, 0])
        running_min = torch.cummin(per_sample, dim=1).values
        for n in ns:
            out.add(f"pve/min_of_{n}", running_min[:, n - 1])

    log_likelihood, _ = model.flow.log_prob(
        {"global_orient": rotations[:, :1], "body_pose": rotations[:, 1:]}, features
    )
    has_pose = batch["has_smpl_params"]["body_pose"].to(device)
    out.add("log_likelihood", torch.where(has_pose, log_likelihood.double(), math.nan))

    if num_samples >= 3:
        random_samples = joints[:, 1:]
        levels = settings["levels"]
        quantile = sample_quantile_calibration(random_samples, gt_joints, levels, joints_protocol)
        radial = radial_calibration(random_samples, gt_joints, levels, joints_protocol)
        for level in levels:
            out.add(f"coverage_quantile/{level}", quantile[level])
            out.add(f"coverage_radial/{level}", radial[level])


def evaluate(
    model: ProHMR,
    dataset_or_npz: ImageDataset | PathLike,
    image_root: PathLike | None = None,
    protocol: str | EvaluationProtocol = "synthetic",
    num_samples: int = DEFAULT_EVAL_SAMPLES,
    min_of_n: Sequence[int] = DEFAULT_NUM_SAMPLES,
    kmeans: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str | torch.device | None = None,
    max_items: int | None = None,
    progress: bool = True,
    *,
    seed: int = 0,
    levels: Sequence[float] = DEFAULT_LEVELS,
    num_workers: int = 0,
    model_name: str | None = None,
) -> EvaluationResult:
    """Evaluate a ProHMR model on a dataset under a protocol.

    Arguments:
        model: the :class:`~prohmr.models.ProHMR`. It runs in eval mode (its mode is
            restored afterwards) and without gradients; with ``device`` it is moved there.
        dataset_or_npz: an :class:`~prohmr.data.ImageDataset` (``train=False``) or the path
            of a dataset ``.npz`` (SPEC §5), read with crops of ``model.config.image_size``.
        image_root: folder that ``imgname`` is relative to (with a path only); default
            :func:`default_image_root`.
        protocol: a name in :data:`~prohmr.evaluation.protocols.PROTOCOLS` or an
            :class:`~prohmr.evaluation.protocols.EvaluationProtocol`.
        num_samples: ``N``, samples per image including the mode (sample 0).
        min_of_n: the ``n`` of min-of-n, each in ``[1, N]``.
        kmeans: also quantise the ``N`` samples to ``n`` K-means centres (slow for large N).
        batch_size: images per forward pass.
        device: torch device; default the model's.
        max_items: evaluate only the first ``max_items`` selected rows.
        progress: show a progress bar (tqdm, on stderr).
        seed: seed of the latents (see the module docstring) and of K-means.
        levels: nominal levels of the calibration metrics.
        num_workers: DataLoader worker processes decoding images.
        model_name: recorded in the result (default the class name).

    Returns:
        :class:`EvaluationResult`.

    Raises:
        FileNotFoundError: the ``.npz`` or the image root (or an image) is missing.
        ValueError: a bad argument, a malformed dataset, an unknown protocol, rows the
        protocol cannot select, or selected rows without 3D ground truth.
    """
    if not isinstance(model, ProHMR):
        raise ValueError(f"evaluate: `model` must be a ProHMR, got {type(model).__name__}")
    protocol = get_protocol(protocol)
    num_samples = _check_int(num_samples, "num_samples", 1)
    ns = _check_ns(min_of_n, num_samples)
    batch_size = _check_int(batch_size, "batch_size", 1)
    seed = _check_int(seed, "seed", 0)
    num_workers = _check_int(num_workers, "num_workers", 0)
    if max_items is not None:
        max_items = _check_int(max_items, "max_items", 1)
    levels = _check_levels(levels)
    if not isinstance(kmeans, bool):
        raise ValueError(f"evaluate: `kmeans` must be a bool, got {kmeans!r}")

    dataset = _open_dataset(dataset_or_npz, image_root, model.config.image_size)
    source = str(dataset.npz_path)
    selected = select_frames(protocol, _selection_arrays(dataset, protocol.valid_key), source)
    rows = selected[:max_items] if max_items is not None else selected
    from_keypoints, has_smpl = _ground_truth_sources(dataset, rows, protocol)
    logger.info(
        "%s: protocol %s selects %d of %d rows; evaluating %d",
        source, protocol.name, len(selected), len(dataset), len(rows),
    )

    if device is not None:
        model.to(device)
    parameter = next(model.parameters())
    settings = {
        "protocol": protocol,
        "device": parameter.device,
        "dtype": model.flow.flow.dtype,
        "num_samples": num_samples,
        "ns": ns,
        "kmeans": kmeans,
        "seed": seed,
        "levels": levels,
    }
    position = {int(row): index for index, row in enumerate(rows)}
    loader = DataLoader(
        Subset(dataset, rows.tolist()), batch_size=batch_size, shuffle=False,
        num_workers=num_workers,
    )
    accumulator = _Accumulator()
    was_training = model.training
    model.eval()
    try:
        with tqdm(total=len(rows), unit="img", desc=f"eval {protocol.name}",
                  disable=not progress) as bar:
            for batch in loader:
                indices = [position[int(row)] for row in batch["idx"]]
                _evaluate_batch(
                    model, batch, torch.from_numpy(from_keypoints[indices]),
                    torch.from_numpy(has_smpl[indices]), settings, accumulator,
                )
                bar.update(len(indices))
    finally:
        model.train(was_training)

    notes = list(protocol.notes)
    if not from_keypoints.all():
        notes.append(
            f"Ground-truth joints of {int((~from_keypoints).sum())} of {len(rows)} images come "
            "from the model's body model posed with the ground-truth SMPL parameters."
        )
    if "pve" in protocol.metrics and not has_smpl.any():
        notes.append("PVE not computed: no evaluated image has SMPL pose and betas.")
    genders = set(dataset.gender[rows].tolist()) - {-1}
    if genders and (has_smpl.any()):
        notes.append(
            "The dataset has gendered rows; the model's single body model posed the "
            "ground-truth SMPL parameters (PVE and any ground-truth joints from parameters)."
        )
    if num_samples < 3:
        notes.append("Calibration not computed: it needs num_samples >= 3 (2 random samples).")
    return EvaluationResult(
        protocol=protocol,
        num_samples=num_samples,
        ns=ns,
        kmeans=kmeans,
        seed=seed,
        levels=levels,
        rows=rows.astype(np.int64),
        imgname=dataset.imgname[rows].astype(str),
        gt_source=np.where(from_keypoints, _GT_KEYPOINTS, _GT_BODY_MODEL).astype(str),
        per_item=accumulator.arrays(),
        dataset={
            "path": source,
            "image_root": str(dataset.image_root),
            "rows_in_file": len(dataset),
            "rows_selected": int(len(selected)),
            "rows_evaluated": int(len(rows)),
            "max_items": max_items,
        },
        model=_model_description(model, model_name),
        notes=tuple(notes),
    )


def run_eval_command(
    model: str | PathLike | ProHMR,
    dataset: PathLike,
    image_root: PathLike | None = None,
    protocol: str = "synthetic",
    num_samples: int = DEFAULT_EVAL_SAMPLES,
    out_json: PathLike | None = None,
    device: str | None = None,
    max_items: int | None = None,
    trust_checkpoint: bool = False,
    *,
    min_of_n: Sequence[int] | None = None,
    kmeans: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    seed: int = 0,
    progress: bool = True,
) -> list[str]:
    """``prohmr eval``: load a model, evaluate it, optionally write JSON; return the table.

    Arguments:
        model: a model name or checkpoint path for :func:`prohmr.models.load_model`, or a
            ready :class:`~prohmr.models.ProHMR`.
        dataset: the dataset ``.npz``.
        image_root: folder of the images (default :func:`default_image_root`).
        protocol: a name in :data:`~prohmr.evaluation.protocols.PROTOCOLS`.
        num_samples: samples per image (mode included).
        out_json: where to write :meth:`EvaluationResult.to_json`; None writes nothing.
        device: torch device (default CPU).
        max_items: evaluate only the first ``max_items`` selected rows.
        trust_checkpoint: allow full unpickling of the checkpoint (trusted files only).
        min_of_n: the ``n`` of min-of-n; default those of ``(1, 5, 10, 25)`` that are
            ``<= num_samples``, plus ``num_samples`` (not with ``kmeans``).
        kmeans, batch_size, seed, progress: as in :func:`evaluate`.

    Returns:
        :meth:`EvaluationResult.table_lines`, plus a line naming the JSON file if written.
    """
    protocol_object = get_protocol(protocol)
    num_samples = _check_int(num_samples, "num_samples", 1)
    dataset_path = Path(dataset).expanduser()
    if not dataset_path.is_file():
        raise FileNotFoundError(f"dataset file not found: {dataset_path}")
    if min_of_n is None:
        counts = {n for n in DEFAULT_NUM_SAMPLES if n <= num_samples}
        # K-means with as many centres as samples only reproduces the plain minimum, slowly.
        min_of_n = sorted(counts if kmeans and counts else counts | {num_samples})
    if isinstance(model, ProHMR):
        network, name = model, type(model).__name__
        if device is not None:
            network.to(device)
    else:
        network = load_model(model, device=device or "cpu", trust_checkpoint=trust_checkpoint)
        name = str(model)
        if not isinstance(network, ProHMR):
            raise ValueError(
                f"{model} holds a {type(network).__name__}, not a ProHMR image model; "
                "`prohmr eval` evaluates ProHMR models"
            )
    result = evaluate(
        network, dataset_path, image_root, protocol_object, num_samples, tuple(min_of_n),
        kmeans=kmeans, batch_size=batch_size, max_items=max_items, progress=progress,
        seed=seed, model_name=name,
    )
    lines = result.table_lines()
    if out_json is not None:
        lines.append(f"wrote {result.to_json(out_json)}")
    return lines
