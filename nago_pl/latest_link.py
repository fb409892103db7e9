"""``latest``: a link beside run directories to the newest one, so a command can name it
(``init_from=runs/search/latest``, ``arch=runs/train/latest/architecture.json``)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

LATEST = "latest"


def point_latest(run_dir: Path) -> Path | None:
    """Point ``<run_dir's parent>/latest`` at ``run_dir`` (a relative symbolic link, replaced
    atomically). Returns the link, or None where it cannot be made: ``run_dir`` is itself
    named ``latest``, a real file or folder of that name is in the way, or the file system
    has no links."""
    run_dir = Path(run_dir)
    link = run_dir.parent / LATEST
    if run_dir.name == LATEST or (link.exists() and not link.is_symlink()):
        return None
    partial = run_dir.parent / f".{LATEST}.{os.getpid()}"
    try:
        partial.unlink(missing_ok=True)
        partial.symlink_to(run_dir.name, target_is_directory=True)
        os.replace(partial, link)
    except OSError:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        return None
    return link
