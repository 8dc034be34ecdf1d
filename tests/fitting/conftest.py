"""Small ProHMR models with a meaningful prior, synthetic people and a tiny trained pose prior.

Without trained weights the flow's ActNorm layers are data-initialised on plausible poses
(so that ``z = 0`` decodes to an average pose and ``‖z‖`` measures distance from it), and the
coupling nets' final layers are scaled up so that the image features change the prior.
"""

from __future__ import annotations

import copy
from typing import Callable, Iterator

import pytest
import torch

from prohmr.body.model import BodyModel, create_body_model
from prohmr.constants import NUM_BETAS, POSE_6D_DIM
from prohmr.flows import ConditionalGlow
from prohmr.geometry import axis_angle_to_matrix, matrix_to_rot6d
from prohmr.models.config import ProHMRConfig
from prohmr.models.prohmr import ProHMR

#: Axis-angle std (radians) of the body joints of the synthetic pose distribution.
POSE_STD = 0.3
#: Mean body pose of the synthetic distribution: knees and elbows slightly bent.
_BENT_JOINTS = {4: (0.4, 0.0, 0.0), 5: (0.4, 0.0, 0.0), 18: (0.0, -0.5, 0.0), 19: (0.0, 0.5, 0.0)}
_FACING_CAMERA = torch.tensor([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]])


@pytest.fixture(autouse=True)
def _single_thread() -> Iterator[None]:
    """These tests run many small ops; one thread avoids oversubscribing a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def mean_axis_angle(dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``(23, 3)`` mean body pose of :func:`plausible_poses`, axis-angle."""
    mean = torch.zeros(23, 3, dtype=dtype)
    for joint, value in _BENT_JOINTS.items():
        mean[joint - 1] = torch.tensor(value, dtype=dtype)
    return mean


def plausible_poses(
    count: int, generator: torch.Generator, dtype: torch.dtype = torch.float64, scale: float = 1.0
) -> torch.Tensor:
    """``(count, 24, 3, 3)`` poses: upright, roughly facing the camera, body joints around
    :func:`mean_axis_angle` with std ``POSE_STD * scale``."""
    body = mean_axis_angle() + scale * POSE_STD * torch.randn(count, 23, 3, generator=generator,
                                                              dtype=torch.float64)
    tilt = axis_angle_to_matrix(0.15 * torch.randn(count, 3, generator=generator, dtype=torch.float64))
    global_orient = tilt @ _FACING_CAMERA.to(torch.float64)
    rotations = torch.cat([global_orient[:, None], axis_angle_to_matrix(body)], dim=1)
    return rotations.to(dtype)


_BASE_BODY: dict[str, BodyModel] = {}
_BASE_MODELS: dict[tuple, ProHMR] = {}


def _body_model(dtype: torch.dtype) -> BodyModel:
    if "body" not in _BASE_BODY:
        _BASE_BODY["body"] = create_body_model()
    return copy.deepcopy(_BASE_BODY["body"]).to(dtype)


def _build_model(dtype: torch.dtype, seed: int, hidden: int, layers: int) -> ProHMR:
    key = (dtype, seed, hidden, layers)
    if key not in _BASE_MODELS:
        torch.manual_seed(seed)
        config = ProHMRConfig(
            backbone="resnet18", flow_hidden_features=hidden, flow_num_layers=layers,
            flow_num_blocks_per_layer=1, head_hidden_features=32,
        )
        means = {"shape": torch.zeros(NUM_BETAS), "cam": torch.tensor([0.9, 0.0, 0.0])}
        model = ProHMR(config, body_model=_body_model(torch.float32), mean_params=means)
        generator = torch.Generator().manual_seed(seed)
        poses = plausible_poses(256, generator, torch.float32)
        features = torch.randn(256, model.flow.context_features, generator=generator)
        model.train()
        model.initialize_flow({"global_orient": poses[:, :1], "body_pose": poses[:, 1:]}, features)
        with torch.no_grad():
            for net in model.flow.flow.coupling_nets():
                net.final_layer.weight.normal_(0.0, 0.3 / hidden**0.5, generator=generator)
        _BASE_MODELS[key] = model.eval().to(dtype)
    return copy.deepcopy(_BASE_MODELS[key])


@pytest.fixture
def make_model() -> Callable[..., ProHMR]:
    """``make_model(dtype=torch.float32, seed=0, hidden=32, layers=2)``: a fresh eval-mode
    ProHMR (resnet18) whose prior is centred on :func:`plausible_poses`."""

    def build(
        dtype: torch.dtype = torch.float32, seed: int = 0, hidden: int = 32, layers: int = 2
    ) -> ProHMR:
        return _build_model(dtype, seed, hidden, layers)

    return build


@pytest.fixture
def make_body_model() -> Callable[[torch.dtype], BodyModel]:
    """``make_body_model(dtype)``: a fresh copy of the default body model."""
    return _body_model


@pytest.fixture
def poses() -> Callable[..., torch.Tensor]:
    """The :func:`plausible_poses` helper."""
    return plausible_poses


@pytest.fixture
def pose_mean() -> Callable[..., torch.Tensor]:
    """The :func:`mean_axis_angle` helper."""
    return mean_axis_angle


_TRAINED_PRIORS: dict[str, ConditionalGlow] = {}


def _trained_prior() -> ConditionalGlow:
    if "prior" not in _TRAINED_PRIORS:
        torch.manual_seed(0)
        generator = torch.Generator().manual_seed(1)
        prior = ConditionalGlow(
            features=POSE_6D_DIM, hidden_features=64, num_layers=2, num_blocks_per_layer=1,
            context_features=0, dropout_probability=0.0, batch_norm=False,
        ).to(torch.float64)

        def batch(count: int) -> torch.Tensor:
            return matrix_to_rot6d(plausible_poses(count, generator)).flatten(1)

        prior.train()
        prior.log_prob(batch(512))
        optimizer = torch.optim.Adam(prior.parameters(), lr=3e-3)
        for _ in range(150):
            loss = -prior.log_prob(batch(128))[0].mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        _TRAINED_PRIORS["prior"] = prior.eval()
    return copy.deepcopy(_TRAINED_PRIORS["prior"])


@pytest.fixture
def trained_prior() -> ConditionalGlow:
    """A tiny unconditional prior fitted (a few seconds) to :func:`plausible_poses` (float64)."""
    return _trained_prior()
