"""Named evaluation protocols: which frames, which joints, which root, which metrics (SPEC §7).

A number such as "PA-MPJPE 41.2 mm" means little without its protocol: the frames evaluated,
the joint set, the root the skeletons are centred at, and where the ground truth comes from.
An :class:`EvaluationProtocol` names all of that, and :data:`PROTOCOLS` holds the presets
that ``prohmr eval --protocol`` accepts:

- ``"h36m-p2"``: Human3.6M Protocol 2: subjects S9 and S11, the frontal camera 60457274,
  every 5th frame; 14 LSP joints centred at the pelvis (joint 39); PA-MPJPE is the headline
  number (as in ProHMR and SPIN).
- ``"3dpw"``: the 3DPW test split, all camera-valid frames; 14 joints, pelvis 39; PVE when
  the ``.npz`` has ground-truth SMPL parameters. This is SPIN's/ProHMR's processing, BOA's
  "#PS" protocol (see the notes).
- ``"mpi-inf-3dhp"``: the MPI-INF-3DHP test set, valid frames, 17 joints (the H36M-17 set of
  the 44 joints) centred at the pelvis.
- ``"synthetic"``: every row of a dataset of :mod:`prohmr.data.synthetic`; 14 joints,
  pelvis 39, MPJPE, PA-MPJPE and PVE.

Frame selection works on the ``.npz`` content only. ``"h36m-p2"`` reads the image names
written by SPIN's and ProHMR's preprocessing, ``[folder/]S9_Directions_1.60457274_000001.jpg``
(subject, action, camera, 1-based frame number of the 50 Hz video; the preprocessing kept
frames 1, 6, 11, ..., i.e. ``(frame - 1) % 5 == 0``). A file already restricted to Protocol 2
(ProHMR's ``h36m_val_p2.npz``) passes unchanged; a file with every camera (``h36m_val.npz``)
is reduced to Protocol 2. Names that do not follow the pattern raise ``ValueError``: the
selection cannot be applied to them. The 3DPW and MPI-INF-3DHP files of SPIN and ProHMR are
already restricted to valid frames; a boolean per-row key (:attr:`EvaluationProtocol.valid_key`,
named after the datasets' own flags ``campose_valid`` and ``valid_frame``) is honoured when
present.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from prohmr.evaluation.metrics import H36M_17_FROM_44, PROHMR_14, JointProtocol

__all__ = [
    "POSE_METRICS",
    "FRAME_SELECTIONS",
    "H36M_P2_SUBJECTS",
    "H36M_P2_CAMERA",
    "H36M_FRAME_STEP",
    "H36MFrame",
    "parse_h36m_imgname",
    "EvaluationProtocol",
    "PROTOCOLS",
    "get_protocol",
    "select_frames",
]

#: Metrics a protocol can report (errors in millimetres).
POSE_METRICS: tuple[str, ...] = ("mpjpe", "pa_mpjpe", "pve")
#: Frame selection rules: ``"all"`` rows, or Human3.6M Protocol 2 from the image names.
FRAME_SELECTIONS: tuple[str, ...] = ("all", "h36m-p2")
#: Human3.6M Protocol 2 evaluates these subjects ...
H36M_P2_SUBJECTS: tuple[str, ...] = ("S9", "S11")
#: ... seen by this (frontal) camera ...
H36M_P2_CAMERA: str = "60457274"
#: ... every this many frames (of the 50 Hz videos).
H36M_FRAME_STEP: int = 5

# SPIN/ProHMR H36M image names: <subject>_<action>.<camera>_<frame:06d>.<ext>; the action may
# contain underscores ("Sitting_Down", "Directions_1"), the camera and frame are digits.
_H36M_NAME = re.compile(r"^(S\d+)_(.+)\.(\d+)_(\d+)\.[A-Za-z]+$")
_H36M_EXAMPLE = "images/S9_Directions_1.60457274_000001.jpg"


@dataclass(frozen=True)
class H36MFrame:
    """The parts of a Human3.6M image name (SPIN/ProHMR preprocessing).

    Attributes:
        subject: e.g. ``"S9"``.
        action: e.g. ``"Directions_1"`` (spaces of the original names replaced by ``_``).
        camera: camera id, e.g. ``"60457274"``.
        frame: 1-based frame number in the 50 Hz video.
    """

    subject: str
    action: str
    camera: str
    frame: int


def parse_h36m_imgname(imgname: str) -> H36MFrame | None:
    """Split a Human3.6M image name into subject, action, camera and frame.

    Arguments:
        imgname: a path such as ``"images/S9_Directions_1.60457274_000001.jpg"``; only its
            last component is read.

    Returns:
        The :class:`H36MFrame`, or ``None`` if the name does not follow the pattern.

    Example:
        >>> parse_h36m_imgname("images/S11_Sitting_Down.60457274_000006.jpg")
        H36MFrame(subject='S11', action='Sitting_Down', camera='60457274', frame=6)
        >>> parse_h36m_imgname("val/000000.jpg") is None
        True
    """
    match = _H36M_NAME.match(PurePosixPath(str(imgname).replace("\\", "/")).name)
    if match is None:
        return None
    subject, action, camera, frame = match.groups()
    return H36MFrame(subject, action, camera, int(frame))


@dataclass(frozen=True)
class EvaluationProtocol:
    """A named evaluation protocol.

    Attributes:
        name: identifier (a key of :data:`PROTOCOLS` for the presets).
        title: one-line human description.
        joints: the :class:`~prohmr.evaluation.metrics.JointProtocol` (evaluated joints of
            the 44 and the root they are centred at).
        metrics: reported metrics, a subset of :data:`POSE_METRICS` in order; ``"pve"`` is
            computed only for rows with ground-truth SMPL pose and betas.
        headline: the metric the literature quotes for this benchmark (one of ``metrics``).
        frame_selection: one of :data:`FRAME_SELECTIONS`.
        valid_key: a boolean ``(N,)`` key of the ``.npz`` that marks usable rows; honoured
            when the file has it, ignored otherwise.
        notes: caveats recorded with every result of this protocol.
        pve_root_align: passed to :func:`~prohmr.evaluation.metrics.pve` (``False``: both
            meshes straight out of the body model without translation, as SPIN and ProHMR).
    """

    name: str
    title: str
    joints: JointProtocol
    metrics: tuple[str, ...] = ("mpjpe", "pa_mpjpe")
    headline: str = "pa_mpjpe"
    frame_selection: str = "all"
    valid_key: str | None = None
    notes: tuple[str, ...] = field(default=())
    pve_root_align: bool = False

    def __post_init__(self) -> None:
        where = "EvaluationProtocol"
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"{where}: `name` must be a non-empty string, got {self.name!r}")
        if not isinstance(self.joints, JointProtocol):
            raise ValueError(
                f"{where}: `joints` must be a JointProtocol, got {type(self.joints).__name__}"
            )
        metrics = tuple(self.metrics)
        if not metrics or len(set(metrics)) != len(metrics) or not set(metrics) <= set(
            POSE_METRICS
        ):
            raise ValueError(
                f"{where}: `metrics` must be distinct names from {POSE_METRICS}, "
                f"got {self.metrics!r}"
            )
        object.__setattr__(self, "metrics", metrics)
        if self.headline not in metrics:
            raise ValueError(
                f"{where}: `headline` must be one of `metrics` {metrics}, got {self.headline!r}"
            )
        if self.frame_selection not in FRAME_SELECTIONS:
            raise ValueError(
                f"{where}: `frame_selection` must be one of {FRAME_SELECTIONS}, "
                f"got {self.frame_selection!r}"
            )
        if self.valid_key is not None and (
            not isinstance(self.valid_key, str) or not self.valid_key
        ):
            raise ValueError(
                f"{where}: `valid_key` must be None or a key name, got {self.valid_key!r}"
            )
        notes = tuple(self.notes)
        if not all(isinstance(note, str) for note in notes):
            raise ValueError(f"{where}: `notes` must be strings, got {self.notes!r}")
        object.__setattr__(self, "notes", notes)
        if not isinstance(self.pve_root_align, bool):
            raise ValueError(
                f"{where}: `pve_root_align` must be a bool, got {self.pve_root_align!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description (the inverse of :meth:`from_dict`)."""
        joints = self.joints
        indices = joints.joint_indices
        return {
            "name": self.name,
            "title": self.title,
            "joints": {
                "name": joints.name,
                "joint_indices": None if indices is None else list(indices),
                "root": list(joints.root) if isinstance(joints.root, tuple) else joints.root,
            },
            "metrics": list(self.metrics),
            "headline": self.headline,
            "frame_selection": self.frame_selection,
            "valid_key": self.valid_key,
            "notes": list(self.notes),
            "pve_root_align": self.pve_root_align,
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> EvaluationProtocol:
        """The protocol described by ``values`` (from :meth:`to_dict`).

        Example:
            >>> protocol = PROTOCOLS["h36m-p2"]
            >>> EvaluationProtocol.from_dict(protocol.to_dict()) == protocol
            True
        """
        if not isinstance(values, Mapping) or not isinstance(values.get("joints"), Mapping):
            raise ValueError(
                "EvaluationProtocol.from_dict: `values` must be a mapping with a `joints` "
                "mapping, as written by to_dict()"
            )
        joints = values["joints"]
        indices = joints.get("joint_indices")
        root = joints.get("root")
        joint_protocol = JointProtocol(
            str(joints.get("name")),
            None if indices is None else tuple(int(i) for i in indices),
            tuple(int(i) for i in root) if isinstance(root, (list, tuple)) else root,
        )
        return cls(
            name=values.get("name"),
            title=values.get("title", ""),
            joints=joint_protocol,
            metrics=tuple(values.get("metrics", ())),
            headline=values.get("headline"),
            frame_selection=values.get("frame_selection", "all"),
            valid_key=values.get("valid_key"),
            notes=tuple(values.get("notes", ())),
            pve_root_align=values.get("pve_root_align", False),
        )

    def root_description(self) -> str:
        """The root in words, e.g. ``"joint 39"`` or ``"mean of joints (27, 28)"``."""
        root = self.joints.root
        if root is None:
            return "none"
        if isinstance(root, int):
            return f"joint {root}"
        return f"mean of joints {tuple(root)}"


_PS_PH_NOTE = (
    "3DPW: this is SPIN's/ProHMR's processing (BOA's '#PS': 24 test sequences, 35,515 "
    "camera-valid frames, ground truth from the gendered mesh through the 19-joint "
    "regressor). BOA's '#PH' (HMMR's 25 sequences, fitted neutral-body ground truth) gives "
    "very different numbers for the same model (PA-MPJPE 49.5 vs 58.8): compare only numbers "
    "of the same protocol."
)
_PELVIS_NOTE = (
    "Root: joint 39 (the MPII pelvis of the 19-joint regressor), as SPIN, ProHMR and BOA. "
    "VIBE and MAED centre at the mean of the hips (JointProtocol MEAN_OF_HIPS_14): their MPJPE "
    "is not comparable."
)

#: The preset protocols by name.
PROTOCOLS: dict[str, EvaluationProtocol] = {
    protocol.name: protocol
    for protocol in (
        EvaluationProtocol(
            name="h36m-p2",
            title="Human3.6M Protocol 2 (S9, S11; camera 60457274; every 5th frame)",
            joints=PROHMR_14,
            metrics=("mpjpe", "pa_mpjpe"),
            headline="pa_mpjpe",
            frame_selection="h36m-p2",
            notes=(
                "Frames are selected from SPIN/ProHMR image names "
                "'<subject>_<action>.<camera>_<frame>.jpg' (1-based frames; kept: "
                "(frame - 1) % 5 == 0).",
                "ProHMR reports PA-MPJPE for this protocol; MPJPE is given for reference.",
                _PELVIS_NOTE,
            ),
        ),
        EvaluationProtocol(
            name="3dpw",
            title="3DPW test (all camera-valid frames)",
            joints=PROHMR_14,
            metrics=("mpjpe", "pa_mpjpe", "pve"),
            headline="pa_mpjpe",
            valid_key="campose_valid",
            notes=(
                _PS_PH_NOTE,
                "PVE poses the model's body model with the ground-truth SMPL parameters; "
                "the original protocol uses the gendered SMPL models, so PVE computed with a "
                "neutral (or procedural) body model is not the published number.",
                _PELVIS_NOTE,
            ),
        ),
        EvaluationProtocol(
            name="mpi-inf-3dhp",
            title="MPI-INF-3DHP test (valid frames, 17 joints)",
            joints=H36M_17_FROM_44,
            metrics=("mpjpe", "pa_mpjpe"),
            headline="pa_mpjpe",
            valid_key="valid_frame",
            notes=(
                "17 joints: the H36M-17 set of the 19 extra joints (extra indices 0-12, 14, "
                "16, 17, 18, where SPIN's preprocessing stores the 17 MPI-INF-3DHP joints), "
                "centred at the pelvis (joint 39). ProHMR's original configuration listed "
                "joints [25..39, 41, 42] instead; pass a custom EvaluationProtocol to use them.",
                "PCK and AUC are not computed.",
            ),
        ),
        EvaluationProtocol(
            name="synthetic",
            title="Synthetic dataset of prohmr.data.synthetic (every row)",
            joints=PROHMR_14,
            metrics=("mpjpe", "pa_mpjpe", "pve"),
            headline="mpjpe",
            notes=(
                "Ground truth is exact: the rendered body's parameters and joints.",
                _PELVIS_NOTE,
            ),
        ),
    )
}


def get_protocol(protocol: str | EvaluationProtocol) -> EvaluationProtocol:
    """A preset by name, or the given protocol itself.

    Raises:
        ValueError: an unknown name (the message lists the presets).
    """
    if isinstance(protocol, EvaluationProtocol):
        return protocol
    if isinstance(protocol, str) and protocol in PROTOCOLS:
        return PROTOCOLS[protocol]
    raise ValueError(
        f"unknown evaluation protocol {protocol!r}; expected one of {sorted(PROTOCOLS)} or an "
        "EvaluationProtocol"
    )


def _h36m_p2_mask(imgname: np.ndarray, source: str) -> np.ndarray:
    frames = [parse_h36m_imgname(name) for name in imgname.tolist()]
    unparsed = [name for name, frame in zip(imgname.tolist(), frames) if frame is None]
    if unparsed:
        raise ValueError(
            f"{source}: protocol 'h36m-p2' selects frames from Human3.6M image names like "
            f"{_H36M_EXAMPLE!r} (SPIN/ProHMR preprocessing: <subject>_<action>.<camera>_<frame>"
            f" with 1-based frame numbers), but {len(unparsed)} of {len(frames)} names do not "
            f"follow it, e.g. {unparsed[0]!r}"
        )
    return np.array(
        [
            frame is not None
            and frame.subject in H36M_P2_SUBJECTS
            and frame.camera == H36M_P2_CAMERA
            and (frame.frame - 1) % H36M_FRAME_STEP == 0
            for frame in frames
        ],
        dtype=bool,
    )


def select_frames(
    protocol: str | EvaluationProtocol, arrays: Mapping[str, Any], source: str = "dataset"
) -> np.ndarray:
    """Rows of a dataset ``.npz`` that a protocol evaluates.

    Arguments:
        protocol: a name in :data:`PROTOCOLS` or an :class:`EvaluationProtocol`.
        arrays: the ``.npz`` content (``np.load`` result or a dict); needs ``imgname``
            ``(N,)``, and uses ``protocol.valid_key`` when present.
        source: the dataset's name for error messages.

    Returns:
        ``(M,)`` int64 row indices, increasing.

    Raises:
        ValueError: ``imgname`` is missing or malformed, the names do not allow the
        protocol's selection, the valid key has the wrong shape, or no row is selected.

    Example:
        >>> names = np.array(["images/S9_Eating.60457274_000001.jpg",
        ...                   "images/S9_Eating.60457274_000002.jpg",
        ...                   "images/S9_Eating.55011271_000001.jpg",
        ...                   "images/S11_Eating.60457274_000006.jpg",
        ...                   "images/S1_Eating.60457274_000001.jpg"])
        >>> select_frames("h36m-p2", {"imgname": names}).tolist()
        [0, 3]
    """
    protocol = get_protocol(protocol)
    if "imgname" not in arrays:
        raise ValueError(f"{source}: key 'imgname' is required to select frames")
    imgname = np.asarray(arrays["imgname"])
    if imgname.ndim != 1 or imgname.dtype.kind not in "US":
        raise ValueError(
            f"{source}: key 'imgname' must be a (N,) array of str, got {imgname.dtype} "
            f"{tuple(imgname.shape)}"
        )
    mask = np.ones(len(imgname), dtype=bool)
    if protocol.frame_selection == "h36m-p2":
        mask &= _h36m_p2_mask(imgname, source)
    if protocol.valid_key is not None and protocol.valid_key in arrays:
        valid = np.asarray(arrays[protocol.valid_key])
        if valid.shape != (len(imgname),) or not (
            valid.dtype == np.bool_ or np.issubdtype(valid.dtype, np.number)
        ):
            raise ValueError(
                f"{source}: key {protocol.valid_key!r} must be a ({len(imgname)},) boolean or "
                f"0/1 array, got {valid.dtype} {tuple(valid.shape)}"
            )
        mask &= valid.astype(bool)
    if not mask.any():
        raise ValueError(
            f"{source}: protocol {protocol.name!r} selects none of its {len(imgname)} rows "
            f"({protocol.title})"
        )
    return np.flatnonzero(mask).astype(np.int64)
