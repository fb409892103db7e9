"""BoTorch's fused kernel is built into the virtual environment, where every run finds it, and a
search that has to build it says so once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from botorch.acquisition.multi_objective import logei

from nago_pl import fused_kernel

ROOT = Path(__file__).resolve().parents[1]


def test_importing_the_package_points_torch_extensions_into_the_venv() -> None:
    env = {k: v for k, v in os.environ.items() if k != "TORCH_EXTENSIONS_DIR"}
    show = "import nago_pl, os, sys; print(os.environ.get('TORCH_EXTENSIONS_DIR')); print(sys.prefix)"
    folder, prefix = subprocess.run([sys.executable, "-c", show], cwd=ROOT, env=env,
                                    capture_output=True, text=True, check=True).stdout.split()
    if prefix == getattr(sys, "base_prefix", prefix):
        pytest.skip("not running in a virtual environment")
    assert Path(folder) == Path(prefix) / "torch_extensions"
    # a folder the user chose wins
    mine = subprocess.run([sys.executable, "-c", show], cwd=ROOT, capture_output=True, text=True,
                          env={**env, "TORCH_EXTENSIONS_DIR": "/tmp/mine"}, check=True)
    assert mine.stdout.split()[0] == "/tmp/mine"


@pytest.fixture
def fake_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """BoTorch's loader replaced by one that 'builds' into ``tmp_path`` (no compiler run)."""
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    monkeypatch.setattr(logei, "_load_attempted", False)
    built: list[str] = []

    def load() -> None:
        logei._load_attempted = True
        built.append("load")
        (tmp_path / fused_kernel.EXTENSION / f"{fused_kernel.EXTENSION}.so").touch()

    monkeypatch.setattr(logei, "_try_load_fused_kernel", load)
    return built


def test_a_build_at_run_time_is_announced_once(fake_build: list[str], tmp_path: Path) -> None:
    said: list[str] = []
    fused_kernel.load_fused_kernel(said.append)
    fused_kernel.load_fused_kernel(said.append)  # loaded: nothing more to do or say
    assert fake_build == ["load"] and len(said) == 1
    assert "building BoTorch's fused hypervolume kernel" in said[0] and str(tmp_path) in said[0]


def test_a_built_kernel_loads_silently(fake_build: list[str], tmp_path: Path) -> None:
    (tmp_path / fused_kernel.EXTENSION).mkdir()
    (tmp_path / fused_kernel.EXTENSION / f"{fused_kernel.EXTENSION}.so").touch()
    said: list[str] = []
    fused_kernel.load_fused_kernel(said.append)
    assert fake_build == ["load"] and said == []
