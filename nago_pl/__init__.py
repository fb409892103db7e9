"""nago-pl: neural architecture search over random-graph architecture generators (NAGO)."""

from nago_pl.fused_kernel import use_venv_build_dir

use_venv_build_dir()  # before anything builds a torch extension: BoTorch's kernel, per venv

from nago_pl.transfer.export import load_model  # noqa: E402

__all__ = ["load_model"]
