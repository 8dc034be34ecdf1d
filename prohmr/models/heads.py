"""ProHMR's FCHead: SMPL shape and weak-perspective camera from image features (SPEC §4.1).

The flow models the pose distribution; shape and camera are deterministic per image. The
head predicts offsets from the mean parameters (``shape`` and ``cam`` of the mean-params file)
and gives every pose sample of an image the same values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from prohmr.constants import NUM_BETAS

__all__ = ["FCHead", "FCHeadOutput"]

#: Weak-perspective camera parameters (scale, tx, ty).
_CAMERA_DIM = 3
#: Xavier gain of the output layer: small, so that training starts near the mean parameters.
_OUTPUT_INIT_GAIN = 0.02

ArrayLike = torch.Tensor | np.ndarray | Sequence[float]


class FCHeadOutput(NamedTuple):
    """Predictions of :class:`FCHead`, one copy per pose sample.

    *Fields*
        betas: ``(..., N, 10)`` SMPL shape coefficients.
        cam: ``(..., N, 3)`` weak-perspective camera (scale, tx, ty).
    """

    betas: torch.Tensor
    cam: torch.Tensor


def _mean_buffer(value: ArrayLike, size: int, name: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        tensor = value
    else:
        tensor = torch.as_tensor(np.asarray(value, dtype=np.float64))
    if tensor.numel() != size:
        raise ValueError(f"{name} must have {size} elements, got shape {tuple(tensor.shape)}")
    return tensor.detach().to(device="cpu", dtype=torch.float32).reshape(1, 1, size).clone()


class FCHead(nn.Module):
    """``Linear(C → hidden) → ReLU → Linear(hidden → 13)``: offsets for betas and camera.

    Betas and camera are **per image**: they depend only on the image features, and all
    ``num_samples`` pose samples of an image get the same values (``init + offset``).

    Initialisation: the first layer keeps PyTorch's default; the output layer's weight is
    Xavier-uniform with gain 0.02 and its bias is zero, so an untrained head predicts the
    mean parameters up to a small feature-dependent term. (The original left that bias at
    PyTorch's default, U(±1/√hidden); this only changes the starting point, not the
    checkpoint layout.)

    State-dict keys, as in the official checkpoint (``flow.fc_head.*``): ``layers.0.*``,
    ``layers.2.*``, buffers ``init_betas (1, 1, 10)`` and ``init_cam (1, 1, 3)``.

    *Arguments*
        mean_betas: 10 mean shape coefficients (``shape`` of the mean-params file); any
            shape with 10 elements (tensor, array or sequence).
        mean_cam: 3 mean camera parameters (``cam`` of the mean-params file).
        in_features: size C of the image features (2048 for ResNet-50).
        hidden_features: width of the hidden layer.

    *Example*
        >>> head = FCHead(torch.zeros(10), torch.tensor([0.9, 0.0, 0.0]), in_features=8)
        >>> out = head(torch.randn(2, 8), num_samples=4)
        >>> out.betas.shape, out.cam.shape
        (torch.Size([2, 4, 10]), torch.Size([2, 4, 3]))
        >>> bool((out.cam[:, 0] == out.cam[:, 3]).all())
        True
    """

    def __init__(
        self,
        mean_betas: ArrayLike,
        mean_cam: ArrayLike,
        in_features: int = 2048,
        hidden_features: int = 1024,
    ) -> None:
        super().__init__()
        if in_features < 1 or hidden_features < 1:
            raise ValueError(
                f"in_features and hidden_features must be >= 1, got {in_features}, "
                f"{hidden_features}"
            )
        self.in_features = in_features
        self.layers = nn.Sequential(
            nn.Linear(in_features, hidden_features),
            nn.ReLU(),
            nn.Linear(hidden_features, NUM_BETAS + _CAMERA_DIM),
        )
        nn.init.xavier_uniform_(self.layers[2].weight, gain=_OUTPUT_INIT_GAIN)
        nn.init.zeros_(self.layers[2].bias)
        self.register_buffer("init_cam", _mean_buffer(mean_cam, _CAMERA_DIM, "mean_cam"))
        self.register_buffer("init_betas", _mean_buffer(mean_betas, NUM_BETAS, "mean_betas"))

    @classmethod
    def from_mean_params(cls, mean_params: Mapping[str, ArrayLike], **kwargs: int) -> FCHead:
        """Build the head from a mean-params dict with keys ``shape`` and ``cam``.

        *Arguments*
            mean_params: e.g. the dict of ``prohmr.body.model.load_mean_params()``.
            kwargs: ``in_features``, ``hidden_features``.
        """
        missing = {"shape", "cam"} - set(mean_params)
        if missing:
            raise ValueError(f"mean_params lacks the key(s) {sorted(missing)}")
        return cls(mean_params["shape"], mean_params["cam"], **kwargs)

    def forward(self, features: torch.Tensor, num_samples: int = 1) -> FCHeadOutput:
        """Predict betas and camera and repeat them for every sample.

        *Arguments*
            features: ``(..., C)`` image features (at least one leading dim).
            num_samples: N, the number of pose samples per image.

        *Returns*
            :class:`FCHeadOutput` with ``betas (..., N, 10)`` and ``cam (..., N, 3)``. The
            sample dimension is a broadcast view (stride 0): clone before editing in place.
        """
        if features.ndim < 2 or features.shape[-1] != self.in_features:
            raise ValueError(
                f"features must have shape (B, {self.in_features}), got {tuple(features.shape)}"
            )
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        offsets = self.layers(features).unsqueeze(-2)
        betas = self.init_betas + offsets[..., :NUM_BETAS]
        cam = self.init_cam + offsets[..., NUM_BETAS:]
        sample_shape = (*features.shape[:-1], num_samples)
        return FCHeadOutput(
            betas=betas.expand(*sample_shape, NUM_BETAS),
            cam=cam.expand(*sample_shape, _CAMERA_DIM),
        )
