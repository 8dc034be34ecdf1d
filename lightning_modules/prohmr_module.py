"""Training ProHMR with Lightning: the loss of SPEC §4.2, the adversarial prior, validation.

:class:`ProHMRModule` wraps a :class:`prohmr.models.ProHMR` (``self.model``, so checkpoint
keys are ``model.*`` and :func:`prohmr.models.loading.load_model` reads them) and HMR's
:class:`~prohmr.models.Discriminator` (``self.discriminator``). Per training batch:

1. backbone features of the ``B`` crops; before the very first step the flow's ActNorm layers
   are initialised from the batch's ground-truth 6D poses (a no-grad, training-mode
   ``log_prob`` pass; ``model.initialized`` records it and it never runs again);
2. ``N`` samples per image, sample 0 the mode (``z = 0``), the others random;
3. the generator loss: "mode" terms on sample 0 divided by ``B``, "expectation" terms on
   samples ``1..N-1`` divided by ``B (N - 1)``, the orthonormality of the raw 6D, the NLL of
   the (noised) ground-truth poses and the adversarial term, each times its weight
   (:class:`LossWeights`); one AdamW step on backbone + flow + head;
4. the discriminator (LSGAN) on the detached predictions of all ``B N`` samples against a
   mocap batch; one AdamW step on the discriminator.

Optimisation is manual (``automatic_optimization = False``). Lightning's ``global_step``
counts optimiser steps, so with the adversarial prior it advances by 2 per batch.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from PIL import Image, ImageDraw
from torch import Tensor

from prohmr._utils import check_weight_fields
from prohmr.body.joints import EVAL_JOINTS_14, PELVIS_INDEX
from prohmr.constants import IMAGENET_MEAN, IMAGENET_STD, NUM_BODY_JOINTS, NUM_BETAS
from prohmr.evaluation.metrics import PROHMR_14
from prohmr.evaluation.probabilistic import min_of_n, mode_error
from prohmr.geometry import axis_angle_to_matrix, matrix_to_rot6d, normalized_to_pixel
from prohmr.losses import (
    discriminator_loss,
    generator_adversarial_loss,
    keypoint_2d_loss,
    keypoint_3d_loss,
    orthonormality_loss,
    parameter_loss,
)
from prohmr.models.config import ProHMRConfig
from prohmr.models.discriminator import Discriminator
from prohmr.models.loading import save_model
from prohmr.models.prohmr import ProHMR, ProHMROutput

__all__ = [
    "LossWeights",
    "GroundTruth",
    "ProHMRModule",
    "ground_truth_from_batch",
    "keypoint_overlays",
]

logger = logging.getLogger(__name__)

#: Standard deviation of the Gaussian noise added to the ground-truth 6D poses of the NLL.
DEFAULT_POSE_NOISE: float = 0.005
#: ActNorm's data initialisation needs a standard deviation, so at least this many poses.
MIN_POSES_FOR_ACTNORM_INIT: int = 2
#: Colours of the overlays: ground truth, mode, other samples (RGB).
_GT_COLOUR = (40, 220, 40)
_MODE_COLOUR = (230, 40, 40)
_SAMPLE_COLOUR = (90, 170, 255)
#: Radius of a drawn keypoint, as a fraction of the crop side.
_DOT_RADIUS = 0.012


@dataclass(frozen=True)
class LossWeights:
    """Weights of the generator loss terms (SPEC §4.2 defaults; "mode" / "exp" = expectation).

    A term whose weight is 0 is not computed at all.

    Attributes:
        keypoints_2d_mode, keypoints_2d_exp: confidence-weighted L1 of the 44 2D keypoints in
            normalised crop coordinates (0.01 / 0.001).
        keypoints_3d_mode, keypoints_3d_exp: confidence-weighted L1 of the pelvis-centred 3D
            keypoints (0.05 / 0).
        global_orient_mode, global_orient_exp: squared error of the root rotation matrix,
            labelled images only (0.001 / 0).
        body_pose_mode, body_pose_exp: same for the 23 body rotations (0.001 / 0).
        betas_mode, betas_exp: squared error of the shape, labelled images only (0.0005 / 0).
        orthonormal: ``mean((AᵀA − I)²)`` of the raw 6D, mode mean + expectation mean (0.1).
        nll: negative log-likelihood of the noised ground-truth poses (0.001).
        adversarial: generator term ``Σ (D − 1)² / B`` over all samples, and the weight of
            the discriminator's own loss (0.0005).
    """

    keypoints_2d_mode: float = 0.01
    keypoints_2d_exp: float = 0.001
    keypoints_3d_mode: float = 0.05
    keypoints_3d_exp: float = 0.0
    global_orient_mode: float = 0.001
    global_orient_exp: float = 0.0
    body_pose_mode: float = 0.001
    body_pose_exp: float = 0.0
    betas_mode: float = 0.0005
    betas_exp: float = 0.0
    orthonormal: float = 0.1
    nll: float = 0.001
    adversarial: float = 0.0005

    def __post_init__(self) -> None:
        check_weight_fields(self)


@dataclass
class GroundTruth:
    """The labels of a batch in the form the losses need (``B`` images).

    Attributes:
        keypoints_2d: ``(B, 44, 3)`` normalised crop coordinates and confidence.
        keypoints_3d: ``(B, 44, 4)`` metres and confidence.
        global_orient: ``(B, 1, 3, 3)`` rotation matrix.
        body_pose: ``(B, 23, 3, 3)`` rotation matrices.
        betas: ``(B, 10)``.
        has_global_orient, has_body_pose, has_betas: ``(B,)`` bool label masks.
        pose_6d: ``(B, 144)`` the 24 rotations in ProHMR's 6D layout (the NLL's target).
    """

    keypoints_2d: Tensor
    keypoints_3d: Tensor
    global_orient: Tensor
    body_pose: Tensor
    betas: Tensor
    has_global_orient: Tensor
    has_body_pose: Tensor
    has_betas: Tensor
    pose_6d: Tensor


def _rotations(value: Tensor, is_axis_angle: Any, joints: int) -> Tensor:
    """``(B, joints, 3, 3)`` from axis-angle ``(B, 3 joints)`` or rotation matrices."""
    batch_size = value.shape[0]
    if is_axis_angle is None or bool(torch.as_tensor(is_axis_angle).all()):
        return axis_angle_to_matrix(value.reshape(batch_size, joints, 3))
    return value.reshape(batch_size, joints, 3, 3)


def ground_truth_from_batch(batch: Mapping[str, Any]) -> GroundTruth:
    """Convert an :class:`~prohmr.data.ImageDataset` batch into :class:`GroundTruth`.

    SMPL poses flagged as axis-angle (``smpl_params_is_axis_angle``, the dataset's format)
    are converted with :func:`prohmr.geometry.axis_angle_to_matrix`; otherwise they are read
    as rotation matrices.

    Arguments:
        batch: ``keypoints_2d (B, 44, 3)``, ``keypoints_3d (B, 44, 4)``, ``smpl_params``
            (``global_orient (B, 3)``, ``body_pose (B, 69)``, ``betas (B, 10)``),
            ``has_smpl_params`` and optionally ``smpl_params_is_axis_angle``.

    Returns:
        :class:`GroundTruth`.
    """
    params = batch["smpl_params"]
    has = batch["has_smpl_params"]
    is_axis_angle = batch.get("smpl_params_is_axis_angle", {})
    global_orient = _rotations(params["global_orient"], is_axis_angle.get("global_orient"), 1)
    body_pose = _rotations(params["body_pose"], is_axis_angle.get("body_pose"), NUM_BODY_JOINTS)
    pose_6d = matrix_to_rot6d(torch.cat([global_orient, body_pose], dim=1), layout="prohmr")
    device = global_orient.device
    return GroundTruth(
        keypoints_2d=batch["keypoints_2d"],
        keypoints_3d=batch["keypoints_3d"],
        global_orient=global_orient,
        body_pose=body_pose,
        betas=params["betas"].reshape(-1, NUM_BETAS),
        has_global_orient=torch.as_tensor(has["global_orient"], device=device).bool(),
        has_body_pose=torch.as_tensor(has["body_pose"], device=device).bool(),
        has_betas=torch.as_tensor(has["betas"], device=device).bool(),
        pose_6d=pose_6d.flatten(-2),
    )


def _mode_and_expectation(per_sample: Tensor) -> tuple[Tensor, Tensor]:
    """``(B, N)`` per-sample losses -> (sum of sample 0 / B, sum of the rest / (B (N-1)))."""
    batch_size, num_samples = per_sample.shape
    mode = per_sample[:, 0].sum() / batch_size
    expectation = per_sample[:, 1:].sum() / (batch_size * (num_samples - 1))
    return mode, expectation


def keypoint_overlays(
    images: Tensor, keypoints_2d: Tensor, gt_keypoints_2d: Tensor | None = None
) -> np.ndarray:
    """Draw predicted (and ground-truth) 2D keypoints over the input crops, side by side.

    Colours: ground truth green (visible joints only), sample 0 (the mode) red, the other
    samples light blue.

    Arguments:
        images: ``(K, 3, S, S)`` ImageNet-normalised crops.
        keypoints_2d: ``(K, N, J, 2)`` predictions in normalised crop coordinates.
        gt_keypoints_2d: optional ``(K, J, 3)`` ground truth with confidence.

    Returns:
        ``(S, K S, 3)`` uint8 RGB image.

    Example:
        >>> grid = keypoint_overlays(torch.zeros(2, 3, 32, 32), torch.zeros(2, 3, 44, 2))
        >>> grid.shape, grid.dtype.name
        ((32, 64, 3), 'uint8')
    """
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    pixels = (images.detach().float().cpu() * std + mean).clamp(0.0, 1.0)
    pixels = (pixels * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    size = images.shape[-1]
    radius = max(1.0, _DOT_RADIUS * size)
    predicted = normalized_to_pixel(keypoints_2d.detach().float().cpu(), image_size=size)
    truth = (
        normalized_to_pixel(gt_keypoints_2d.detach().float().cpu(), image_size=size)
        if gt_keypoints_2d is not None
        else None
    )
    panels = []
    for index, crop in enumerate(pixels):
        canvas = Image.fromarray(np.ascontiguousarray(crop))
        draw = ImageDraw.Draw(canvas)
        layers: list[tuple[Tensor, tuple[int, int, int]]] = [
            (predicted[index, sample], _SAMPLE_COLOUR)
            for sample in range(predicted.shape[1] - 1, 0, -1)
        ]
        layers.append((predicted[index, 0], _MODE_COLOUR))
        if truth is not None:
            layers.append((truth[index][truth[index, :, 2] > 0, :2], _GT_COLOUR))
        for points, colour in layers:
            for x, y in points.tolist():
                draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour)
        panels.append(np.asarray(canvas))
    return np.concatenate(panels, axis=1)


class ProHMRModule(pl.LightningModule):
    """ProHMR training (SPEC §4.2) with manual optimisation of model and discriminator.

    Arguments:
        config: the model architecture (:class:`ProHMRConfig`; a dict of its fields also
            works, as stored in checkpoints).
        loss_weights: the weight of every loss term (:class:`LossWeights`; or a dict).
        num_samples: ``N`` samples per training image, ``>= 2`` (sample 0 is the mode; the
            expectation terms need at least one more).
        val_num_samples: samples per validation image for min-of-n (mode included).
        lr, weight_decay: AdamW for backbone + flow + head.
        discriminator_lr, discriminator_weight_decay: AdamW for the discriminator (default:
            ``lr`` and ``weight_decay``).
        adversarial: train with the adversarial pose prior (needs mocap batches). When the
            DataModule provides none, it is switched off with a warning at setup.
        pose_noise: std of the Gaussian noise added to the ground-truth 6D poses of the NLL
            (the original also noised the betas, which the flow does not read).
        actnorm_init_noise: std of the noise added to the ground-truth poses that initialise
            ActNorm; 0 (the original) initialises from the clean poses. Set it to
            ``pose_noise`` when some pose features are constant in the data (e.g. joints a
            mocap source never moves): ActNorm then scales them by ``1 / 1e-3`` (its clamped
            std), the NLL's noise is amplified by that factor in every layer and the NLL
            explodes (``1e13`` instead of ``-200`` for a 4-layer flow).
        num_logged_images: validation crops drawn with their sample keypoints and sent to
            loggers that accept images (TensorBoard); 0 disables it.

    Raises:
        ValueError: ``num_samples < 2`` or another invalid setting.

    Batches: ``{"img": <ImageDataset batch>, "mocap": {"body_pose": (M, 72), "betas":
    (M, 10)}}`` for training (``"mocap"`` only with the adversarial prior), plain
    ImageDataset batches for validation, test and prediction.
    """

    def __init__(
        self,
        config: ProHMRConfig = ProHMRConfig(),
        loss_weights: LossWeights = LossWeights(),
        num_samples: int = 2,
        val_num_samples: int = 10,
        lr: float = 1e-4,
        weight_decay: float = 1e-4,
        discriminator_lr: float | None = None,
        discriminator_weight_decay: float | None = None,
        adversarial: bool = True,
        pose_noise: float = DEFAULT_POSE_NOISE,
        actnorm_init_noise: float = 0.0,
        num_logged_images: int = 4,
    ) -> None:
        super().__init__()
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 2:
            raise ValueError(
                f"num_samples must be an integer >= 2 (sample 0 is the mode and the "
                f"expectation terms average over samples 1..N-1), got {num_samples!r}"
            )
        if isinstance(val_num_samples, bool) or not isinstance(val_num_samples, int) or (
            val_num_samples < 1
        ):
            raise ValueError(f"val_num_samples must be an integer >= 1, got {val_num_samples!r}")
        for name, value in (
            ("lr", lr),
            ("weight_decay", weight_decay),
            ("pose_noise", pose_noise),
            ("actnorm_init_noise", actnorm_init_noise),
        ):
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if num_logged_images < 0:
            raise ValueError(f"num_logged_images must be >= 0, got {num_logged_images}")
        if isinstance(config, Mapping):
            config = ProHMRConfig.from_dict(config)
        if isinstance(loss_weights, Mapping):
            loss_weights = LossWeights(**loss_weights)
        if not isinstance(config, ProHMRConfig):
            raise ValueError(
                f"config must be a ProHMRConfig or a dict, got {type(config).__name__}"
            )
        if not isinstance(loss_weights, LossWeights):
            raise ValueError(
                f"loss_weights must be a LossWeights or a dict, got {type(loss_weights).__name__}"
            )
        if not any(asdict(loss_weights).values()):
            raise ValueError("loss_weights: at least one weight must be > 0")
        self.automatic_optimization = False
        self.config = config
        self.loss_weights = loss_weights
        self.num_samples = num_samples
        self.val_num_samples = val_num_samples
        self.lr = lr
        self.weight_decay = weight_decay
        self.discriminator_lr = lr if discriminator_lr is None else discriminator_lr
        self.discriminator_weight_decay = (
            weight_decay if discriminator_weight_decay is None else discriminator_weight_decay
        )
        self.adversarial = bool(adversarial)
        self.pose_noise = pose_noise
        self.actnorm_init_noise = actnorm_init_noise
        self.num_logged_images = num_logged_images
        # Plain values only: checkpoints then load with torch.load(weights_only=True).
        self.save_hyperparameters(
            {
                "config": config.to_dict(),
                "loss_weights": asdict(loss_weights),
                "num_samples": num_samples,
                "val_num_samples": val_num_samples,
                "lr": lr,
                "weight_decay": weight_decay,
                "discriminator_lr": discriminator_lr,
                "discriminator_weight_decay": discriminator_weight_decay,
                "adversarial": self.adversarial,
                "pose_noise": pose_noise,
                "actnorm_init_noise": actnorm_init_noise,
                "num_logged_images": num_logged_images,
            }
        )
        self.model = ProHMR(config)
        self.discriminator = Discriminator() if self.adversarial else None
        self._init_deferred_warned = False
        self._eval_sums: dict[str, Tensor] = {}

    # ------------------------------------------------------------------------- set-up
    @property
    def uses_adversarial(self) -> bool:
        """Whether the adversarial term and the discriminator step are active."""
        return self.discriminator is not None and self.loss_weights.adversarial > 0.0

    def setup(self, stage: str) -> None:
        """Switch the adversarial prior off when the DataModule has no mocap data."""
        datamodule = getattr(self._trainer, "datamodule", None)
        if stage == "fit" and self.uses_adversarial and getattr(
            datamodule, "has_mocap", True
        ) is False:
            logger.warning(
                "adversarial=True but the DataModule has no mocap data (data.mocap is null): "
                "training without the adversarial term and the discriminator step"
            )
            self.adversarial = False
            self.discriminator = None
            # Checkpoints then rebuild the module without a discriminator.
            self.hparams["adversarial"] = False

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        """AdamW for backbone + flow + head; a second AdamW for the discriminator."""
        optimizers = [
            torch.optim.AdamW(self.model.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        ]
        if self.uses_adversarial and self.discriminator is not None:
            optimizers.append(
                torch.optim.AdamW(
                    self.discriminator.parameters(),
                    lr=self.discriminator_lr,
                    weight_decay=self.discriminator_weight_decay,
                )
            )
        return optimizers

    # ------------------------------------------------------------------------- losses
    def initialize_flow(self, gt: GroundTruth, features: Tensor) -> bool:
        """ActNorm data initialisation from the labelled ground-truth 6D poses, once (plus
        ``actnorm_init_noise`` Gaussian noise when that is set).

        Runs only while ``model.initialized`` is False and the batch has at least
        :data:`MIN_POSES_FOR_ACTNORM_INIT` labelled poses (otherwise it waits for a later
        batch; until then the NLL term is skipped, since a training-mode ``log_prob`` would
        initialise ActNorm from noised poses).

        Returns:
            Whether the initialisation ran now.
        """
        if bool(self.model.initialized):
            return False
        labelled = gt.has_body_pose
        if int(labelled.sum()) < MIN_POSES_FOR_ACTNORM_INIT:
            if not self._init_deferred_warned:
                logger.warning(
                    "fewer than %d images with a body_pose label in this batch: the flow's "
                    "ActNorm initialisation waits for a later batch",
                    MIN_POSES_FOR_ACTNORM_INIT,
                )
                self._init_deferred_warned = True
            return False
        pose_6d = gt.pose_6d[labelled]
        if self.actnorm_init_noise > 0.0:
            pose_6d = pose_6d + self.actnorm_init_noise * torch.randn_like(pose_6d)
        return self.model.initialize_flow({"pose_6d": pose_6d}, features.detach()[labelled])

    def loss_terms(self, output: ProHMROutput, gt: GroundTruth) -> dict[str, Tensor]:
        """The unweighted generator loss terms whose weight is not 0.

        Keys are the :class:`LossWeights` field names. Per-sample values come from
        :mod:`prohmr.losses`; "mode" terms sum sample 0 over the batch and divide by ``B``,
        "exp" terms sum samples ``1..N-1`` and divide by ``B (N - 1)``.

        Arguments:
            output: the model's predictions, ``(B, N, ...)``, sample 0 the mode.
            gt: the batch's labels.

        Returns:
            ``{term: scalar}``.
        """
        weights = self.loss_weights
        batch_size, num_samples = output.pose_6d.shape[:2]
        if num_samples < 2:
            raise ValueError(f"the output needs N >= 2 samples per image, got {num_samples}")
        per_sample: dict[str, Any] = {
            "keypoints_2d": lambda: keypoint_2d_loss(output.joints_2d, gt.keypoints_2d[:, None]),
            "keypoints_3d": lambda: keypoint_3d_loss(output.joints_3d, gt.keypoints_3d[:, None]),
            "global_orient": lambda: parameter_loss(
                output.global_orient, gt.global_orient[:, None], gt.has_global_orient[:, None], 3
            ),
            "body_pose": lambda: parameter_loss(
                output.body_pose, gt.body_pose[:, None], gt.has_body_pose[:, None], 3
            ),
            "betas": lambda: parameter_loss(
                output.betas, gt.betas[:, None], gt.has_betas[:, None], 1
            ),
        }
        terms: dict[str, Tensor] = {}
        for name, compute in per_sample.items():
            mode_weight = getattr(weights, f"{name}_mode")
            exp_weight = getattr(weights, f"{name}_exp")
            if mode_weight == 0.0 and exp_weight == 0.0:
                continue
            mode, expectation = _mode_and_expectation(compute())
            if mode_weight != 0.0:
                terms[f"{name}_mode"] = mode
            if exp_weight != 0.0:
                terms[f"{name}_exp"] = expectation
        if weights.orthonormal != 0.0:
            orthonormal = orthonormality_loss(output.pose_6d)
            terms["orthonormal"] = orthonormal[:, 0].mean() + orthonormal[:, 1:].mean()
        if weights.nll != 0.0:
            terms["nll"] = self._nll(output.features, gt)
        if self.uses_adversarial and self.discriminator is not None:
            scores = self.discriminator(
                output.body_pose.reshape(-1, NUM_BODY_JOINTS, 3, 3),
                output.betas.reshape(-1, NUM_BETAS),
            )
            terms["adversarial"] = generator_adversarial_loss(scores).sum() / batch_size
        return terms

    def _nll(self, features: Tensor, gt: GroundTruth) -> Tensor:
        """``-mean log p(GT 6D + noise | features)`` over images with a body_pose label."""
        labelled = gt.has_body_pose
        if not bool(labelled.any()) or not bool(self.model.initialized):
            return features.new_zeros((), dtype=torch.float32)
        pose_6d = gt.pose_6d[labelled]
        if self.pose_noise > 0.0:
            pose_6d = pose_6d + self.pose_noise * torch.randn_like(pose_6d)
        log_prob, _ = self.model.flow.log_prob({"pose_6d": pose_6d}, features[labelled])
        return -log_prob.mean()

    def weighted_total(self, terms: Mapping[str, Tensor]) -> Tensor:
        """``Σ weight[term] · value`` over the given terms (the generator loss)."""
        weights = asdict(self.loss_weights)
        return torch.stack([weights[name] * value.float() for name, value in terms.items()]).sum()

    def discriminator_loss(
        self, fake_body_pose: Tensor, fake_betas: Tensor, mocap: Mapping[str, Tensor]
    ) -> Tensor:
        """The unweighted LSGAN discriminator loss ``(Σ D_fake² + Σ (D_real − 1)²) / M``.

        Arguments:
            fake_body_pose: ``(M, 23, 3, 3)`` predicted body rotations (detached here).
            fake_betas: ``(M, 10)`` predicted shapes (detached here).
            mocap: ``body_pose (M', 72)`` axis-angle with the global orientation first
                (dropped: the discriminator sees the 23 body joints) and ``betas (M', 10)``.

        Returns:
            Scalar loss.
        """
        if self.discriminator is None:
            raise ValueError(
                "discriminator_loss: this module has no discriminator (adversarial is off)"
            )
        real_pose = mocap["body_pose"][:, 3:].reshape(-1, NUM_BODY_JOINTS, 3)
        fake_scores = self.discriminator(fake_body_pose.detach(), fake_betas.detach())
        real_scores = self.discriminator(axis_angle_to_matrix(real_pose), mocap["betas"])
        return discriminator_loss(fake_scores, real_scores)

    # ------------------------------------------------------------------------- training
    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> Tensor:
        """One generator step, then (with the adversarial prior) one discriminator step."""
        images = batch["img"]
        optimizers = self.optimizers()
        if not isinstance(optimizers, list):
            optimizers = [optimizers]
        gt = ground_truth_from_batch(images)
        batch_size = gt.keypoints_2d.shape[0]

        features = self.model.features(images["img"])
        self.initialize_flow(gt, features)
        output = self.model.predict_from_features(
            features, num_samples=self.num_samples, mode_first=True
        )
        terms = self.loss_terms(output, gt)
        loss = self.weighted_total(terms)
        if not bool(torch.isfinite(loss)):
            bad = sorted(name for name, value in terms.items() if not torch.isfinite(value))
            raise FloatingPointError(f"the generator loss is not finite (terms: {bad})")
        generator_optimizer = optimizers[0]
        generator_optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        generator_optimizer.step()

        logged = {f"train/{name}": value.detach() for name, value in terms.items()}
        if self.uses_adversarial:
            mocap = batch.get("mocap")
            if mocap is None:
                raise ValueError(
                    "adversarial training needs mocap batches: set data.mocap to a mocap "
                    ".npz, or model.adversarial to false"
                )
            loss_disc = self.loss_weights.adversarial * self.discriminator_loss(
                output.body_pose.reshape(-1, NUM_BODY_JOINTS, 3, 3),
                output.betas.reshape(-1, NUM_BETAS),
                mocap,
            )
            discriminator_optimizer = optimizers[1]
            discriminator_optimizer.zero_grad(set_to_none=True)
            self.manual_backward(loss_disc)
            discriminator_optimizer.step()
            logged["train/loss_discriminator"] = loss_disc.detach()
        self.log_dict(logged, batch_size=batch_size)
        self.log("train/loss", loss.detach(), prog_bar=True, batch_size=batch_size)
        return loss.detach()

    # ------------------------------------------------------------------------- evaluation
    def on_validation_epoch_start(self) -> None:
        self._eval_sums = {}

    def on_test_epoch_start(self) -> None:
        self._eval_sums = {}

    def _evaluate(self, batch: Mapping[str, Any], batch_idx: int, stage: str) -> None:
        images = batch["img"]
        output = self.model(images, num_samples=self.val_num_samples, mode_first=True)
        gt_3d = batch["keypoints_3d"]
        needed = list(EVAL_JOINTS_14) + [PELVIS_INDEX]
        valid = (gt_3d[:, needed, 3] > 0).all(dim=1)
        if batch_idx == 0 and self.num_logged_images > 0 and not self.trainer.sanity_checking:
            self._log_overlays(images, output, batch["keypoints_2d"], stage)
        if not bool(valid.any()):
            return
        pred = output.joints_3d[valid].float()
        target = gt_3d[valid, :, :3].float()
        sums = {
            "mode_mpjpe": mode_error(pred, target, "mpjpe", PROHMR_14).sum(),
            "mode_pa_mpjpe": mode_error(pred, target, "pa_mpjpe", PROHMR_14).sum(),
            "min_of_n_mpjpe": min_of_n(
                pred, target, (self.val_num_samples,), "mpjpe", PROHMR_14
            )[self.val_num_samples].sum(),
            "min_of_n_pa_mpjpe": min_of_n(
                pred, target, (self.val_num_samples,), "pa_mpjpe", PROHMR_14
            )[self.val_num_samples].sum(),
            "count": valid.sum().to(pred.dtype),
        }
        for name, value in sums.items():
            self._eval_sums[name] = self._eval_sums.get(name, 0.0) + value.detach()

    def _log_overlays(
        self, images: Tensor, output: ProHMROutput, gt_keypoints_2d: Tensor, stage: str
    ) -> None:
        """Send keypoint overlays to every logger whose experiment has ``add_image``."""
        if self.global_rank != 0:
            return
        writers = [
            logger_.experiment
            for logger_ in self.loggers
            if callable(getattr(getattr(logger_, "experiment", None), "add_image", None))
        ]
        if not writers:
            return
        count = self.num_logged_images
        grid = keypoint_overlays(
            images[:count], output.joints_2d[:count], gt_keypoints_2d[:count]
        )
        for writer in writers:
            writer.add_image(f"{stage}/samples", grid, self.global_step, dataformats="HWC")

    def _log_eval_metrics(self, stage: str) -> None:
        names = ("mode_mpjpe", "mode_pa_mpjpe", "min_of_n_mpjpe", "min_of_n_pa_mpjpe", "count")
        sums = torch.stack(
            [
                torch.as_tensor(
                    self._eval_sums.get(name, 0.0), device=self.device, dtype=torch.float64
                )
                for name in names
            ]
        )
        sums = self.trainer.strategy.reduce(sums, reduce_op="sum") if self._trainer else sums
        count = float(sums[-1])
        if count == 0:
            logger.warning(
                "%s: no image has 3D keypoints for the 14 evaluation joints and the pelvis; "
                "the metrics are NaN", stage,
            )
        for name, total in zip(names[:-1], sums[:-1]):
            value = float(total) / count if count > 0 else float("nan")
            self.log(f"{stage}/{name}", value, prog_bar=name == "mode_mpjpe", sync_dist=False)
        self._eval_sums = {}

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        """Accumulate mode and min-of-n (N = ``val_num_samples``) MPJPE / PA-MPJPE in mm."""
        self._evaluate(batch, batch_idx, "val")

    def on_validation_epoch_end(self) -> None:
        """Log ``val/mode_mpjpe``, ``val/mode_pa_mpjpe``, ``val/min_of_n_mpjpe``,
        ``val/min_of_n_pa_mpjpe`` (14 joints, pelvis 39, millimetres)."""
        self._log_eval_metrics("val")

    def test_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        """As :meth:`validation_step`, logged under ``test/``."""
        self._evaluate(batch, batch_idx, "test")

    def on_test_epoch_end(self) -> None:
        self._log_eval_metrics("test")

    def predict_step(self, batch: Mapping[str, Any], batch_idx: int) -> dict[str, Any]:
        """The mode prediction per image: SMPL parameters, camera and 3D joints."""
        output = self.model.mode(batch["img"])
        return {
            "imgname": batch.get("imgname"),
            "global_orient": output.global_orient[:, 0],
            "body_pose": output.body_pose[:, 0],
            "betas": output.betas[:, 0],
            "camera_translation": output.camera_translation[:, 0],
            "joints_3d": output.joints_3d[:, 0],
        }

    # ------------------------------------------------------------------------- export
    def export_model(self, path: str | Path) -> Path:
        """Save the trained :class:`ProHMR` (config + weights) for
        :func:`prohmr.models.loading.load_model`; returns the path written."""
        return save_model(self.model, path)
