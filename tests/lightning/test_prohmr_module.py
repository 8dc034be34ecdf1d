"""ProHMRModule: the loss bookkeeping of SPEC §4.2, ActNorm initialisation and the two steps."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from scipy.spatial.transform import Rotation

from lightning_modules.datamodule import ImageDatasetSpec, ProHMRDataModule
from lightning_modules.prohmr_module import (
    LossWeights,
    ProHMRModule,
    ground_truth_from_batch,
    keypoint_overlays,
)
from prohmr.flows import ACTNORM_MIN_STD, ActNorm
from prohmr.losses import (
    generator_adversarial_loss,
    keypoint_2d_loss,
    keypoint_3d_loss,
    orthonormality_loss,
    parameter_loss,
)
from prohmr.models.prohmr import ProHMROutput

TINY: dict[str, Any] = {
    "backbone": "resnet18",
    "flow_hidden_features": 16,
    "flow_num_layers": 2,
    "flow_num_blocks_per_layer": 1,
    "head_hidden_features": 16,
}
B, N = 3, 3  # N = 3 so that B (N - 1) differs from B N and from B


def test_fewer_than_two_samples_is_refused() -> None:
    with pytest.raises(ValueError, match="num_samples must be an integer >= 2"):
        ProHMRModule(TINY, num_samples=1)


def test_negative_loss_weight_is_refused() -> None:
    with pytest.raises(ValueError, match="LossWeights.nll"):
        LossWeights(nll=-1.0)


def _pose_6d_reference(axis_angle: np.ndarray) -> np.ndarray:
    """(B, 72) axis-angle -> (B, 144): first two columns of each matrix, column-major."""
    matrices = Rotation.from_rotvec(axis_angle.reshape(-1, 3)).as_matrix()
    columns = np.concatenate([matrices[:, :, 0], matrices[:, :, 1]], axis=-1)
    return columns.reshape(axis_angle.shape[0], -1)


@pytest.fixture(scope="module")
def module() -> ProHMRModule:
    torch.manual_seed(0)
    return ProHMRModule(TINY, num_samples=N, pose_noise=0.0).eval()


@pytest.fixture(scope="module")
def handmade(module: ProHMRModule) -> tuple[dict[str, Any], ProHMROutput]:
    """A batch with partial labels and a hand-made output whose samples all differ."""
    generator = torch.Generator().manual_seed(1)

    def rand(*shape: int, scale: float = 1.0) -> torch.Tensor:
        return scale * torch.randn(*shape, generator=generator, dtype=torch.float64).float()

    axis_angle = rand(B, 72, scale=0.5)
    confidence = (torch.rand(B, 44, 1, generator=generator) > 0.3).float()
    batch = {
        "img": torch.zeros(B, 3, 8, 8),
        "keypoints_2d": torch.cat([rand(B, 44, 2, scale=0.3), confidence], dim=-1),
        "keypoints_3d": torch.cat([rand(B, 44, 3, scale=0.3), confidence], dim=-1),
        "smpl_params": {
            "global_orient": axis_angle[:, :3],
            "body_pose": axis_angle[:, 3:],
            "betas": rand(B, 10),
        },
        "has_smpl_params": {
            "global_orient": torch.tensor([True, False, True]),
            "body_pose": torch.tensor([True, False, True]),
            "betas": torch.tensor([False, True, True]),
        },
        "smpl_params_is_axis_angle": {
            "global_orient": torch.ones(B, dtype=torch.bool),
            "body_pose": torch.ones(B, dtype=torch.bool),
            "betas": torch.zeros(B, dtype=torch.bool),
        },
    }
    rotations = torch.from_numpy(
        Rotation.from_rotvec(rand(B * N * 24, 3, scale=0.8).numpy()).as_matrix()
    ).float().reshape(B, N, 24, 3, 3)
    output = ProHMROutput(
        global_orient=rotations[:, :, :1],
        body_pose=rotations[:, :, 1:],
        betas=rand(B, N, 10),
        cam=rand(B, N, 3),
        camera_translation=rand(B, N, 3),
        log_prob=rand(B, N),
        z=rand(B, N, 144),
        pose_6d=rand(B, N, 144),
        vertices=torch.zeros(B, N, 1, 3),
        joints_3d=rand(B, N, 44, 3, scale=0.3),
        joints_2d=rand(B, N, 44, 2, scale=0.3),
        features=rand(B, module.model.backbone.out_features),
    )
    # The NLL needs an initialised flow; initialise it from unrelated poses.
    module.model.train()
    module.model.initialize_flow({"pose_6d": rand(8, 144)}, rand(8, output.features.shape[1]))
    module.model.eval()
    return batch, output


def _reference_terms(
    module: ProHMRModule, batch: dict[str, Any], output: ProHMROutput
) -> dict[str, float]:
    """Every term by brute-force loops over images and samples."""
    has = batch["has_smpl_params"]
    gt_rot = torch.from_numpy(
        Rotation.from_rotvec(
            torch.cat([batch["smpl_params"]["global_orient"], batch["smpl_params"]["body_pose"]], 1)
            .reshape(-1, 3).numpy()
        ).as_matrix()
    ).float().reshape(B, 24, 3, 3)
    per_item: dict[str, list[list[float]]] = {name: [] for name in (
        "keypoints_2d", "keypoints_3d", "global_orient", "body_pose", "betas"
    )}
    for b in range(B):
        rows: dict[str, list[float]] = {name: [] for name in per_item}
        for n in range(N):
            rows["keypoints_2d"].append(
                float(keypoint_2d_loss(output.joints_2d[b, n], batch["keypoints_2d"][b]))
            )
            rows["keypoints_3d"].append(
                float(keypoint_3d_loss(output.joints_3d[b, n], batch["keypoints_3d"][b]))
            )
            root_error = ((output.global_orient[b, n, 0] - gt_rot[b, 0]) ** 2).sum()
            body_error = ((output.body_pose[b, n] - gt_rot[b, 1:]) ** 2).sum()
            rows["global_orient"].append(float(has["global_orient"][b]) * float(root_error))
            rows["body_pose"].append(float(has["body_pose"][b]) * float(body_error))
            rows["betas"].append(
                float(has["betas"][b])
                * float(((output.betas[b, n] - batch["smpl_params"]["betas"][b]) ** 2).sum())
            )
        for name in per_item:
            per_item[name].append(rows[name])
    terms: dict[str, float] = {}
    for name, values in per_item.items():
        array = np.array(values)
        terms[f"{name}_mode"] = array[:, 0].sum() / B
        terms[f"{name}_exp"] = array[:, 1:].sum() / (B * (N - 1))
    columns = output.pose_6d.double().reshape(B, N, 24, 2, 3).transpose(-1, -2)
    gram = columns.transpose(-1, -2) @ columns
    ortho = ((gram - torch.eye(2, dtype=torch.float64)) ** 2).flatten(2).mean(-1)
    terms["orthonormal"] = float(ortho[:, 0].mean() + ortho[:, 1:].mean())
    labelled = has["body_pose"]
    target = torch.from_numpy(
        _pose_6d_reference(
            torch.cat([batch["smpl_params"]["global_orient"], batch["smpl_params"]["body_pose"]], 1)
            .numpy()
        )
    ).float()[labelled]
    log_prob, _ = module.model.flow.flow.log_prob(target, output.features[labelled])
    terms["nll"] = float(-log_prob.mean())
    adversarial = 0.0
    for b in range(B):
        for n in range(N):
            score = module.discriminator(output.body_pose[b, n][None], output.betas[b, n][None])
            adversarial += float(((score - 1.0) ** 2).sum())
    terms["adversarial"] = adversarial / B
    return terms


def test_loss_terms_and_total_match_brute_force(
    module: ProHMRModule, handmade: tuple[dict[str, Any], ProHMROutput]
) -> None:
    batch, output = handmade
    rng = np.random.default_rng(3)
    weights = LossWeights(**{
        field.name: float(rng.uniform(0.1, 2.0)) for field in dataclasses.fields(LossWeights)
    })
    module.loss_weights = weights
    with torch.no_grad():
        terms = module.loss_terms(output, ground_truth_from_batch(batch))
        total = module.weighted_total(terms)
        reference = _reference_terms(module, batch, output)
    assert set(terms) == set(reference)
    for name, value in reference.items():
        assert float(terms[name]) == pytest.approx(value, rel=1e-5, abs=1e-6), name
    expected_total = sum(getattr(weights, name) * value for name, value in reference.items())
    assert float(total) == pytest.approx(expected_total, rel=1e-5)
    # Cross-check the loss functions' per-item values against the loops above.
    per_sample = keypoint_2d_loss(output.joints_2d, batch["keypoints_2d"][:, None])
    assert float(per_sample[:, 1:].sum()) / (B * (N - 1)) == pytest.approx(
        reference["keypoints_2d_exp"], rel=1e-5
    )
    assert orthonormality_loss(output.pose_6d).shape == (B, N)


@pytest.mark.parametrize("name", [field.name for field in dataclasses.fields(LossWeights)])
def test_zero_weight_removes_exactly_its_term(
    module: ProHMRModule, handmade: tuple[dict[str, Any], ProHMROutput], name: str
) -> None:
    batch, output = handmade
    gt = ground_truth_from_batch(batch)
    full = LossWeights(
        **{field.name: 1.0 + i for i, field in enumerate(dataclasses.fields(LossWeights))}
    )
    with torch.no_grad():
        module.loss_weights = full
        terms = module.loss_terms(output, gt)
        total = float(module.weighted_total(terms))
        module.loss_weights = dataclasses.replace(full, **{name: 0.0})
        reduced_terms = module.loss_terms(output, gt)
        reduced = float(module.weighted_total(reduced_terms))
    assert set(terms) - set(reduced_terms) == {name}
    assert reduced == pytest.approx(total - getattr(full, name) * float(terms[name]), rel=1e-5)
    assert reduced != pytest.approx(total, rel=1e-6)


def test_unlabelled_items_do_not_enter_parameter_losses(
    module: ProHMRModule, handmade: tuple[dict[str, Any], ProHMROutput]
) -> None:
    batch, output = handmade
    changed = {**batch, "smpl_params": dict(batch["smpl_params"])}
    # Item 1 has no pose label: changing its pose must not change any pose term.
    changed["smpl_params"]["body_pose"] = batch["smpl_params"]["body_pose"].clone()
    changed["smpl_params"]["body_pose"][1] += 1.0
    module.loss_weights = LossWeights()
    with torch.no_grad():
        before = module.loss_terms(output, ground_truth_from_batch(batch))
        after = module.loss_terms(output, ground_truth_from_batch(changed))
    for name in ("body_pose_mode", "nll"):
        assert float(after[name]) == pytest.approx(float(before[name]), rel=1e-6)


def test_pose_noise_perturbs_the_nll(
    module: ProHMRModule, handmade: tuple[dict[str, Any], ProHMROutput]
) -> None:
    batch, output = handmade
    gt = ground_truth_from_batch(batch)
    module.loss_weights = LossWeights()
    with torch.no_grad():
        clean = float(module.loss_terms(output, gt)["nll"])
        module.pose_noise = 0.005
        torch.manual_seed(0)
        noisy = float(module.loss_terms(output, gt)["nll"])
        module.pose_noise = 0.0
    assert noisy != pytest.approx(clean, rel=1e-7)
    assert noisy == pytest.approx(clean, rel=0.5)


def test_discriminator_loss_matches_lsgan(module: ProHMRModule) -> None:
    generator = torch.Generator().manual_seed(5)
    fake = torch.from_numpy(
        Rotation.from_rotvec(0.5 * torch.randn(6 * 23, 3, generator=generator).numpy()).as_matrix()
    ).float().reshape(6, 23, 3, 3)
    fake_betas = torch.randn(6, 10, generator=generator)
    mocap = {"body_pose": 0.4 * torch.randn(4, 72, generator=generator),
             "betas": torch.randn(4, 10, generator=generator)}
    with torch.no_grad():
        loss = float(module.discriminator_loss(fake, fake_betas, mocap))
        real = torch.from_numpy(
            Rotation.from_rotvec(mocap["body_pose"][:, 3:].reshape(-1, 3).numpy()).as_matrix()
        ).float().reshape(4, 23, 3, 3)
        fake_scores = module.discriminator(fake, fake_betas)
        real_scores = module.discriminator(real, mocap["betas"])
    expected = (float((fake_scores**2).sum()) + float(((real_scores - 1) ** 2).sum())) / 6
    assert loss == pytest.approx(expected, rel=1e-5)
    assert float(generator_adversarial_loss(real_scores).sum()) == pytest.approx(
        float(((real_scores - 1) ** 2).sum()), rel=1e-6
    )
    assert parameter_loss(fake_betas, fake_betas, torch.ones(6), 1).abs().max() == 0


def _datamodule(tiny_data: dict[str, str], mocap: bool) -> ProHMRDataModule:
    return ProHMRDataModule(
        train=[ImageDatasetSpec(tiny_data["train"], tiny_data["root"])],
        mocap=tiny_data["mocap"] if mocap else None,
        batch_size=3,
        samples_per_image=2,
        image_size=64,
        num_workers=0,
    )


def _trainer(max_steps: int, callbacks: list[pl.Callback] | None = None) -> pl.Trainer:
    return pl.Trainer(
        accelerator="cpu",
        max_steps=max_steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=callbacks,
    )


def test_actnorm_is_initialised_from_the_first_batch_only(
    tiny_data: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    original = ActNorm._initialize

    def counting(self: ActNorm, inputs: torch.Tensor) -> None:
        calls.append(inputs.shape[0])
        original(self, inputs)

    monkeypatch.setattr(ActNorm, "_initialize", counting)
    torch.manual_seed(0)
    # lr = 0: parameters stay where the initialisation put them.
    module = ProHMRModule(TINY, lr=0.0, weight_decay=0.0, adversarial=False)
    assert not bool(module.model.initialized)
    datamodule = _datamodule(tiny_data, mocap=False)
    datamodule.setup("fit")
    first = [datamodule.train_dataset[i] for i in range(3)]  # the first batch, in order
    _trainer(max_steps=3).fit(module, datamodule)  # 3 batches, two epochs

    assert bool(module.model.initialized)
    assert calls == [3, 3]  # once, for the 2 ActNorm layers, on the 3 poses of batch 1
    axis_angle = np.stack(
        [np.concatenate([item["smpl_params"]["global_orient"], item["smpl_params"]["body_pose"]])
         for item in first]
    ).astype(np.float64)
    pose_6d = _pose_6d_reference(axis_angle)
    std = np.maximum(pose_6d.std(axis=0, ddof=1), ACTNORM_MIN_STD)
    actnorm = module.model.flow.flow._transform._transforms[0]
    assert isinstance(actnorm, ActNorm)
    np.testing.assert_allclose(
        actnorm.log_scale.detach().numpy(), -np.log(std), rtol=1e-4, atol=1e-4
    )
    np.testing.assert_allclose(
        actnorm.shift.detach().numpy(), -(pose_6d / std).mean(axis=0), rtol=1e-4, atol=1e-4
    )


class _StepRecorder(pl.Callback):
    """Snapshots of the parameters before each optimiser step and after the batch."""

    def __init__(self) -> None:
        self.snapshots: list[dict[str, dict[str, torch.Tensor]]] = []

    @staticmethod
    def _snapshot(module: ProHMRModule) -> dict[str, dict[str, torch.Tensor]]:
        return {
            "model": {k: v.detach().clone() for k, v in module.model.named_parameters()},
            "discriminator": {
                k: v.detach().clone() for k, v in module.discriminator.named_parameters()
            },
        }

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: ProHMRModule, optimizer: torch.optim.Optimizer
    ) -> None:
        self.snapshots.append(self._snapshot(pl_module))

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: ProHMRModule, *args: Any) -> None:
        self.snapshots.append(self._snapshot(pl_module))


def _changed(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> set[str]:
    return {name for name in before if not torch.equal(before[name], after[name])}


def test_generator_and_discriminator_steps_touch_only_their_parameters(
    tiny_data: dict[str, str],
) -> None:
    torch.manual_seed(0)
    module = ProHMRModule(TINY)
    recorder = _StepRecorder()
    trainer = _trainer(max_steps=2, callbacks=[recorder])
    trainer.fit(module, _datamodule(tiny_data, mocap=True))
    assert trainer.global_step == 2  # one batch: a generator and a discriminator step
    before_generator, before_discriminator, after_batch = recorder.snapshots
    generator_model = _changed(before_generator["model"], before_discriminator["model"])
    assert not _changed(before_generator["discriminator"], before_discriminator["discriminator"])
    assert len(generator_model) > 0.9 * len(before_generator["model"])
    assert _changed(before_discriminator["model"], after_batch["model"]) == set()
    assert _changed(before_discriminator["discriminator"], after_batch["discriminator"]) == set(
        before_discriminator["discriminator"]
    )


def test_keypoint_overlays_draw_at_the_keypoints() -> None:
    images = torch.zeros(1, 3, 40, 40)  # ImageNet-normalised zeros: the mean colour
    keypoints = torch.zeros(1, 2, 44, 2)
    keypoints[0, 0] = torch.tensor([-0.25, 0.25])  # mode at pixel (10, 30)
    keypoints[0, 1] = torch.tensor([0.25, -0.25])  # sample at pixel (30, 10)
    gt = torch.zeros(1, 44, 3)
    gt[0, 0] = torch.tensor([0.0, 0.0, 1.0])  # one visible joint at (20, 20)
    grid = keypoint_overlays(images, keypoints, gt)
    assert grid.shape == (40, 40, 3)
    assert tuple(grid[30, 10]) == (230, 40, 40)
    assert tuple(grid[10, 30]) == (90, 170, 255)
    assert tuple(grid[20, 20]) == (40, 220, 40)
    background = np.round(np.array([0.485, 0.456, 0.406]) * 255).astype(np.uint8)
    assert tuple(grid[0, 0]) == tuple(background)


def _zero_batch(count: int) -> dict[str, Any]:
    """A batch of ``count`` images with identity poses, all labelled."""
    labelled = torch.ones(count, dtype=torch.bool)
    return {
        "keypoints_2d": torch.zeros(count, 44, 3),
        "keypoints_3d": torch.zeros(count, 44, 4),
        "smpl_params": {
            "global_orient": torch.zeros(count, 3),
            "body_pose": torch.zeros(count, 69),
            "betas": torch.zeros(count, 10),
        },
        "has_smpl_params": {"global_orient": labelled, "body_pose": labelled, "betas": labelled},
    }


def _constant_joint_poses(count: int, generator: torch.Generator) -> torch.Tensor:
    """(count, 144) 6D poses whose last 4 joints never move (constant features)."""
    axis_angle = 0.4 * torch.randn(count, 24, 3, generator=generator, dtype=torch.float64)
    axis_angle[:, 20:] = 0.0
    return torch.from_numpy(_pose_6d_reference(axis_angle.reshape(count, 72).numpy())).float()


@pytest.mark.parametrize(("init_noise", "bounded"), [(0.0, False), (0.005, True)])
def test_noisy_actnorm_init_keeps_the_nll_finite_for_constant_joints(
    init_noise: float, bounded: bool
) -> None:
    torch.manual_seed(0)
    only_nll = LossWeights(**{field.name: 0.0 for field in dataclasses.fields(LossWeights)})
    module = ProHMRModule(
        TINY, dataclasses.replace(only_nll, nll=1.0), adversarial=False, pose_noise=0.005,
        actnorm_init_noise=init_noise,
    )
    module.model.train()
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(16, module.model.backbone.out_features, generator=generator)

    def labels(count: int) -> Any:
        return dataclasses.replace(
            ground_truth_from_batch(_zero_batch(count)),
            pose_6d=_constant_joint_poses(count, generator),
        )

    with torch.no_grad():
        assert module.initialize_flow(labels(16), features)
        output = SimpleNamespace(pose_6d=torch.zeros(16, 2, 144), features=features)
        terms = module.loss_terms(output, labels(16))  # type: ignore[arg-type]
    assert set(terms) == {"nll"}
    nll = float(terms["nll"])
    # From clean poses, ActNorm scales the constant features by 1/1e-3 and the NLL's noise
    # is amplified layer after layer; from noised poses it stays an ordinary value.
    assert (abs(nll) < 1e3) is bounded
