"""BoTorch's fused C++ hypervolume kernel (qLogNEHVI), built once per virtual environment.

BoTorch compiles it with ``torch.utils.cpp_extension.load`` (ninja) on first use, into
``$TORCH_EXTENSIONS_DIR`` or else a cache shared by every environment of the user
(``~/.cache/torch_extensions``), where another environment's build invalidates this one's and
the next search silently spends 40-60 s rebuilding it. The package therefore points
``TORCH_EXTENSIONS_DIR`` into the active virtual environment (unless the user set it) and
``make setup`` builds the kernel there; a search that still has to build it says so.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

#: The extension's name in BoTorch (``botorch.acquisition.multi_objective.logei``).
EXTENSION = "logei_fused_ext"
#: The build folder inside a virtual environment.
VENV_FOLDER = "torch_extensions"


def use_venv_build_dir() -> None:
    """Set ``TORCH_EXTENSIONS_DIR`` to ``<venv>/torch_extensions`` when running in a virtual
    environment and the variable is unset (outside a venv torch's default stays)."""
    if "TORCH_EXTENSIONS_DIR" not in os.environ and sys.prefix != sys.base_prefix:
        os.environ["TORCH_EXTENSIONS_DIR"] = str(Path(sys.prefix) / VENV_FOLDER)


def build_dir() -> Path:
    """The kernel's build folder (torch's rule: ``$TORCH_EXTENSIONS_DIR/<name>``, else the
    user's cache)."""
    from torch.utils.cpp_extension import _get_build_directory

    return Path(_get_build_directory(EXTENSION, verbose=False))


def load_fused_kernel(say: Callable[[str], object] = print) -> None:
    """Load BoTorch's fused kernel now (building it first if needed, with one line through
    ``say``), so no proposal pays for it unannounced. A BoTorch without the kernel, or a
    failed build (BoTorch warns and uses Python), is left as BoTorch handles it."""
    use_venv_build_dir()
    from botorch.acquisition.multi_objective import logei

    load = getattr(logei, "_try_load_fused_kernel", None)
    if load is None or getattr(logei, "_load_attempted", False):
        return
    folder = build_dir()
    if not (folder / f"{EXTENSION}.so").is_file():
        say(f"building BoTorch's fused hypervolume kernel in {folder} (once, about a minute)")
    load()
