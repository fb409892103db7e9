"""CIFAR-10 / CIFAR-100 from the official python pickles, read with a restricted unpickler."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nago_pl.data.base import ImageDataModule, RawSplits
from nago_pl.errors import NagoError

_NUMPY_CORE = "numpy._core" if int(np.__version__.split(".")[0]) >= 2 else "numpy.core"

# (module, name) pairs the CIFAR pickles need: numpy array/scalar reconstruction, and
# _codecs.encode, which protocol-2 pickles written by Python 3 use for bytes objects.
_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    (f"{_NUMPY_CORE}.multiarray", "_reconstruct"),
    (f"{_NUMPY_CORE}.multiarray", "scalar"),
    (f"{_NUMPY_CORE}.numeric", "_frombuffer"),
    ("_codecs", "encode"),
}

_LAYOUTS = {
    "cifar-10-batches-py": {
        "train": [f"data_batch_{i}" for i in range(1, 6)],
        "test": ["test_batch"],
        "meta": "batches.meta",
        "labels": "labels",
        "names": "label_names",
    },
    "cifar-100-python": {
        "train": ["train"],
        "test": ["test"],
        "meta": "meta",
        "labels": "fine_labels",
        "names": "fine_label_names",
    },
}
_EXPECTED = (
    "cifar-10-batches-py/ (data_batch_1..5, test_batch, batches.meta) "
    "or cifar-100-python/ (train, test, meta)"
)


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the numpy globals CIFAR batches are made of."""

    def __init__(self, file: Any, path: Path) -> None:
        super().__init__(file, encoding="bytes")
        self._path = path

    def find_class(self, module: str, name: str) -> Any:
        # Pickles from numpy 1.x name numpy.core, numpy 2.x numpy._core: map to the installed one.
        canonical = module.replace("numpy._core.", f"{_NUMPY_CORE}.").replace(
            "numpy.core.", f"{_NUMPY_CORE}."
        )
        if (canonical, name) not in _ALLOWED_GLOBALS:
            raise NagoError(
                f"{self._path}: pickle refers to forbidden global {module}.{name}; "
                "expected only numpy arrays, lists, strings and numbers (file may be tampered)"
            )
        return super().find_class(canonical, name)


def load_pickle(path: Path) -> dict[str, Any]:
    """Load one CIFAR pickle with the restricted unpickler; bytes keys are decoded to str."""
    try:
        with path.open("rb") as f:
            obj = _RestrictedUnpickler(f, path).load()
    except NagoError:
        raise
    except Exception as exc:  # any malformed pickle: report it as the user's file problem
        raise NagoError(f"{path}: cannot unpickle ({type(exc).__name__}: {exc})") from exc
    if not isinstance(obj, dict):
        raise NagoError(f"{path}: holds a {type(obj).__name__}; expected a dict")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _field(batch: dict[str, Any], key: str, path: Path) -> Any:
    if key not in batch:
        raise NagoError(f"{path}: no '{key}' entry; found {sorted(map(str, batch))}")
    return batch[key]


def _read_batches(files: list[Path], label_key: str) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = [], []
    for path in files:
        batch = load_pickle(path)
        data = np.asarray(_field(batch, "data", path))
        targets = np.asarray(_field(batch, label_key, path))
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            raise NagoError(
                f"{path}: 'data' is {data.dtype} of shape {data.shape}; expected uint8 (N, 3072)"
            )
        if targets.ndim != 1 or len(targets) != len(data) or targets.dtype.kind not in "iu":
            raise NagoError(
                f"{path}: '{label_key}' has shape {targets.shape} ({targets.dtype}); "
                f"expected {len(data)} integer labels"
            )
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(targets.astype(np.int64))
    if sum(len(y) for y in labels) == 0:
        raise NagoError(f"{files[0].parent}: {', '.join(p.name for p in files)} hold no images")
    return torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(labels))


class CifarDataModule(ImageDataModule):
    """CIFAR-10 or CIFAR-100 (fine labels) from the official python pickles.

    ``root`` is ``cifar-10-batches-py/`` or ``cifar-100-python/``, or a folder holding one of them.
    """


    def _locate(self) -> tuple[Path, dict[str, Any]]:
        root = self._root_dir(_EXPECTED)
        for layout in _LAYOUTS.values():
            if (root / layout["meta"]).is_file() or (root / layout["train"][0]).is_file():
                return root, layout
        present = [name for name in _LAYOUTS if (root / name).is_dir()]
        if len(present) > 1:
            raise NagoError(
                f"dataset.root={root}: holds both {' and '.join(present)}; "
                "expected dataset.root to point at one of them"
            )
        if not present:
            raise NagoError(f"dataset.root={root}: no CIFAR python batches; expected {_EXPECTED}")
        return root / present[0], _LAYOUTS[present[0]]

    def _load(self) -> RawSplits:
        folder, layout = self._locate()
        names = [*layout["train"], *layout["test"], layout["meta"]]
        missing = [name for name in names if not (folder / name).is_file()]
        if missing:
            raise NagoError(
                f"dataset.root={folder}: incomplete CIFAR folder; expected {', '.join(names)} "
                f"(missing: {', '.join(missing)})"
            )
        train_x, train_y = _read_batches([folder / n for n in layout["train"]], layout["labels"])
        test_x, test_y = _read_batches([folder / n for n in layout["test"]], layout["labels"])
        meta_path = folder / layout["meta"]
        class_names = [
            n.decode() if isinstance(n, bytes) else str(n)
            for n in _field(load_pickle(meta_path), layout["names"], meta_path)
        ]
        high = int(max(train_y.max(), test_y.max()))
        if int(min(train_y.min(), test_y.min())) < 0 or high >= len(class_names):
            raise NagoError(
                f"dataset.root={folder}: labels reach {high} but {meta_path.name} names "
                f"{len(class_names)} classes; expected labels in 0..{len(class_names) - 1}"
            )
        return RawSplits(train_x, train_y, test_x, test_y, class_names)
