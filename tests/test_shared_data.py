"""Tests that read ../shared/data skip when it is absent, but fail on CI (CI=true)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

PROBE = textwrap.dedent("""
    import pytest
    from shared_data import needs_shared, require_shared

    ABSENT = {absent!r}

    @needs_shared(ABSENT)
    @pytest.mark.parametrize("n", [1, 2])
    def test_marked(n, tmp_path):
        pass

    def test_called():
        require_shared(ABSENT)

    @needs_shared({present!r})
    def test_present():
        require_shared({present!r})
""")


@pytest.mark.parametrize(("ci", "summary"), [("", "1 passed, 3 skipped"), ("true", "3 failed, 1 passed")])
def test_missing_shared_data_skips_but_fails_on_ci(tmp_path: Path, ci: str, summary: str) -> None:
    probe = tmp_path / "test_probe.py"
    probe.write_text(PROBE.format(absent=str(tmp_path / "no-such-data"), present=str(HERE)))
    env = {**os.environ, "CI": ci, "PYTHONPATH": str(HERE)}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-rA", str(probe)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert f"{summary} in" in proc.stdout, proc.stdout
    assert "no-such-data absent (shared data)" in proc.stdout
