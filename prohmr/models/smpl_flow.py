"""ProHMR's probabilistic SMPL head: the conditional Glow over poses plus the FCHead (SPEC §4.1).

Given image features ``(B, C)``, :class:`SMPLFlow` draws ``N`` poses per image from the flow
(24 rotations in ProHMR's 6D layout, decoded to rotation matrices) and predicts one set of
betas and one weak-perspective camera per image with the :class:`~prohmr.models.FCHead`.
Everything runs in the flow's dtype (float32 unless converted) with autocast disabled, as in
the original: the 6D decoding and the body model are unstable in half precision.

Attribute names follow the original (``flow``, ``fc_head``), so inside
:class:`~prohmr.models.ProHMR` the state-dict keys are ``flow.flow._transform...`` and
``flow.fc_head.*``, exactly those of the official checkpoints (SPEC §3.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional

import torch
from torch import nn

from prohmr._utils import DictLikeOutput, autocast_disabled
from prohmr.body.model import load_mean_params
from prohmr.constants import NUM_BODY_JOINTS, NUM_SMPL_JOINTS, POSE_6D_DIM
from prohmr.flows import ConditionalGlow
from prohmr.geometry import matrix_to_rot6d, rot6d_to_matrix
from prohmr.models.heads import FCHead

__all__ = ["SMPLFlow", "SMPLFlowOutput"]

#: Values per rotation in the 6D representation.
_ROT6D = 6


@dataclass(eq=False)
class SMPLFlowOutput(DictLikeOutput):
    """What :class:`SMPLFlow` returns; also readable like a dict (``out["betas"]``).

    ``B`` images, ``N`` samples per image. ``betas`` and ``cam`` are per image: all samples
    of an image share them (broadcast views along ``N``; clone before editing in place).

    *Fields*
        global_orient: ``(B, N, 1, 3, 3)`` root rotation.
        body_pose: ``(B, N, 23, 3, 3)`` rotations of SMPL joints 1..23.
        betas: ``(B, N, 10)`` shape coefficients.
        cam: ``(B, N, 3)`` weak-perspective camera ``(s, tx, ty)``.
        log_prob: ``(B, N)`` log-density of ``pose_6d`` under the flow.
        z: ``(B, N, 144)`` the latents the samples came from.
        pose_6d: ``(B, N, 144)`` the flow's raw output, 24 rotations in ProHMR's 6D layout
            (decode with ``rot6d_to_matrix(..., layout="prohmr")``). It is not normalised:
            pass it, not the rotation matrices, to recover ``z`` or ``log_prob``.
    """

    global_orient: torch.Tensor
    body_pose: torch.Tensor
    betas: torch.Tensor
    cam: torch.Tensor
    log_prob: torch.Tensor
    z: torch.Tensor
    pose_6d: torch.Tensor


def _param(smpl_params: Any, key: str) -> Optional[torch.Tensor]:
    if not hasattr(smpl_params, "__getitem__") or not hasattr(smpl_params, "keys"):
        raise ValueError(
            "SMPLFlow.log_prob: `smpl_params` must be a mapping with `pose_6d` or "
            f"`global_orient` and `body_pose`, got {type(smpl_params).__name__}"
        )
    return smpl_params[key] if key in smpl_params.keys() else None


def _check_finite(value: Any, name: str, shape: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        raise ValueError(f"SMPLFlow.log_prob: `{name}` must be a floating tensor of shape {shape}")
    if not torch.isfinite(value).all():
        raise ValueError(f"SMPLFlow.log_prob: `{name}` contains NaN or infinite values")
    return value


class SMPLFlow(nn.Module):
    """Conditional distribution over SMPL poses, plus betas and camera, given image features.

    *Arguments*
        flow: a :class:`~prohmr.flows.ConditionalGlow` over 144 features whose context is the
            image features.
        fc_head: a :class:`~prohmr.models.FCHead` reading the same features.

    Build one with :meth:`create`, or let :class:`~prohmr.models.ProHMR` do it.

    *Example*
        >>> _ = torch.manual_seed(0)
        >>> head = SMPLFlow.create(
        ...     context_features=8, mean_params={"shape": torch.zeros(10),
        ...                                      "cam": torch.tensor([0.9, 0.0, 0.0])},
        ...     hidden_features=16, num_layers=2, num_blocks_per_layer=1,
        ...     head_hidden_features=16).eval()
        >>> features = torch.randn(2, 8)
        >>> out = head(features, num_samples=3)
        >>> tuple(out.body_pose.shape), tuple(out.betas.shape), tuple(out.log_prob.shape)
        ((2, 3, 23, 3, 3), (2, 3, 10), (2, 3))
        >>> log_prob, z = head.log_prob({"pose_6d": out.pose_6d}, features)
        >>> torch.allclose(log_prob, out.log_prob, atol=1e-4)
        True
    """

    def __init__(self, flow: ConditionalGlow, fc_head: FCHead) -> None:
        super().__init__()
        if not isinstance(flow, ConditionalGlow) or flow.features != POSE_6D_DIM:
            raise ValueError(
                f"SMPLFlow: `flow` must be a ConditionalGlow over {POSE_6D_DIM} features"
            )
        if not isinstance(fc_head, FCHead) or fc_head.in_features != flow.context_features:
            raise ValueError(
                "SMPLFlow: `fc_head` must be an FCHead reading the flow's context "
                f"({flow.context_features} features)"
            )
        self.flow = flow
        self.fc_head = fc_head

    @classmethod
    def create(
        cls,
        context_features: int,
        mean_params: Optional[Mapping[str, Any]] = None,
        *,
        hidden_features: int = 1024,
        num_layers: int = 4,
        num_blocks_per_layer: int = 2,
        dropout_probability: float = 0.5,
        batch_norm: bool = True,
        head_hidden_features: int = 1024,
    ) -> SMPLFlow:
        """Build the flow and the head; defaults are the original ProHMR sizes.

        *Arguments*
            context_features: ``C``, size of the image features.
            mean_params: dict with ``shape`` (10) and ``cam`` (3) starting values of the
                head; None reads :func:`prohmr.body.model.load_mean_params`.
            hidden_features, num_layers, num_blocks_per_layer, dropout_probability,
                batch_norm: see :class:`~prohmr.flows.ConditionalGlow`.
            head_hidden_features: hidden width of the :class:`~prohmr.models.FCHead`.
        """
        if mean_params is None:
            mean_params = load_mean_params()
        flow = ConditionalGlow(
            features=POSE_6D_DIM,
            hidden_features=hidden_features,
            num_layers=num_layers,
            num_blocks_per_layer=num_blocks_per_layer,
            context_features=context_features,
            dropout_probability=dropout_probability,
            batch_norm=batch_norm,
        )
        head = FCHead.from_mean_params(
            mean_params, in_features=context_features, hidden_features=head_hidden_features
        )
        return cls(flow, head)

    @property
    def context_features(self) -> int:
        """``C``, the size of the image features."""
        return self.flow.context_features

    def _check_features(self, features: Any, function: str) -> torch.Tensor:
        if (
            not isinstance(features, torch.Tensor)
            or not features.is_floating_point()
            or features.ndim != 2
            or features.shape[1] != self.context_features
        ):
            shape = tuple(features.shape) if isinstance(features, torch.Tensor) else features
            raise ValueError(
                f"SMPLFlow.{function}: `features` must be a floating tensor of shape "
                f"(B, {self.context_features}), got {shape!r}"
            )
        return features.to(self.flow.dtype)

    def _latents(
        self,
        batch_size: int,
        num_samples: Optional[int],
        z: Optional[torch.Tensor],
        mode_first: bool,
        generator: Optional[torch.Generator],
        device: torch.device,
    ) -> Optional[torch.Tensor]:
        """The latents to transform, or None to let the flow draw them."""
        if z is not None:
            if mode_first:
                raise ValueError("SMPLFlow.forward: pass either `z` or `mode_first`, not both")
            if not isinstance(z, torch.Tensor) or z.ndim != 3 or z.shape[0] != batch_size or (
                z.shape[2] != POSE_6D_DIM
            ):
                shape = tuple(z.shape) if isinstance(z, torch.Tensor) else z
                raise ValueError(
                    f"SMPLFlow.forward: `z` must have shape ({batch_size}, N, {POSE_6D_DIM}), "
                    f"got {shape!r}"
                )
            if num_samples is not None and num_samples != z.shape[1]:
                raise ValueError(
                    f"SMPLFlow.forward: `num_samples`={num_samples} disagrees with `z` of "
                    f"shape {tuple(z.shape)}"
                )
            return z
        num_samples = 1 if num_samples is None else num_samples
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(
                f"SMPLFlow.forward: `num_samples` must be an int >= 1, got {num_samples!r}"
            )
        if not mode_first:
            return None
        # Sample 0 is the mode (z = 0), the others are random: what training needs (SPEC §4.2).
        random = torch.randn(
            (batch_size, num_samples - 1, POSE_6D_DIM),
            generator=generator,
            dtype=self.flow.dtype,
            device=device,
        )
        return torch.cat([random.new_zeros(batch_size, 1, POSE_6D_DIM), random], dim=1)

    def forward(
        self,
        features: torch.Tensor,
        num_samples: Optional[int] = None,
        z: Optional[torch.Tensor] = None,
        *,
        mode_first: bool = False,
        generator: Optional[torch.Generator] = None,
    ) -> SMPLFlowOutput:
        """Draw ``N`` poses per image (z → pose) and predict betas and camera.

        The context half of the coupling nets is computed once per image and shared by its
        samples. Gradients reach the features, the weights and a given ``z``.

        *Arguments*
            features: ``(B, C)`` image features.
            num_samples: ``N``; default 1, or ``z.shape[1]`` when ``z`` is given.
            z: ``(B, N, 144)`` latents to transform instead of drawing them; zeros give the
                mode.
            mode_first: make sample 0 the mode (``z = 0``) and draw the other ``N - 1``.
            generator: random generator for the drawn latents.

        *Returns*
            :class:`SMPLFlowOutput` with ``(B, N, ...)`` fields.
        """
        features = self._check_features(features, "forward")
        batch_size = features.shape[0]
        latents = self._latents(batch_size, num_samples, z, mode_first, generator, features.device)
        with autocast_disabled(features.device):
            if latents is None:
                drawn = self.flow.sample(
                    1 if num_samples is None else num_samples, features, generator=generator
                )
            else:
                drawn = self.flow.sample(context=features, z=latents)
            pose_6d = drawn.samples
            num_samples = pose_6d.shape[1]
            rotations = rot6d_to_matrix(
                pose_6d.reshape(batch_size, num_samples, NUM_SMPL_JOINTS, _ROT6D),
                layout="prohmr",
            )
            head = self.fc_head(features, num_samples)
        return SMPLFlowOutput(
            global_orient=rotations[:, :, :1],
            body_pose=rotations[:, :, 1:],
            betas=head.betas,
            cam=head.cam,
            log_prob=drawn.log_prob,
            z=drawn.z,
            pose_6d=pose_6d,
        )

    def log_prob(
        self, smpl_params: Mapping[str, torch.Tensor], features: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-density of poses given image features, and their latents (pose → z).

        Poses are read from ``smpl_params["pose_6d"]`` if present (the raw 6D that the flow
        produced: exact inverse of a sample), else from the rotation matrices
        ``global_orient`` and ``body_pose``, converted with
        ``matrix_to_rot6d(..., layout="prohmr")`` (their first two columns). A 6D vector is
        not unique, so the two differ for the flow's own samples (SPEC §1.1). Other keys
        (``betas``) are ignored; an :class:`SMPLFlowOutput` is accepted as is. In training
        mode the first call initialises the flow's ActNorm layers from these poses.

        *Arguments*
            smpl_params: ``pose_6d`` ``(B, 144)`` or ``(B, N, 144)``; or ``global_orient``
                ``(B, 1, 3, 3)`` / ``(B, N, 1, 3, 3)`` and ``body_pose`` ``(B, 23, 3, 3)`` /
                ``(B, N, 23, 3, 3)``.
            features: ``(B, C)`` image features, shared by the ``N`` poses of an image.

        *Returns*
            ``log_prob`` ``(B,)`` or ``(B, N)``, and ``z`` ``(B, 144)`` or ``(B, N, 144)``.
        """
        features = self._check_features(features, "log_prob")
        batch_size = features.shape[0]
        pose_6d = _param(smpl_params, "pose_6d")
        if pose_6d is not None:
            pose_6d = _check_finite(pose_6d, "pose_6d", f"(B, [N,] {POSE_6D_DIM})")
            if pose_6d.ndim not in (2, 3) or pose_6d.shape[-1] != POSE_6D_DIM:
                raise ValueError(
                    f"SMPLFlow.log_prob: `pose_6d` must have shape (B, {POSE_6D_DIM}) or "
                    f"(B, N, {POSE_6D_DIM}), got {tuple(pose_6d.shape)}"
                )
        else:
            global_orient = _param(smpl_params, "global_orient")
            body_pose = _param(smpl_params, "body_pose")
            if global_orient is None or body_pose is None:
                raise ValueError(
                    "SMPLFlow.log_prob: `smpl_params` needs `pose_6d`, or both "
                    "`global_orient` and `body_pose`"
                )
            global_orient = _check_finite(global_orient, "global_orient", "(B, [N,] 1, 3, 3)")
            body_pose = _check_finite(body_pose, "body_pose", f"(B, [N,] {NUM_BODY_JOINTS}, 3, 3)")
            if global_orient.ndim not in (4, 5) or global_orient.shape[-3:] != (1, 3, 3):
                raise ValueError(
                    "SMPLFlow.log_prob: `global_orient` must have shape (B, 1, 3, 3) or "
                    f"(B, N, 1, 3, 3), got {tuple(global_orient.shape)}"
                )
            if body_pose.shape[:-3] != global_orient.shape[:-3] or body_pose.shape[-3:] != (
                NUM_BODY_JOINTS, 3, 3
            ):
                raise ValueError(
                    f"SMPLFlow.log_prob: `body_pose` must have shape "
                    f"{(*global_orient.shape[:-3], NUM_BODY_JOINTS, 3, 3)} to match "
                    f"`global_orient`, got {tuple(body_pose.shape)}"
                )
            with autocast_disabled(features.device):
                rotations = torch.cat([global_orient, body_pose], dim=-3).to(self.flow.dtype)
                pose_6d = matrix_to_rot6d(rotations, layout="prohmr").flatten(-2)
        if pose_6d.shape[0] != batch_size:
            raise ValueError(
                f"SMPLFlow.log_prob: the poses are for {pose_6d.shape[0]} images but "
                f"`features` has B={batch_size}"
            )
        return self.flow.log_prob(pose_6d, features)
