"""The ProHMR DataModule: a weighted mixture of image datasets, mocap poses and a val set.

- **train**: a :class:`prohmr.data.MixedDataset` over one :class:`prohmr.data.ImageDataset`
  per :class:`ImageDatasetSpec` (``npz``, ``image_root``, ``weight``), augmented
  (SPEC §4.2); sampling ignores the index, so dataset sizes do not change the mix.
- **mocap** (optional): a :class:`prohmr.data.MocapDataset` for the discriminator's "real"
  poses, shuffled and cycled, in batches of ``batch_size * samples_per_image`` (the number
  of fake bodies of one step, as the original).
- **val**: one :class:`ImageDataset` without augmentation.

Every path is checked when the DataModule is built, before any training starts: a missing
file or folder raises one ``FileNotFoundError`` that lists all of them. Each DataLoader
worker is pinned to one torch thread (decoding and cropping are per-item NumPy/Pillow work;
several intra-op threads per worker only oversubscribe the cores).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler, Sampler

from prohmr.constants import IMAGE_SIZE
from prohmr.data.augmentation import AugmentationConfig
from prohmr.data.image_dataset import ImageDataset
from prohmr.data.mixture import MixedDataset
from prohmr.data.mocap_dataset import MocapDataset

__all__ = [
    "ImageDatasetSpec",
    "EpochSampler",
    "ProHMRDataModule",
    "worker_init_fn",
]

logger = logging.getLogger(__name__)


@dataclass
class ImageDatasetSpec:
    """Where one image dataset lives and how often the training mixture draws from it.

    Attributes:
        npz: the ``.npz`` file in the SPEC §5 format (``docs/data.md``).
        image_root: the folder that the file's ``imgname`` entries are relative to.
        weight: relative sampling weight in the training mixture (ignored for validation).
    """

    npz: str
    image_root: str
    weight: float = 1.0


def worker_init_fn(worker_id: int) -> None:
    """Pin a DataLoader worker to one torch thread (``torch.set_num_threads(1)``)."""
    torch.set_num_threads(1)


class EpochSampler(Sampler[int]):
    """Indices ``0 .. len(dataset) - 1`` in order; ``set_epoch`` reaches the dataset.

    Lightning calls ``set_epoch`` on a DataLoader's sampler before every epoch; forwarding it
    gives :class:`MixedDataset` (whose items are random draws seeded by
    ``(seed, epoch, index)``) new draws each epoch. The copies of the dataset held by
    DataLoader workers see the new epoch as long as the workers are not persistent.

    Arguments:
        dataset: a dataset with ``__len__`` and ``set_epoch(epoch)``.
    """

    def __init__(self, dataset: Dataset) -> None:
        super().__init__()
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self)))

    def set_epoch(self, epoch: int) -> None:
        """Select the draws of ``epoch`` in the dataset."""
        self.dataset.set_epoch(epoch)  # type: ignore[attr-defined]


def _missing_paths(specs: list[ImageDatasetSpec], mocap: str | None) -> list[str]:
    missing: list[str] = []
    for spec in specs:
        if not Path(spec.npz).is_file():
            missing.append(f"dataset file {spec.npz}")
        if not Path(spec.image_root).is_dir():
            missing.append(f"image folder {spec.image_root}")
    if mocap is not None and not Path(mocap).is_file():
        missing.append(f"mocap file {mocap}")
    return missing


class ProHMRDataModule(pl.LightningDataModule):
    """Training mixture, optional mocap batches and a validation set for ProHMR.

    Training batches are dicts ``{"img": <ImageDataset batch>}`` plus ``"mocap":
    {"body_pose": (M, 72), "betas": (M, 10)}`` when ``mocap`` is set (Lightning combines
    the two loaders; the mocap loader cycles). Image batch keys are those of
    :class:`ImageDataset` items (``img (B, 3, S, S)``, ``keypoints_2d (B, 44, 3)``,
    ``keypoints_3d (B, 44, 4)``, ``smpl_params``, ``has_smpl_params``, ...).

    Arguments:
        train: the training datasets with their mixture weights.
        val: the validation dataset (``None``: no validation).
        mocap: ``.npz`` of mocap poses (``body_pose (N, 72)``, ``betas (N, 10)``) for the
            adversarial prior; ``None`` when training without it.
        batch_size: images per training batch (``B``).
        val_batch_size: images per validation batch (default ``batch_size``).
        samples_per_image: pose samples the model draws per image (``N``); the mocap batch
            holds ``B * N`` bodies. The CLI links it to ``model.num_samples``.
        train_length: items in one training epoch of the mixture (default: the summed
            length of the training datasets).
        image_size: side of the square crops in pixels.
        augment: augment the training crops.
        augmentation: augmentation settings (default ProHMR's, ``AugmentationConfig()``).
        num_workers: DataLoader worker processes (each pinned to one torch thread).
        pin_memory: pin batches in page-locked memory (useful with a GPU).
        seed: seed of the mixture draws, the augmentations and the mocap shuffling.

    Raises:
        FileNotFoundError: a dataset file, image folder or the mocap file does not exist
            (every missing path is named).
        ValueError: no training dataset, or a non-positive size.
    """

    def __init__(
        self,
        train: list[ImageDatasetSpec],
        val: ImageDatasetSpec | None = None,
        mocap: str | None = None,
        batch_size: int = 64,
        val_batch_size: int | None = None,
        samples_per_image: int = 2,
        train_length: int | None = None,
        image_size: int = IMAGE_SIZE,
        augment: bool = True,
        augmentation: AugmentationConfig | None = None,
        num_workers: int = 4,
        pin_memory: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__()
        train = [ImageDatasetSpec(**spec) if isinstance(spec, dict) else spec for spec in train]
        if isinstance(val, dict):
            val = ImageDatasetSpec(**val)
        if not train:
            raise ValueError("train must list at least one ImageDatasetSpec")
        for name, value in (
            ("batch_size", batch_size),
            ("samples_per_image", samples_per_image),
            ("image_size", image_size),
        ):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if val_batch_size is not None and val_batch_size < 1:
            raise ValueError(f"val_batch_size must be >= 1, got {val_batch_size}")
        if train_length is not None and train_length < 1:
            raise ValueError(f"train_length must be >= 1, got {train_length}")
        if num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {num_workers}")
        missing = _missing_paths(train + ([val] if val is not None else []), mocap)
        if missing:
            raise FileNotFoundError(
                "missing training data: " + "; ".join(missing) + " (paths are relative to "
                f"the working directory {Path.cwd()}; edit the `data:` section of the config)"
            )
        self.train_specs = train
        self.val_spec = val
        self.mocap_path = mocap
        self.batch_size = batch_size
        self.val_batch_size = val_batch_size or batch_size
        self.samples_per_image = samples_per_image
        self.train_length = train_length
        self.image_size = image_size
        self.augment = augment
        self.augmentation = augmentation
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.seed = seed
        self.train_dataset: MixedDataset | None = None
        self.mocap_dataset: MocapDataset | None = None
        self.val_dataset: ImageDataset | None = None

    @property
    def has_mocap(self) -> bool:
        """Whether training batches carry mocap bodies for the discriminator."""
        return self.mocap_path is not None

    def setup(self, stage: str | None = None) -> None:
        """Open the datasets needed by ``stage`` (``fit``, ``validate``, ``test``...)."""
        if stage in (None, "fit") and self.train_dataset is None:
            augmentation = (self.augmentation or AugmentationConfig()) if self.augment else (
                AugmentationConfig.disabled()
            )
            datasets = [
                ImageDataset(
                    spec.npz,
                    spec.image_root,
                    train=True,
                    augmentation=augmentation,
                    image_size=self.image_size,
                    seed=self.seed,
                )
                for spec in self.train_specs
            ]
            length = self.train_length or sum(len(dataset) for dataset in datasets)
            self.train_dataset = MixedDataset(
                datasets, [spec.weight for spec in self.train_specs], length, seed=self.seed
            )
            if self.mocap_path is not None:
                self.mocap_dataset = MocapDataset(self.mocap_path)
                if len(self.mocap_dataset) < self.mocap_batch_size:
                    raise ValueError(
                        f"mocap file {self.mocap_path} has {len(self.mocap_dataset)} bodies, "
                        f"fewer than one mocap batch (batch_size * samples_per_image = "
                        f"{self.mocap_batch_size})"
                    )
        if self.val_spec is not None and self.val_dataset is None and stage != "predict":
            self.val_dataset = ImageDataset(
                self.val_spec.npz,
                self.val_spec.image_root,
                train=False,
                image_size=self.image_size,
            )

    @property
    def mocap_batch_size(self) -> int:
        """Bodies per mocap batch: ``batch_size * samples_per_image``."""
        return self.batch_size * self.samples_per_image

    def _loader_kwargs(self) -> dict[str, Any]:
        return {
            "num_workers": self.num_workers,
            "pin_memory": self.pin_memory,
            "worker_init_fn": worker_init_fn if self.num_workers > 0 else None,
        }

    def train_dataloader(self) -> dict[str, DataLoader]:
        """``{"img": mixture loader}`` plus ``"mocap"`` when a mocap file is set."""
        if self.train_dataset is None:
            self.setup("fit")
        assert self.train_dataset is not None
        loaders = {
            "img": DataLoader(
                self.train_dataset,
                batch_size=self.batch_size,
                sampler=EpochSampler(self.train_dataset),
                drop_last=True,
                **self._loader_kwargs(),
            )
        }
        if self.mocap_dataset is not None:
            generator = torch.Generator().manual_seed(self.seed)
            loaders["mocap"] = DataLoader(
                self.mocap_dataset,
                batch_size=self.mocap_batch_size,
                sampler=RandomSampler(self.mocap_dataset, generator=generator),
                drop_last=True,
                **self._loader_kwargs(),
            )
        return loaders

    def val_dataloader(self) -> DataLoader | list[DataLoader]:
        """The validation loader (an empty list without a validation dataset)."""
        if self.val_spec is None:
            return []
        if self.val_dataset is None:
            self.setup("validate")
        return DataLoader(
            self.val_dataset, batch_size=self.val_batch_size, shuffle=False,
            **self._loader_kwargs(),
        )

    def test_dataloader(self) -> DataLoader | list[DataLoader]:
        """The validation dataset again: ``prohmr-train test`` reports the same metrics."""
        return self.val_dataloader()

    def predict_dataloader(self) -> DataLoader | list[DataLoader]:
        """The validation dataset: ``prohmr-train predict`` runs the model on it."""
        return self.val_dataloader()
