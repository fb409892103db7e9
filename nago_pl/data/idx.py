"""MNIST-style IDX files (MNIST, Fashion-MNIST, KMNIST, ...) as a DataModule."""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from nago_pl.data.base import ImageDataModule, RawSplits
from nago_pl.errors import NagoError

_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}
_EXPECTED = ", ".join(f"{name}[.gz]" for name in _FILES.values())
_CLASS_NAMES_FILE = "class_names.txt"

# IDX type codes -> numpy dtypes (multi-byte values are big-endian).
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (optionally gzipped), validating header and payload length."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                data = f.read()
        else:
            data = path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise NagoError(f"{path}: cannot read IDX file ({exc})") from exc
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise NagoError(
            f"{path}: not an IDX file (bad magic number {data[:4].hex() or 'empty'}); "
            "expected 0x0000 followed by a type code and the number of dimensions"
        )
    dtype, ndim = _IDX_DTYPES[data[2]], data[3]
    offset = 4 + 4 * ndim
    if len(data) < offset:
        raise NagoError(f"{path}: truncated IDX header ({len(data)} bytes for {ndim} dims)")
    shape = struct.unpack(f">{ndim}I", data[4:offset])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - offset != expected:
        problem = "truncated" if len(data) - offset < expected else "has trailing bytes"
        raise NagoError(
            f"{path}: {problem}: header says shape {shape} ({expected} bytes of data), "
            f"found {len(data) - offset} bytes"
        )
    return np.frombuffer(data, dtype=dtype, offset=offset).reshape(shape)


class IdxDataModule(ImageDataModule):
    """Grey images from the four MNIST-style IDX files in ``root`` (``.gz`` or uncompressed).

    Class names come from ``root/class_names.txt`` (one per line) if present, else "0", "1", ...
    """


    def _load(self) -> RawSplits:
        root = self._root_dir(f"MNIST-style IDX files {_EXPECTED}")
        paths: dict[str, Path] = {}
        for key, name in _FILES.items():
            found = [p for p in (root / name, root / f"{name}.gz") if p.is_file()]
            if found:
                paths[key] = found[0]
        missing = [name for key, name in _FILES.items() if key not in paths]
        if missing:
            raise NagoError(
                f"dataset.root={root}: no MNIST-style IDX files; expected {_EXPECTED} "
                f"(missing: {', '.join(missing)})"
            )
        arrays = {key: read_idx(path) for key, path in paths.items()}
        for split in ("train", "test"):
            images, labels = arrays[f"{split}_x"], arrays[f"{split}_y"]
            image_path, label_path = paths[f"{split}_x"], paths[f"{split}_y"]
            if images.ndim != 3 or images.dtype != np.uint8:
                raise NagoError(
                    f"{image_path}: holds {images.dtype} data of shape {images.shape}; "
                    "expected uint8 images of shape (N, height, width)"
                )
            if labels.ndim != 1 or labels.dtype.kind not in "iu":
                raise NagoError(
                    f"{label_path}: holds {labels.dtype} data of shape {labels.shape}; "
                    "expected integer labels of shape (N,)"
                )
            if len(images) != len(labels):
                raise NagoError(
                    f"{image_path}: {len(images)} images but {label_path.name} has "
                    f"{len(labels)} labels; expected equal counts"
                )
        if arrays["train_x"].shape[1:] != arrays["test_x"].shape[1:]:
            raise NagoError(
                f"dataset.root={root}: train images are {arrays['train_x'].shape[1:]} but test "
                f"images are {arrays['test_x'].shape[1:]}; expected the same size"
            )
        class_names = self._class_names(root, arrays["train_y"], arrays["test_y"])
        return RawSplits(
            train_x=torch.from_numpy(arrays["train_x"].copy()).unsqueeze(1),
            train_y=torch.from_numpy(arrays["train_y"].astype(np.int64)),
            test_x=torch.from_numpy(arrays["test_x"].copy()).unsqueeze(1),
            test_y=torch.from_numpy(arrays["test_y"].astype(np.int64)),
            class_names=class_names,
        )

    @staticmethod
    def _class_names(root: Path, *labels: np.ndarray) -> list[str]:
        every = np.concatenate(labels)
        low, high = (int(every.min()), int(every.max())) if every.size else (0, -1)
        names_file = root / _CLASS_NAMES_FILE
        if names_file.is_file():
            names = [line.strip() for line in names_file.read_text().splitlines() if line.strip()]
        else:
            names = [str(i) for i in range(high + 1)]
        if low < 0 or high >= len(names):
            raise NagoError(
                f"dataset.root={root}: labels range over {low}..{high}; "
                f"expected 0..{len(names) - 1} ({len(names)} classes)"
            )
        return names
