"""ProHMR: a distribution over 3D human meshes for an image crop (SPEC §4.1).

:class:`ProHMR` chains a ResNet backbone (image → features), the :class:`SMPLFlow` (features →
pose samples, betas, camera) and a body model (parameters → mesh and 44 joints), and projects
the joints into the crop. It is a plain ``nn.Module``: training lives in
``lightning_modules``, checkpoints in :mod:`prohmr.models.loading`.

Its state dict has exactly the keys of an official ProHMR checkpoint minus the discriminator:
``initialized``, ``backbone.*``, ``flow.flow.*`` and ``flow.fc_head.*``. The body model is a
submodule whose arrays are non-persistent buffers, so it follows ``.to(...)`` but never
enters a state dict: no licence-gated SMPL data ends up in saved files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

import torch
from torch import nn

from prohmr._utils import DictLikeOutput, autocast_disabled
from prohmr.body.model import BodyModel, create_body_model, load_mean_params
from prohmr.constants import POSE_6D_DIM
from prohmr.geometry import perspective_projection, weak_perspective_to_translation
from prohmr.models.backbones import create_backbone
from prohmr.models.config import ProHMRConfig
from prohmr.models.smpl_flow import SMPLFlow, SMPLFlowOutput

__all__ = ["ProHMR", "ProHMROutput"]


@dataclass(eq=False)
class ProHMROutput(DictLikeOutput):
    """What :class:`ProHMR` returns; also readable like a dict (``out["vertices"]``).

    ``B`` images, ``N`` samples per image, ``V`` vertices, ``C`` feature size. Betas and
    camera are **per image**: all samples of an image share them (broadcast views along
    ``N``; clone before editing in place). Poses, meshes and joints differ per sample.

    *Fields*
        global_orient: ``(B, N, 1, 3, 3)`` root rotation.
        body_pose: ``(B, N, 23, 3, 3)`` rotations of SMPL joints 1..23.
        betas: ``(B, N, 10)`` shape coefficients.
        cam: ``(B, N, 3)`` weak-perspective camera ``(s, tx, ty)`` of the crop.
        camera_translation: ``(B, N, 3)`` ``(tx, ty, 2 f / (image_size s + 1e-9))``, metres:
            the body's translation in the camera frame (focal ``f``, principal point at the
            crop centre).
        log_prob: ``(B, N)`` log-density of each pose sample under the flow.
        z: ``(B, N, 144)`` latents of the samples (zeros for the mode).
        pose_6d: ``(B, N, 144)`` raw 6D output of the flow (ProHMR layout).
        vertices: ``(B, N, V, 3)`` mesh in metres, root at the body model's origin (add
            ``camera_translation[..., None, :]`` for camera coordinates).
        joints_3d: ``(B, N, 44, 3)`` ProHMR's joints, same frame as ``vertices``.
        joints_2d: ``(B, N, 44, 2)`` joints projected into the crop, normalised crop
            coordinates ``px / image_size - 0.5`` (focal ``f / image_size``, principal
            point 0).
        features: ``(B, C)`` the backbone features that conditioned the flow.
    """

    global_orient: torch.Tensor
    body_pose: torch.Tensor
    betas: torch.Tensor
    cam: torch.Tensor
    camera_translation: torch.Tensor
    log_prob: torch.Tensor
    z: torch.Tensor
    pose_6d: torch.Tensor
    vertices: torch.Tensor
    joints_3d: torch.Tensor
    joints_2d: torch.Tensor
    features: torch.Tensor


def _mean_params_source(config: ProHMRConfig, body_model: Optional[BodyModel]) -> Optional[str]:
    """Where to read the mean parameters: the configured file, else beside the body model."""
    if config.mean_params_path is not None:
        return config.mean_params_path
    if body_model is not None:
        return str(Path(body_model.model_file).parent)
    if config.body_model_path is None:
        return None
    body_path = Path(config.body_model_path).expanduser()
    return str(body_path if body_path.is_dir() else body_path.parent)


class ProHMR(nn.Module):
    """Probabilistic human mesh recovery from an image crop.

    *Arguments*
        config: the architecture; default :class:`ProHMRConfig` (the original ProHMR).
        body_model: a ready :class:`~prohmr.body.model.BodyModel`; default: built from
            ``config.body_model_path`` (``$PROHMR_SMPL_DIR`` or the procedural default when
            None).
        mean_params: dict with ``shape`` (10) and ``cam`` (3), the head's starting values;
            default: read from ``config.mean_params_path``, else from
            ``smpl_mean_params.npz`` beside the body model's file.

    *Attributes*
        config, backbone (:class:`~prohmr.models.ResNet`), flow (:class:`SMPLFlow`),
        body_model, and the buffer ``initialized`` (whether the flow's ActNorm layers were
        data-initialised, see :meth:`initialize_flow`).

    Nothing is downloaded at construction; ImageNet weights are read only from
    ``config.backbone_weights_path``. Any image size works (the backbone mean-pools), but the
    camera refers to a ``config.image_size`` crop. Under ``torch.autocast`` only the backbone
    runs in reduced precision; the flow, the head, the body model and the projection run in
    the model's dtype (float32 unless converted).

    *Example*
        >>> from prohmr.models.config import ProHMRConfig
        >>> _ = torch.manual_seed(0)
        >>> config = ProHMRConfig(backbone="resnet18", flow_hidden_features=32,
        ...                       flow_num_layers=2, head_hidden_features=32)
        >>> model = ProHMR(config).eval()
        >>> images = torch.randn(2, 3, 64, 64)
        >>> with torch.no_grad():
        ...     out = model(images, num_samples=3)
        >>> tuple(out.vertices.shape), tuple(out.joints_2d.shape), tuple(out.log_prob.shape)
        ((2, 3, 6890, 3), (2, 3, 44, 2), (2, 3))
    """

    def __init__(
        self,
        config: Optional[ProHMRConfig] = None,
        *,
        body_model: Optional[BodyModel] = None,
        mean_params: Optional[Mapping[str, Any]] = None,
    ) -> None:
        super().__init__()
        config = ProHMRConfig() if config is None else config
        if not isinstance(config, ProHMRConfig):
            raise ValueError(
                f"ProHMR: `config` must be a ProHMRConfig, got {type(config).__name__}"
            )
        if body_model is not None and not isinstance(body_model, BodyModel):
            raise ValueError(
                f"ProHMR: `body_model` must be a BodyModel, got {type(body_model).__name__}"
            )
        self.config = config
        if mean_params is None:
            mean_params = load_mean_params(_mean_params_source(config, body_model))
        stages = {} if config.backbone_num_stages is None else {
            "num_stages": config.backbone_num_stages
        }
        self.backbone = create_backbone(config.backbone, config.backbone_weights_path, **stages)
        self.flow = SMPLFlow.create(
            self.backbone.out_features,
            mean_params,
            hidden_features=config.flow_hidden_features,
            num_layers=config.flow_num_layers,
            num_blocks_per_layer=config.flow_num_blocks_per_layer,
            dropout_probability=config.flow_dropout_probability,
            batch_norm=config.flow_batch_norm,
            head_hidden_features=config.head_hidden_features,
        )
        self.body_model = (
            create_body_model(config.body_model_path) if body_model is None else body_model
        )
        # Persistent, as in the original LightningModule: checkpoints record whether the
        # ActNorm layers were initialised from data.
        self.register_buffer("initialized", torch.tensor(False))

    # ------------------------------------------------------------------------------- inputs
    @staticmethod
    def _check_images(images: Any, function: str) -> torch.Tensor:
        if not isinstance(images, torch.Tensor) or not images.is_floating_point():
            raise ValueError(
                f"ProHMR.{function}: `images` must be a floating tensor of shape (B, 3, H, W), "
                f"got {images.dtype if isinstance(images, torch.Tensor) else type(images).__name__}"
            )
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(
                f"ProHMR.{function}: `images` must have shape (B, 3, H, W), "
                f"got {tuple(images.shape)}"
            )
        if not torch.isfinite(images).all():
            raise ValueError(f"ProHMR.{function}: `images` contains NaN or infinite values")
        return images

    # ---------------------------------------------------------------------------- public API
    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Backbone features: the flow's conditioning.

        *Arguments*
            images: ``(B, 3, H, W)`` crops normalised with the ImageNet mean and std.

        *Returns*
            ``(B, C)`` (C = 2048 for ResNet-50), in the backbone's (autocast) dtype.
        """
        return self.backbone(self._check_images(images, "features"))

    def forward(
        self,
        images: torch.Tensor,
        num_samples: Optional[int] = None,
        z: Optional[torch.Tensor] = None,
        mode_first: bool = False,
        *,
        generator: Optional[torch.Generator] = None,
    ) -> ProHMROutput:
        """Sample ``N`` meshes per image.

        *Arguments*
            images: ``(B, 3, H, W)`` normalised crops.
            num_samples: ``N``; default 1, or ``z.shape[1]`` when ``z`` is given.
            z: ``(B, N, 144)`` latents to use instead of random ones (zeros = the mode).
            mode_first: sample 0 is the mode and the others are random (as in training).
            generator: random generator for the latents.

        *Returns*
            :class:`ProHMROutput`.
        """
        features = self.features(images)
        return self.predict_from_features(
            features, num_samples, z, mode_first=mode_first, generator=generator
        )

    def predict_from_features(
        self,
        features: torch.Tensor,
        num_samples: Optional[int] = None,
        z: Optional[torch.Tensor] = None,
        *,
        mode_first: bool = False,
        generator: Optional[torch.Generator] = None,
    ) -> ProHMROutput:
        """Everything after the backbone: :meth:`forward` for precomputed features.

        *Arguments*
            features: ``(B, C)`` from :meth:`features`.
            num_samples, z, mode_first, generator: as in :meth:`forward`.

        *Returns*
            :class:`ProHMROutput`; its ``features`` are the input cast to the model's dtype.
        """
        params = self.flow(
            features, num_samples, z, mode_first=mode_first, generator=generator
        )
        with autocast_disabled(params.pose_6d.device):
            return self._complete(params, features.to(params.pose_6d.dtype))

    def _complete(self, params: SMPLFlowOutput, features: torch.Tensor) -> ProHMROutput:
        """Mesh, joints, camera translation and 2D joints for the flow's parameters."""
        config = self.config
        body = self.body_model(params.global_orient, params.body_pose, params.betas)
        camera_translation = weak_perspective_to_translation(
            params.cam, focal_length=config.focal_length, image_size=config.image_size
        )
        joints_2d = perspective_projection(
            body.joints, camera_translation, focal_length=config.focal_length / config.image_size
        )
        return ProHMROutput(
            global_orient=params.global_orient,
            body_pose=params.body_pose,
            betas=params.betas,
            cam=params.cam,
            camera_translation=camera_translation,
            log_prob=params.log_prob,
            z=params.z,
            pose_6d=params.pose_6d,
            vertices=body.vertices,
            joints_3d=body.joints,
            joints_2d=joints_2d,
            features=features,
        )

    def sample(
        self,
        images: torch.Tensor,
        num_samples: int,
        *,
        generator: Optional[torch.Generator] = None,
    ) -> ProHMROutput:
        """``N`` random meshes per image (``forward`` with random latents)."""
        return self(images, num_samples, generator=generator)

    def mode(self, images: torch.Tensor) -> ProHMROutput:
        """The most likely mesh per image: the sample at ``z = 0`` (``N = 1``)."""
        features = self.features(images)
        z = torch.zeros(
            (features.shape[0], 1, POSE_6D_DIM),
            dtype=self.flow.flow.dtype,
            device=features.device,
        )
        return self.predict_from_features(features, z=z)

    def log_prob(
        self, images: torch.Tensor, smpl_params: Mapping[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-density of poses given the images, and their latents (see
        :meth:`SMPLFlow.log_prob` for the accepted keys: ``pose_6d``, or ``global_orient``
        and ``body_pose`` rotation matrices; a :class:`ProHMROutput` works as is).

        *Arguments*
            images: ``(B, 3, H, W)`` normalised crops.
            smpl_params: poses of shape ``(B, ...)`` or ``(B, N, ...)``.

        *Returns*
            ``log_prob`` ``(B,)`` or ``(B, N)`` and ``z`` ``(B, [N,] 144)``.
        """
        return self.flow.log_prob(smpl_params, self.features(images))

    @torch.no_grad()
    def initialize_flow(
        self, smpl_params: Mapping[str, torch.Tensor], features: torch.Tensor
    ) -> bool:
        """Data-initialise the flow's ActNorm layers from ground-truth poses, once (SPEC §3).

        Runs :meth:`SMPLFlow.log_prob` in training mode without gradients and sets
        ``initialized``; later calls do nothing. Needs at least 2 poses.

        *Arguments*
            smpl_params: ground-truth poses (see :meth:`SMPLFlow.log_prob`).
            features: ``(B, C)`` their images' features.

        *Returns*
            Whether the initialisation ran.
        """
        if bool(self.initialized):
            return False
        if not self.flow.training:
            raise ValueError(
                "ProHMR.initialize_flow: the flow is in eval mode; ActNorm initialises from "
                "data only in training mode (call model.train() first)"
            )
        self.flow.log_prob(smpl_params, features)
        self.initialized.fill_(True)
        return True
