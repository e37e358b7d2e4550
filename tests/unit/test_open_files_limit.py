"""``lbaas serve`` and ``lbaas agent serve`` raise their soft limit of open files:
the in-process agent keeps a stats connection per HAProxy."""

from __future__ import annotations

import resource
import subprocess
import sys

import pytest

SOFT = 256


def _lowered() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (SOFT, hard))


def test_soft_limit_is_raised_to_the_hard_one() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard <= SOFT:
        pytest.skip(f"hard limit {hard}: nothing to raise")
    code = ("import resource\n"
            "from lbaas.cli.main import raise_open_files_limit\n"
            "before = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
            "print(before[0], raise_open_files_limit(), "
            "*resource.getrlimit(resource.RLIMIT_NOFILE))\n")
    out = subprocess.run([sys.executable, "-c", code], preexec_fn=_lowered,
                         capture_output=True, text=True, check=True).stdout.split()
    assert [int(v) for v in out] == [SOFT, hard, hard, hard]
