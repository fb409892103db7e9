"""Common in-memory image DataModule: seeded splits, batched loading, device-side transform."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from nago_pl.data.augment import BatchTransform
from nago_pl.errors import NagoError

#: Seed and fraction of the fixed test hold-out for datasets without an official test split.
FIXED_TEST_SEED = 20240607
FIXED_TEST_FRACTION = 0.2

_CHUNK = 1024  # samples per chunk for statistics and resizing (bounds float memory)


@dataclass(frozen=True)
class RawSplits:
    """What a concrete DataModule loads: uint8 ``[N, C, H, W]`` images, int64 labels, names."""

    train_x: Tensor
    train_y: Tensor
    test_x: Tensor
    test_y: Tensor
    class_names: list[str]


class TensorBatchDataset(Dataset):
    """In-memory dataset indexed by a whole batch of indices at once (no per-sample collate).

    The gather goes through numpy: single-threaded and cheap, whereas torch's parallel
    indexing of a small batch can stall badly when the CPU cores are busy.
    """

    def __init__(self, x: Tensor, y: Tensor) -> None:
        self.x = x
        self.y = y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, indices: Sequence[int]) -> tuple[Tensor, Tensor]:
        idx = np.asarray(indices, dtype=np.int64)
        return torch.from_numpy(self.x.numpy()[idx]), torch.from_numpy(self.y.numpy()[idx])


def stratified_order(labels: np.ndarray, seed: int | Sequence[int]) -> np.ndarray:
    """A seeded permutation of ``range(len(labels))`` whose every prefix is class-balanced.

    Taking the first ``k`` entries gives an (approximately) stratified random subset of
    exactly ``k`` samples.
    """
    perm = np.random.default_rng(seed).permutation(len(labels))
    shuffled = labels[perm]
    counts = np.bincount(shuffled)
    by_class = np.argsort(shuffled, kind="stable")
    rank = np.empty(len(shuffled), dtype=np.float64)
    rank[by_class] = np.arange(len(shuffled)) - np.repeat(np.cumsum(counts) - counts, counts)
    return perm[np.argsort((rank + 0.5) / counts[shuffled], kind="stable")]


def stratified_split(
    labels: np.ndarray, fraction: float, seed: int | Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into ``(kept, held_out)`` with ``round(fraction * n)`` (>= 1) held out."""
    order = stratified_order(labels, seed)
    n_held = max(1, round(fraction * len(order)))
    return np.sort(order[n_held:]), np.sort(order[:n_held])


def resize_uint8(x: Tensor, size: int) -> Tensor:
    """Resize a uint8 ``[N, C, H, W]`` batch to ``size`` x ``size`` (bilinear, antialiased)."""
    out = torch.empty((x.shape[0], x.shape[1], size, size), dtype=torch.uint8)
    for start in range(0, len(x), _CHUNK):
        chunk = x[start : start + _CHUNK].to(torch.float32)
        chunk = F.interpolate(chunk, size=(size, size), mode="bilinear", antialias=True)
        out[start : start + _CHUNK] = chunk.round_().clamp_(0, 255).to(torch.uint8)
    return out


def channel_stats(x: Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of a uint8 ``[N, C, H, W]`` tensor, in [0, 1] pixel units.

    Exact: built from a per-channel histogram of the 256 pixel values.
    """
    pixels = x.numpy()
    hist = np.zeros((x.shape[1], 256), dtype=np.int64)
    for start in range(0, len(pixels), _CHUNK):
        for c in range(x.shape[1]):
            hist[c] += np.bincount(pixels[start : start + _CHUNK, c].ravel(), minlength=256)
    values = np.arange(256, dtype=np.float64) / 255.0
    count = hist.sum(axis=1)
    mean = hist @ values / count
    std = np.sqrt(np.maximum(hist @ values**2 / count - mean**2, 0.0))
    std = np.where(std < 1e-6, 1.0, std)  # constant channel: leave it unscaled
    return tuple(mean.tolist()), tuple(std.tolist())


def _int_arg(name: str, value: Any, minimum: int, optional: bool = False) -> Any:
    """``value`` as an int >= ``minimum`` (or None when ``optional``), else a NagoError."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        extra = " or null" if optional else ""
        raise NagoError(f"dataset.{name}={value!r}: expected an integer >= {minimum}{extra}")
    return int(value)


class ImageDataModule(L.LightningDataModule):
    """Base class: small image datasets held in memory as uint8 tensors.

    Subclasses implement :meth:`_load`. ``setup`` builds a seeded, stratified validation
    hold-out from the training split (the test split is only for final evaluation),
    optionally subsamples the training set and computes per-channel statistics on it.
    Afterwards these attributes exist: ``num_classes``, ``in_channels``, ``image_size``,
    ``class_names``, ``mean``, ``std``, ``train_size``, ``val_size``, ``test_size``,
    ``train_set``/``val_set``/``test_set`` (:class:`TensorBatchDataset`),
    ``train_indices``/``val_indices`` (positions in the original training split) and
    ``batch_transform`` (:class:`BatchTransform`, applied on the device after transfer).
    Loaders yield ``(uint8 images, int64 labels)``.
    """

    def __init__(
        self,
        root: str | None = None,
        batch_size: int = 128,
        eval_batch_size: int | None = None,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        image_size: int | None = None,
        max_train_samples: int | None = None,
        num_workers: int = 0,
        crop_padding: int = 0,
        hflip: bool = False,
        cutout: int = 0,
    ) -> None:
        super().__init__()
        if root is not None and not isinstance(root, str | os.PathLike):
            raise NagoError(f"dataset.root={root!r}: expected a folder path or null")
        if (
            isinstance(val_fraction, bool)
            or not isinstance(val_fraction, Real)
            or not 0 < val_fraction < 1
        ):
            raise NagoError(f"dataset.val_fraction={val_fraction!r}: expected a number in (0, 1)")
        if not isinstance(hflip, bool):
            raise NagoError(f"dataset.hflip={hflip!r}: expected true or false")
        self.root = root
        self.batch_size: int = _int_arg("batch_size", batch_size, 1)
        self.eval_batch_size: int = (
            _int_arg("eval_batch_size", eval_batch_size, 1, optional=True) or self.batch_size
        )
        self.val_fraction = float(val_fraction)
        self.split_seed: int = _int_arg("split_seed", split_seed, 0)
        self.image_size: int | None = _int_arg("image_size", image_size, 8, optional=True)
        self.max_train_samples: int | None = _int_arg(
            "max_train_samples", max_train_samples, 1, optional=True
        )
        self.num_workers: int = _int_arg("num_workers", num_workers, 0)
        self.crop_padding: int = _int_arg("crop_padding", crop_padding, 0)
        self.hflip = hflip
        self.cutout: int = _int_arg("cutout", cutout, 0)
        self._is_set_up = False

    def _load(self) -> RawSplits:
        """Load the full train and test splits (native size); implemented by subclasses."""
        raise NotImplementedError

    def _root_dir(self, expected: str) -> Path:
        """The validated ``root`` folder; ``expected`` describes its contents for messages."""
        if self.root is None:
            raise NagoError(f"dataset.root is not set; expected a folder holding {expected}")
        path = Path(self.root).expanduser().absolute()
        if not path.exists():
            raise NagoError(f"dataset.root={path}: does not exist; expected {expected}")
        if not path.is_dir():
            raise NagoError(f"dataset.root={path}: is not a directory; expected {expected}")
        return path

    def setup(self, stage: str | None = None) -> None:
        """Load, resize, split and compute statistics once; later calls return immediately."""
        if self._is_set_up:
            return
        raw = self._load()
        if len(raw.train_y) < 2:
            raise NagoError(
                f"dataset.root={self.root}: the training split holds {len(raw.train_y)} images; "
                "expected at least 2 (one for training, one for validation)"
            )
        train_x, test_x = raw.train_x, raw.test_x
        height, width = train_x.shape[-2:]
        if self.image_size is None and height != width:
            raise NagoError(
                f"dataset.image_size=null: images are {width}x{height}, not square; "
                "set dataset.image_size to resize them"
            )
        size = self.image_size or height
        if (height, width) != (size, size):
            train_x = resize_uint8(train_x, size)
        if test_x.shape[-2:] != (size, size):
            test_x = resize_uint8(test_x, size)

        labels = raw.train_y.numpy()
        train_idx, val_idx = stratified_split(labels, self.val_fraction, self.split_seed)
        if len(train_idx) == 0:
            raise NagoError(
                f"dataset.val_fraction={self.val_fraction}: leaves no training samples "
                f"out of {len(labels)}; expected a smaller fraction or more data"
            )
        if self.max_train_samples is not None and self.max_train_samples < len(train_idx):
            keep = stratified_order(labels[train_idx], (self.split_seed, 1))
            train_idx = np.sort(train_idx[keep[: self.max_train_samples]])

        self.train_indices = torch.from_numpy(train_idx)
        self.val_indices = torch.from_numpy(val_idx)
        source = TensorBatchDataset(train_x, raw.train_y)
        self.train_set = TensorBatchDataset(*source[train_idx])
        self.val_set = TensorBatchDataset(*source[val_idx])
        self.test_set = TensorBatchDataset(test_x, raw.test_y)
        self.train_size, self.val_size, self.test_size = (
            len(self.train_set),
            len(self.val_set),
            len(self.test_set),
        )
        self.class_names = list(raw.class_names)
        self.num_classes = len(self.class_names)
        self.in_channels = int(train_x.shape[1])
        self.image_size = int(size)
        self.mean, self.std = channel_stats(self.train_set.x)
        self.batch_transform = BatchTransform(
            self.mean, self.std, self.crop_padding, self.hflip, self.cutout
        )
        self._is_set_up = True

    def _loader(self, data: TensorBatchDataset, batch_size: int, shuffle: bool) -> DataLoader:
        order = RandomSampler(data) if shuffle else SequentialSampler(data)
        on_cuda = self.trainer is not None and self.trainer.strategy.root_device.type == "cuda"
        return DataLoader(
            data,
            sampler=BatchSampler(order, batch_size, drop_last=False),
            batch_size=None,
            num_workers=self.num_workers,
            pin_memory=on_cuda,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        """Shuffled training batches (order from the global torch RNG)."""
        return self._loader(self.train_set, self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        """Validation batches in fixed order."""
        return self._loader(self.val_set, self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        """Test batches in fixed order."""
        return self._loader(self.test_set, self.eval_batch_size, shuffle=False)

    def on_after_batch_transfer(
        self, batch: tuple[Tensor, Tensor], dataloader_idx: int
    ) -> tuple[Tensor, Tensor]:
        """Normalise on the device; augment too while the trainer is training."""
        images, labels = batch
        training = self.trainer is not None and self.trainer.training
        return self.batch_transform(images, train=training), labels
