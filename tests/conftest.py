"""Shared fixtures: numeric tests run on every device and floating dtype.

CUDA cases are collected everywhere and skipped when no GPU is present.
"""

from __future__ import annotations

import pytest
import torch

_NO_CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=[pytest.mark.gpu, _NO_CUDA])])
def device(request: pytest.FixtureRequest) -> torch.device:
    """The device a test runs on."""
    return torch.device(request.param)


@pytest.fixture(params=[torch.float32, torch.float64], ids=["float32", "float64"])
def dtype(request: pytest.FixtureRequest) -> torch.dtype:
    """The floating dtype a test runs in."""
    return request.param
