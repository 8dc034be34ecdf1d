"""The shipped models: they load by name, offline, and reproduce the numbers in their files.

Each file stores a small held-out check set's recipe and the model's numbers on it
(:mod:`lightning_modules.model_checks`); these tests rebuild the set from ``../shared/data``
and recompute them. The model cards (``prohmr/pretrained/<name>.md``) hold the full
held-out metrics.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import prohmr
from lightning_modules.export_prohmr import check_subset
from lightning_modules.model_checks import (
    build_mocap_check,
    pose_prior_check,
    proskeleton_check,
)
from prohmr.models.loading import PRETRAINED_MODELS
from prohmr.models.pose_prior import PosePrior
from prohmr.models.prohmr import ProHMR
from prohmr.models.proskeleton import ProSkeleton

DATA_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data"
#: Tolerances: the checks are deterministic on one machine; other CPUs may round differently.
MM_TOLERANCE = 0.5
NLL_TOLERANCE = 0.05
#: What a fresh install may weigh in shipped weights.
MAX_TOTAL_MB = 40


@pytest.fixture(autouse=True)
def _single_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _stored_check(name: str) -> dict:
    content = torch.load(PRETRAINED_MODELS[name], map_location="cpu", weights_only=True)
    return content["metadata"]["check_subset"]


def test_every_shipped_model_has_weights_a_card_and_its_type() -> None:
    expected = {"prohmr_synthetic": ProHMR, "pose_prior": PosePrior, "proskeleton": ProSkeleton}
    assert set(PRETRAINED_MODELS) == set(expected)
    total = 0
    for name, path in PRETRAINED_MODELS.items():
        assert path.is_file(), f"shipped weights missing: {path}"
        total += path.stat().st_size
        card = path.with_suffix(".md").read_text(encoding="utf-8")
        assert "prohmr-train fit --config configs/" in card
        assert "CC BY-SA 3.0" in card and "Müller" in card
        model = prohmr.load_model(name)
        assert isinstance(model, expected[name]) and not model.training
    assert total / 2**20 < MAX_TOTAL_MB


@pytest.fixture(scope="module")
def mocap_check(tmp_path_factory) -> Path:
    if not DATA_ROOT.is_dir():
        pytest.skip(f"open data folder {DATA_ROOT} not found")
    return build_mocap_check(tmp_path_factory.mktemp("check"), DATA_ROOT)


def test_pose_prior_reproduces_its_check(mocap_check: Path) -> None:
    stored = _stored_check("pose_prior")
    measured = pose_prior_check(prohmr.load_model("pose_prior"), mocap_check)
    assert measured["nll_per_pose"] == pytest.approx(
        stored["metrics"]["nll_per_pose"], abs=NLL_TOLERANCE
    )


def test_proskeleton_reproduces_its_check(mocap_check: Path) -> None:
    stored = _stored_check("proskeleton")
    measured = proskeleton_check(prohmr.load_model("proskeleton"), mocap_check)
    for metric, value in stored["metrics"].items():
        assert measured[metric] == pytest.approx(value, abs=MM_TOLERANCE), metric


def test_prohmr_synthetic_reproduces_its_check() -> None:
    if not DATA_ROOT.is_dir():
        pytest.skip(f"open data folder {DATA_ROOT} not found")
    stored = _stored_check("prohmr_synthetic")
    measured = check_subset(prohmr.load_model("prohmr_synthetic"), DATA_ROOT, stored["recipe"])
    for metric, value in stored["metrics"].items():
        assert measured[metric] == pytest.approx(value, abs=MM_TOLERANCE), metric
