"""Strict JSON files: NaN and infinities are written as null, never as bare ``NaN``."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any


def finite_or_null(data: Any) -> Any:
    """``data`` with every non-finite float (in nested dicts, lists, tuples) replaced by None."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: finite_or_null(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [finite_or_null(v) for v in data]
    return data


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented strict JSON, atomically (a killed writer leaves the old file)."""
    text = json.dumps(finite_or_null(data), indent=2, allow_nan=False) + "\n"
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    os.replace(partial, path)
