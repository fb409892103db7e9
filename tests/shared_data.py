"""The real data of ``../shared/data`` (see its README) for the tests that read it.

A test that needs a file there skips, with the path in its reason, when the file is absent
(users' machines don't have the folder), but fails on CI (``CI=true``), where a missing
data folder would otherwise turn real-data tests into silent skips.
"""

from __future__ import annotations

import functools
import os
import re
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
CIFAR_TAR = SHARED / "cifar10-jpg" / "cifar10-jpg.tar.gz"

Test = TypeVar("Test", bound=Callable[..., Any])


def on_ci() -> bool:
    """Whether the tests run on CI (``CI`` set to true or 1, as CI services do)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def _missing(paths: tuple[Path, ...]) -> str | None:
    absent = [str(p) for p in paths if not Path(p).exists()]
    return f"{', '.join(absent)} absent (shared data)" if absent else None


def require_shared(*paths: Path) -> None:
    """Inside a test or fixture: skip it (fail it on CI) unless every path exists."""
    reason = _missing(paths)
    if reason is None:
        return
    if on_ci():
        pytest.fail(f"{reason}; CI=true needs ../shared/data")
    pytest.skip(reason)


def needs_shared(*paths: Path) -> Callable[[Test], Test]:
    """Decorator of a test function: skip it (fail it on CI) unless every path exists."""
    reason = _missing(paths)

    def decorate(test: Test) -> Test:
        if reason is None:
            return test
        if not on_ci():
            return pytest.mark.skip(reason=reason)(test)

        @functools.wraps(test)  # keeps the signature (fixtures) and the marks (parametrize)
        def fail(*args: Any, **kwargs: Any) -> None:
            pytest.fail(f"{reason}; CI=true needs ../shared/data")

        return fail  # type: ignore[return-value]

    return decorate


def extract_cifar_jpgs(root: Path, per_class: int) -> Path:
    """Inside a test or fixture: the first ``per_class`` images of every class of both splits
    of the real CIFAR-10 JPEG tar, extracted into ``root`` (an ImageFolder tree); skips (fails
    on CI) without the tar."""
    require_shared(CIFAR_TAR)
    counts: dict[str, int] = {}
    with tarfile.open(CIFAR_TAR, "r:gz") as tar:
        for member in tar:
            match = re.fullmatch(r"((?:train|test)/[^/]+)/[^/]+\.jpg", member.name)
            if match and counts.get(match.group(1), 0) < per_class:
                counts[match.group(1)] = counts.get(match.group(1), 0) + 1
                tar.extract(member, root, filter="data")
    assert len(counts) == 20 and set(counts.values()) == {per_class}
    return root
