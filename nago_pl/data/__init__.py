"""In-memory image DataModules with batched loading and device-side augmentation."""

from nago_pl.data.augment import BatchTransform
from nago_pl.data.base import ImageDataModule, TensorBatchDataset
from nago_pl.data.cifar import CifarDataModule
from nago_pl.data.digits import DigitsDataModule
from nago_pl.data.idx import IdxDataModule
from nago_pl.data.image_folder import ImageFolderDataModule

__all__ = [
    "BatchTransform",
    "CifarDataModule",
    "DigitsDataModule",
    "IdxDataModule",
    "ImageDataModule",
    "ImageFolderDataModule",
    "TensorBatchDataset",
]
