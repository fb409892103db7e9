"""ImageFolder trees (``<class>/<image>``) decoded once with Pillow and cached as uint8 tensors."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from PIL import Image

from nago_pl.data.base import (
    FIXED_TEST_FRACTION,
    FIXED_TEST_SEED,
    ImageDataModule,
    RawSplits,
    stratified_split,
)
from nago_pl.errors import NagoError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
_CACHE_FORMAT = 1  # bump when the cached payload changes
_CACHE_DIR_NAME = ".nago_cache"
_DECODE_CHUNK = 256
_EXPECTED = (
    "an ImageFolder tree: train/<class>/<images> with test/<class>/<images> (or val/), "
    "or a single <class>/<images> pool"
)


def _class_folders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


class ImageFile(NamedTuple):
    """An image file with the stat fields that make up the cache fingerprint."""

    path: str
    size: int
    mtime_ns: int


def _image_files(class_dir: Path) -> list[ImageFile]:
    """Image files below ``class_dir`` (recursive), skipping hidden entries and folder links."""
    found = []
    pending = [str(class_dir)]
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
                elif entry.name.lower().endswith(IMAGE_EXTENSIONS) and entry.is_file():
                    stat = entry.stat()
                    found.append(ImageFile(entry.path, stat.st_size, stat.st_mtime_ns))
    return sorted(found)


def scan_split(folder: Path) -> tuple[list[str], list[ImageFile], list[int]]:
    """Class names (sorted folder names), image files and their labels under ``folder``."""
    classes = _class_folders(folder)
    if not classes:
        raise NagoError(f"{folder}: no class folders; expected {_EXPECTED}")
    files: list[ImageFile] = []
    labels: list[int] = []
    for label, class_dir in enumerate(classes):
        images = _image_files(class_dir)
        if not images:
            raise NagoError(
                f"{class_dir}: class folder holds no images; expected files ending in "
                f"{', '.join(IMAGE_EXTENSIONS)} (any case)"
            )
        files.extend(images)
        labels.extend([label] * len(images))
    return [c.name for c in classes], files, labels


def _decode(path: str, size: int | None) -> np.ndarray:
    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise NagoError(f"{path}: cannot decode image ({exc})") from exc
    if size is not None and rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(rgb)


def decode_images(files: list[str], size: int | None) -> torch.Tensor:
    """Decode ``files`` to a uint8 ``[N, 3, H, W]`` tensor with a thread pool.

    With ``size`` None every image must have the same size.
    """
    first = _decode(files[0], size)
    out = np.empty((len(files), *first.shape), dtype=np.uint8)

    def work(start: int) -> None:
        for i in range(start, min(start + _DECODE_CHUNK, len(files))):
            pixels = first if i == 0 else _decode(files[i], size)
            if pixels.shape != first.shape:
                raise NagoError(
                    f"dataset.image_size=null: images differ in size ({files[0]} is "
                    f"{first.shape[1]}x{first.shape[0]}, {files[i]} is "
                    f"{pixels.shape[1]}x{pixels.shape[0]}); set dataset.image_size to resize them"
                )
            out[i] = pixels

    with ThreadPoolExecutor(max_workers=min(32, (os.cpu_count() or 1) + 4)) as pool:
        futures = [pool.submit(work, start) for start in range(0, len(files), _DECODE_CHUNK)]
        try:
            for future in futures:
                future.result()
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def cache_dirs(root: Path) -> list[Path]:
    """Cache folders in order of preference: next to the data, then the user cache."""
    user_cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    key = hashlib.sha256(str(root).encode()).hexdigest()[:16]
    return [root / _CACHE_DIR_NAME, user_cache / "nago_pl" / key]


def _fingerprint(root: Path, image_size: int | None, splits: dict[str, list[ImageFile]]) -> str:
    digest = hashlib.sha256(f"format={_CACHE_FORMAT};size={image_size}".encode())
    skip = len(str(root)) + 1
    for split, files in splits.items():
        for file in files:
            digest.update(f"\n{split}|{file.path[skip:]}|{file.size}|{file.mtime_ns}".encode())
    return digest.hexdigest()[:20]


def _read_cache(path: Path) -> dict[str, Any] | None:
    try:
        payload = torch.load(path, weights_only=True)
    except Exception:  # unreadable or partial cache: decode again
        log.warning("ignoring unreadable cache file %s", path)
        return None
    expected = {
        "train_x": torch.uint8,
        "train_y": torch.int64,
        "test_x": torch.uint8,
        "test_y": torch.int64,
    }
    valid = (
        isinstance(payload, dict)
        and all(
            isinstance(payload.get(k), torch.Tensor) and payload[k].dtype == t
            for k, t in expected.items()
        )
        and len(payload["train_x"]) == len(payload["train_y"])
        and len(payload["test_x"]) == len(payload["test_y"])
        and isinstance(payload.get("class_names"), list)
    )
    return payload if valid else None


def _may_write(folder: Path) -> bool:
    """Whether ``folder`` (or its nearest existing ancestor) is writable and not marked read-only.

    The mode bits are checked too, so a read-only tree is left alone even when running as root.
    """
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    return os.access(existing, os.W_OK) and bool(existing.stat().st_mode & 0o222)


def _write_cache(dirs: list[Path], name: str, payload: dict[str, Any]) -> Path | None:
    """Atomically save ``payload`` in the first writable folder; drop stale caches there."""
    for folder in dirs:
        if not _may_write(folder):
            continue
        tmp = folder / f".{name}.{os.getpid()}.tmp"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            torch.save(payload, tmp)
            os.replace(tmp, folder / name)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            continue
        prefix = name.rsplit("-", 1)[0]
        for stale in folder.glob(f"{prefix}-*.uint8.pt"):
            if stale.name != name:
                with contextlib.suppress(OSError):
                    stale.unlink()
        return folder / name
    log.warning("could not write an image cache in any of %s", ", ".join(map(str, dirs)))
    return None


def _splits(payload: dict[str, Any]) -> RawSplits:
    return RawSplits(
        train_x=payload["train_x"],
        train_y=payload["train_y"],
        test_x=payload["test_x"],
        test_y=payload["test_y"],
        class_names=[str(name) for name in payload["class_names"]],
    )


class ImageFolderDataModule(ImageDataModule):
    """RGB images in an ImageFolder tree, decoded once and cached as uint8 tensors.

    Layouts: ``root/train/<class>/*`` with ``root/test/<class>/*`` (or ``root/val``), or a
    single ``root/<class>/*`` pool from which a fixed stratified 20 % test split is held out.
    The cache lives in ``root/.nago_cache/`` or, if that is not writable, in
    ``~/.cache/nago_pl/<hash of root>/`` (``$XDG_CACHE_HOME`` respected); its name includes the
    image size and a fingerprint of the file list (paths, sizes, mtimes). After ``setup``,
    ``cache_path`` is the cache file used (None if none could be written).
    """

    cache_path: Path | None = None

    def _scan(
        self, root: Path
    ) -> tuple[list[str], dict[str, list[ImageFile]], dict[str, list[int]]]:
        if (root / "train").is_dir():
            test_dir = next((root / n for n in ("test", "val") if (root / n).is_dir()), None)
            if test_dir is None:
                raise NagoError(
                    f"dataset.root={root}: has train/ but neither test/ nor val/; expected "
                    f"{_EXPECTED}"
                )
            train_names, train_files, train_labels = scan_split(root / "train")
            test_names, test_files, test_labels = scan_split(test_dir)
            if train_names != test_names:
                only_train = sorted(set(train_names) - set(test_names))
                only_test = sorted(set(test_names) - set(train_names))
                raise NagoError(
                    f"dataset.root={root}: train/ and {test_dir.name}/ class folders differ "
                    f"(only in train: {only_train}, only in {test_dir.name}: {only_test}); "
                    "expected the same classes"
                )
            files = {"train": train_files, "test": test_files}
            return train_names, files, {"train": train_labels, "test": test_labels}
        names, pool, labels = scan_split(root)
        if len(pool) < 3:
            raise NagoError(
                f"dataset.root={root}: holds {len(pool)} images; expected at least 3 "
                "(for the test, validation and training splits)"
            )
        keep, held = stratified_split(np.asarray(labels), FIXED_TEST_FRACTION, FIXED_TEST_SEED)
        files = {"train": [pool[i] for i in keep], "test": [pool[i] for i in held]}
        return names, files, {"train": [labels[i] for i in keep], "test": [labels[i] for i in held]}

    def _load(self) -> RawSplits:
        root = self._root_dir(_EXPECTED)
        names, files, labels = self._scan(root)
        size = self.image_size
        cache_name = f"imagefolder-{size or 'native'}-{_fingerprint(root, size, files)}.uint8.pt"
        dirs = cache_dirs(root)
        for folder in dirs:
            if (folder / cache_name).is_file():
                payload = _read_cache(folder / cache_name)
                if payload is not None:
                    self.cache_path = folder / cache_name
                    return _splits(payload)
        count = len(files["train"]) + len(files["test"])
        log.info("decoding %d images under %s (cached afterwards)", count, root)
        train_x = decode_images([f.path for f in files["train"]], size)
        test_x = decode_images([f.path for f in files["test"]], size)
        if train_x.shape[1:] != test_x.shape[1:]:
            raise NagoError(
                f"dataset.image_size=null: images differ in size ({files['train'][0].path} is "
                f"{train_x.shape[3]}x{train_x.shape[2]}, {files['test'][0].path} is "
                f"{test_x.shape[3]}x{test_x.shape[2]}); set dataset.image_size to resize them"
            )
        payload = {
            "train_x": train_x,
            "train_y": torch.tensor(labels["train"], dtype=torch.int64),
            "test_x": test_x,
            "test_y": torch.tensor(labels["test"], dtype=torch.int64),
            "class_names": names,
        }
        self.cache_path = _write_cache(dirs, cache_name, payload)
        return _splits(payload)
