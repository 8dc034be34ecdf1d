"""The body model: SMPL through ``smplx``, rotation matrices in, mesh and ProHMR joints out.

:class:`BodyModel` is a stateless layer (no pose or shape is stored): it takes per-joint
rotation matrices and shape coefficients with any leading batch dimensions and returns a
:class:`BodyOutput` with the 6890 vertices, ProHMR's 44 joints (BODY_25 then the 19 extra
joints, SPEC §1.2) and the 24 SMPL joints, in metres with the root at SMPL's origin.

Model files are found by :func:`resolve_body_model_path`: an explicit path, else the folder
in the ``PROHMR_SMPL_DIR`` environment variable, else the procedural default body model
(:func:`prohmr.body.procedural.default_body_model_dir`, a stand-in in SMPL's format, not
SMPL). Every file goes through the same path: :func:`prohmr.body.smpl_io.load_smpl_file`
(no chumpy, no untrusted code) and then ``smplx``'s own SMPL layer.

The arrays of the model are non-persistent buffers: they follow ``.to(device/dtype)`` but
never enter a ``state_dict``, so checkpoints hold no licence-gated SMPL data and a network
trained with one body model can be evaluated with another.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import smplx
import torch
from smplx.utils import Struct
from torch import nn

from prohmr._utils import DictLikeOutput
from prohmr.body.joints import (
    EXTRA_JOINT_NAMES,
    NUM_PROHMR_JOINTS,
    SMPLX_LANDMARK_VERTEX_IDS,
    SMPLX_TO_BODY25,
)
from prohmr.body.procedural import EXTRA_REGRESSOR_FILENAME, MEAN_PARAMS_FILENAME
from prohmr.body.smpl_io import (
    SMPL_DIR_ENV_VAR,
    SMPL_DOWNLOAD_HINT,
    load_smpl_file,
    safe_load_pickle,
)
from prohmr.constants import NUM_BETAS, NUM_BODY_JOINTS, NUM_SMPL_JOINTS, POSE_6D_DIM

__all__ = [
    "SMPL_DIR_ENV_VAR",
    "EXTRA_REGRESSOR_FILENAME",
    "MEAN_PARAMS_FILENAME",
    "GENDERS",
    "BodyOutput",
    "BodyModel",
    "resolve_body_model_path",
    "create_body_model",
    "load_mean_params",
]

logger = logging.getLogger(__name__)

#: Genders an SMPL release provides; a folder holds ``SMPL_<GENDER>.pkl``.
GENDERS: tuple[str, ...] = ("neutral", "male", "female")

PathLike = Union[str, os.PathLike]


@dataclass(eq=False)
class BodyOutput(DictLikeOutput):
    """What :class:`BodyModel` returns; also readable like a dict (``out["vertices"]``).

    *Fields*
        vertices: ``(..., V, 3)`` mesh vertices (V = 6890 for SMPL's topology).
        joints: ``(..., 44, 3)`` ProHMR joints: BODY_25 order, then the 19 extra joints.
        smpl_joints: ``(..., 24, 3)`` SMPL's kinematic joints.
    """

    vertices: torch.Tensor
    joints: torch.Tensor
    smpl_joints: torch.Tensor


def _procedural_default_dir() -> Path:
    # Imported lazily: building the default model is only needed when no SMPL is configured.
    from prohmr.body.procedural import default_body_model_dir

    return Path(default_body_model_dir())


def resolve_body_model_path(model_path: Optional[PathLike] = None) -> Path:
    """Where the body model comes from: ``model_path`` > ``$PROHMR_SMPL_DIR`` > default.

    *Arguments*
        model_path: a folder holding ``SMPL_<GENDER>.pkl`` or a model file; None to use the
            environment variable, or, if it is unset or empty, the procedural default.

    *Returns*
        the existing folder or file to load (the choice is logged at INFO level).

    *Raises*
        FileNotFoundError naming the missing path (and the environment variable if it was
        the source) with instructions to obtain SMPL.
    """
    if model_path is not None:
        path, origin = Path(model_path).expanduser(), "the model_path argument"
    elif os.environ.get(SMPL_DIR_ENV_VAR):
        path = Path(os.environ[SMPL_DIR_ENV_VAR]).expanduser()
        origin = f"the environment variable {SMPL_DIR_ENV_VAR}"
    else:
        path = _procedural_default_dir()
        logger.info("body model: procedural default at %s (a stand-in, not SMPL)", path)
        return path
    if not path.exists():
        raise FileNotFoundError(
            f"body model path {path} (from {origin}) does not exist. {SMPL_DOWNLOAD_HINT}"
        )
    logger.info("body model: %s (from %s)", path, origin)
    return path


def _model_file(path: Path, gender: str) -> Path:
    """The model file inside a folder (``SMPL_<GENDER>.pkl``, else ``.npz``), or ``path``."""
    if not path.is_dir():
        return path
    candidates = [path / f"SMPL_{gender.upper()}{suffix}" for suffix in (".pkl", ".npz")]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"no SMPL model file {candidates[0].name} in {path} (looked for "
        f"{', '.join(str(c) for c in candidates)}). {SMPL_DOWNLOAD_HINT}"
    )


def _load_extra_regressor(path: Path, num_vertices: int) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(
            f"extra joint regressor not found: {path}. ProHMR's 44 joints need "
            f"{EXTRA_REGRESSOR_FILENAME}, a pickled ({len(EXTRA_JOINT_NAMES)}, {num_vertices}) "
            "vertex regressor from ProHMR's data release; put it next to the SMPL model file "
            "or pass extra_regressor_path."
        )
    if path.suffix.lower() == ".npy":
        regressor = np.load(path, allow_pickle=False)
    else:
        regressor = safe_load_pickle(path)
    if hasattr(regressor, "toarray"):
        regressor = regressor.toarray()
    regressor = np.asarray(regressor)
    expected = (len(EXTRA_JOINT_NAMES), num_vertices)
    if regressor.shape != expected or regressor.dtype.kind not in "biuf":
        raise ValueError(
            f"extra_regressor_path {path} must hold a numeric array of shape {expected}, got "
            f"{regressor.dtype} {regressor.shape}"
        )
    if not np.isfinite(regressor).all():
        raise ValueError(f"extra_regressor_path {path} holds NaN or infinite values")
    return regressor


class BodyModel(nn.Module):
    """SMPL-format body model (via ``smplx``) taking rotation matrices; stateless.

    *Arguments*
        model_path: folder holding ``SMPL_<GENDER>.pkl`` (or ``.npz``), or a model file;
            None resolves as :func:`resolve_body_model_path`.
        extra_regressor_path: the ``(19, V)`` regressor of the extra joints
            (``SMPL_to_J19.pkl``); default: next to the model file.
        gender: ``"neutral"``, ``"male"`` or ``"female"`` (picks the file in a folder).
        num_betas: shape coefficients used (at most the model's shape space size).

    Attributes: ``faces`` ``(F, 3)`` long buffer, ``num_vertices``, ``num_betas``,
    ``model_file`` and ``extra_regressor_file`` (the files loaded).

    Inputs must have the module's dtype and device (``body_model.to(torch.float64)`` for
    double precision); a mismatch raises ValueError instead of silently casting. smplx
    rounds the model arrays to float32 when it loads them, so a float64 model computes in
    double precision on float32-rounded arrays.

    Example:
        >>> import torch
        >>> body = BodyModel()
        >>> eye = torch.eye(3).expand(2, 5, 24, 3, 3)
        >>> out = body(eye[..., :1, :, :], eye[..., 1:, :, :], torch.zeros(2, 5, 10))
        >>> tuple(out.vertices.shape), tuple(out["joints"].shape), tuple(out.smpl_joints.shape)
        ((2, 5, 6890, 3), (2, 5, 44, 3), (2, 5, 24, 3))
    """

    def __init__(
        self,
        model_path: Optional[PathLike] = None,
        extra_regressor_path: Optional[PathLike] = None,
        gender: str = "neutral",
        num_betas: int = NUM_BETAS,
    ) -> None:
        super().__init__()
        if gender not in GENDERS:
            raise ValueError(f"gender must be one of {GENDERS}, got {gender!r}")
        if not isinstance(num_betas, int) or num_betas < 1:
            raise ValueError(f"num_betas must be a positive int, got {num_betas!r}")
        self.model_file = _model_file(resolve_body_model_path(model_path), gender)
        data = load_smpl_file(self.model_file)
        shape_space = data["shapedirs"].shape[2]
        if num_betas > shape_space:
            raise ValueError(
                f"num_betas={num_betas} exceeds the {shape_space} shape components of "
                f"{self.model_file}"
            )
        num_vertices = data["v_template"].shape[0]
        if num_vertices <= max(SMPLX_LANDMARK_VERTEX_IDS.values()):
            raise ValueError(
                f"{self.model_file} has {num_vertices} vertices; SMPL's topology (6890) is "
                "needed for the landmark joints"
            )
        self.extra_regressor_file = (
            Path(extra_regressor_path).expanduser()
            if extra_regressor_path is not None
            else self.model_file.parent / EXTRA_REGRESSOR_FILENAME
        )
        extra_regressor = _load_extra_regressor(self.extra_regressor_file, num_vertices)

        # smplx prints a warning for models with fewer than 300 shape components (every
        # SMPL 1.0 file); route it to the log instead of stdout.
        with contextlib.redirect_stdout(io.StringIO()) as smplx_stdout:
            self.layer = smplx.SMPLLayer(
                model_path=str(self.model_file),
                data_struct=Struct(**data),
                num_betas=num_betas,
                gender=gender,
                vertex_ids=dict(SMPLX_LANDMARK_VERTEX_IDS),
            )
        if smplx_stdout.getvalue().strip():
            logger.debug("smplx: %s", smplx_stdout.getvalue().strip())
        self.num_betas: int = num_betas
        self.num_vertices: int = num_vertices
        self.gender: str = gender

        # Model arrays are non-persistent: checkpoints must not carry licence-gated data.
        for name, buffer in list(self.layer.named_buffers(recurse=True)):
            owner = self.layer.get_submodule(name.rpartition(".")[0])
            leaf = name.rpartition(".")[2]
            delattr(owner, leaf)
            owner.register_buffer(leaf, buffer, persistent=False)
        self.register_buffer(
            "extra_regressor", torch.as_tensor(extra_regressor, dtype=self.layer.shapedirs.dtype),
            persistent=False,
        )
        self.register_buffer("faces", self.layer.faces_tensor.clone(), persistent=False)
        self.register_buffer(
            "body25_index", torch.tensor(SMPLX_TO_BODY25, dtype=torch.long), persistent=False
        )
        logger.info(
            "loaded body model %s (%d vertices, %d betas, extra joints from %s)",
            self.model_file, num_vertices, num_betas, self.extra_regressor_file,
        )

    def extra_repr(self) -> str:
        return (
            f"model_file={str(self.model_file)!r}, gender={self.gender!r}, "
            f"num_betas={self.num_betas}, num_vertices={self.num_vertices}"
        )

    def _check_input(
        self, value: Any, name: str, trailing: tuple[int, ...], spec: str
    ) -> torch.Tensor:
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor of shape {spec}, got {type(value)}")
        if value.dim() < len(trailing) or tuple(value.shape[-len(trailing):]) != trailing:
            raise ValueError(f"{name} must have shape {spec}, got {tuple(value.shape)}")
        reference = self.layer.shapedirs
        if value.dtype != reference.dtype:
            raise ValueError(
                f"{name} has dtype {value.dtype} but the body model holds {reference.dtype}; "
                f"cast the input or call body_model.to({value.dtype})"
            )
        if value.device != reference.device:
            raise ValueError(
                f"{name} is on {value.device} but the body model is on {reference.device}; "
                "move one of them"
            )
        if not torch.isfinite(value).all():
            raise ValueError(f"{name} contains NaN or infinite values")
        return value

    def forward(
        self,
        global_orient: torch.Tensor,
        body_pose: torch.Tensor,
        betas: torch.Tensor,
        transl: Optional[torch.Tensor] = None,
    ) -> BodyOutput:
        """Pose and shape the body.

        Leading dimensions of the inputs broadcast against each other (e.g. betas
        ``(B, 1, 10)`` with poses ``(B, N, ...)``).

        *Arguments*
            global_orient: ``(..., 1, 3, 3)`` root rotation matrix.
            body_pose: ``(..., 23, 3, 3)`` rotation matrices of SMPL joints 1..23.
            betas: ``(..., num_betas)`` shape coefficients.
            transl: optional ``(..., 3)`` translation added to every output point.

        *Returns*
            :class:`BodyOutput` with ``vertices (..., V, 3)``, ``joints (..., 44, 3)`` and
            ``smpl_joints (..., 24, 3)``.
        """
        global_orient = self._check_input(global_orient, "global_orient", (1, 3, 3),
                                          "(..., 1, 3, 3)")
        body_pose = self._check_input(body_pose, "body_pose", (NUM_BODY_JOINTS, 3, 3),
                                      f"(..., {NUM_BODY_JOINTS}, 3, 3)")
        betas = self._check_input(betas, "betas", (self.num_betas,), f"(..., {self.num_betas})")
        leading = [global_orient.shape[:-3], body_pose.shape[:-3], betas.shape[:-1]]
        if transl is not None:
            transl = self._check_input(transl, "transl", (3,), "(..., 3)")
            leading.append(transl.shape[:-1])
        try:
            batch_shape = torch.broadcast_shapes(*leading)
        except RuntimeError as exc:
            raise ValueError(
                "leading dimensions of global_orient, body_pose, betas"
                f"{', transl' if transl is not None else ''} do not broadcast: "
                f"{[tuple(s) for s in leading]}"
            ) from exc
        batch = int(np.prod(batch_shape, dtype=np.int64))
        if batch == 0:
            # smplx cannot reshape empty batches; there is nothing to compute.
            empty = self.layer.shapedirs.new_zeros
            return BodyOutput(
                vertices=empty((*batch_shape, self.num_vertices, 3)),
                joints=empty((*batch_shape, NUM_PROHMR_JOINTS, 3)),
                smpl_joints=empty((*batch_shape, NUM_SMPL_JOINTS, 3)),
            )
        output = self.layer(
            global_orient=global_orient.expand(*batch_shape, 1, 3, 3).reshape(batch, 1, 3, 3),
            body_pose=body_pose.expand(*batch_shape, NUM_BODY_JOINTS, 3, 3).reshape(
                batch, NUM_BODY_JOINTS, 3, 3
            ),
            betas=betas.expand(*batch_shape, self.num_betas).reshape(batch, self.num_betas),
        )
        vertices = output.vertices
        smplx_joints = output.joints
        extra = torch.einsum("jv,bvc->bjc", self.extra_regressor, vertices)
        joints = torch.cat([smplx_joints.index_select(1, self.body25_index), extra], dim=1)
        smpl_joints = smplx_joints[:, :NUM_SMPL_JOINTS]
        vertices = vertices.reshape(*batch_shape, self.num_vertices, 3)
        joints = joints.reshape(*batch_shape, NUM_PROHMR_JOINTS, 3)
        smpl_joints = smpl_joints.reshape(*batch_shape, NUM_SMPL_JOINTS, 3)
        if transl is not None:
            offset = transl.unsqueeze(-2)
            vertices, joints, smpl_joints = vertices + offset, joints + offset, smpl_joints + offset
        return BodyOutput(vertices=vertices, joints=joints, smpl_joints=smpl_joints)


def create_body_model(model_path: Optional[PathLike] = None, **kwargs: Any) -> BodyModel:
    """Build a :class:`BodyModel`: explicit path > ``$PROHMR_SMPL_DIR`` > procedural default.

    *Arguments*
        model_path: folder or model file; None for the environment variable or the default.
        **kwargs: passed to :class:`BodyModel` (``extra_regressor_path``, ``gender``,
            ``num_betas``).

    *Returns*
        the body model (float32 on the CPU; move or cast it with ``.to``).

    Example:
        >>> body = create_body_model()
        >>> body.num_vertices, tuple(body.faces.shape)[1], body.faces.dtype
        (6890, 3, torch.int64)
    """
    return BodyModel(model_path, **kwargs)


def load_mean_params(path: Optional[PathLike] = None) -> dict[str, torch.Tensor]:
    """Load the mean SMPL parameters used to initialise the regression heads.

    *Arguments*
        path: ``smpl_mean_params.npz`` or a folder holding it; None resolves the folder as
            :func:`resolve_body_model_path` (explicit > ``$PROHMR_SMPL_DIR`` > default).

    *Returns*
        float32 tensors ``pose (144,)`` (24 rotations in 6D as stored; the original
        file and the procedural default use SPIN's interleaved layout),
        ``shape (10,)`` and ``cam (3,)``.

    *Raises*
        FileNotFoundError naming the missing file; ValueError naming a missing key or a
        wrong shape.

    Example:
        >>> params = load_mean_params()
        >>> {key: tuple(value.shape) for key, value in params.items()}
        {'pose': (144,), 'shape': (10,), 'cam': (3,)}
    """
    resolved = resolve_body_model_path(path)
    if resolved.is_dir():
        resolved = resolved / MEAN_PARAMS_FILENAME
    elif path is None:
        resolved = resolved.parent / MEAN_PARAMS_FILENAME
    if not resolved.is_file():
        raise FileNotFoundError(
            f"mean parameters not found: {resolved}. ProHMR's {MEAN_PARAMS_FILENAME} (keys "
            "pose, shape, cam) comes with its data release; put it next to the SMPL model or "
            "pass its path."
        )
    expected = {"pose": (POSE_6D_DIM,), "shape": (NUM_BETAS,), "cam": (3,)}
    try:
        with np.load(resolved, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in expected if key in archive.files}
    except (ValueError, OSError) as exc:
        raise ValueError(f"{resolved} is not a readable .npz file ({exc})") from exc
    params: dict[str, torch.Tensor] = {}
    for key, shape in expected.items():
        if key not in arrays:
            raise ValueError(f"{resolved} lacks the key {key!r} (expected {list(expected)})")
        value = arrays[key]
        if value.shape != shape or value.dtype.kind not in "biuf":
            raise ValueError(
                f"{resolved}: {key!r} must be a numeric array of shape {shape}, got "
                f"{value.dtype} {value.shape}"
            )
        if not np.isfinite(value).all():
            raise ValueError(f"{resolved}: {key!r} holds NaN or infinite values")
        params[key] = torch.as_tensor(value, dtype=torch.float32)
    return params
