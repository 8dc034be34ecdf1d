"""An unconditional learned pose prior ``p(θ)``: ProHMR's Glow without a context (SPEC §6.3).

:class:`PosePrior` holds a :class:`~prohmr.flows.ConditionalGlow` with ``context_features=0``
over the 144 values of a full SMPL pose in ProHMR's 6D layout (SPEC §1.1: 24 rotations,
global orientation first, each the first two **columns** of its rotation matrix,
``(R00, R10, R20, R01, R11, R21)``). Its ``.flow`` is what the prior-only fitting functions
take (:func:`prohmr.fitting.fit_prior_keypoints_2d`, :func:`prohmr.fitting.fit_prior_joints_3d`).

**Which density.** :meth:`PosePrior.log_prob` is the flow's log-density, in nats, of the
144-d vector ``x`` (with respect to the Lebesgue measure on R^144), one value per pose. It is
*not* a normalised density on SO(3)^24: valid 6D vectors (orthonormal columns) lie on a
72-dimensional manifold of R^144, and the prior was trained on those vectors plus a little
Gaussian noise (``pose_noise``, 0.005 by default), so it is a thin shell around that manifold
whose height depends on the noise. Differences of ``log_prob`` between poses are what carry
meaning (a more plausible pose has a higher value); absolute values are comparable only between
priors trained with the same noise. A rotation-matrix input is converted to its first two
columns, i.e. onto the manifold, so rotation matrices and their 6D encodings score the same.

Every layer has a constant log-determinant (SPEC §3), so ``log p(x) = log N(z; 0, I) + c``:
the mode is ``z = 0`` and ``−log p`` is ``½‖z‖²`` up to a constant, which is the prior term
of the fitting functions.

Model files follow the library's layout (Contract B): ``{"format": "prohmr.PosePrior",
"format_version": 1, "config", "state_dict", "metadata"}`` written by :func:`save_pose_prior`
and read with ``torch.load(weights_only=True)`` by :func:`load_pose_prior`.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import numpy as np
import torch
from torch import nn

from prohmr._utils import DictLikeOutput, autocast_disabled
from prohmr.constants import NUM_BODY_JOINTS, NUM_SMPL_JOINTS, POSE_6D_DIM
from prohmr.flows import ConditionalGlow
from prohmr.geometry import axis_angle_to_matrix, matrix_to_rot6d, rot6d_to_matrix
from prohmr.models.model_files import check_state_keys, read_model_file, save_model_file

__all__ = [
    "DEFAULT_POSE_PRIOR_PATH",
    "POSE_PRIOR_FORMAT",
    "POSE_PRIOR_FORMAT_VERSION",
    "PosePrior",
    "PosePriorConfig",
    "PosePriorSample",
    "axis_angle_to_pose_6d",
    "evaluate_nll",
    "load_pose_prior",
    "save_pose_prior",
]

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]

#: Value of the ``format`` entry of pose-prior files.
POSE_PRIOR_FORMAT: str = "prohmr.PosePrior"
#: Version of that layout; bumped if it ever changes incompatibly.
POSE_PRIOR_FORMAT_VERSION: int = 1
#: Where the shipped pose prior lives (package data); :func:`load_pose_prior`'s default.
DEFAULT_POSE_PRIOR_PATH: Path = (
    Path(__file__).resolve().parents[1] / "pretrained" / "pose_prior.pt"
)
#: Values per rotation in the 6D representation.
_ROT6D = 6
#: Axis-angle values of a full SMPL pose.
_AXIS_ANGLE_DIM = 3 * NUM_SMPL_JOINTS


@dataclass(frozen=True)
class PosePriorConfig:
    """Architecture of a :class:`PosePrior` (the flow always has 144 features, no context).

    The defaults are the shipped prior's: a narrow flow (width 32, one residual block per
    coupling net, dropout 0.5; 112 k parameters, under 0.5 MB) that trains on two CPU cores
    in about a minute. Wider coupling nets fit the training actors better but generalise
    worse to a new actor (docs/pose_prior.md).

    *Fields*
        hidden_features: width of the coupling nets (32).
        num_layers: ActNorm → LULinear → coupling layers (4).
        num_blocks_per_layer: residual blocks per coupling net (1).
        dropout_probability: dropout inside the residual blocks (0.5, as ProHMR).
        batch_norm: BatchNorm inside the residual blocks (True, as ProHMR).

    *Example*
        >>> config = PosePriorConfig(hidden_features=64, dropout_probability=0.1)
        >>> PosePriorConfig.from_dict(config.to_dict()) == config
        True
    """

    hidden_features: int = 32
    num_layers: int = 4
    num_blocks_per_layer: int = 1
    dropout_probability: float = 0.5
    batch_norm: bool = True

    def __post_init__(self) -> None:
        for name in ("hidden_features", "num_layers", "num_blocks_per_layer"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"PosePriorConfig: `{name}` must be an integer >= 1, got {value!r}"
                )
        dropout = self.dropout_probability
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not (
            0.0 <= dropout < 1.0
        ):
            raise ValueError(
                f"PosePriorConfig: `dropout_probability` must be in [0, 1), got {dropout!r}"
            )
        if not isinstance(self.batch_norm, bool):
            raise ValueError(
                f"PosePriorConfig: `batch_norm` must be a bool, got {self.batch_norm!r}"
            )
        object.__setattr__(self, "dropout_probability", float(dropout))

    def to_dict(self) -> dict[str, Any]:
        """Plain ``{field: value}`` dict (int, float, bool only)."""
        return {field.name: getattr(self, field.name) for field in fields(self)}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> PosePriorConfig:
        """Build a config from ``{field: value}``; missing fields take their defaults.

        *Raises*
            ValueError naming an unknown field or an invalid value.
        """
        if not isinstance(values, Mapping):
            raise ValueError(
                "PosePriorConfig.from_dict: `values` must be a mapping, got "
                f"{type(values).__name__}"
            )
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"PosePriorConfig.from_dict: unknown field(s) {unknown}; valid fields: "
                f"{sorted(known)}"
            )
        return cls(**dict(values))


@dataclass(eq=False)
class PosePriorSample(DictLikeOutput):
    """Poses drawn from (or the mode of) a :class:`PosePrior`; also readable like a dict.

    *Fields*
        rotations: ``(N, 24, 3, 3)`` rotation matrices, global orientation first.
        log_prob: ``(N,)`` log-density of ``pose_6d`` under the prior (module docstring);
            with a temperature the samples come from a tempered distribution but this is
            still the prior's own density.
        pose_6d: ``(N, 144)`` the flow's raw output in ProHMR's 6D layout (not normalised:
            pass it, not the rotation matrices, to recover ``z`` exactly).
        z: ``(N, 144)`` the latents the poses came from.
    """

    rotations: torch.Tensor
    log_prob: torch.Tensor
    pose_6d: torch.Tensor
    z: torch.Tensor

    @property
    def global_orient(self) -> torch.Tensor:
        """``(N, 1, 3, 3)`` the root rotation."""
        return self.rotations[:, :1]

    @property
    def body_pose(self) -> torch.Tensor:
        """``(N, 23, 3, 3)`` the rotations of SMPL joints 1..23."""
        return self.rotations[:, 1:]


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    return type(value).__name__


def _check_pose_tensor(value: Any, name: str, function: str, expected: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        raise ValueError(
            f"{function}: `{name}` must be a floating tensor of shape {expected}, "
            f"got {_describe(value)}"
        )
    if not bool(torch.isfinite(value).all()):
        raise ValueError(f"{function}: `{name}` contains NaN or infinite values")
    return value


def axis_angle_to_pose_6d(body_pose: torch.Tensor) -> torch.Tensor:
    """SMPL axis-angle poses to the prior's 144-d 6D vectors (ProHMR layout).

    *Arguments*
        body_pose: ``(..., 72)`` axis-angle in radians, global orientation first (the
            ``body_pose`` column of the mocap ``.npz`` files).

    *Returns*
        ``(..., 144)``: per joint the first two columns of its rotation matrix.

    *Example*
        >>> axis_angle_to_pose_6d(torch.zeros(2, 72))[0, :6]
        tensor([1., 0., 0., 0., 1., 0.])
    """
    function = "axis_angle_to_pose_6d"
    body_pose = _check_pose_tensor(body_pose, "body_pose", function, f"(..., {_AXIS_ANGLE_DIM})")
    if body_pose.ndim < 1 or body_pose.shape[-1] != _AXIS_ANGLE_DIM:
        raise ValueError(
            f"{function}: `body_pose` must have shape (..., {_AXIS_ANGLE_DIM}), "
            f"got {tuple(body_pose.shape)}"
        )
    rotations = axis_angle_to_matrix(body_pose.reshape(*body_pose.shape[:-1], NUM_SMPL_JOINTS, 3))
    return matrix_to_rot6d(rotations, layout="prohmr").flatten(-2)


class PosePrior(nn.Module):
    """Unconditional normalizing-flow prior over full SMPL poses (module docstring).

    *Arguments*
        config: the architecture (default :class:`PosePriorConfig`).

    *Attributes*
        flow: the unconditional :class:`~prohmr.flows.ConditionalGlow` over 144 features;
            pass it as ``prior=`` to the prior-only fitting functions.
        config: the :class:`PosePriorConfig`.
        metadata: a dict of JSON-able facts about the weights (training data, metrics), kept
            by :func:`save_pose_prior` / :func:`load_pose_prior`; empty for a new prior.

    A new prior is untrained: its ActNorm layers must be data-initialised
    (:meth:`initialize`) before :meth:`log_prob`, :meth:`sample` or :meth:`mode` run.

    *Example*
        >>> _ = torch.manual_seed(0)
        >>> prior = PosePrior(PosePriorConfig(hidden_features=16, num_layers=2,
        ...                                   num_blocks_per_layer=1))
        >>> poses = axis_angle_to_pose_6d(0.2 * torch.randn(32, 72))
        >>> prior.initialize(poses)
        True
        >>> prior = prior.eval()
        >>> drawn = prior.sample(5, generator=torch.Generator().manual_seed(0))
        >>> tuple(drawn.rotations.shape), tuple(drawn.log_prob.shape)
        ((5, 24, 3, 3), (5,))
        >>> torch.allclose(prior.log_prob(drawn.pose_6d), drawn.log_prob, atol=1e-4)
        True
        >>> prior.log_prob(drawn.rotations).shape  # matrices: scored at their first two columns
        torch.Size([5])
    """

    def __init__(self, config: Optional[PosePriorConfig] = None) -> None:
        super().__init__()
        if config is None:
            config = PosePriorConfig()
        if isinstance(config, Mapping):
            config = PosePriorConfig.from_dict(config)
        if not isinstance(config, PosePriorConfig):
            raise ValueError(
                f"PosePrior: `config` must be a PosePriorConfig or a dict, got {_describe(config)}"
            )
        self.config = config
        self.flow = ConditionalGlow(
            features=POSE_6D_DIM,
            hidden_features=config.hidden_features,
            num_layers=config.num_layers,
            num_blocks_per_layer=config.num_blocks_per_layer,
            context_features=0,
            dropout_probability=config.dropout_probability,
            batch_norm=config.batch_norm,
        )
        self.metadata: dict[str, Any] = {}

    @property
    def initialized(self) -> bool:
        """Whether the flow's ActNorm layers have been data-initialised (or loaded so)."""
        return self.flow.initialized

    def _check_ready(self, function: str) -> None:
        if not self.initialized:
            raise ValueError(
                f"PosePrior.{function}: the prior is untrained (its ActNorm layers are not "
                "initialised); train it, call initialize(poses) first, or use load_pose_prior()"
            )

    def initialize(self, pose_6d: torch.Tensor) -> bool:
        """Data-initialise the flow's ActNorm layers from poses, once (SPEC §3).

        Runs a training-mode, no-gradient ``log_prob`` pass so that every ActNorm layer's
        outputs have zero mean and unit std over these poses (the module's train/eval mode
        is restored afterwards). Does nothing if already initialised.

        *Arguments*
            pose_6d: ``(M, 144)`` poses in ProHMR's 6D layout, ``M >= 2``.

        *Returns*
            Whether the initialisation ran now.
        """
        function = "PosePrior.initialize"
        pose_6d = _check_pose_tensor(pose_6d, "pose_6d", function, f"(M, {POSE_6D_DIM})")
        if pose_6d.ndim != 2 or pose_6d.shape[1] != POSE_6D_DIM or pose_6d.shape[0] < 2:
            raise ValueError(
                f"{function}: `pose_6d` must have shape (M, {POSE_6D_DIM}) with M >= 2, "
                f"got {tuple(pose_6d.shape)}"
            )
        if self.initialized:
            return False
        was_training = self.training
        self.train()
        with torch.no_grad():
            self.flow.log_prob(pose_6d)
        self.train(was_training)
        return True

    def to_pose_6d(self, pose: torch.Tensor) -> torch.Tensor:
        """Poses as the flow's 144-d 6D vectors.

        *Arguments*
            pose: ``(..., 24, 3, 3)`` rotation matrices (converted to their first two
                columns) or ``(..., 144)`` 6D vectors (returned as they are).

        *Returns*
            ``(..., 144)``.
        """
        function = "PosePrior.to_pose_6d"
        expected = f"(..., {NUM_SMPL_JOINTS}, 3, 3) or (..., {POSE_6D_DIM})"
        pose = _check_pose_tensor(pose, "pose", function, expected)
        if pose.ndim >= 3 and tuple(pose.shape[-3:]) == (NUM_SMPL_JOINTS, 3, 3):
            return matrix_to_rot6d(pose, layout="prohmr").flatten(-2)
        if pose.ndim >= 1 and pose.shape[-1] == POSE_6D_DIM:
            return pose
        raise ValueError(f"{function}: `pose` must have shape {expected}, got {tuple(pose.shape)}")

    def log_prob(self, pose: torch.Tensor) -> torch.Tensor:
        """Log-density of poses under the prior (see the module docstring for which density).

        *Arguments*
            pose: ``(..., 24, 3, 3)`` rotation matrices, global orientation first, or
                ``(..., 144)`` 6D vectors in ProHMR's layout.

        *Returns*
            ``(...,)`` log-density in nats, in the flow's dtype; differentiable.
        """
        self._check_ready("log_prob")
        pose_6d = self.to_pose_6d(pose)
        batch_shape = pose_6d.shape[:-1]
        with autocast_disabled(pose_6d.device):
            log_prob, _ = self.flow.log_prob(pose_6d.reshape(-1, POSE_6D_DIM))
        return log_prob.reshape(batch_shape)

    def nll_body_pose(
        self, body_pose: torch.Tensor, global_orient: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """``−log p`` of body poses, for use as a fitting or regularisation term.

        The prior covers the global orientation too (of mocap bodies: y up, heading removed,
        upright bodies near the identity). When ``global_orient`` is not given, the mode's
        global orientation (its raw 6D) stands in, so that only the body pose is scored.

        *Arguments*
            body_pose: ``(..., 23, 3, 3)`` rotations of SMPL joints 1..23.
            global_orient: optional ``(..., 1, 3, 3)`` root rotation.

        *Returns*
            ``(...,)`` negative log-density in nats; differentiable in both inputs.
        """
        function = "PosePrior.nll_body_pose"
        self._check_ready("nll_body_pose")
        expected = f"(..., {NUM_BODY_JOINTS}, 3, 3)"
        body_pose = _check_pose_tensor(body_pose, "body_pose", function, expected)
        if body_pose.ndim < 3 or tuple(body_pose.shape[-3:]) != (NUM_BODY_JOINTS, 3, 3):
            raise ValueError(
                f"{function}: `body_pose` must have shape {expected}, got {tuple(body_pose.shape)}"
            )
        batch_shape = body_pose.shape[:-3]
        body_6d = matrix_to_rot6d(body_pose.to(self.flow.dtype), layout="prohmr").flatten(-2)
        if global_orient is None:
            global_6d = self._mode_global_6d().expand(*batch_shape, _ROT6D)
        else:
            global_orient = _check_pose_tensor(
                global_orient, "global_orient", function, "(..., 1, 3, 3)"
            )
            if tuple(global_orient.shape) != (*batch_shape, 1, 3, 3):
                raise ValueError(
                    f"{function}: `global_orient` must have shape {(*batch_shape, 1, 3, 3)} to "
                    f"match `body_pose`, got {tuple(global_orient.shape)}"
                )
            global_6d = matrix_to_rot6d(
                global_orient[..., 0, :, :].to(body_6d.dtype), layout="prohmr"
            )
        return -self.log_prob(torch.cat([global_6d, body_6d], dim=-1))

    def _mode_global_6d(self) -> torch.Tensor:
        """The raw 6D ``(6,)`` of the mode's global orientation, a constant (eval mode, no
        gradient, whatever mode the module is in)."""
        was_training = self.training
        self.eval()
        with torch.no_grad(), autocast_disabled(self.flow.device):
            mode_global = self.flow.mode().samples[0, 0, :_ROT6D]
        self.train(was_training)
        return mode_global

    def _result(self, drawn: Any) -> PosePriorSample:
        pose_6d = drawn.samples[0]
        rotations = rot6d_to_matrix(
            pose_6d.reshape(-1, NUM_SMPL_JOINTS, _ROT6D), layout="prohmr"
        )
        return PosePriorSample(
            rotations=rotations, log_prob=drawn.log_prob[0], pose_6d=pose_6d, z=drawn.z[0]
        )

    def sample(
        self,
        num_samples: int,
        generator: Optional[torch.Generator] = None,
        temperature: float = 1.0,
    ) -> PosePriorSample:
        """Draw poses: ``z ~ N(0, temperature² I)`` mapped through the flow (reparameterised).

        *Arguments*
            num_samples: ``N >= 1``.
            generator: random generator for the latents (on the prior's device).
            temperature: scale of the latents; ``< 1`` gives more typical poses, 0 the mode.

        *Returns*
            :class:`PosePriorSample` with ``N`` poses.
        """
        function = "PosePrior.sample"
        self._check_ready("sample")
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(
                f"{function}: `num_samples` must be an integer >= 1, got {num_samples!r}"
            )
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not (
            math.isfinite(temperature) and temperature >= 0.0
        ):
            raise ValueError(
                f"{function}: `temperature` must be a number >= 0, got {temperature!r}"
            )
        z = torch.randn(
            (1, num_samples, POSE_6D_DIM),
            generator=generator,
            dtype=self.flow.dtype,
            device=self.flow.device,
        )
        with autocast_disabled(z.device):
            return self._result(self.flow.sample(z=temperature * z))

    def mode(self) -> PosePriorSample:
        """The most likely pose (``z = 0``), as a :class:`PosePriorSample` with ``N = 1``."""
        self._check_ready("mode")
        with autocast_disabled(self.flow.device):
            return self._result(self.flow.mode())

    def extra_repr(self) -> str:
        return ", ".join(f"{key}={value}" for key, value in self.config.to_dict().items())


def evaluate_nll(
    prior: PosePrior,
    poses: Union[torch.Tensor, np.ndarray],
    batch_size: int = 1024,
) -> float:
    """Mean negative log-likelihood per pose (nats) of clean poses, in eval mode, no gradients.

    *Arguments*
        prior: the prior (its train/eval mode is restored afterwards).
        poses: ``(M, 72)`` axis-angle (the mocap ``body_pose`` column), ``(M, 24, 3, 3)``
            rotation matrices or ``(M, 144)`` 6D vectors; ``M >= 1``.
        batch_size: poses per flow pass.

    *Returns*
        ``−mean log p`` over the ``M`` poses (in float64 accumulation).
    """
    function = "evaluate_nll"
    if not isinstance(prior, PosePrior):
        raise ValueError(f"{function}: `prior` must be a PosePrior, got {_describe(prior)}")
    if isinstance(poses, np.ndarray):
        poses = torch.from_numpy(poses)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"{function}: `batch_size` must be an integer >= 1, got {batch_size!r}")
    expected = f"(M, {_AXIS_ANGLE_DIM}), (M, {NUM_SMPL_JOINTS}, 3, 3) or (M, {POSE_6D_DIM})"
    poses = _check_pose_tensor(poses, "poses", function, expected)
    if poses.ndim == 2 and poses.shape[1] == _AXIS_ANGLE_DIM:
        poses = axis_angle_to_pose_6d(poses)
    if len(poses) == 0 or not (
        (poses.ndim == 2 and poses.shape[1] == POSE_6D_DIM)
        or (poses.ndim == 4 and tuple(poses.shape[1:]) == (NUM_SMPL_JOINTS, 3, 3))
    ):
        raise ValueError(
            f"{function}: `poses` must have shape {expected}, got {tuple(poses.shape)}"
        )
    was_training = prior.training
    prior.eval()
    total = 0.0
    with torch.no_grad():
        for start in range(0, len(poses), batch_size):
            chunk = poses[start : start + batch_size].to(prior.flow.device)
            total += float(prior.log_prob(chunk).double().sum())
    prior.train(was_training)
    return -total / len(poses)


def save_pose_prior(
    model: PosePrior, path: PathLike, metadata: Optional[Mapping[str, Any]] = None
) -> Path:
    """Save a prior's configuration, weights and metadata (Contract B, ``prohmr.PosePrior``).

    *Arguments*
        model: the prior.
        path: the file to write (parent folders are created).
        metadata: JSON-able facts to store (default: ``model.metadata``).

    *Returns*
        The path written.

    *Example*
        >>> import tempfile
        >>> prior = PosePrior(PosePriorConfig(hidden_features=8, num_layers=1,
        ...                                   num_blocks_per_layer=1))
        >>> _ = prior.initialize(axis_angle_to_pose_6d(0.1 * torch.randn(4, 72)))
        >>> path = save_pose_prior(prior, tempfile.mkdtemp() + "/prior.pt", {"note": "tiny"})
        >>> loaded = load_pose_prior(path)
        >>> loaded.metadata, loaded.config == prior.config, loaded.training
        ({'note': 'tiny'}, True, False)
    """
    function = "save_pose_prior"
    if not isinstance(model, PosePrior):
        raise ValueError(f"{function}: `model` must be a PosePrior, got {_describe(model)}")
    return save_model_file(
        model, model.config.to_dict(), path, POSE_PRIOR_FORMAT, POSE_PRIOR_FORMAT_VERSION,
        model.metadata if metadata is None else metadata, function,
    )


def load_pose_prior(
    path: Optional[PathLike] = None, device: Optional[Union[str, torch.device]] = None
) -> PosePrior:
    """Load a prior written by :func:`save_pose_prior`, in eval mode.

    The file is read with ``torch.load(weights_only=True)``: no code from it runs.

    *Arguments*
        path: the file; None for the shipped prior (:data:`DEFAULT_POSE_PRIOR_PATH`).
        device: where to put the prior (default: CPU).

    *Returns*
        The :class:`PosePrior` with its ``metadata``, in eval mode.

    *Raises*
        FileNotFoundError: no such file. ValueError: not a ``prohmr.PosePrior`` file (e.g. a
        Lightning checkpoint: export it with ``export_pose_prior`` first), an unsupported
        version, or weights that do not match the stored config.
    """
    function = "load_pose_prior"
    path = DEFAULT_POSE_PRIOR_PATH if path is None else Path(path).expanduser()
    checkpoint = read_model_file(
        path, POSE_PRIOR_FORMAT, POSE_PRIOR_FORMAT_VERSION, function,
        "convert it with lightning_modules.pose_prior_module.export_pose_prior",
    )
    model = PosePrior(PosePriorConfig.from_dict(checkpoint.get("config") or {}))
    state_dict = checkpoint["state_dict"]
    check_state_keys(model.state_dict(), state_dict, f"{function}: the weights in {path}",
                     " its config")
    model.load_state_dict(state_dict, strict=True)
    model.metadata = dict(checkpoint.get("metadata") or {})
    logger.info("loaded pose prior %s", path)
    if device is not None:
        model.to(device)
    return model.eval()
