"""``scripts/setup`` says what it does, one line per step, and skips work already done."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STAMP = REPO / ".venv" / ".lbaas-install"


def test_setup_again_installs_nothing() -> None:
    digest = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()
    if not STAMP.exists() or STAMP.read_text().split()[0] != digest:
        pytest.skip("no scripts/setup install recorded in .venv for this pyproject.toml")
    before = STAMP.stat().st_mtime_ns
    proc = subprocess.run([str(REPO / "scripts" / "setup")], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines and all(line.startswith("setup: ") for line in lines), proc.stdout
    assert "setup: Debian packages: already installed" in lines, proc.stdout
    assert any("already installed in .venv (pyproject.toml unchanged)" in line
               for line in lines), proc.stdout
    assert proc.stderr == ""
    assert STAMP.stat().st_mtime_ns == before  # pip did not run
