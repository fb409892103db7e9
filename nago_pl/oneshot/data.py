"""The one-shot search's batches: a training subset (split in two halves for DARTS' bilevel
update) and a validation subset, from any of the project's image DataModules."""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
from lightning.pytorch.utilities import CombinedLoader
from torch import Tensor
from torch.utils.data import DataLoader

from nago_pl.data.base import ImageDataModule, TensorBatchDataset, stratified_order


class OneShotData(L.LightningDataModule):
    """Batches of ``data`` as ``{"train": (x, y)}`` dicts, plus ``"arch"`` (the held-out half)
    when ``bilevel``; validation batches are ``(x, y)`` from the first ``val_images`` of its
    validation split. Normalisation and augmentation are ``data``'s."""

    def __init__(self, data: ImageDataModule, bilevel: bool, val_images: int | None) -> None:
        super().__init__()
        self.data = data
        self.bilevel = bilevel
        self.val_images = val_images

    def setup(self, stage: str | None = None) -> None:
        self.data.setup(stage)
        train = self.data.train_set
        if self.bilevel:  # two stratified halves: weights learn on one, α on the other
            order = stratified_order(train.y.numpy(), (self.data.split_seed, 2))
            halves = np.sort(order[::2]), np.sort(order[1::2])
            self.train_set, self.arch_set = (TensorBatchDataset(*train[h]) for h in halves)
        else:
            self.train_set, self.arch_set = train, None
        val = self.data.val_set
        keep = len(val) if self.val_images is None else min(self.val_images, len(val))
        self.val_set = TensorBatchDataset(val.x[:keep], val.y[:keep])

    def train_dataloader(self) -> CombinedLoader:
        loaders: dict[str, DataLoader] = {"train": self._loader(self.train_set, True)}
        if self.arch_set is not None:
            loaders["arch"] = self._loader(self.arch_set, True)
        return CombinedLoader(loaders, mode="max_size_cycle")

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, False)

    def _loader(self, data: TensorBatchDataset, shuffle: bool) -> DataLoader:
        self.data.trainer = self.trainer
        return self.data._loader(data, self.data.batch_size if shuffle
                                 else self.data.eval_batch_size, shuffle)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Normalise (and, while training, augment) each ``(x, y)`` of the batch."""
        training = self.trainer is not None and self.trainer.training
        transform = self.data.batch_transform

        def apply(pair: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
            return transform(pair[0], train=training), pair[1]

        if isinstance(batch, dict):
            return {key: apply(pair) for key, pair in batch.items()}
        return apply(batch)
