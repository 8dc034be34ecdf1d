"""ProSkeleton: probabilistic 2D → 3D skeleton lifting (SPEC §8).

A distribution over 3D skeletons given 17 2D joints: an MLP turns the normalised 2D joints
into a context, and ProHMR's conditional Glow (:class:`prohmr.flows.ConditionalGlow`) models
the 16 root-relative 3D joints (48 values) given it. As for ProHMR the mode is ``z = 0``.

**Input** (``keypoints_2d (B, 17, 2)``): the H36M-17 joints in the order of
:data:`prohmr.body.joints.H36M_17_INPUT_2D` (the pelvis, ProHMR joint 39, at position 13), in
**pixels of any image**. :meth:`ProSkeleton.normalize_keypoints` maps them to the network
input in two steps:

1. :func:`prohmr.data.lifting.box_normalize_keypoints`: ``(keypoints - c) / s`` with ``c`` the
   centre of the keypoints' bounding box and ``s`` = 1.2 × its larger side (a square person
   box, like ProHMR's crops). This removes the image position and resolution, so no camera
   intrinsics are needed;
2. ``(x - keypoints_mean) / keypoints_std`` with the training set's statistics (34 values),
   which are **buffers of the model** and travel in its state dict and files (the original
   never shipped them).

**Output** (``joints_3d (B, N, 17, 3)``): the same 17 joints in metres, relative to the pelvis
(position 13 is exactly zero), in the camera frame: x right, y down, z forward (away from
the camera), for a camera looking at the person. The 16 others are the flow's 48 values
(:data:`prohmr.body.joints.H36M_16_OUTPUT_3D`). Evaluate with
:data:`prohmr.evaluation.H36M_17`. Sample 0 is always the mode.

Files: :func:`save_proskeleton` / :func:`load_proskeleton` (format ``"prohmr.ProSkeleton"``,
Contract B); :func:`export_proskeleton` turns a training checkpoint into such a file.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import torch
from torch import nn

from prohmr._utils import DictLikeOutput
from prohmr.data.lifting import (
    BOX_MARGIN,
    LIFTING_OUTPUT_POSITIONS,
    LIFTING_PELVIS,
    MIN_KEYPOINT_STD,
    NUM_LIFTING_JOINTS,
    box_normalize_keypoints,
)
from prohmr.flows import ConditionalGlow
from prohmr.models.model_files import check_state_keys, read_model_file, save_model_file

__all__ = [
    "PROSKELETON_FORMAT",
    "PROSKELETON_FORMAT_VERSION",
    "PRETRAINED_PROSKELETON",
    "KEYPOINT_FEATURES",
    "JOINT_FEATURES",
    "ProSkeletonConfig",
    "ProSkeletonOutput",
    "KeypointEncoder",
    "ProSkeleton",
    "save_proskeleton",
    "load_proskeleton",
    "export_proskeleton",
]

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]

#: ``format`` entry of ProSkeleton files (Contract B).
PROSKELETON_FORMAT: str = "prohmr.ProSkeleton"
#: Version of that layout.
PROSKELETON_FORMAT_VERSION: int = 1
#: The shipped model (trained on HDM05 through virtual cameras; see its model card).
PRETRAINED_PROSKELETON: Path = Path(__file__).resolve().parents[1] / "pretrained" / "proskeleton.pt"
#: Network input size: 17 joints × (x, y).
KEYPOINT_FEATURES: int = 2 * NUM_LIFTING_JOINTS  # 34
#: Flow variable size: 16 root-relative joints × (x, y, z).
JOINT_FEATURES: int = 3 * len(LIFTING_OUTPUT_POSITIONS)  # 48
# Prefix of the model's keys in the LightningModule's checkpoints (``self.model``).
_LIGHTNING_PREFIX = "model."


def _check_int(value: Any, name: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(
            f"ProSkeletonConfig: `{name}` must be an integer >= {minimum}, got {value!r}"
        )


def _check_probability(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"ProSkeletonConfig: `{name}` must be in [0, 1), got {value!r}")


def _describe(value: Any) -> str:
    """A tensor's shape, or any other value's type, for error messages."""
    return str(tuple(value.shape)) if isinstance(value, torch.Tensor) else type(value).__name__


@dataclass(frozen=True)
class ProSkeletonConfig:
    """Architecture of a :class:`ProSkeleton`; defaults = SPEC §8 (the original's sizes).

    *Fields*
        context_features: width of the keypoint MLP and of the context (1024).
        context_num_blocks: residual blocks of the MLP, each ``[Linear, BN, ReLU, Dropout]``
            twice (2).
        context_dropout_probability: dropout of the MLP (0.5).
        flow_hidden_features: width of the coupling nets (1024).
        flow_num_layers: ActNorm → LULinear → coupling layers (4).
        flow_num_blocks_per_layer: residual blocks per coupling net (2).
        flow_dropout_probability: dropout inside the coupling nets (0.5).
        flow_batch_norm: BatchNorm inside the coupling nets (True).
        box_margin: side of the person box relative to the keypoints' extent (1.2), part of
            the input convention the model was trained with.

    *Example*
        >>> config = ProSkeletonConfig(context_features=64, flow_hidden_features=32)
        >>> ProSkeletonConfig.from_dict(config.to_dict()) == config
        True
    """

    context_features: int = 1024
    context_num_blocks: int = 2
    context_dropout_probability: float = 0.5
    flow_hidden_features: int = 1024
    flow_num_layers: int = 4
    flow_num_blocks_per_layer: int = 2
    flow_dropout_probability: float = 0.5
    flow_batch_norm: bool = True
    box_margin: float = BOX_MARGIN

    def __post_init__(self) -> None:
        _check_int(self.context_features, "context_features", 1)
        _check_int(self.context_num_blocks, "context_num_blocks", 0)
        _check_int(self.flow_hidden_features, "flow_hidden_features", 1)
        _check_int(self.flow_num_layers, "flow_num_layers", 1)
        _check_int(self.flow_num_blocks_per_layer, "flow_num_blocks_per_layer", 1)
        _check_probability(self.context_dropout_probability, "context_dropout_probability")
        _check_probability(self.flow_dropout_probability, "flow_dropout_probability")
        if not isinstance(self.flow_batch_norm, bool):
            raise ValueError(
                f"ProSkeletonConfig: `flow_batch_norm` must be a bool, got {self.flow_batch_norm!r}"
            )
        margin = self.box_margin
        if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not (
            math.isfinite(margin) and margin >= 1.0
        ):
            raise ValueError(
                f"ProSkeletonConfig: `box_margin` must be a number >= 1, got {margin!r}"
            )
        for name in ("context_dropout_probability", "flow_dropout_probability", "box_margin"):
            object.__setattr__(self, name, float(getattr(self, name)))

    def replace(self, **changes: Any) -> ProSkeletonConfig:
        """A copy with some fields changed (validated like the constructor)."""
        self._check_names(changes, "replace")
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain ``{field: value}`` dict."""
        return asdict(self)

    @classmethod
    def _check_names(cls, names: Mapping[str, Any], function: str) -> None:
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(names) - known)
        if unknown:
            raise ValueError(
                f"ProSkeletonConfig.{function}: unknown field(s) {unknown}; valid fields: "
                f"{sorted(known)}"
            )

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ProSkeletonConfig:
        """Build from ``{field: value}``; missing fields take their defaults."""
        if not isinstance(values, Mapping):
            raise ValueError(
                "ProSkeletonConfig.from_dict: `values` must be a mapping, got "
                f"{type(values).__name__}"
            )
        cls._check_names(values, "from_dict")
        return cls(**dict(values))


@dataclass(eq=False)
class ProSkeletonOutput(DictLikeOutput):
    """What :class:`ProSkeleton` returns; also readable like a dict.

    *Fields*
        joints_3d: ``(B, N, 17, 3)`` root-relative camera-frame joints in metres (position
            13, the pelvis, is zero); sample 0 is the mode.
        log_prob: ``(B, N)`` log-density of the 48 flow values of each sample.
        z: ``(B, N, 48)`` the latents (zeros for the mode).
    """

    joints_3d: torch.Tensor
    log_prob: torch.Tensor
    z: torch.Tensor


class _ResidualBlock(nn.Module):
    """``x + [Linear, BN, ReLU, Dropout] × 2 (x)``."""

    def __init__(self, features: int, dropout_probability: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(2):
            layers += [
                nn.Linear(features, features),
                nn.BatchNorm1d(features),
                nn.ReLU(),
                nn.Dropout(dropout_probability),
            ]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layers(x)


class KeypointEncoder(nn.Module):
    """The context MLP: ``Linear(34 → C), BN, ReLU, Dropout``, then residual blocks.

    *Arguments*
        context_features: ``C``.
        num_blocks: residual blocks ``x + [Linear, BN, ReLU, Dropout] × 2 (x)``.
        dropout_probability: dropout after every ReLU.

    Input ``(B, 34)`` normalised keypoints, output ``(B, C)`` context.
    """

    def __init__(self, context_features: int, num_blocks: int, dropout_probability: float) -> None:
        super().__init__()
        self.input_layer = nn.Sequential(
            nn.Linear(KEYPOINT_FEATURES, context_features),
            nn.BatchNorm1d(context_features),
            nn.ReLU(),
            nn.Dropout(dropout_probability),
        )
        self.blocks = nn.Sequential(
            *(_ResidualBlock(context_features, dropout_probability) for _ in range(num_blocks))
        )

    def forward(self, keypoints: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.input_layer(keypoints))


class ProSkeleton(nn.Module):
    """Probabilistic lifting of 17 2D joints (pixels) to root-relative 3D skeletons.

    See the module docstring for the input and output conventions.

    *Arguments*
        config: the architecture (:class:`ProSkeletonConfig`, or a dict of its fields;
            default SPEC §8).

    *Attributes*
        config, encoder (:class:`KeypointEncoder`), flow
        (:class:`~prohmr.flows.ConditionalGlow` over 48 values), and the buffers
        ``keypoints_mean (34,)`` / ``keypoints_std (34,)`` (input statistics, set with
        :meth:`set_keypoint_stats`; identity until then) and ``initialized`` (ActNorm
        data-initialised, :meth:`initialize_flow`); ``metadata``, the dict stored with its file
        (empty for a new model).

    Call ``.eval()`` before inference (BatchNorm and dropout); :func:`load_proskeleton`
    returns the model in eval mode. Inputs are converted to the model's dtype.

    *Example*
        >>> _ = torch.manual_seed(0)
        >>> model = ProSkeleton(ProSkeletonConfig(context_features=32, flow_hidden_features=16,
        ...                                       flow_num_layers=2)).eval()
        >>> keypoints = 100.0 * torch.rand(2, 17, 2)
        >>> out = model.sample(keypoints, num_samples=4)
        >>> tuple(out.joints_3d.shape), tuple(out.log_prob.shape)
        ((2, 4, 17, 3), (2, 4))
        >>> bool((out.z[:, 0] == 0).all()), bool((out.joints_3d[:, :, 13] == 0).all())
        (True, True)
    """

    def __init__(self, config: ProSkeletonConfig = ProSkeletonConfig()) -> None:
        super().__init__()
        if isinstance(config, Mapping):
            config = ProSkeletonConfig.from_dict(config)
        if not isinstance(config, ProSkeletonConfig):
            raise ValueError(
                f"ProSkeleton: `config` must be a ProSkeletonConfig, got {type(config).__name__}"
            )
        self.config = config
        self.encoder = KeypointEncoder(
            config.context_features, config.context_num_blocks, config.context_dropout_probability
        )
        self.flow = ConditionalGlow(
            features=JOINT_FEATURES,
            hidden_features=config.flow_hidden_features,
            num_layers=config.flow_num_layers,
            num_blocks_per_layer=config.flow_num_blocks_per_layer,
            context_features=config.context_features,
            dropout_probability=config.flow_dropout_probability,
            batch_norm=config.flow_batch_norm,
        )
        self.register_buffer("keypoints_mean", torch.zeros(KEYPOINT_FEATURES))
        self.register_buffer("keypoints_std", torch.ones(KEYPOINT_FEATURES))
        self.register_buffer("initialized", torch.tensor(False))
        #: Facts stored with the model's file (data, metrics, licence); see
        #: :func:`save_proskeleton`.
        self.metadata: dict[str, Any] = {}

    # ----------------------------------------------------------------------------- inputs
    def set_keypoint_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Store the input statistics (from
        :func:`prohmr.data.lifting.compute_keypoint_stats`).

        *Arguments*
            mean: ``(34,)`` mean of the box-normalised keypoints (``x0, y0, x1, ...``).
            std: ``(34,)`` their std, each ``>= MIN_KEYPOINT_STD``.
        """
        for name, value in (("mean", mean), ("std", std)):
            if not isinstance(value, torch.Tensor) or tuple(value.shape) != (KEYPOINT_FEATURES,):
                raise ValueError(
                    f"ProSkeleton.set_keypoint_stats: `{name}` must be a tensor of shape "
                    f"({KEYPOINT_FEATURES},), got {_describe(value)}"
                )
            if not bool(torch.isfinite(value).all()):
                raise ValueError(f"ProSkeleton.set_keypoint_stats: `{name}` contains NaN or inf")
        if not bool((std >= MIN_KEYPOINT_STD).all()):
            raise ValueError(
                f"ProSkeleton.set_keypoint_stats: every `std` entry must be >= {MIN_KEYPOINT_STD}"
            )
        with torch.no_grad():
            self.keypoints_mean.copy_(mean)
            self.keypoints_std.copy_(std)

    def _check_keypoints(self, keypoints_2d: Any, function: str) -> torch.Tensor:
        expected = f"(B, {NUM_LIFTING_JOINTS}, 2)"
        if not isinstance(keypoints_2d, torch.Tensor) or not keypoints_2d.is_floating_point():
            got = (
                keypoints_2d.dtype
                if isinstance(keypoints_2d, torch.Tensor)
                else type(keypoints_2d).__name__
            )
            raise ValueError(
                f"ProSkeleton.{function}: `keypoints_2d` must be a floating torch.Tensor of shape "
                f"{expected} in pixels, got {got}"
            )
        if keypoints_2d.ndim != 3 or keypoints_2d.shape[1:] != (NUM_LIFTING_JOINTS, 2) or (
            keypoints_2d.shape[0] == 0
        ):
            raise ValueError(
                f"ProSkeleton.{function}: `keypoints_2d` must have shape {expected} with B >= 1 "
                f"(the H36M-17 joints in pixels), got {tuple(keypoints_2d.shape)}"
            )
        if not bool(torch.isfinite(keypoints_2d).all()):
            raise ValueError(
                f"ProSkeleton.{function}: `keypoints_2d` contains NaN or infinite values"
            )
        return keypoints_2d

    def normalize_keypoints(self, keypoints_2d: torch.Tensor) -> torch.Tensor:
        """The network input for pixel keypoints: person box, then dataset mean/std.

        *Arguments*
            keypoints_2d: ``(B, 17, 2)`` pixel coordinates (any image).

        *Returns*
            ``(B, 34)`` normalised keypoints in the model's dtype.
        """
        keypoints_2d = self._check_keypoints(keypoints_2d, "normalize_keypoints")
        normalized, _, _ = box_normalize_keypoints(
            keypoints_2d.to(self.keypoints_mean.dtype), margin=self.config.box_margin
        )
        return (normalized.flatten(1) - self.keypoints_mean) / self.keypoints_std

    def denormalize_keypoints(self, normalized: torch.Tensor) -> torch.Tensor:
        """Inverse of the statistics step: ``(B, 34)`` → ``(B, 17, 2)`` box coordinates."""
        if not isinstance(normalized, torch.Tensor) or normalized.ndim != 2 or (
            normalized.shape[1] != KEYPOINT_FEATURES
        ):
            raise ValueError(
                f"ProSkeleton.denormalize_keypoints: `normalized` must have shape "
                f"(B, {KEYPOINT_FEATURES}), got {_describe(normalized)}"
            )
        box = normalized * self.keypoints_std + self.keypoints_mean
        return box.reshape(-1, NUM_LIFTING_JOINTS, 2)

    def context(self, keypoints_2d: torch.Tensor) -> torch.Tensor:
        """``(B, C)`` flow context of ``(B, 17, 2)`` pixel keypoints."""
        return self.encoder(self.normalize_keypoints(keypoints_2d))

    # ---------------------------------------------------------------------- conversions
    @staticmethod
    def joints_to_flow(joints_3d: torch.Tensor) -> torch.Tensor:
        """``(..., 17, 3)`` joints → ``(..., 48)`` flow values: centred at the pelvis, the
        16 output joints flattened."""
        relative = joints_3d - joints_3d[..., LIFTING_PELVIS : LIFTING_PELVIS + 1, :]
        return relative[..., list(LIFTING_OUTPUT_POSITIONS), :].flatten(-2)

    @staticmethod
    def flow_to_joints(values: torch.Tensor) -> torch.Tensor:
        """``(..., 48)`` flow values → ``(..., 17, 3)`` joints with the pelvis at zero."""
        outputs = values.unflatten(-1, (len(LIFTING_OUTPUT_POSITIONS), 3))
        joints = outputs.new_zeros(outputs.shape[:-2] + (NUM_LIFTING_JOINTS, 3))
        joints[..., list(LIFTING_OUTPUT_POSITIONS), :] = outputs
        return joints

    # --------------------------------------------------------------------------- public API
    def sample(
        self,
        keypoints_2d: torch.Tensor,
        num_samples: int = 1,
        generator: Optional[torch.Generator] = None,
        z: Optional[torch.Tensor] = None,
    ) -> ProSkeletonOutput:
        """3D hypotheses for each 2D input; sample 0 is the mode (``z = 0``).

        The context projections are computed once per input and shared by its samples
        (the flow's :class:`~prohmr.flows.FlowContext` fast path).

        *Arguments*
            keypoints_2d: ``(B, 17, 2)`` pixels.
            num_samples: ``N >= 1``.
            generator: random generator of the latents of samples ``1..N-1``.
            z: optional ``(B, N, 48)`` latents to use as given (``num_samples`` is then
                ignored and sample 0 is whatever ``z[:, 0]`` says).

        *Returns*
            :class:`ProSkeletonOutput`: ``joints_3d (B, N, 17, 3)``, ``log_prob (B, N)``,
            ``z (B, N, 48)``.
        """
        context = self.context(self._check_keypoints(keypoints_2d, "sample"))
        return self.sample_from_context(context, num_samples, generator, z)

    def sample_from_context(
        self,
        context: torch.Tensor,
        num_samples: int = 1,
        generator: Optional[torch.Generator] = None,
        z: Optional[torch.Tensor] = None,
    ) -> ProSkeletonOutput:
        """:meth:`sample` for a context from :meth:`context` (training reuses one context
        for the samples and the NLL).

        *Arguments*
            context: ``(B, C)``.
            num_samples, generator, z: as in :meth:`sample`.

        *Returns*
            :class:`ProSkeletonOutput`.
        """
        batch_size = context.shape[0]
        if z is None:
            if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
                raise ValueError(
                    "ProSkeleton.sample: `num_samples` must be an integer >= 1, got "
                    f"{num_samples!r}"
                )
            z = torch.randn(
                (batch_size, num_samples, JOINT_FEATURES),
                generator=generator,
                dtype=self.flow.dtype,
                device=context.device,
            )
            z[:, 0] = 0.0
        elif not isinstance(z, torch.Tensor) or z.ndim != 3 or z.shape[0] != batch_size or (
            z.shape[2] != JOINT_FEATURES
        ):
            raise ValueError(
                f"ProSkeleton.sample: `z` must have shape ({batch_size}, N, {JOINT_FEATURES}), "
                f"got {_describe(z)}"
            )
        flow_sample = self.flow.sample(context=context, z=z)
        return ProSkeletonOutput(
            joints_3d=self.flow_to_joints(flow_sample.samples),
            log_prob=flow_sample.log_prob,
            z=flow_sample.z,
        )

    def forward(
        self,
        keypoints_2d: torch.Tensor,
        num_samples: int = 1,
        generator: Optional[torch.Generator] = None,
    ) -> ProSkeletonOutput:
        """Same as :meth:`sample`."""
        return self.sample(keypoints_2d, num_samples, generator)

    def mode(self, keypoints_2d: torch.Tensor) -> ProSkeletonOutput:
        """The most likely skeleton per input (``z = 0``): ``joints_3d (B, 1, 17, 3)``."""
        return self.sample(keypoints_2d, num_samples=1)

    def log_prob(
        self, keypoints_2d: torch.Tensor, joints_3d: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-density of 3D skeletons given the 2D inputs, and their latents.

        The skeletons are centred at their pelvis (position 13) first, so any translation
        is accepted; the density is that of the 48 values of the 16 other joints (metres).

        *Arguments*
            keypoints_2d: ``(B, 17, 2)`` pixels.
            joints_3d: ``(B, 17, 3)`` or ``(B, N, 17, 3)`` camera-frame joints.

        *Returns*
            ``log_prob (B,)`` or ``(B, N)`` and ``z (B, [N,] 48)``.
        """
        keypoints_2d = self._check_keypoints(keypoints_2d, "log_prob")
        batch_size = keypoints_2d.shape[0]
        if not isinstance(joints_3d, torch.Tensor) or not joints_3d.is_floating_point() or (
            joints_3d.ndim not in (3, 4)
            or joints_3d.shape[-2:] != (NUM_LIFTING_JOINTS, 3)
            or joints_3d.shape[0] != batch_size
        ):
            raise ValueError(
                f"ProSkeleton.log_prob: `joints_3d` must be a floating tensor of shape "
                f"({batch_size}, {NUM_LIFTING_JOINTS}, 3) or ({batch_size}, N, "
                f"{NUM_LIFTING_JOINTS}, 3), got {_describe(joints_3d)}"
            )
        if not bool(torch.isfinite(joints_3d).all()):
            raise ValueError("ProSkeleton.log_prob: `joints_3d` contains NaN or infinite values")
        return self.log_prob_from_context(self.context(keypoints_2d), joints_3d)

    def log_prob_from_context(
        self, context: torch.Tensor, joints_3d: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`log_prob` for a context from :meth:`context`; ``joints_3d``
        ``(B, [N,] 17, 3)`` is trusted."""
        return self.flow.log_prob(self.joints_to_flow(joints_3d), context)

    def initialize_flow(self, keypoints_2d: torch.Tensor, joints_3d: torch.Tensor) -> bool:
        """Data-initialise the flow's ActNorm layers from ground-truth skeletons, once.

        Runs a training-mode ``log_prob`` without gradients (at least 2 skeletons) and sets
        ``initialized``; later calls do nothing.

        *Arguments*
            keypoints_2d: ``(B, 17, 2)`` pixels.
            joints_3d: ``(B, 17, 3)`` their ground-truth skeletons.

        *Returns*
            Whether the initialisation ran.
        """
        if bool(self.initialized):
            return False
        if not self.flow.training:
            raise ValueError(
                "ProSkeleton.initialize_flow: the flow is in eval mode; ActNorm initialises from "
                "data only in training mode (call model.train() first)"
            )
        with torch.no_grad():
            self.log_prob(keypoints_2d, joints_3d)
        self.initialized.fill_(True)
        return True


# ------------------------------------------------------------------------------------ files
def save_proskeleton(
    model: ProSkeleton, path: PathLike, metadata: Optional[Mapping[str, Any]] = None
) -> Path:
    """Save a :class:`ProSkeleton` (config, weights, input statistics, metadata).

    Writes ``{"format": "prohmr.ProSkeleton", "format_version": 1, "config", "state_dict"
    (CPU tensors), "metadata"}`` (Contract B); it loads with ``torch.load(weights_only=True)``.

    *Arguments*
        model: the model.
        path: the file (parent folders are created).
        metadata: JSON-able facts about the model (data, metrics, licence).

    *Returns*
        The path written.
    """
    if not isinstance(model, ProSkeleton):
        raise ValueError(
            f"save_proskeleton: `model` must be a ProSkeleton, got {type(model).__name__}"
        )
    return save_model_file(
        model, model.config.to_dict(), path, PROSKELETON_FORMAT, PROSKELETON_FORMAT_VERSION,
        metadata, "save_proskeleton",
    )


def load_proskeleton(
    path: Optional[PathLike] = None, device: Optional[Union[str, torch.device]] = None
) -> ProSkeleton:
    """Load a file written by :func:`save_proskeleton`, in eval mode.

    *Arguments*
        path: the file; None for the shipped model (:data:`PRETRAINED_PROSKELETON`).
        device: where to put the model (default CPU).

    *Returns*
        The :class:`ProSkeleton`; its file's metadata is in ``model.metadata`` (a dict).

    *Raises*
        FileNotFoundError naming a missing file; ValueError for another format or version,
        or weights that do not fit the stored config (every bad key named).
    """
    function = "load_proskeleton"
    path = Path(PRETRAINED_PROSKELETON if path is None else path).expanduser()
    checkpoint = read_model_file(
        path, PROSKELETON_FORMAT, PROSKELETON_FORMAT_VERSION, function,
        "convert it with export_proskeleton",
    )
    model = ProSkeleton(ProSkeletonConfig.from_dict(checkpoint.get("config") or {}))
    state_dict = checkpoint["state_dict"]
    check_state_keys(model.state_dict(), state_dict, f"{function}: {path}",
                     " the ProSkeleton of its config")
    model.load_state_dict(state_dict, strict=True)
    model.metadata = dict(checkpoint.get("metadata") or {})
    if device is not None:
        model.to(device)
    logger.info("loaded ProSkeleton %s", path)
    return model.eval()


def export_proskeleton(
    checkpoint_path: PathLike, out_path: PathLike, metadata: Optional[Mapping[str, Any]] = None
) -> Path:
    """Turn a training checkpoint of ``ProSkeletonModule`` into a :func:`save_proskeleton` file.

    The checkpoint's ``model.*`` weights (input statistics included) and
    ``hyper_parameters["config"]`` are kept; optimiser state and loggers are dropped.

    *Arguments*
        checkpoint_path: a Lightning ``.ckpt`` written while training
            (``lightning_modules/proskeleton_module.py``).
        out_path: the file to write.
        metadata: JSON-able facts to store (data, metrics, licence).

    *Returns*
        The path written.
    """
    function = "export_proskeleton"
    path = Path(checkpoint_path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{function}: file not found: {path}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for unreadable or unsafe files
        raise ValueError(
            f"{function}: {path} is not a readable weights-only checkpoint: {error}"
        ) from error
    if not isinstance(checkpoint, Mapping):
        raise ValueError(f"{function}: {path} does not hold a dict")
    state_dict = checkpoint.get("state_dict")
    hyper_parameters = checkpoint.get("hyper_parameters")
    if not isinstance(state_dict, Mapping) or not isinstance(hyper_parameters, Mapping) or (
        "config" not in hyper_parameters
    ):
        raise ValueError(
            f"{function}: {path} is not a ProSkeletonModule checkpoint (needs 'state_dict' and "
            "'hyper_parameters.config')"
        )
    model = ProSkeleton(ProSkeletonConfig.from_dict(hyper_parameters["config"]))
    prefix = len(_LIGHTNING_PREFIX)
    model_state = {
        key[prefix:]: value
        for key, value in state_dict.items()
        if key.startswith(_LIGHTNING_PREFIX)
    }
    check_state_keys(model.state_dict(), model_state, f"{function}: {path}",
                     " the ProSkeleton of its config")
    model.load_state_dict(model_state, strict=True)
    return save_proskeleton(model, out_path, metadata)
