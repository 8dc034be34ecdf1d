"""Prior-only fitting: SMPLify-style fitting with a learned pose prior (SPEC §6.3).

Fits the body model to 2D keypoints seen by a known camera, or to 3D joints (e.g. motion
capture, to turn joint positions into SMPL-tree rotations), with an **unconditional** flow
``p(θ)`` over 144-d 6D poses as the pose prior instead of SMPLify's Gaussian mixture. The pose
is parametrised by the prior's latent: ``θ = f(z)``; since every layer of ProHMR's Glow has
a constant log-determinant, ``−log p(θ) = ½‖z‖² + const`` and the prior term is
``w_z² ‖z‖²``.

The prior's 144 values include a global orientation, which depends on the camera rather than
on the body: fitting uses the prior's 23 body rotations and keeps the body's global orientation
as a separate free variable (6D, ProHMR layout). The prior's own global orientation is then a
nuisance variable that the optimiser sets to its most likely value, so ``‖z‖²`` is the profile
negative log-likelihood of the body pose.

Variables per person: ``z`` (144), global orientation (6), betas (10), translation (3).
Per person the loss is

- 2D: ``(s / max(H, W))² Σ_j conf_j² · GMoF(proj(J_j + t) − k_j; σ)`` (as keypoint fitting)
  ``+ w_z² ‖z‖² + w_β² ‖β‖²``; before the full fit, a first stage fits only the global
  orientation and translation (the pose and betas held at their start), as SMPLify does;
- 3D: ``Σ_j conf_j ‖(J_j + t − X_j) / u‖² + w_z² ‖z‖² + w_β² ‖β‖²`` with ``u`` = 1 cm;
  the global orientation and translation start from the rotation (Kabsch/Umeyama) that aligns the
  start pose's joints with the targets.

**Multiple hypotheses**: with ``num_hypotheses = K > 1`` every person is fitted from ``K``
starts: the given (or mode) pose and ``K − 1`` poses drawn from the prior
(``z ~ N(0, hypothesis_scale² I)``). All ``B·K`` fits run as one batch of independent L-BFGS
problems; the results are sorted by final loss, best first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal, Optional

import numpy as np
import torch

from prohmr.body.model import BodyModel
from prohmr.constants import FOCAL_LENGTH, NUM_SMPL_JOINTS, POSE_6D_DIM
from prohmr.fitting.body_joints import BodyJoints
from prohmr.fitting.keypoint_fitting import (
    _as_tensor,
    _LatentPoses,
    _autocast_disabled,
    _describe,
    _keypoints_arg,
    _loss_and_grad,
    _tensor_arg,
    frozen,
    reprojection_loss,
)
from prohmr.fitting.optimizer import LBFGSResult, LBFGSSettings, minimize_lbfgs
from prohmr.flows import ConditionalGlow
from prohmr.geometry import (
    matrix_to_rot6d,
    perspective_projection,
    procrustes_align,
    rot6d_to_matrix,
)

__all__ = [
    "DEFAULT_2D_WEIGHTS",
    "DEFAULT_3D_WEIGHTS",
    "JOINT_SETS",
    "JointSet",
    "PriorFitResult",
    "PriorFitWeights",
    "fit_prior_joints_3d",
    "fit_prior_keypoints_2d",
]

JointSet = Literal["prohmr44", "smpl24"]
#: Joint sets a 3D target can use: ProHMR's 44 joints or SMPL's 24 kinematic joints.
JOINT_SETS: tuple[str, ...] = ("prohmr44", "smpl24")
_ROT6D = 6
_NUM_JOINTS = {"prohmr44": 44, "smpl24": NUM_SMPL_JOINTS}
#: Global orientation of an upright body facing the camera (SMPL faces +z with y up; the
#: camera looks down +z with y down): a half turn about x.
_FACING_CAMERA = (1.0, -1.0, -1.0)


@dataclass(frozen=True)
class PriorFitWeights:
    """Weights of prior-only fitting (module docstring).

    *Fields*
        pose_prior: ``w_z``; the term is ``w_z² ‖z‖²``.
        shape_prior: ``w_β``; the term is ``w_β² ‖β‖²``.
        keypoint_scale: ``s`` of the 2D term ``(s / max(H, W))²`` (1000).
        gmof_sigma: Geman–McClure scale of the 2D term, pixels (100).
        joint_unit: ``u``, the unit of 3D residuals in metres (0.01: centimetres).
    """

    pose_prior: float
    shape_prior: float
    keypoint_scale: float = 1000.0
    gmof_sigma: float = 100.0
    joint_unit: float = 0.01

    def __post_init__(self) -> None:
        for name in ("pose_prior", "shape_prior", "keypoint_scale", "gmof_sigma", "joint_unit"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"PriorFitWeights: `{name}` must be a number >= 0, got {value!r}")
        if self.gmof_sigma == 0 or self.joint_unit == 0:
            raise ValueError("PriorFitWeights: `gmof_sigma` and `joint_unit` must be > 0")


#: 2D defaults: the weights of ProHMR's keypoint fitting.
DEFAULT_2D_WEIGHTS = PriorFitWeights(pose_prior=4.0, shape_prior=6.0)
#: 3D defaults: a 1 cm residual costs 1, so a weak prior keeps clean targets within ~1 cm.
DEFAULT_3D_WEIGHTS = PriorFitWeights(pose_prior=0.5, shape_prior=0.5)


@dataclass(eq=False)
class PriorFitResult:
    """What prior-only fitting returns: ``B`` people, ``K`` hypotheses each, best first.

    *Fields*
        global_orient: ``(B, K, 1, 3, 3)``; body_pose: ``(B, K, 23, 3, 3)``;
        betas: ``(B, K, 10)``; translation: ``(B, K, 3)`` added to the body (camera frame
            for 2D fitting).
        z: ``(B, K, 144)`` latents of the prior; prior_log_prob: ``(B, K)`` ``log p`` of the
            prior's full 144-d output at ``z``.
        vertices: ``(B, K, N, 3)``, joints: ``(B, K, 44, 3)``, smpl_joints:
            ``(B, K, 24, 3)``, translation included.
        loss, data_loss, pose_prior_loss, shape_prior_loss: ``(B, K)`` the final loss and
            its weighted terms (sorted: ``loss[:, 0]`` is the lowest).
        hypothesis: ``(B, K)`` which start each result came from (0: the given or mode pose).
        iterations, evaluations, converged: ``(B, K)`` of the main stage.
    """

    global_orient: torch.Tensor
    body_pose: torch.Tensor
    betas: torch.Tensor
    translation: torch.Tensor
    z: torch.Tensor
    prior_log_prob: torch.Tensor
    vertices: torch.Tensor
    joints: torch.Tensor
    smpl_joints: torch.Tensor
    loss: torch.Tensor
    data_loss: torch.Tensor
    pose_prior_loss: torch.Tensor
    shape_prior_loss: torch.Tensor
    hypothesis: torch.Tensor
    iterations: torch.Tensor
    evaluations: torch.Tensor
    converged: torch.Tensor


# A data term: (joints (P, 44, 3), smpl_joints (P, 24, 3), translation (P, 3), rows (P,)) -> (P,).
_DataTerm = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def _check_prior(prior: Any, body_model: Any, function: str) -> None:
    if not isinstance(prior, ConditionalGlow) or prior.is_conditional or (
        prior.features != POSE_6D_DIM
    ):
        raise ValueError(
            f"{function}: `prior` must be an unconditional ConditionalGlow "
            f"(context_features 0) over {POSE_6D_DIM} features, got {_describe(prior)}"
        )
    if not isinstance(body_model, BodyModel):
        raise ValueError(
            f"{function}: `body_model` must be a BodyModel, got {_describe(body_model)}"
        )
    if body_model.layer.shapedirs.dtype != prior.dtype:
        raise ValueError(
            f"{function}: the prior ({prior.dtype}) and the body model "
            f"({body_model.layer.shapedirs.dtype}) must have the same dtype"
        )


def _check_hypotheses(num_hypotheses: Any, hypothesis_scale: Any, function: str) -> None:
    if isinstance(num_hypotheses, bool) or not isinstance(num_hypotheses, int) or (
        num_hypotheses < 1
    ):
        raise ValueError(
            f"{function}: `num_hypotheses` must be an integer >= 1, got {num_hypotheses!r}"
        )
    if isinstance(hypothesis_scale, bool) or not isinstance(hypothesis_scale, (int, float)) or not (
        hypothesis_scale > 0
    ):
        raise ValueError(
            f"{function}: `hypothesis_scale` must be a number > 0, got {hypothesis_scale!r}"
        )


class _PriorProblem:
    """The variables, starts and objective of a batch of prior fits (``P = B·K`` problems)."""

    sizes = (POSE_6D_DIM, _ROT6D)

    def __init__(
        self,
        prior: ConditionalGlow,
        body_model: BodyModel,
        batch: int,
        num_hypotheses: int,
        init_body_pose: Optional[torch.Tensor],
        init_betas: Optional[torch.Tensor],
        hypothesis_scale: float,
        generator: Optional[torch.Generator],
        weights: PriorFitWeights,
        like: torch.Tensor,
    ) -> None:
        self.prior = prior
        self.poses = _LatentPoses(prior, None)
        self.body_model = body_model
        self.body_joints = BodyJoints(body_model)
        self.batch, self.num_hypotheses = batch, num_hypotheses
        self.weights = weights
        self.like = like
        self.num_betas = self.body_joints.num_betas
        count = batch * num_hypotheses
        with torch.no_grad():
            if init_body_pose is None:
                z_given = like.new_zeros(batch, POSE_6D_DIM)
            else:
                mode_global = prior.mode().samples[0, 0, :_ROT6D]
                body_6d = matrix_to_rot6d(init_body_pose, layout="prohmr").flatten(1)
                pose_6d = torch.cat([mode_global.expand(batch, _ROT6D), body_6d], dim=1)
                z_given = prior.log_prob(pose_6d)[1]
        drawn = torch.randn(
            (batch, num_hypotheses - 1, POSE_6D_DIM), generator=generator, dtype=torch.float64
        ).to(like)
        self.z0 = torch.cat([z_given[:, None], hypothesis_scale * drawn], dim=1).reshape(count, -1)
        betas = like.new_zeros(batch, self.num_betas) if init_betas is None else init_betas
        self.betas0 = betas.repeat_interleave(num_hypotheses, dim=0)

    def pose(self, z: torch.Tensor, exact: bool = False) -> torch.Tensor:
        """Body rotations ``(P, 23, 3, 3)`` of the prior at ``z`` (its global one dropped)."""
        return self.poses(z, exact=exact)[0][:, 1:]

    def joints(
        self,
        global_6d: torch.Tensor,
        body_pose: torch.Tensor,
        betas: torch.Tensor,
        exact: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``joints (P, 44, 3)`` and ``smpl_joints (P, 24, 3)`` (full body model if exact)."""
        global_orient = rot6d_to_matrix(global_6d)[:, None]
        if exact:
            body = self.body_model(global_orient, body_pose, betas)
            return body.joints, body.smpl_joints
        return self.body_joints(global_orient, body_pose, betas)

    def unpack(self, variables: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return variables.split((POSE_6D_DIM, _ROT6D, self.num_betas, 3), dim=-1)

    def terms(
        self,
        variables: torch.Tensor,
        rows: torch.Tensor,
        data_term: _DataTerm,
        exact: bool = False,
    ) -> dict[str, torch.Tensor]:
        z, global_6d, betas, translation = self.unpack(variables)
        body_pose = self.pose(z, exact)
        joints, smpl_joints = self.joints(global_6d, body_pose, betas, exact)
        return {
            "data": data_term(joints, smpl_joints, translation, rows),
            "pose_prior": self.weights.pose_prior**2 * (z * z).sum(dim=-1),
            "shape_prior": self.weights.shape_prior**2 * (betas * betas).sum(dim=-1),
        }

    def camera_stage(
        self,
        start: torch.Tensor,
        data_term: _DataTerm,
        settings: LBFGSSettings,
    ) -> torch.Tensor:
        """Fit global orientation and translation only, the pose and betas held at ``start``."""
        z, global_6d, betas, translation = self.unpack(start)
        with torch.no_grad():
            body_pose = self.pose(z)

        def objective(points: np.ndarray, problems: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            rows = torch.from_numpy(problems).to(self.like.device)
            with torch.enable_grad():
                variables = _as_tensor(points, self.like).requires_grad_(True)
                rotation, shift = variables.split((_ROT6D, 3), dim=-1)
                joints, smpl_joints = self.joints(rotation, body_pose[rows], betas[rows])
                return _loss_and_grad(data_term(joints, smpl_joints, shift, rows), variables)

        camera = torch.cat([global_6d, translation], dim=-1).double().cpu().numpy()
        fitted = _as_tensor(minimize_lbfgs(objective, camera, settings).x, self.like)
        return torch.cat([z, fitted[:, :_ROT6D], betas, fitted[:, _ROT6D:]], dim=-1)

    def main_stage(
        self, start: torch.Tensor, data_term: _DataTerm, settings: LBFGSSettings
    ) -> LBFGSResult:
        def objective(points: np.ndarray, problems: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            rows = torch.from_numpy(problems).to(self.like.device)
            with torch.enable_grad():
                variables = _as_tensor(points, self.like).requires_grad_(True)
                out = self.terms(variables, rows, data_term)
                total = out["data"] + out["pose_prior"] + out["shape_prior"]
                return _loss_and_grad(total, variables)

        return minimize_lbfgs(objective, start.double().cpu().numpy(), settings)

    def result(self, run: LBFGSResult, data_term: _DataTerm) -> PriorFitResult:
        """Evaluate the solutions with the full body model, rank them, shape ``(B, K, ...)``."""
        batch, hypotheses = self.batch, self.num_hypotheses
        solution = _as_tensor(run.x, self.like)
        rows = torch.arange(batch * hypotheses, device=self.like.device)
        with torch.no_grad():
            z, global_6d, betas, translation = self.unpack(solution)
            body_pose = self.pose(z, exact=True)
            log_prob = self.prior.sample(z=z.unsqueeze(1)).log_prob[:, 0]
            global_orient = rot6d_to_matrix(global_6d)[:, None]
            body = self.body_model(global_orient, body_pose, betas, translation)
            terms = self.terms(solution, rows, data_term, exact=True)
        loss = terms["data"] + terms["pose_prior"] + terms["shape_prior"]
        order = loss.reshape(batch, hypotheses).argsort(dim=1)

        def ranked(value: torch.Tensor) -> torch.Tensor:
            value = value.reshape(batch, hypotheses, *value.shape[1:])
            index = order.reshape(batch, hypotheses, *([1] * (value.ndim - 2)))
            return value.gather(1, index.expand_as(value))

        def statistic(array: np.ndarray) -> torch.Tensor:
            return ranked(torch.from_numpy(array).to(self.like.device))

        return PriorFitResult(
            global_orient=ranked(global_orient),
            body_pose=ranked(body_pose),
            betas=ranked(betas),
            translation=ranked(translation),
            z=ranked(z),
            prior_log_prob=ranked(log_prob),
            vertices=ranked(body.vertices),
            joints=ranked(body.joints),
            smpl_joints=ranked(body.smpl_joints),
            loss=ranked(loss),
            data_loss=ranked(terms["data"]),
            pose_prior_loss=ranked(terms["pose_prior"]),
            shape_prior_loss=ranked(terms["shape_prior"]),
            hypothesis=order,
            iterations=statistic(run.steps),
            evaluations=statistic(run.evaluations),
            converged=statistic(run.converged),
        )


def _optional(
    value: Any, name: str, shape: tuple[int, ...], function: str, like: torch.Tensor
) -> Optional[torch.Tensor]:
    return None if value is None else _tensor_arg(value, name, shape, function, like)


def fit_prior_keypoints_2d(
    prior: ConditionalGlow,
    body_model: BodyModel,
    keypoints_2d: torch.Tensor,
    image_size: torch.Tensor,
    *,
    focal_length: float = FOCAL_LENGTH,
    principal_point: Optional[torch.Tensor] = None,
    use_hips: bool = False,
    init_global_orient: Optional[torch.Tensor] = None,
    init_body_pose: Optional[torch.Tensor] = None,
    init_betas: Optional[torch.Tensor] = None,
    init_translation: Optional[torch.Tensor] = None,
    num_hypotheses: int = 1,
    hypothesis_scale: float = 1.0,
    generator: Optional[torch.Generator] = None,
    weights: Optional[PriorFitWeights] = None,
    settings: Optional[LBFGSSettings] = None,
    camera_settings: Optional[LBFGSSettings] = None,
) -> PriorFitResult:
    """Fit the body to 2D keypoints with an unconditional pose prior (module docstring).

    *Arguments*
        prior: an unconditional :class:`~prohmr.flows.ConditionalGlow` over 144-d 6D poses.
        body_model: the :class:`~prohmr.body.model.BodyModel` (same dtype and device).
        keypoints_2d: ``(B, 44 or 25, 3)`` ``(x, y, confidence)`` in image pixels.
        image_size: ``(B, 2)`` image ``(width, height)`` (the loss scale and default
            principal point).
        focal_length: focal length in pixels (default 5000, ProHMR's full-frame camera).
        principal_point: ``(B, 2)`` pixels; default the image centre.
        use_hips: keep the hip keypoints (see :func:`~prohmr.fitting.fit_keypoints`).
        init_global_orient: ``(B, 1, 3, 3)``; default upright and facing the camera.
        init_body_pose: ``(B, 23, 3, 3)`` start of hypothesis 0; default the prior's mode.
        init_betas: ``(B, 10)``; default zeros.
        init_translation: ``(B, 3)``; default estimated from the keypoints' spread.
        num_hypotheses: ``K`` starts per person (module docstring).
        hypothesis_scale: std of the latents of the random starts.
        generator: random generator for the random starts.
        weights: :class:`PriorFitWeights`; default :data:`DEFAULT_2D_WEIGHTS`.
        settings: L-BFGS settings of the main stage (default: SPEC §6.1's).
        camera_settings: of the first (camera) stage; default 10 steps.

    *Returns*
        :class:`PriorFitResult` with ``K`` hypotheses per person, best first.
    """
    function = "fit_prior_keypoints_2d"
    _check_prior(prior, body_model, function)
    _check_hypotheses(num_hypotheses, hypothesis_scale, function)
    weights = DEFAULT_2D_WEIGHTS if weights is None else weights
    if not isinstance(weights, PriorFitWeights):
        raise ValueError(
            f"{function}: `weights` must be a PriorFitWeights, got {_describe(weights)}"
        )
    settings = LBFGSSettings() if settings is None else settings
    camera_settings = LBFGSSettings(max_steps=10) if camera_settings is None else camera_settings
    like = torch.empty(0, dtype=prior.dtype, device=prior.device)
    if not isinstance(keypoints_2d, torch.Tensor) or keypoints_2d.ndim != 3:
        raise ValueError(
            f"{function}: `keypoints_2d` must have shape (B, 44 or 25, 3), "
            f"got {_describe(keypoints_2d)}"
        )
    batch = keypoints_2d.shape[0]
    keypoints = _keypoints_arg(keypoints_2d, (batch,), use_hips, function, like)
    frame = _tensor_arg(image_size, "image_size", (batch, 2), function, like)
    if not (frame > 0).all():
        raise ValueError(f"{function}: `image_size` must be positive")
    centre = 0.5 * frame if principal_point is None else _tensor_arg(
        principal_point, "principal_point", (batch, 2), function, like
    )
    init_global_orient = _optional(
        init_global_orient, "init_global_orient", (batch, 1, 3, 3), function, like
    )
    init_body_pose = _optional(init_body_pose, "init_body_pose", (batch, 23, 3, 3), function, like)
    init_betas = _optional(init_betas, "init_betas", (batch, body_model.num_betas), function, like)
    init_translation = _optional(init_translation, "init_translation", (batch, 3), function, like)
    hypotheses = num_hypotheses
    expand = lambda value: value.repeat_interleave(hypotheses, dim=0)  # noqa: E731
    rows_keypoints, rows_centre = expand(keypoints), expand(centre)
    rows_scale = expand((weights.keypoint_scale / frame.max(dim=-1).values) ** 2)

    def data_term(
        joints: torch.Tensor,
        smpl_joints: torch.Tensor,
        translation: torch.Tensor,
        rows: torch.Tensor,
    ) -> torch.Tensor:
        projected = perspective_projection(joints, translation, focal_length, rows_centre[rows])
        return reprojection_loss(
            projected, rows_keypoints[rows], weights.gmof_sigma, rows_scale[rows]
        )

    with frozen(prior), _autocast_disabled(like.device):
        problem = _PriorProblem(
            prior, body_model, batch, hypotheses, init_body_pose, init_betas,
            hypothesis_scale, generator, weights, like,
        )
        if init_global_orient is None:
            facing = torch.diag(like.new_tensor(_FACING_CAMERA))
            init_global_orient = facing.expand(batch, 1, 3, 3)
        global_6d = expand(matrix_to_rot6d(init_global_orient[:, 0], layout="prohmr"))
        if init_translation is None:
            with torch.no_grad():
                body_pose = problem.pose(problem.z0)
                joints, _ = problem.joints(global_6d, body_pose, problem.betas0)
            translation = _translation_from_keypoints(
                joints, rows_keypoints, focal_length, rows_centre
            )
        else:
            translation = expand(init_translation)
        start = torch.cat([problem.z0, global_6d, problem.betas0, translation], dim=-1)
        start = problem.camera_stage(start, data_term, camera_settings)
        run = problem.main_stage(start, data_term, settings)
        return problem.result(run, data_term)


def _translation_from_keypoints(
    joints: torch.Tensor,
    keypoints: torch.Tensor,
    focal_length: float,
    principal_point: torch.Tensor,
) -> torch.Tensor:
    """A translation that puts the joints' spread and centre on the keypoints' (``(P, 3)``).

    Weak-perspective estimate over the confident joints: depth from the ratio of the RMS
    spreads (3D in x, y against 2D), then x, y from the centres.
    """
    weight = (keypoints[..., 2] > 0).to(joints.dtype)[..., None]
    count = weight.sum(dim=1).clamp_min(1.0)
    centre_3d = (joints * weight).sum(dim=1) / count
    centre_2d = (keypoints[..., :2] * weight).sum(dim=1) / count
    offsets_3d = joints[..., :2] - centre_3d[:, None, :2]
    offsets_2d = keypoints[..., :2] - centre_2d[:, None]
    spread_3d = (offsets_3d**2 * weight).sum(dim=(1, 2)) / count[:, 0]
    spread_2d = (offsets_2d**2 * weight).sum(dim=(1, 2)) / count[:, 0]
    depth = focal_length * (spread_3d / spread_2d.clamp_min(1.0)).sqrt()
    xy = (centre_2d - principal_point) * (depth / focal_length)[:, None] - centre_3d[:, :2]
    return torch.cat([xy, (depth - centre_3d[:, 2])[:, None]], dim=-1)


def fit_prior_joints_3d(
    prior: ConditionalGlow,
    body_model: BodyModel,
    joints_3d: torch.Tensor,
    *,
    joint_set: JointSet = "prohmr44",
    init_body_pose: Optional[torch.Tensor] = None,
    init_betas: Optional[torch.Tensor] = None,
    num_hypotheses: int = 1,
    hypothesis_scale: float = 1.0,
    generator: Optional[torch.Generator] = None,
    weights: Optional[PriorFitWeights] = None,
    settings: Optional[LBFGSSettings] = None,
) -> PriorFitResult:
    """Fit the body to 3D joint positions with an unconditional pose prior (module docstring).

    *Arguments*
        prior: an unconditional :class:`~prohmr.flows.ConditionalGlow` over 144-d 6D poses.
        body_model: the :class:`~prohmr.body.model.BodyModel` (same dtype and device).
        joints_3d: ``(B, J, 3)`` target positions in metres, or ``(B, J, 4)`` with a
            confidence column (0 = missing); ``J`` = 44 or 24 per ``joint_set``.
        joint_set: ``"prohmr44"`` (ProHMR's joints) or ``"smpl24"`` (SMPL's kinematic
            joints, e.g. from :mod:`prohmr.data.mocap`).
        init_body_pose: ``(B, 23, 3, 3)`` start of hypothesis 0; default the prior's mode.
        init_betas: ``(B, 10)``; default zeros.
        num_hypotheses: ``K`` starts per person (module docstring).
        hypothesis_scale: std of the latents of the random starts.
        generator: random generator for the random starts.
        weights: :class:`PriorFitWeights`; default :data:`DEFAULT_3D_WEIGHTS`.
        settings: L-BFGS settings (default: SPEC §6.1's).

    *Returns*
        :class:`PriorFitResult` with ``K`` hypotheses per person, best first.

    *Example*
        >>> from prohmr.body.model import create_body_model
        >>> from prohmr.fitting.optimizer import LBFGSSettings
        >>> from prohmr.geometry import axis_angle_to_matrix
        >>> _ = torch.manual_seed(0)
        >>> prior = ConditionalGlow(hidden_features=8, num_layers=1, context_features=0)
        >>> poses = matrix_to_rot6d(axis_angle_to_matrix(0.3 * torch.randn(64, 24, 3)))
        >>> _ = prior.log_prob(poses.flatten(1))  # data-initialise ActNorm (training mode)
        >>> prior = prior.eval()
        >>> body = create_body_model()
        >>> eye = torch.eye(3).expand(1, 24, 3, 3)
        >>> target = body(eye[:, :1], eye[:, 1:], torch.zeros(1, 10)).smpl_joints
        >>> fit = fit_prior_joints_3d(prior, body, target, joint_set="smpl24", num_hypotheses=2,
        ...                           settings=LBFGSSettings(max_steps=1))
        >>> tuple(fit.body_pose.shape), bool(fit.loss[0, 0] <= fit.loss[0, 1])
        ((1, 2, 23, 3, 3), True)
    """
    function = "fit_prior_joints_3d"
    _check_prior(prior, body_model, function)
    _check_hypotheses(num_hypotheses, hypothesis_scale, function)
    if joint_set not in JOINT_SETS:
        raise ValueError(f"{function}: `joint_set` must be one of {JOINT_SETS}, got {joint_set!r}")
    weights = DEFAULT_3D_WEIGHTS if weights is None else weights
    if not isinstance(weights, PriorFitWeights):
        raise ValueError(
            f"{function}: `weights` must be a PriorFitWeights, got {_describe(weights)}"
        )
    settings = LBFGSSettings() if settings is None else settings
    like = torch.empty(0, dtype=prior.dtype, device=prior.device)
    num_joints = _NUM_JOINTS[joint_set]
    if (
        not isinstance(joints_3d, torch.Tensor)
        or joints_3d.ndim != 3
        or joints_3d.shape[1:] not in ((num_joints, 3), (num_joints, 4))
    ):
        raise ValueError(
            f"{function}: `joints_3d` must have shape (B, {num_joints}, 3 or 4), "
            f"got {_describe(joints_3d)}"
        )
    batch = joints_3d.shape[0]
    targets = _tensor_arg(joints_3d, "joints_3d", tuple(joints_3d.shape), function, like)
    if targets.shape[-1] == 3:
        targets = torch.cat([targets, targets.new_ones(batch, num_joints, 1)], dim=-1)
    if (targets[..., 3] < 0).any():
        raise ValueError(f"{function}: `joints_3d` has negative confidences")
    if ((targets[..., 3] > 0).sum(dim=-1) < 3).any():
        raise ValueError(
            f"{function}: `joints_3d` needs at least 3 joints with confidence > 0 per item"
        )
    init_body_pose = _optional(init_body_pose, "init_body_pose", (batch, 23, 3, 3), function, like)
    init_betas = _optional(init_betas, "init_betas", (batch, body_model.num_betas), function, like)
    hypotheses = num_hypotheses
    rows_targets = targets.repeat_interleave(hypotheses, dim=0)
    unit = weights.joint_unit

    def data_term(
        joints: torch.Tensor,
        smpl_joints: torch.Tensor,
        translation: torch.Tensor,
        rows: torch.Tensor,
    ) -> torch.Tensor:
        model_joints = joints if joint_set == "prohmr44" else smpl_joints
        target = rows_targets[rows]
        residual = (model_joints + translation[:, None] - target[..., :3]) / unit
        return (target[..., 3] * (residual * residual).sum(dim=-1)).sum(dim=-1)

    with frozen(prior), _autocast_disabled(like.device):
        problem = _PriorProblem(
            prior, body_model, batch, hypotheses, init_body_pose, init_betas,
            hypothesis_scale, generator, weights, like,
        )
        with torch.no_grad():
            body_pose = problem.pose(problem.z0)
            identity = torch.eye(3, dtype=like.dtype, device=like.device)
            identity = identity.expand(len(body_pose), 1, 3, 3)
            joints, smpl_joints = problem.body_joints(identity, body_pose, problem.betas0)
        rotation, shift = _rigid_alignment(
            joints if joint_set == "prohmr44" else smpl_joints, rows_targets
        )
        # The body model turns the body about its root joint, not about the origin.
        root = smpl_joints[:, 0]
        translation = shift - root + (rotation @ root[..., None])[..., 0]
        global_6d = matrix_to_rot6d(rotation, layout="prohmr")
        start = torch.cat([problem.z0, global_6d, problem.betas0, translation], dim=-1)
        run = problem.main_stage(start, data_term, settings)
        return problem.result(run, data_term)


def _rigid_alignment(
    source: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotation ``(P, 3, 3)`` and translation ``(P, 3)`` taking ``source (P, J, 3)`` onto the
    confident joints of ``targets (P, J, 4)`` (Umeyama's rotation; no scaling)."""
    rotations, translations = [], []
    for points, target in zip(source, targets):
        used = target[:, 3] > 0
        _, transform = procrustes_align(points[used], target[used, :3], return_transform=True)
        rotation = transform.rotation
        translations.append(target[used, :3].mean(dim=0) - rotation @ points[used].mean(dim=0))
        rotations.append(rotation)
    return torch.stack(rotations), torch.stack(translations)
