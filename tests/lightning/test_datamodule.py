"""ProHMRDataModule: the training mixture, mocap batches, validation and path checks."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lightning_modules.datamodule import (
    EpochSampler,
    ImageDatasetSpec,
    ProHMRDataModule,
    worker_init_fn,
)


def _datamodule(tiny_data: dict[str, str], **kwargs: object) -> ProHMRDataModule:
    options: dict[str, object] = {
        "train": [ImageDatasetSpec(tiny_data["train"], tiny_data["root"], 1.0)],
        "val": ImageDatasetSpec(tiny_data["val"], tiny_data["root"]),
        "mocap": tiny_data["mocap"],
        "batch_size": 2,
        "samples_per_image": 3,
        "image_size": 32,
        "num_workers": 0,
    }
    options.update(kwargs)
    return ProHMRDataModule(**options)  # type: ignore[arg-type]


def test_every_missing_path_is_named_at_construction(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as error:
        ProHMRDataModule(
            train=[ImageDatasetSpec(str(tmp_path / "a.npz"), str(tmp_path))],
            val=ImageDatasetSpec(str(tmp_path / "v.npz"), str(tmp_path / "no_images")),
            mocap=str(tmp_path / "mocap.npz"),
        )
    message = str(error.value)
    for missing in ("a.npz", "v.npz", "no_images", "mocap.npz"):
        assert missing in message
    assert message.count("image folder") == 1  # tmp_path itself exists


def test_training_batches_hold_images_and_mocap(tiny_data: dict[str, str]) -> None:
    datamodule = _datamodule(tiny_data)
    datamodule.setup("fit")
    loaders = datamodule.train_dataloader()
    assert set(loaders) == {"img", "mocap"}
    images = next(iter(loaders["img"]))
    assert images["img"].shape == (2, 3, 32, 32)
    assert images["keypoints_2d"].shape == (2, 44, 3)
    mocap = next(iter(loaders["mocap"]))
    assert mocap["body_pose"].shape == (6, 72)  # batch_size * samples_per_image bodies
    assert len(datamodule.train_dataset) == 6  # default length: the datasets' rows


def test_mixture_weights_and_length(tiny_data: dict[str, str]) -> None:
    datamodule = _datamodule(
        tiny_data,
        train=[
            ImageDatasetSpec(tiny_data["train"], tiny_data["root"], 0.0),
            ImageDatasetSpec(tiny_data["val"], tiny_data["root"], 2.0),
        ],
        train_length=40,
    )
    datamodule.setup("fit")
    mixture = datamodule.train_dataset
    assert len(mixture) == 40
    assert {mixture.locate(i)[0] for i in range(40)} == {1}  # weight 0: never drawn


def test_epoch_sampler_reaches_the_dataset(tiny_data: dict[str, str]) -> None:
    datamodule = _datamodule(tiny_data, mocap=None)
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()["img"]
    assert isinstance(loader.sampler, EpochSampler)
    assert list(loader.sampler) == list(range(6))
    before = [datamodule.train_dataset.locate(i) for i in range(6)]
    loader.sampler.set_epoch(3)
    assert datamodule.train_dataset.epoch == 3
    assert [datamodule.train_dataset.locate(i) for i in range(6)] != before


def test_validation_is_not_augmented(tiny_data: dict[str, str]) -> None:
    datamodule = _datamodule(tiny_data)
    datamodule.setup("validate")
    batch = next(iter(datamodule.val_dataloader()))
    again = next(iter(datamodule.val_dataloader()))
    assert datamodule.val_dataset is not None and not datamodule.val_dataset.train
    assert torch.equal(batch["img"], again["img"])
    assert batch["imgname"] == ["images/val_000.png", "images/val_001.png"]


def test_workers_use_one_thread(tiny_data: dict[str, str]) -> None:
    datamodule = _datamodule(tiny_data, num_workers=2)
    datamodule.setup("fit")
    assert datamodule.train_dataloader()["img"].worker_init_fn is worker_init_fn
    threads = torch.get_num_threads()
    try:
        worker_init_fn(0)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [("batch_size", 0, "batch_size"), ("train", [], "at least one"),
     ("num_workers", -1, "num_workers")],
)
def test_invalid_settings_are_refused(
    tiny_data: dict[str, str], option: str, value: object, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        _datamodule(tiny_data, **{option: value})
