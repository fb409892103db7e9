"""Tests of the data layer: DataModules, splits, caching, safe unpickling and batch transforms."""

from __future__ import annotations

import gzip
import math
import os
import pickle
import re
import struct
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from PIL import Image
from shared_data import extract_cifar_jpgs, require_shared
from torch.nn import functional as F

from nago_pl.data import (
    BatchTransform,
    CifarDataModule,
    DigitsDataModule,
    IdxDataModule,
    ImageDataModule,
    ImageFolderDataModule,
)
from nago_pl.errors import NagoError

SHARED = Path(__file__).parents[1] / "../shared/data"
FASHION = SHARED / "fashion-mnist"
CIFAR10_NAMES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]


# --------------------------------------------------------------------------- digits


@pytest.fixture(scope="module")
def digits() -> DigitsDataModule:
    dm = DigitsDataModule()
    dm.setup("fit")
    return dm


def test_digits_shapes_and_split_sizes(digits: DigitsDataModule) -> None:
    assert (digits.num_classes, digits.in_channels, digits.image_size) == (10, 1, 8)
    assert digits.class_names == [str(i) for i in range(10)]
    assert digits.test_size == round(0.2 * 1797)
    assert digits.train_size + digits.val_size + digits.test_size == 1797
    assert digits.val_size == round(0.1 * (1797 - digits.test_size))
    for data, size in [
        (digits.train_set, digits.train_size),
        (digits.val_set, digits.val_size),
        (digits.test_set, digits.test_size),
    ]:
        assert data.x.shape == (size, 1, 8, 8) and data.x.dtype == torch.uint8
        assert data.y.shape == (size,) and data.y.dtype == torch.int64
    assert int(digits.train_set.x.max()) == 255  # 0..16 scaled to the full uint8 range
    train, val = set(digits.train_indices.tolist()), set(digits.val_indices.tolist())
    assert not train & val
    assert train | val == set(range(digits.train_size + digits.val_size))
    # stratified: every class is in the validation split
    assert torch.bincount(digits.val_set.y, minlength=10).min() >= 10


def test_digits_statistics_are_from_the_training_split(digits: DigitsDataModule) -> None:
    pixels = digits.train_set.x.double() / 255
    assert digits.mean == pytest.approx((pixels.mean().item(),), rel=1e-9)
    assert digits.std == pytest.approx((pixels.std(unbiased=False).item(),), rel=1e-9)


def test_digits_split_seed_controls_val_but_not_test(digits: DigitsDataModule) -> None:
    same = DigitsDataModule(split_seed=0)
    other = DigitsDataModule(split_seed=1)
    same.setup("fit")
    other.setup("fit")
    assert torch.equal(same.val_indices, digits.val_indices)
    assert not torch.equal(other.val_indices, digits.val_indices)
    assert torch.equal(other.test_set.x, digits.test_set.x)
    assert torch.equal(other.test_set.y, digits.test_set.y)


def test_setup_is_idempotent(digits: DigitsDataModule) -> None:
    train_set, transform = digits.train_set, digits.batch_transform
    digits.setup("fit")
    digits.setup("test")
    assert digits.train_set is train_set and digits.batch_transform is transform


def test_loaders_yield_uint8_batches(digits: DigitsDataModule) -> None:
    dm = DigitsDataModule(batch_size=100, eval_batch_size=50)
    dm.setup("fit")
    train = dm.train_dataloader()
    assert len(train) == math.ceil(dm.train_size / 100)
    sizes = [len(y) for _, y in train]
    assert sum(sizes) == dm.train_size and sizes[-1] == dm.train_size % 100  # no drop_last
    x, y = next(iter(train))
    assert x.shape == (100, 1, 8, 8) and x.dtype == torch.uint8 and y.dtype == torch.int64
    val_y = torch.cat([y for _, y in dm.val_dataloader()])
    assert torch.equal(val_y, dm.val_set.y)  # fixed order
    assert len(next(iter(dm.test_dataloader()))[1]) == 50


def test_train_loader_shuffle_follows_seed(digits: DigitsDataModule) -> None:
    def first_labels(seed: int) -> torch.Tensor:
        L.seed_everything(seed, verbose=False)
        return next(iter(digits.train_dataloader()))[1]

    assert torch.equal(first_labels(3), first_labels(3))
    assert not torch.equal(first_labels(3), first_labels(4))
    assert not torch.equal(first_labels(3), digits.train_set.y[:64])


def test_max_train_samples_and_resize() -> None:
    full = DigitsDataModule()
    full.setup()
    dm = DigitsDataModule(max_train_samples=100, image_size=16)
    dm.setup()
    assert dm.train_size == 100 and dm.val_size == full.val_size
    assert set(dm.train_indices.tolist()) <= set(full.train_indices.tolist())
    assert torch.bincount(dm.train_set.y, minlength=10).tolist() == [10] * 10
    assert dm.image_size == 16 and dm.train_set.x.shape[1:] == (1, 16, 16)
    assert dm.test_set.x.shape[1:] == (1, 16, 16)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"val_fraction": 0.0}, "dataset.val_fraction"),
        ({"val_fraction": 1.5}, "dataset.val_fraction"),
        ({"batch_size": 0}, "dataset.batch_size"),
        ({"batch_size": 2.5}, "dataset.batch_size"),
        ({"eval_batch_size": -1}, "dataset.eval_batch_size"),
        ({"image_size": 4}, "dataset.image_size"),
        ({"max_train_samples": 0}, "dataset.max_train_samples"),
        ({"num_workers": -1}, "dataset.num_workers"),
        ({"crop_padding": -2}, "dataset.crop_padding"),
        ({"cutout": -1}, "dataset.cutout"),
        ({"hflip": "yes"}, "dataset.hflip"),
        ({"split_seed": -1}, "dataset.split_seed"),
    ],
)
def test_bad_arguments_are_rejected(kwargs: dict, name: str) -> None:
    with pytest.raises(NagoError, match=re.escape(name)):
        DigitsDataModule(**kwargs)


# --------------------------------------------------------------------------- IDX


def write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if path.suffix == ".gz":
        data = gzip.compress(data)
    path.write_bytes(data)


def write_idx_folder(folder: Path, n_train: int = 40, n_test: int = 10, gz: bool = False) -> None:
    rng = np.random.default_rng(0)
    ext = ".gz" if gz else ""
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in [("train", n_train), ("t10k", n_test)]:
        write_idx(folder / f"{prefix}-images-idx3-ubyte{ext}", rng.integers(0, 256, (n, 12, 12)))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{ext}", np.arange(n) % 4)


@pytest.fixture(scope="module")
def fashion() -> IdxDataModule:
    require_shared(FASHION)
    dm = IdxDataModule(root=str(FASHION))
    dm.setup("fit")
    return dm


def test_idx_real_fashion_mnist(fashion: IdxDataModule) -> None:
    assert fashion.train_size + fashion.val_size == 60000
    assert fashion.val_size == 6000 and fashion.test_size == 10000
    assert (fashion.num_classes, fashion.in_channels, fashion.image_size) == (10, 1, 28)
    for data in (fashion.train_set, fashion.val_set, fashion.test_set):
        assert int(data.y.min()) == 0 and int(data.y.max()) == 9
    assert torch.bincount(fashion.test_set.y).tolist() == [1000] * 10
    assert 0.2 < fashion.mean[0] < 0.4 and 0.25 < fashion.std[0] < 0.45
    x, y = next(iter(fashion.train_dataloader()))
    assert x.shape == (128, 1, 28, 28) and x.dtype == torch.uint8 and y.shape == (128,)


def test_idx_uncompressed_with_class_names(tmp_path: Path) -> None:
    write_idx_folder(tmp_path)
    (tmp_path / "class_names.txt").write_text("a\nb\nc\nd\n")
    dm = IdxDataModule(root=str(tmp_path), val_fraction=0.25)
    dm.setup()
    assert dm.class_names == ["a", "b", "c", "d"] and dm.num_classes == 4
    assert (dm.train_size, dm.val_size, dm.test_size) == (30, 10, 10)
    raw = np.frombuffer((tmp_path / "t10k-images-idx3-ubyte").read_bytes()[16:], np.uint8)
    assert torch.equal(dm.test_set.x.flatten(), torch.from_numpy(raw.copy()))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda b: b[:-7], "truncated"),
        (lambda b: b + b"\0", "trailing bytes"),
        (lambda b: b"\x01\x02" + b[2:], "bad magic"),
        (lambda b: b[:10], "truncated IDX header"),
    ],
)
def test_idx_malformed_file(tmp_path: Path, damage, message: str) -> None:
    write_idx_folder(tmp_path)
    target = tmp_path / "train-images-idx3-ubyte"
    target.write_bytes(damage(target.read_bytes()))
    with pytest.raises(NagoError, match=re.escape(str(target))) as info:
        IdxDataModule(root=str(tmp_path)).setup()
    assert message in str(info.value)


def test_idx_truncated_gzip_and_count_mismatch(tmp_path: Path) -> None:
    write_idx_folder(tmp_path, gz=True)
    target = tmp_path / "t10k-labels-idx1-ubyte.gz"
    target.write_bytes(target.read_bytes()[:-12])
    with pytest.raises(NagoError, match=re.escape(str(target))):
        IdxDataModule(root=str(tmp_path)).setup()
    write_idx(target, np.zeros(9))  # 10 test images but 9 labels
    with pytest.raises(NagoError, match="10 images but t10k-labels-idx1-ubyte.gz has 9 labels"):
        IdxDataModule(root=str(tmp_path)).setup()


def test_idx_labels_must_fit_the_class_names(tmp_path: Path) -> None:
    write_idx_folder(tmp_path)
    (tmp_path / "class_names.txt").write_text("a\nb\nc\n")
    with pytest.raises(NagoError, match=r"labels range over 0\.\.3; expected 0\.\.2"):
        IdxDataModule(root=str(tmp_path)).setup()


def test_idx_missing_files_are_listed(tmp_path: Path) -> None:
    write_idx_folder(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(NagoError, match=r"missing: t10k-labels-idx1-ubyte\)"):
        IdxDataModule(root=str(tmp_path)).setup()


# --------------------------------------------------------------------------- CIFAR pickles


def write_cifar10(folder: Path, n: int = 20, protocol: int = 2) -> np.ndarray:
    """Official layout with py2-style bytes keys; returns the test batch's data rows."""
    rng = np.random.default_rng(1)
    folder.mkdir(parents=True)
    names = [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]
    for name in names:
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        batch = {
            b"batch_label": name.encode(),
            b"labels": [int(v) for v in rng.integers(0, 10, n)],
            b"data": data,
            b"filenames": [f"img_{i}.png".encode() for i in range(n)],
        }
        (folder / name).write_bytes(pickle.dumps(batch, protocol=protocol))
    meta = {b"label_names": [c.encode() for c in CIFAR10_NAMES], b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=protocol))
    return data


def test_cifar10_pickles(tmp_path: Path) -> None:
    test_data = write_cifar10(tmp_path / "cifar-10-batches-py")
    # the official files were written with numpy 1.x, whose pickles name numpy.core
    old_style = tmp_path / "cifar-10-batches-py" / "data_batch_1"
    content = old_style.read_bytes().replace(b"cnumpy._core.", b"cnumpy.core.")
    assert b"cnumpy.core.multiarray\n_reconstruct\n" in content
    old_style.write_bytes(content)
    for root in (tmp_path, tmp_path / "cifar-10-batches-py"):
        dm = CifarDataModule(root=str(root))
        dm.setup("fit")
        assert dm.class_names == CIFAR10_NAMES
        assert (dm.num_classes, dm.in_channels, dm.image_size) == (10, 3, 32)
        assert (dm.train_size + dm.val_size, dm.val_size, dm.test_size) == (100, 10, 20)
        assert torch.equal(dm.test_set.x, torch.from_numpy(test_data.reshape(-1, 3, 32, 32)))
    from nago_pl.config import compose, instantiate_checked

    configured = instantiate_checked(
        compose("train", ["dataset=cifar10", f"dataset.root={tmp_path}"]).dataset, "dataset"
    )
    assert (configured.crop_padding, configured.hflip) == (4, True)  # conf/dataset/cifar10.yaml


def test_cifar100_pickles(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(2)
    for name, n in [("train", 300), ("test", 50)]:
        batch = {
            "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            "fine_labels": [int(v) for v in rng.integers(0, 100, n)],
            "coarse_labels": [int(v) for v in rng.integers(0, 20, n)],
        }
        (folder / name).write_bytes(pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL))
    meta = {"fine_label_names": [f"c{i}" for i in range(100)], "coarse_label_names": ["x"] * 20}
    (folder / "meta").write_bytes(pickle.dumps(meta, protocol=4))
    dm = CifarDataModule(root=str(tmp_path), val_fraction=0.2)
    dm.setup()
    assert dm.num_classes == 100 and dm.class_names[7] == "c7"
    assert (dm.train_size, dm.val_size, dm.test_size) == (240, 60, 50)


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("evil", ["os.system", "builtins.eval"])
def test_cifar_forbidden_global_never_runs(tmp_path: Path, evil: str) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar10(folder)
    marker = tmp_path / "pwned"
    payload = _Exploit(marker) if evil == "os.system" else _EvalExploit(marker)
    target = folder / "data_batch_3"
    target.write_bytes(pickle.dumps({b"data": payload, b"labels": []}, protocol=2))
    with pytest.raises(NagoError, match="forbidden global") as info:
        CifarDataModule(root=str(folder)).setup()
    assert str(target) in str(info.value)
    assert not marker.exists()


class _EvalExploit(_Exploit):
    def __reduce__(self):
        return (eval, (f"open({str(self.marker)!r}, 'w')",))


def test_cifar_layout_errors(tmp_path: Path) -> None:
    write_cifar10(tmp_path / "cifar-10-batches-py")
    (tmp_path / "cifar-100-python").mkdir()
    with pytest.raises(NagoError, match="holds both"):
        CifarDataModule(root=str(tmp_path)).setup()
    (tmp_path / "cifar-10-batches-py" / "data_batch_4").unlink()
    with pytest.raises(NagoError, match=r"missing: data_batch_4\)"):
        CifarDataModule(root=str(tmp_path / "cifar-10-batches-py")).setup()


# --------------------------------------------------------------------------- ImageFolder


@pytest.fixture(scope="module")
def cifar_jpg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 images per class per split extracted from the real CIFAR-10 JPEG tar."""
    return extract_cifar_jpgs(tmp_path_factory.mktemp("cifar_jpg"), per_class=10)


def _refuse_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("decoded although a cache exists")

    monkeypatch.setattr(Image, "open", refuse)


def test_image_folder_real_cifar_jpegs(cifar_jpg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dm = ImageFolderDataModule(root=str(cifar_jpg))
    dm.setup("fit")
    assert dm.class_names == CIFAR10_NAMES
    assert (dm.num_classes, dm.in_channels, dm.image_size) == (10, 3, 32)
    assert (dm.train_size + dm.val_size, dm.val_size, dm.test_size) == (100, 10, 100)
    assert dm.cache_path is not None and dm.cache_path.is_file()
    assert dm.cache_path.parent == cifar_jpg / ".nago_cache"
    with Image.open(cifar_jpg / "test" / "airplane" / "0000.jpg") as im:
        first = torch.from_numpy(np.array(im.convert("RGB"))).permute(2, 0, 1)
    assert torch.equal(dm.test_set.x[0], first)

    _refuse_decoding(monkeypatch)
    again = ImageFolderDataModule(root=str(cifar_jpg))
    again.setup("fit")
    assert again.cache_path == dm.cache_path
    assert torch.equal(again.train_set.x, dm.train_set.x)
    assert torch.equal(again.test_set.y, dm.test_set.y)


def test_image_folder_resize(cifar_jpg: Path) -> None:
    native = ImageFolderDataModule(root=str(cifar_jpg))
    native.setup()
    dm = ImageFolderDataModule(root=str(cifar_jpg), image_size=16)
    dm.setup()
    assert dm.image_size == 16 and dm.train_set.x.shape[1:] == (3, 16, 16)
    assert dm.cache_path != native.cache_path and "-16-" in dm.cache_path.name
    small = F.interpolate(native.test_set.x.float(), size=16, mode="bilinear", antialias=True)
    assert (dm.test_set.x.float() - small).abs().mean() < 8  # a faithful downscale


def write_pool(root: Path, sizes: list[tuple[int, int]]) -> None:
    """3 classes x len(sizes) images with mixed formats, sizes, modes and extension case."""
    rng = np.random.default_rng(3)
    formats = [("png", "PNG"), ("JPG", "JPEG"), ("bmp", "BMP"), ("webp", "WEBP"), ("PNG", "PNG")]
    for c, name in enumerate(["emu", "cat", "dog"]):
        folder = root / name
        folder.mkdir(parents=True)
        for i, (w, h) in enumerate(sizes):
            pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            image = Image.fromarray(pixels).convert("L" if i == 1 else "RGB")
            ext, fmt = formats[(i + c) % len(formats)]
            image.save(folder / f"img{i}.{ext}", format=fmt)
        (folder / "notes.txt").write_text("not an image")
        (folder / ".hidden.png").write_bytes(b"junk")


def test_image_folder_pool_with_mixed_sizes(tmp_path: Path) -> None:
    write_pool(tmp_path, [(12, 12), (16, 10), (12, 12), (9, 9), (20, 20)])
    with pytest.raises(NagoError, match=r"dataset\.image_size") as info:
        ImageFolderDataModule(root=str(tmp_path)).setup()
    assert re.search(r"is \d+x\d+, .* is \d+x\d+", str(info.value))
    assert "12x12" in str(info.value)
    dm = ImageFolderDataModule(root=str(tmp_path), image_size=8, val_fraction=0.25)
    dm.setup()
    assert dm.class_names == ["cat", "dog", "emu"] and dm.in_channels == 3
    assert dm.test_size == 3 and torch.bincount(dm.test_set.y).tolist() == [1, 1, 1]
    assert (dm.train_size, dm.val_size) == (9, 3)
    assert dm.train_set.x.shape[1:] == (3, 8, 8)


def test_image_folder_cache_invalidation_and_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "pool"
    write_pool(root, [(10, 10)] * 5)
    first = ImageFolderDataModule(root=str(root))
    first.setup()
    assert first.cache_path is not None and first.cache_path.parent == root / ".nago_cache"
    # same file names, one file rewritten with other content: decoded again under a new key
    Image.fromarray(np.full((10, 10, 3), 7, np.uint8)).save(root / "cat" / "img4.png")
    edited = ImageFolderDataModule(root=str(root))
    edited.setup()
    assert edited.cache_path != first.cache_path
    images = torch.cat([edited.train_set.x, edited.val_set.x, edited.test_set.x])
    assert int((images == 7).flatten(1).all(1).sum()) == 1
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(root / "cat" / "new.png")
    changed = ImageFolderDataModule(root=str(root))
    changed.setup()  # a file was added
    assert changed.cache_path not in (first.cache_path, edited.cache_path)
    assert changed.train_size + changed.val_size + changed.test_size == 16
    assert list((root / ".nago_cache").glob("*.uint8.pt")) == [changed.cache_path]

    # a read-only tree (mode r-x, like ../shared/data; honoured even as root): user cache
    other = tmp_path / "other"
    write_pool(other, [(10, 10)] * 5)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    other.chmod(0o555)
    try:
        dm = ImageFolderDataModule(root=str(other))
        dm.setup()
        assert not (other / ".nago_cache").exists()
        assert dm.cache_path is not None and dm.cache_path.is_file()
        assert dm.cache_path.is_relative_to(tmp_path / "xdg" / "nago_pl")
        _refuse_decoding(monkeypatch)
        reused = ImageFolderDataModule(root=str(other))
        reused.setup()
        assert reused.cache_path == dm.cache_path
    finally:
        other.chmod(0o755)


def test_image_folder_errors(tmp_path: Path) -> None:
    write_pool(tmp_path / "pool", [(10, 10)] * 5)
    bad = tmp_path / "pool" / "dog" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 definitely not a jpeg")
    with pytest.raises(NagoError, match=re.escape(str(bad))):
        ImageFolderDataModule(root=str(tmp_path / "pool")).setup()

    split = tmp_path / "split"
    write_pool(split / "train", [(10, 10)] * 5)
    with pytest.raises(NagoError, match="neither test/ nor val/"):
        ImageFolderDataModule(root=str(split)).setup()
    write_pool(split / "val", [(10, 10)] * 2)
    dm = ImageFolderDataModule(root=str(split))
    dm.setup()
    assert dm.test_size == 6 and dm.train_size + dm.val_size == 15
    (split / "val" / "cow").mkdir()
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(split / "val" / "cow" / "a.png")
    with pytest.raises(NagoError, match=r"only in val: \['cow'\]"):
        ImageFolderDataModule(root=str(split)).setup()
    (split / "train" / "cow").mkdir()
    with pytest.raises(NagoError, match="holds no images"):
        ImageFolderDataModule(root=str(split)).setup()


# --------------------------------------------------------------------------- bad roots


@pytest.mark.parametrize("cls", [IdxDataModule, CifarDataModule, ImageFolderDataModule])
def test_bad_roots(cls: type[ImageDataModule], tmp_path: Path) -> None:
    with pytest.raises(NagoError, match="dataset.root is not set"):
        cls().setup()
    missing = tmp_path / "does-not-exist"
    with pytest.raises(NagoError, match=re.escape(f"dataset.root={missing}: does not exist")):
        cls(root=str(missing)).setup()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(NagoError, match=re.escape(str(empty))):
        cls(root=str(empty)).setup()


# --------------------------------------------------------------------------- augmentation


def test_eval_transform_is_exactly_normalisation() -> None:
    x = torch.randint(0, 256, (16, 3, 8, 8), dtype=torch.uint8)
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    transform = BatchTransform(mean, std, crop_padding=2, hflip=True, cutout=3)
    mean_t, std_t = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    expected = (x.float() / 255 - mean_t) / std_t
    out = transform(x, train=False)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, expected, rtol=1e-6, atol=1e-6)
    augmented = transform(x, train=True)
    assert augmented.shape == x.shape and augmented.dtype == torch.float32
    assert not torch.equal(augmented, out)


def test_hflip_flips_about_half_and_is_seeded() -> None:
    x = torch.arange(16, dtype=torch.uint8).view(1, 1, 1, 16).expand(4000, 2, 5, 16).contiguous()
    transform = BatchTransform((0.0, 0.0), (1.0, 1.0), hflip=True)
    torch.manual_seed(0)
    out = transform(x, train=True)
    plain, flipped = x.float() / 255, x.flip(3).float() / 255
    is_flipped = (out == flipped).flatten(1).all(1)
    is_plain = (out == plain).flatten(1).all(1)
    assert bool((is_flipped ^ is_plain).all())
    assert 0.45 < is_flipped.float().mean().item() < 0.55
    torch.manual_seed(0)
    assert torch.equal(transform(x, train=True), out)


def test_random_crop_is_a_bounded_translation() -> None:
    p, n = 3, 2000
    image = torch.arange(1, 226, dtype=torch.uint8).view(1, 1, 15, 15)
    transform = BatchTransform((0.0,), (1.0,), crop_padding=p)
    torch.manual_seed(0)
    out = (transform(image.expand(n, 1, 15, 15), train=True) * 255).round().to(torch.uint8)
    padded = F.pad(image[0, 0], (p, p, p, p))
    shifts = set()
    for sample in out[:, 0]:
        row, col = (sample == image[0, 0, 7, 7]).nonzero()[0].tolist()  # centre pixel moved here
        dy, dx = row - 7, col - 7
        assert abs(dy) <= p and abs(dx) <= p
        assert torch.equal(sample, padded[p - dy : p - dy + 15, p - dx : p - dx + 15])
        shifts.add((dy, dx))
    assert len(shifts) == (2 * p + 1) ** 2


def test_cutout_zeroes_one_square_per_sample() -> None:
    side, n = 6, 500
    x = torch.full((n, 3, 16, 16), 200, dtype=torch.uint8)
    # zeroed after normalisation: a cut pixel is 0, not (0 - mean) / std
    transform = BatchTransform((0.25,) * 3, (0.5,) * 3, cutout=side)
    torch.manual_seed(0)
    zero = transform(x, train=True) == 0
    assert torch.equal(zero, zero[:, :1].expand_as(zero))  # same square in every channel
    full_squares = 0
    for mask in zero[:, 0]:
        rows, cols = mask.any(1).nonzero()[:, 0], mask.any(0).nonzero()[:, 0]
        assert len(rows) > 0
        height, width = len(rows), len(cols)
        assert height <= side and width <= side
        assert rows[-1] - rows[0] + 1 == height and cols[-1] - cols[0] + 1 == width
        assert int(mask.sum()) == height * width  # a filled rectangle
        full_squares += (height, width) == (side, side)
    # clipped only when the centre lies near a border: P(full square) = (11 / 16) ** 2 ~ 0.47
    assert 0.38 < full_squares / n < 0.57


# --------------------------------------------------------------------------- Lightning hook


class _Probe(L.LightningModule):
    """Records whether the batches it receives are exactly the normalised raw batches."""

    def __init__(self, dm: ImageDataModule) -> None:
        super().__init__()
        self.dm = dm
        self.layer = torch.nn.Linear(64, 10)
        self.raw: torch.Tensor | None = None
        self.seen: dict[str, list[bool]] = {"train": [], "val": [], "test": []}

    def on_before_batch_transfer(self, batch, dataloader_idx):
        self.raw = batch[0].clone()
        return batch

    def _record(self, stage: str, batch) -> torch.Tensor:
        x, y = batch
        assert x.dtype == torch.float32 and y.dtype == torch.int64
        self.seen[stage].append(torch.equal(x, self.dm.batch_transform(self.raw, train=False)))
        return F.cross_entropy(self.layer(x.flatten(1)), y)

    def training_step(self, batch, batch_idx):
        return self._record("train", batch)

    def validation_step(self, batch, batch_idx):
        self._record("val", batch)

    def test_step(self, batch, batch_idx):
        self._record("test", batch)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


@pytest.mark.filterwarnings("ignore:.*does not have many workers")
@pytest.mark.filterwarnings("ignore:You have overridden `on_before_batch_transfer`")
def test_on_after_batch_transfer_in_a_real_trainer() -> None:
    L.seed_everything(0, verbose=False)
    dm = DigitsDataModule(crop_padding=1, hflip=True, cutout=4)
    dm.setup("fit")
    model = _Probe(dm)
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=1,
        limit_train_batches=3,
        limit_val_batches=2,
        limit_test_batches=2,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, datamodule=dm)
    trainer.test(model, datamodule=dm, verbose=False)
    assert model.seen == {"train": [False] * 3, "val": [True] * 2, "test": [True] * 2}


def test_on_after_batch_transfer_without_trainer_only_normalises() -> None:
    dm = DigitsDataModule(cutout=4, hflip=True)
    dm.setup()
    x, y = next(iter(dm.train_dataloader()))
    out, labels = dm.on_after_batch_transfer((x, y), 0)
    assert labels is y
    assert torch.equal(out, dm.batch_transform(x, train=False))
