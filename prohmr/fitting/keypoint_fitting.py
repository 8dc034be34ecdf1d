"""Keypoint fitting with ProHMR's image-conditioned prior (SPEC §6.1).

Starting from the regression (the flow's mode ``z = 0`` and the head's betas and camera), the
latent ``z``, the betas and the camera translation of every person are refined so that the
body's 44 joints project onto the given 2D keypoints, minimising per person

    ``(s / max(H, W))² Σ_j conf_j² · GMoF(proj(J_j) − k_j; σ) + w_z² ‖z‖² + w_β² ‖β‖²``

in pixels, with ``s = 1000``, ``σ = 100`` px, ``w_z = 4``, ``w_β = 6`` (the original weights).
‖z‖² is the flow's negative log-likelihood up to a constant (SPEC §3), so the image stays in
charge of what is plausible. Two cameras:

- ``"crop"``: keypoints in normalised crop coordinates (``px / 224 − 0.5``); the crop
  camera (focal 5000 px for the 224-px crop, principal point at its centre,
  ``H = W = 224``) with the translation from
  :func:`~prohmr.geometry.weak_perspective_to_translation`;
- ``"full_frame"``: keypoints in pixels of the original image; the full-frame camera (focal
  5000 px, principal point at the image centre, ``H, W`` the image size) with the
  translation from :func:`~prohmr.geometry.crop_to_full_frame_translation`.

What differs from the original implementation: the network's weights are frozen for the
duration of the call (its ``requires_grad`` flags and train/eval modes are restored
afterwards); the flow runs through :class:`~prohmr.fitting.frozen_flow.FrozenFlowSampler`,
which computes the context half of the coupling nets once (the flow's fast path) and
precomputes the other weight-only parts; the body's joints come from
:class:`~prohmr.fitting.body_joints.BodyJoints` instead of the full mesh; any number of
people are fitted at once on any device; inputs are never modified. The reported results are
recomputed with the flow's own ``sample`` and the full body model. Every person has its
own L-BFGS state (:func:`~prohmr.fitting.optimizer.minimize_lbfgs`): a person's result does
not depend on who else is in the batch, up to the round-off of batched evaluation.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any, Iterator, Literal, Optional

import numpy as np
import torch
from torch import nn

from prohmr.body.joints import EXTRA_HIPS, NUM_PROHMR_JOINTS, OPENPOSE_HIPS
from prohmr.constants import NUM_SMPL_JOINTS, POSE_6D_DIM
from prohmr.fitting.body_joints import BodyJoints
from prohmr.fitting.frozen_flow import FrozenFlowSampler
from prohmr.fitting.optimizer import LBFGSResult, LBFGSSettings, minimize_lbfgs
from prohmr.flows import ConditionalGlow
from prohmr.geometry import (
    crop_to_full_frame_translation,
    perspective_projection,
    rot6d_to_matrix,
    weak_perspective_to_translation,
)
from prohmr.models.prohmr import ProHMR

__all__ = [
    "FIT_MODES",
    "HIP_JOINTS",
    "FitMode",
    "KeypointFitResult",
    "KeypointFitWeights",
    "fit_keypoints",
    "frozen",
    "gmof",
    "reprojection_loss",
]

logger = logging.getLogger(__name__)

FitMode = Literal["crop", "full_frame"]
#: Camera modes of :func:`fit_keypoints`.
FIT_MODES: tuple[str, ...] = ("crop", "full_frame")
#: Joints whose confidence is zeroed unless ``use_hips`` (OpenPose and extra hips, SPEC §6.1).
HIP_JOINTS: tuple[int, ...] = OPENPOSE_HIPS + EXTRA_HIPS
#: Number of BODY_25 joints (a (B, 25, 3) keypoint array is padded to 44 joints).
_NUM_BODY25 = 25
_ROT6D = 6


@dataclass(frozen=True)
class KeypointFitWeights:
    """Weights of the keypoint-fitting loss; defaults are the original's (SPEC §6.1).

    *Fields*
        keypoint_scale: ``s`` in ``(s / max(H, W))²`` before the reprojection sum (1000).
        gmof_sigma: ``σ`` of the Geman–McClure robustifier, pixels (100).
        pose_prior: ``w_z``; the term is ``w_z² ‖z‖²`` (4).
        shape_prior: ``w_β``; the term is ``w_β² ‖β‖²`` (6).
    """

    keypoint_scale: float = 1000.0
    gmof_sigma: float = 100.0
    pose_prior: float = 4.0
    shape_prior: float = 6.0

    def __post_init__(self) -> None:
        for name in ("keypoint_scale", "gmof_sigma", "pose_prior", "shape_prior"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(
                    f"KeypointFitWeights: `{name}` must be a number >= 0, got {value!r}"
                )
        if self.gmof_sigma == 0:
            raise ValueError("KeypointFitWeights: `gmof_sigma` must be > 0")


@dataclass(eq=False)
class KeypointFitResult:
    """What :func:`fit_keypoints` returns: one row per person, on the model's device and dtype.

    *Fields*
        global_orient: ``(B, 1, 3, 3)``; body_pose: ``(B, 23, 3, 3)``; betas: ``(B, 10)``.
        camera_translation: ``(B, 3)`` of the fitting camera (crop or full-frame), metres.
        z: ``(B, 144)`` the fitted latents; pose_6d: ``(B, 144)`` the flow's output for them.
        vertices: ``(B, V, 3)``, joints_3d: ``(B, 44, 3)``, root at the body model's origin
            (add ``camera_translation[:, None]`` for camera coordinates).
        joints_2d: ``(B, 44, 2)`` projected joints in the coordinates of the input keypoints
            (normalised crop coordinates for ``"crop"``, image pixels for ``"full_frame"``).
        loss, reprojection_loss, pose_prior_loss, shape_prior_loss: ``(B,)`` the final loss
            and its weighted terms; initial_loss: ``(B,)`` the loss at the regression start.
        reprojection_error, initial_reprojection_error: ``(B,)`` mean distance in pixels
            between projected joints and keypoints over the joints used (confidence > 0
            after the hips option), after and before fitting.
        iterations: ``(B,)`` outer L-BFGS steps used; evaluations: ``(B,)`` loss
            evaluations; converged: ``(B,)`` whether a tolerance stopped the run.
        mode: ``"crop"`` or ``"full_frame"``.
        focal_length: focal length of the camera in pixels.
        principal_point: ``(B, 2)`` in pixels of the crop (``"crop"``: its centre) or of the
            image (``"full_frame"``).
    """

    global_orient: torch.Tensor
    body_pose: torch.Tensor
    betas: torch.Tensor
    camera_translation: torch.Tensor
    z: torch.Tensor
    pose_6d: torch.Tensor
    vertices: torch.Tensor
    joints_3d: torch.Tensor
    joints_2d: torch.Tensor
    loss: torch.Tensor
    reprojection_loss: torch.Tensor
    pose_prior_loss: torch.Tensor
    shape_prior_loss: torch.Tensor
    initial_loss: torch.Tensor
    reprojection_error: torch.Tensor
    initial_reprojection_error: torch.Tensor
    iterations: torch.Tensor
    evaluations: torch.Tensor
    converged: torch.Tensor
    mode: str
    focal_length: float
    principal_point: torch.Tensor


def gmof(residual: torch.Tensor, sigma: float) -> torch.Tensor:
    """Geman–McClure robustifier ``σ² r² / (σ² + r²)``, elementwise.

    Quadratic (``≈ r²``) for ``|r| ≪ σ``, bounded by ``σ²`` for outliers.

    *Arguments*
        residual: ``(...)`` residuals.
        sigma: scale ``σ`` in the residuals' unit.

    *Returns*
        ``(...)`` robust squared residuals.

    *Example*
        >>> gmof(torch.tensor([0.0, 1.0, 100.0]), sigma=100.0)
        tensor([0.0000e+00, 9.9990e-01, 5.0000e+03])
    """
    squared = residual * residual
    variance = sigma * sigma
    return variance * squared / (variance + squared)


def reprojection_loss(
    projected: torch.Tensor,
    keypoints: torch.Tensor,
    sigma: float,
    scale: torch.Tensor | float = 1.0,
) -> torch.Tensor:
    """``scale · Σ_j conf_j² · Σ_xy GMoF(projected − keypoints; σ)`` per item.

    *Arguments*
        projected: ``(..., J, 2)`` projected joints.
        keypoints: ``(..., J, 3)`` target ``(x, y, confidence)`` in the same unit.
        sigma: Geman–McClure scale.
        scale: float or ``(...)`` factor per item.

    *Returns*
        ``(...)`` loss per item.

    *Example*
        >>> keypoints = torch.tensor([[0.0, 0.0, 1.0], [5.0, 5.0, 0.0]])
        >>> reprojection_loss(torch.tensor([[3.0, 4.0], [0.0, 0.0]]), keypoints, sigma=1e6)
        tensor(25.)
    """
    residual = gmof(projected - keypoints[..., :2], sigma).sum(dim=-1)
    confidence = keypoints[..., 2]
    return scale * (confidence * confidence * residual).sum(dim=-1)


@contextlib.contextmanager
def frozen(*modules: nn.Module) -> Iterator[None]:
    """Eval mode and ``requires_grad=False`` for the modules' parameters, restored on exit.

    Frozen weights receive no gradient, so backward passes skip the weight-gradient work
    (the original left the flow trainable: 3.2× slower per iteration on CPU, SPEC §6.1).
    The modules' parameters themselves are untouched.

    *Arguments*
        modules: the modules to freeze (duplicates are fine).

    *Example*
        >>> layer = nn.Linear(2, 2).train()
        >>> with frozen(layer):
        ...     layer.training, layer.weight.requires_grad
        (False, False)
        >>> layer.training, layer.weight.requires_grad
        (True, True)
    """
    parameters = {id(p): (p, p.requires_grad) for m in modules for p in m.parameters()}
    submodules = {id(s): (s, s.training) for m in modules for s in m.modules()}
    try:
        for parameter, _ in parameters.values():
            parameter.requires_grad_(False)
        for module in modules:
            module.eval()
        yield
    finally:
        for parameter, flag in parameters.values():
            parameter.requires_grad_(flag)
        for submodule, training in submodules.values():
            submodule.train(training)


# --------------------------------------------------------------------------- shared helpers
def _autocast_disabled(device: torch.device) -> contextlib.AbstractContextManager[None]:
    if torch.amp.is_autocast_available(device.type):
        return torch.autocast(device_type=device.type, enabled=False)
    return contextlib.nullcontext()


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"{value.dtype} tensor of shape {tuple(value.shape)}"
    return type(value).__name__


def _tensor_arg(
    value: Any,
    name: str,
    shape: tuple[Optional[int], ...],
    function: str,
    like: torch.Tensor,
) -> torch.Tensor:
    """Check a floating tensor of ``shape`` (None = any size) with finite values; cast it.

    Returns a tensor on ``like``'s device and dtype (a copy when they differ, never the
    caller's tensor modified).
    """
    spec = "(" + ", ".join("N" if size is None else str(size) for size in shape) + ")"
    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        raise ValueError(
            f"{function}: `{name}` must be a floating tensor of shape {spec}, "
            f"got {_describe(value)}"
        )
    if value.ndim != len(shape) or any(
        size is not None and actual != size for size, actual in zip(shape, value.shape)
    ):
        raise ValueError(f"{function}: `{name}` must have shape {spec}, got {tuple(value.shape)}")
    if not torch.isfinite(value).all():
        raise ValueError(f"{function}: `{name}` contains NaN or infinite values")
    return value.detach().to(device=like.device, dtype=like.dtype)


def _keypoints_arg(
    keypoints: Any, leading: tuple[int, ...], use_hips: bool, function: str, like: torch.Tensor
) -> torch.Tensor:
    """Validate ``(*leading, 44|25, 3)`` keypoints; pad BODY_25 to 44; apply the hips option."""
    name = "keypoints_2d"
    spec = "(" + ", ".join(str(size) for size in leading) + ", 44 or 25, 3)"
    if not isinstance(keypoints, torch.Tensor) or not keypoints.is_floating_point():
        raise ValueError(
            f"{function}: `{name}` must be a floating tensor of shape {spec}, "
            f"got {_describe(keypoints)}"
        )
    if (
        keypoints.shape[:-2] != leading
        or keypoints.ndim != len(leading) + 2
        or keypoints.shape[-2] not in (NUM_PROHMR_JOINTS, _NUM_BODY25)
        or keypoints.shape[-1] != 3
    ):
        raise ValueError(
            f"{function}: `{name}` must have shape {spec}, got {tuple(keypoints.shape)}"
        )
    if not torch.isfinite(keypoints).all():
        raise ValueError(f"{function}: `{name}` contains NaN or infinite values")
    if (keypoints[..., 2] < 0).any():
        raise ValueError(f"{function}: `{name}` has negative confidences")
    keypoints = keypoints.detach().to(device=like.device, dtype=like.dtype).clone()
    if keypoints.shape[-2] == _NUM_BODY25:
        padding = keypoints.new_zeros((*leading, NUM_PROHMR_JOINTS - _NUM_BODY25, 3))
        keypoints = torch.cat([keypoints, padding], dim=-2)
    if not use_hips:
        keypoints[..., list(HIP_JOINTS), 2] = 0.0
    visible = (keypoints[..., 2] > 0).any(dim=-1)
    if not visible.all():
        missing = [tuple(index) if len(index) > 1 else index[0]
                   for index in (~visible).nonzero().tolist()]
        raise ValueError(
            f"{function}: `{name}` has no keypoint with confidence > 0"
            f"{'' if use_hips else ' (hips excluded, see use_hips)'} for item(s) {missing}"
        )
    return keypoints


def _check_model(model: Any, function: str) -> ProHMR:
    if not isinstance(model, ProHMR):
        raise ValueError(f"{function}: `model` must be a ProHMR model, got {type(model).__name__}")
    if model.body_model.layer.shapedirs.dtype != model.flow.flow.dtype:
        raise ValueError(
            f"{function}: the model's flow ({model.flow.flow.dtype}) and body model "
            f"({model.body_model.layer.shapedirs.dtype}) must have the same dtype"
        )
    return model


def _features_arg(
    model: ProHMR,
    features: Optional[torch.Tensor],
    images: Optional[torch.Tensor],
    num_leading: int,
    function: str,
) -> torch.Tensor:
    """Image features ``(..., C)`` with ``num_leading`` leading dimensions, from ``features``
    or from ``images (..., 3, H, W)`` (exactly one of them given)."""
    if (features is None) == (images is None):
        raise ValueError(f"{function}: pass exactly one of `features` and `images`")
    flow = model.flow.flow
    like = torch.empty(0, device=flow.device, dtype=flow.dtype)
    leading = "B, V" if num_leading == 2 else "B"
    if features is not None:
        shape = (None,) * num_leading + (flow.context_features,)
        if not isinstance(features, torch.Tensor) or features.ndim != len(shape):
            raise ValueError(
                f"{function}: `features` must have shape ({leading}, {flow.context_features}), "
                f"got {_describe(features)}"
            )
        return _tensor_arg(features, "features", shape, function, like)
    if not isinstance(images, torch.Tensor) or images.ndim != num_leading + 3:
        raise ValueError(
            f"{function}: `images` must have shape ({leading}, 3, H, W), got {_describe(images)}"
        )
    with torch.no_grad(), frozen(model.backbone):
        computed = model.features(images.reshape(-1, *images.shape[-3:]).to(flow.device))
    return computed.to(flow.dtype).reshape(*images.shape[:num_leading], flow.context_features)


class _LatentPoses:
    """Latents to poses for a batch of fits with fixed weights and contexts.

    The optimisation loop uses the precomputed :class:`FrozenFlowSampler`; the reported
    results (``exact=True``) come from the flow's own :meth:`~ConditionalGlow.sample`.
    """

    def __init__(self, flow: ConditionalGlow, context: Optional[torch.Tensor]) -> None:
        self.flow, self.context = flow, context
        self.sampler = FrozenFlowSampler(flow, context)

    def __call__(
        self, z: torch.Tensor, rows: Optional[torch.Tensor] = None, exact: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Rotations ``(P, 24, 3, 3)`` and raw 6D ``(P, 144)`` at latents ``z (P, 144)``,
        latent ``p`` conditioned on context row ``rows[p]`` (default ``p``)."""
        if exact:
            context = self.context
            if context is not None and rows is not None:
                context = context[rows]
            pose_6d = self.flow.sample(context=context, z=z.unsqueeze(1)).samples[:, 0]
        else:
            pose_6d = self.sampler(z, rows)
        rotations = rot6d_to_matrix(pose_6d.reshape(-1, NUM_SMPL_JOINTS, _ROT6D), layout="prohmr")
        return rotations, pose_6d


def _mean_pixel_error(projected: torch.Tensor, keypoints: torch.Tensor) -> torch.Tensor:
    """Mean distance over the joints with confidence > 0, per item ``(...)``."""
    used = (keypoints[..., 2] > 0).to(projected.dtype)
    distance = (projected - keypoints[..., :2]).norm(dim=-1)
    return (distance * used).sum(dim=-1) / used.sum(dim=-1).clamp_min(1.0)


def _as_tensor(array: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array)).to(device=like.device, dtype=like.dtype)


def _loss_and_grad(total: torch.Tensor, variables: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    (grad,) = torch.autograd.grad(total.sum(), variables)
    return (
        total.detach().to(device="cpu", dtype=torch.float64).numpy(),
        grad.to(device="cpu", dtype=torch.float64).numpy(),
    )


def _run_statistics(result: LBFGSResult, like: torch.Tensor) -> dict[str, torch.Tensor]:
    return {
        "initial_loss": _as_tensor(result.initial_loss, like),
        "iterations": torch.from_numpy(result.steps).to(like.device),
        "evaluations": torch.from_numpy(result.evaluations).to(like.device),
        "converged": torch.from_numpy(result.converged).to(like.device),
    }


# ------------------------------------------------------------------------------ the fitting
@dataclass(frozen=True)
class _Camera:
    """Pixel keypoints and intrinsics of the fitting camera, per person."""

    keypoints: torch.Tensor  # (B, 44, 3) pixels (crop: relative to the crop centre)
    principal_point: torch.Tensor  # (B, 2) in the same pixel frame as `keypoints`
    scale: torch.Tensor  # (B,) (s / max(H, W))²
    translation: torch.Tensor  # (B, 3) regression start
    focal_length: float


def _camera(
    model: ProHMR,
    mode: str,
    keypoints: torch.Tensor,
    cam: torch.Tensor,
    box_center: Any,
    box_size: Any,
    image_size: Any,
    weights: KeypointFitWeights,
    function: str,
) -> _Camera:
    config = model.config
    batch = keypoints.shape[0]
    focal = float(config.focal_length)
    if mode == "crop":
        pixels = torch.cat([keypoints[..., :2] * config.image_size, keypoints[..., 2:]], dim=-1)
        return _Camera(
            keypoints=pixels,
            principal_point=keypoints.new_zeros(batch, 2),
            scale=keypoints.new_full((batch,), (weights.keypoint_scale / config.image_size) ** 2),
            translation=weak_perspective_to_translation(cam, focal, config.image_size),
            focal_length=focal,
        )
    missing = [name for name, value in (("box_center", box_center), ("box_size", box_size),
                                        ("image_size", image_size)) if value is None]
    if missing:
        names = ", ".join(f"`{name}`" for name in missing)
        raise ValueError(f"{function}: mode 'full_frame' needs {names}")
    center = _tensor_arg(box_center, "box_center", (batch, 2), function, keypoints)
    size = _tensor_arg(box_size, "box_size", (batch,), function, keypoints)
    frame = _tensor_arg(image_size, "image_size", (batch, 2), function, keypoints)
    if not ((size > 0).all() and (frame > 0).all()):
        raise ValueError(f"{function}: `box_size` and `image_size` must be positive")
    return _Camera(
        keypoints=keypoints,
        principal_point=0.5 * frame,
        scale=(weights.keypoint_scale / frame.max(dim=-1).values) ** 2,
        translation=crop_to_full_frame_translation(cam, center, size, frame, focal),
        focal_length=focal,
    )


def fit_keypoints(
    model: ProHMR,
    keypoints_2d: torch.Tensor,
    *,
    features: Optional[torch.Tensor] = None,
    images: Optional[torch.Tensor] = None,
    mode: FitMode = "crop",
    box_center: Optional[torch.Tensor] = None,
    box_size: Optional[torch.Tensor] = None,
    image_size: Optional[torch.Tensor] = None,
    use_hips: bool = False,
    init_z: Optional[torch.Tensor] = None,
    weights: Optional[KeypointFitWeights] = None,
    settings: Optional[LBFGSSettings] = None,
) -> KeypointFitResult:
    """Fit ProHMR's body to 2D keypoints with the image-conditioned prior (SPEC §6.1).

    *Arguments*
        model: a :class:`~prohmr.models.ProHMR` (left as it was: weights, ``requires_grad``
            flags and train/eval modes are restored).
        keypoints_2d: ``(B, 44, 3)`` or ``(B, 25, 3)`` (BODY_25 only) ``(x, y, confidence)``:
            normalised crop coordinates for ``"crop"``, image pixels for ``"full_frame"``.
            Every person needs a keypoint with confidence > 0.
        features: ``(B, C)`` backbone features of the crops; or
        images: ``(B, 3, H, W)`` normalised crops (features computed once, without grad).
        mode: ``"crop"`` or ``"full_frame"`` (see the module docstring).
        box_center: ``(B, 2)`` crop box centres in image pixels (``"full_frame"``).
        box_size: ``(B,)`` crop box sides in image pixels (``"full_frame"``).
        image_size: ``(B, 2)`` image ``(width, height)`` in pixels (``"full_frame"``).
        use_hips: keep the hip keypoints; by default (as in the original) the confidences of
            :data:`HIP_JOINTS` are set to 0, since detector hips and SMPL hips differ.
        init_z: ``(B, 144)`` starting latents; default zeros (the mode).
        weights: :class:`KeypointFitWeights` (default: the original's).
        settings: :class:`~prohmr.fitting.optimizer.LBFGSSettings` (default: SPEC §6.1).

    *Returns*
        :class:`KeypointFitResult` on the model's device, in its dtype.

    *Example*
        >>> from prohmr.models.config import ProHMRConfig
        >>> from prohmr.fitting.optimizer import LBFGSSettings
        >>> _ = torch.manual_seed(0)
        >>> model = ProHMR(ProHMRConfig(backbone="resnet18", flow_hidden_features=16,
        ...                             flow_num_layers=1, head_hidden_features=16)).eval()
        >>> features = torch.randn(2, 512)
        >>> with torch.no_grad():
        ...     start = model.predict_from_features(features, z=torch.zeros(2, 1, 144))
        >>> keypoints = torch.cat([start.joints_2d[:, 0] + 0.01, torch.ones(2, 44, 1)], -1)
        >>> fit = fit_keypoints(model, keypoints, features=features,
        ...                     settings=LBFGSSettings(max_steps=1))
        >>> bool((fit.reprojection_error < fit.initial_reprojection_error).all())
        True
    """
    function = "fit_keypoints"
    model = _check_model(model, function)
    if mode not in FIT_MODES:
        raise ValueError(f"{function}: `mode` must be one of {FIT_MODES}, got {mode!r}")
    weights = KeypointFitWeights() if weights is None else weights
    settings = LBFGSSettings() if settings is None else settings
    if not isinstance(weights, KeypointFitWeights):
        raise ValueError(
            f"{function}: `weights` must be a KeypointFitWeights, got {_describe(weights)}"
        )
    flow = model.flow.flow
    with frozen(model), _autocast_disabled(flow.device):
        features = _features_arg(model, features, images, 1, function)
        batch = features.shape[0]
        keypoints = _keypoints_arg(keypoints_2d, (batch,), use_hips, function, features)
        z0 = features.new_zeros(batch, POSE_6D_DIM)
        if init_z is not None:
            z0 = _tensor_arg(init_z, "init_z", (batch, POSE_6D_DIM), function, features)
        with torch.no_grad():
            head = model.flow.fc_head(features)
            camera = _camera(model, mode, keypoints, head.cam[:, 0], box_center, box_size,
                             image_size, weights, function)
            poses = _LatentPoses(flow, features)
        betas0 = head.betas[:, 0]
        body_joints = BodyJoints(model.body_model)
        sizes = (POSE_6D_DIM, body_joints.num_betas, 3)

        def terms(
            variables: torch.Tensor, rows: torch.Tensor, exact: bool = False
        ) -> tuple[torch.Tensor, ...]:
            z, betas, translation = variables.split(sizes, dim=-1)
            rotations, pose_6d = poses(z, rows, exact)
            if exact:
                joints = model.body_model(rotations[:, :1], rotations[:, 1:], betas).joints
            else:
                joints = body_joints(rotations[:, :1], rotations[:, 1:], betas)[0]
            projected = perspective_projection(
                joints, translation, camera.focal_length, camera.principal_point[rows]
            )
            reprojection = reprojection_loss(
                projected, camera.keypoints[rows], weights.gmof_sigma, camera.scale[rows]
            )
            pose_prior = weights.pose_prior**2 * (z * z).sum(dim=-1)
            shape_prior = weights.shape_prior**2 * (betas * betas).sum(dim=-1)
            return reprojection, pose_prior, shape_prior, projected, rotations, pose_6d

        def objective(points: np.ndarray, problems: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            rows = torch.from_numpy(problems).to(features.device)
            with torch.enable_grad():
                variables = _as_tensor(points, features).requires_grad_(True)
                reprojection, pose_prior, shape_prior, *_ = terms(variables, rows)
                return _loss_and_grad(reprojection + pose_prior + shape_prior, variables)

        start = torch.cat([z0, betas0, camera.translation], dim=-1)
        run = minimize_lbfgs(objective, start.double().cpu().numpy(), settings)
        rows = torch.arange(batch, device=features.device)
        with torch.no_grad():
            solution = _as_tensor(run.x, features)
            z, betas, translation = solution.split(sizes, dim=-1)
            reprojection, pose_prior, shape_prior, projected, rotations, pose_6d = terms(
                solution, rows, exact=True
            )
            body = model.body_model(rotations[:, :1], rotations[:, 1:], betas)
            initial_projected = terms(start, rows, exact=True)[3]
    joints_2d = projected
    principal_point = camera.principal_point
    if mode == "crop":
        joints_2d = projected / model.config.image_size
        principal_point = principal_point + 0.5 * model.config.image_size
    logger.info(
        "fit_keypoints: %d people, %s mode, %d evaluations in total",
        batch, mode, int(run.evaluations.sum()),
    )
    return KeypointFitResult(
        global_orient=rotations[:, :1],
        body_pose=rotations[:, 1:],
        betas=betas,
        camera_translation=translation,
        z=z,
        pose_6d=pose_6d,
        vertices=body.vertices,
        joints_3d=body.joints,
        joints_2d=joints_2d,
        loss=reprojection + pose_prior + shape_prior,
        reprojection_loss=reprojection,
        pose_prior_loss=pose_prior,
        shape_prior_loss=shape_prior,
        reprojection_error=_mean_pixel_error(projected, camera.keypoints),
        initial_reprojection_error=_mean_pixel_error(initial_projected, camera.keypoints),
        mode=mode,
        focal_length=camera.focal_length,
        principal_point=principal_point,
        **_run_statistics(run, features),
    )
