"""A weighted mixture of datasets whose sampling ignores the index (SPEC §4.2).

ProHMR trains on H36M 0.3, MPII 0.1, COCO-2014 0.4 and MPI-INF-3DHP 0.2: every item picks
a dataset with these probabilities and then a uniformly random item of it, so the sizes of
the datasets do not change the mix.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from torch.utils.data import Dataset

__all__ = ["MixedDataset"]


class MixedDataset(Dataset):
    """Weighted random mixture of datasets of a chosen length.

    Item ``index`` draws, from ``numpy.random.default_rng((seed, epoch, index))``, a dataset
    with probability ``weights / sum(weights)`` and then an item of it uniformly (with
    replacement). The same generator is handed on to datasets that have a
    ``get_item(index, rng)`` method (:class:`prohmr.data.image_dataset.ImageDataset`), so
    their augmentation differs between the draws of one item; other datasets are indexed
    as usual. Results are reproducible given ``seed`` and :meth:`set_epoch`.

    Arguments:
        datasets: the datasets (each non-empty unless its weight is 0).
        weights: one non-negative weight per dataset, not all zero; normalised here.
        length: the number of items the mixture reports (``len``).
        seed: seed of the per-item generators.

    Example:
        >>> mixture = MixedDataset([[10, 11], [20, 21, 22]], weights=[3, 1], length=4)
        >>> len(mixture), mixture.probabilities.tolist()
        (4, [0.75, 0.25])
        >>> mixture[0] == mixture[0]
        True
    """

    def __init__(
        self,
        datasets: Sequence[Dataset],
        weights: Sequence[float],
        length: int,
        seed: int = 0,
    ) -> None:
        super().__init__()
        datasets, weights = list(datasets), [float(weight) for weight in weights]
        if not datasets:
            raise ValueError("datasets must hold at least one dataset")
        if len(weights) != len(datasets):
            raise ValueError(
                f"weights must have one entry per dataset ({len(datasets)}), got {len(weights)}"
            )
        if not all(math.isfinite(w) and w >= 0.0 for w in weights) or sum(weights) <= 0.0:
            raise ValueError(
                f"weights must be finite, non-negative and not all zero, got {weights}"
            )
        for position, (dataset, weight) in enumerate(zip(datasets, weights)):
            if weight > 0 and len(dataset) == 0:  # type: ignore[arg-type]
                raise ValueError(f"dataset {position} is empty but has weight {weight}")
        if int(length) != length or length <= 0:
            raise ValueError(f"length must be a positive integer, got {length}")
        self.datasets = datasets
        self.probabilities = np.asarray(weights) / sum(weights)
        self.length = int(length)
        self.seed = int(seed)
        self.epoch = 0

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        """Select the draws of an epoch."""
        self.epoch = int(epoch)

    def _rng(self, index: int) -> np.random.Generator:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for a mixture of length {self.length}")
        return np.random.default_rng((self.seed, self.epoch, int(index)))

    def _draw(self, rng: np.random.Generator) -> tuple[int, int]:
        dataset_index = int(rng.choice(len(self.datasets), p=self.probabilities))
        item_index = int(rng.integers(len(self.datasets[dataset_index])))  # type: ignore[arg-type]
        return dataset_index, item_index

    def locate(self, index: int) -> tuple[int, int]:
        """``(dataset_index, item_index)`` that item ``index`` of the current epoch reads."""
        return self._draw(self._rng(index))

    def __getitem__(self, index: int) -> Any:
        rng = self._rng(index)
        dataset_index, item_index = self._draw(rng)
        dataset = self.datasets[dataset_index]
        get_item = getattr(dataset, "get_item", None)
        if callable(get_item):
            return get_item(item_index, rng)
        return dataset[item_index]
