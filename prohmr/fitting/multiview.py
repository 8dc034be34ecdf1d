"""Multi-view refinement with the image-conditioned prior (SPEC §6.2).

One subject seen in ``V`` views: each view has its own image features, hence its own
conditional prior, and the refinement looks for one latent ``z_v`` per view whose body poses
agree. The betas are fixed to the mean of the views' regressed betas, and each subject
minimises

    ``w_c² Σ_v ‖R_body(z_v) − mean_v R_body(z_v)‖²  +  w_z² Σ_v ‖z_v‖²``

with ``w_c = 300`` and ``w_z = 1``: ``R_body`` are the 23 body-pose rotation matrices (the
global orientation differs between views and is left free), ``‖·‖`` the Frobenius norm.
Starting point: the views' modes (``z_v = 0``). Optimiser: as keypoint fitting (L-BFGS, strong
Wolfe, 20 inner iterations, up to 30 steps), one L-BFGS state per subject.

**Optional reprojection term** (not in the original, which had none): given 2D keypoints
per view, the term of keypoint fitting (SPEC §6.1, crop camera) is added for every view,
multiplied by ``MultiViewWeights.reprojection``, and each view's camera translation becomes a
variable (starting from its regression). Without it the refinement only makes the views agree
with each other, so the consensus pose can drift away from what any image shows (the
reprojection error of each view grows); with it the consensus must also explain every view's
keypoints, which resolves the depth ambiguity of single views.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from prohmr.constants import POSE_6D_DIM
from prohmr.fitting.body_joints import BodyJoints
from prohmr.fitting.keypoint_fitting import (
    _as_tensor,
    _autocast_disabled,
    _check_model,
    _describe,
    _features_arg,
    _keypoints_arg,
    _loss_and_grad,
    _mean_pixel_error,
    _LatentPoses,
    _run_statistics,
    _tensor_arg,
    frozen,
    reprojection_loss,
)
from prohmr.fitting.optimizer import LBFGSSettings, minimize_lbfgs
from prohmr.geometry import perspective_projection, weak_perspective_to_translation
from prohmr.models.prohmr import ProHMR

__all__ = ["MultiViewFitResult", "MultiViewWeights", "body_pose_spread", "fit_multiview"]


@dataclass(frozen=True)
class MultiViewWeights:
    """Weights of multi-view refinement; defaults are the original's (SPEC §6.2).

    *Fields*
        consistency: ``w_c``; the term is ``w_c² Σ_v ‖R_v − mean R‖²`` (300).
        pose_prior: ``w_z``; the term is ``w_z² Σ_v ‖z_v‖²`` (1).
        reprojection: factor of the optional per-view reprojection term (1; only used when
            keypoints are given).
        keypoint_scale: ``s`` of the reprojection term ``(s / 224)² Σ conf² GMoF`` (1000).
        gmof_sigma: Geman–McClure scale in crop pixels (100).
    """

    consistency: float = 300.0
    pose_prior: float = 1.0
    reprojection: float = 1.0
    keypoint_scale: float = 1000.0
    gmof_sigma: float = 100.0

    def __post_init__(self) -> None:
        for name in ("consistency", "pose_prior", "reprojection", "keypoint_scale", "gmof_sigma"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"MultiViewWeights: `{name}` must be a number >= 0, got {value!r}")
        if self.gmof_sigma == 0:
            raise ValueError("MultiViewWeights: `gmof_sigma` must be > 0")


@dataclass(eq=False)
class MultiViewFitResult:
    """What :func:`fit_multiview` returns: ``B`` subjects, ``V`` views each.

    *Fields*
        global_orient: ``(B, V, 1, 3, 3)``; body_pose: ``(B, V, 23, 3, 3)``.
        betas: ``(B, 10)`` the mean of the views' regressed betas (fixed).
        z: ``(B, V, 144)``; pose_6d: ``(B, V, 144)``.
        camera_translation: ``(B, V, 3)`` crop-camera translations (fitted when keypoints
            were given, else the regression's).
        vertices: ``(B, V, N, 3)``; joints_3d: ``(B, V, 44, 3)``.
        joints_2d: ``(B, V, 44, 2)`` in normalised crop coordinates.
        loss, consistency_loss, pose_prior_loss, reprojection_loss: ``(B,)`` the final loss
            and its weighted terms (the last is 0 without keypoints); initial_loss: ``(B,)``.
        body_pose_spread, initial_body_pose_spread: ``(B,)`` :func:`body_pose_spread` after
            and before refinement.
        reprojection_error, initial_reprojection_error: ``(B, V)`` mean crop-pixel distance
            to the keypoints (NaN without keypoints).
        iterations, evaluations, converged: ``(B,)`` as in keypoint fitting.
    """

    global_orient: torch.Tensor
    body_pose: torch.Tensor
    betas: torch.Tensor
    z: torch.Tensor
    pose_6d: torch.Tensor
    camera_translation: torch.Tensor
    vertices: torch.Tensor
    joints_3d: torch.Tensor
    joints_2d: torch.Tensor
    loss: torch.Tensor
    consistency_loss: torch.Tensor
    pose_prior_loss: torch.Tensor
    reprojection_loss: torch.Tensor
    initial_loss: torch.Tensor
    body_pose_spread: torch.Tensor
    initial_body_pose_spread: torch.Tensor
    reprojection_error: torch.Tensor
    initial_reprojection_error: torch.Tensor
    iterations: torch.Tensor
    evaluations: torch.Tensor
    converged: torch.Tensor


def body_pose_spread(body_pose: torch.Tensor) -> torch.Tensor:
    """How much the views disagree: ``mean_v Σ_j ‖R_vj − mean_v R_vj‖²_F``.

    *Arguments*
        body_pose: ``(..., V, J, 3, 3)`` rotation matrices of the same subject in ``V`` views.

    *Returns*
        ``(...)`` the spread (0 when all views agree).

    *Example*
        >>> identity = torch.eye(3)[None]  # one joint
        >>> flipped = torch.diag(torch.tensor([1.0, -1.0, -1.0]))[None]
        >>> body_pose_spread(torch.stack([identity, flipped]))  # two views
        tensor(2.)
    """
    deviation = body_pose - body_pose.mean(dim=-4, keepdim=True)
    return (deviation * deviation).sum(dim=(-1, -2, -3)).mean(dim=-1)


def fit_multiview(
    model: ProHMR,
    *,
    features: Optional[torch.Tensor] = None,
    images: Optional[torch.Tensor] = None,
    keypoints_2d: Optional[torch.Tensor] = None,
    use_hips: bool = False,
    init_z: Optional[torch.Tensor] = None,
    weights: Optional[MultiViewWeights] = None,
    settings: Optional[LBFGSSettings] = None,
) -> MultiViewFitResult:
    """Refine the poses of ``B`` subjects seen in ``V`` views each (SPEC §6.2).

    *Arguments*
        model: a :class:`~prohmr.models.ProHMR` (left unchanged, see :func:`fit_keypoints`).
        features: ``(B, V, C)`` backbone features of each view's crop; or
        images: ``(B, V, 3, H, W)`` normalised crops.
        keypoints_2d: optional ``(B, V, 44 or 25, 3)`` keypoints in normalised crop
            coordinates; turns on the per-view reprojection term (module docstring).
        use_hips: keep the hip keypoints (as in :func:`fit_keypoints`).
        init_z: ``(B, V, 144)`` starting latents; default zeros (each view's mode).
        weights: :class:`MultiViewWeights` (default: the original's).
        settings: :class:`~prohmr.fitting.optimizer.LBFGSSettings`.

    *Returns*
        :class:`MultiViewFitResult` on the model's device, in its dtype.

    *Example*
        >>> from prohmr.models.config import ProHMRConfig
        >>> from prohmr.fitting.optimizer import LBFGSSettings
        >>> _ = torch.manual_seed(0)
        >>> model = ProHMR(ProHMRConfig(backbone="resnet18", flow_hidden_features=16,
        ...                             flow_num_layers=1, head_hidden_features=16)).eval()
        >>> fit = fit_multiview(model, features=torch.randn(1, 3, 512),
        ...                     settings=LBFGSSettings(max_steps=1))
        >>> bool(fit.body_pose_spread < fit.initial_body_pose_spread), tuple(fit.z.shape)
        (True, (1, 3, 144))
    """
    function = "fit_multiview"
    model = _check_model(model, function)
    weights = MultiViewWeights() if weights is None else weights
    settings = LBFGSSettings() if settings is None else settings
    if not isinstance(weights, MultiViewWeights):
        raise ValueError(
            f"{function}: `weights` must be a MultiViewWeights, got {_describe(weights)}"
        )
    flow = model.flow.flow
    config = model.config
    with frozen(model), _autocast_disabled(flow.device):
        features = _features_arg(model, features, images, 2, function)
        batch, views = features.shape[:2]
        flat_features = features.reshape(batch * views, -1)
        keypoints = None
        if keypoints_2d is not None:
            keypoints = _keypoints_arg(keypoints_2d, (batch, views), use_hips, function, features)
            keypoints = torch.cat(
                [keypoints[..., :2] * config.image_size, keypoints[..., 2:]], dim=-1
            ).reshape(batch * views, -1, 3)
        z0 = features.new_zeros(batch, views, POSE_6D_DIM)
        if init_z is not None:
            z0 = _tensor_arg(init_z, "init_z", (batch, views, POSE_6D_DIM), function, features)
        with torch.no_grad():
            head = model.flow.fc_head(flat_features)
            poses = _LatentPoses(flow, flat_features)
        betas = head.betas[:, 0].reshape(batch, views, -1).mean(dim=1)
        translation0 = weak_perspective_to_translation(
            head.cam[:, 0], config.focal_length, config.image_size
        ).reshape(batch, views, 3)
        body_joints = BodyJoints(model.body_model)
        fit_cameras = keypoints is not None
        scale = (weights.keypoint_scale / config.image_size) ** 2
        view_index = torch.arange(views, device=features.device)

        def terms(
            variables: torch.Tensor, subjects: torch.Tensor, exact: bool = False
        ) -> dict[str, torch.Tensor]:
            count = subjects.shape[0]
            z = variables[:, : views * POSE_6D_DIM].reshape(count * views, POSE_6D_DIM)
            rows = (subjects[:, None] * views + view_index).reshape(-1)
            rotations, pose_6d = poses(z, rows, exact)
            body_pose = rotations[:, 1:].reshape(count, views, -1, 3, 3)
            deviation = body_pose - body_pose.mean(dim=1, keepdim=True)
            spread = (deviation * deviation).sum(dim=(1, 2, 3, 4))
            out = {
                "consistency": weights.consistency**2 * spread,
                "pose_prior": weights.pose_prior**2 * (z * z).reshape(count, -1).sum(dim=-1),
                "rotations": rotations,
                "pose_6d": pose_6d,
            }
            if fit_cameras:
                translation = variables[:, views * POSE_6D_DIM :].reshape(count * views, 3)
            else:
                translation = translation0[subjects].reshape(count * views, 3)
            out["translation"] = translation
            if fit_cameras or exact:
                view_betas = betas[subjects].repeat_interleave(views, dim=0)
                if exact:
                    joints = model.body_model(rotations[:, :1], rotations[:, 1:], view_betas).joints
                else:
                    joints = body_joints(rotations[:, :1], rotations[:, 1:], view_betas)[0]
                out["projected"] = perspective_projection(joints, translation, config.focal_length)
            if fit_cameras:
                reprojection = reprojection_loss(
                    out["projected"], keypoints[rows], weights.gmof_sigma, scale
                )
                per_subject = reprojection.reshape(count, views).sum(dim=-1)
                out["reprojection"] = weights.reprojection * per_subject
            else:
                out["reprojection"] = torch.zeros_like(out["pose_prior"])
            return out

        def objective(points: np.ndarray, problems: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            subjects = torch.from_numpy(problems).to(features.device)
            with torch.enable_grad():
                variables = _as_tensor(points, features).requires_grad_(True)
                out = terms(variables, subjects)
                total = out["consistency"] + out["pose_prior"] + out["reprojection"]
                return _loss_and_grad(total, variables)

        parts = [z0.reshape(batch, -1)]
        if fit_cameras:
            parts.append(translation0.reshape(batch, -1))
        start = torch.cat(parts, dim=-1)
        run = minimize_lbfgs(objective, start.double().cpu().numpy(), settings)
        subjects = torch.arange(batch, device=features.device)
        with torch.no_grad():
            final = terms(_as_tensor(run.x, features), subjects, exact=True)
            initial = terms(start, subjects, exact=True)
            rotations = final["rotations"]
            view_betas = betas.repeat_interleave(views, dim=0)
            body = model.body_model(rotations[:, :1], rotations[:, 1:], view_betas)

    def per_view(value: torch.Tensor) -> torch.Tensor:
        return value.reshape(batch, views, *value.shape[1:])

    if keypoints is None:
        error = features.new_full((batch, views), float("nan"))
        initial_error = error
    else:
        error = per_view(_mean_pixel_error(final["projected"], keypoints))
        initial_error = per_view(_mean_pixel_error(initial["projected"], keypoints))
    return MultiViewFitResult(
        global_orient=per_view(rotations[:, :1]),
        body_pose=per_view(rotations[:, 1:]),
        betas=betas,
        z=per_view(_as_tensor(run.x, features)[:, : views * POSE_6D_DIM].reshape(-1, POSE_6D_DIM)),
        pose_6d=per_view(final["pose_6d"]),
        camera_translation=per_view(final["translation"]),
        vertices=per_view(body.vertices),
        joints_3d=per_view(body.joints),
        joints_2d=per_view(final["projected"]) / config.image_size,
        loss=final["consistency"] + final["pose_prior"] + final["reprojection"],
        consistency_loss=final["consistency"],
        pose_prior_loss=final["pose_prior"],
        reprojection_loss=final["reprojection"],
        body_pose_spread=body_pose_spread(per_view(rotations[:, 1:])),
        initial_body_pose_spread=body_pose_spread(per_view(initial["rotations"][:, 1:])),
        reprojection_error=error,
        initial_reprojection_error=initial_error,
        **_run_statistics(run, features),
    )
