"""What Amphorae keeps between calls follows the disk (issue 12: supervision and
heartbeats look at every load balancer every few seconds)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from pathlib import Path

from lbaas.dataplane import spec as s
from lbaas.dataplane.amphora import Amphorae, AmphoraSettings
from tests.unit.dataplane.examples import http_everything

A = "aaaaaaaa-0000-4000-8000-000000000001"
B = "bbbbbbbb-0000-4000-8000-000000000002"


def _age(path: Path, seconds: float = 10.0) -> None:
    """Make ``path``'s mtime ``seconds`` old (a listing of it is then kept)."""
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_lb_ids_follow_directories_made_and_removed(tmp_path: Path) -> None:
    base = tmp_path / "lb"
    amphorae = Amphorae(AmphoraSettings(base_path=base))
    (base / A).mkdir()
    (base / A / "haproxy.cfg").write_text("")
    _age(base)
    assert amphorae.lb_ids() == [A]
    assert amphorae.lb_ids() == [A]  # kept: the directory did not change
    (base / B).mkdir()
    (base / B / "spec.json").write_text("{}")
    assert amphorae.lb_ids() == [A, B]
    _age(base)
    assert amphorae.lb_ids() == [A, B]
    shutil.rmtree(base / A)
    assert amphorae.lb_ids() == [B]


def test_last_spec_is_read_again_when_spec_json_is_replaced(tmp_path: Path) -> None:
    amphorae = Amphorae(AmphoraSettings(base_path=tmp_path / "lb"))
    lb = dataclasses.replace(http_everything(), id=A)
    path = amphorae.files(A).spec
    assert amphorae.last_spec(A) is None
    path.parent.mkdir(parents=True)
    path.write_text(s.to_json(lb))
    assert amphorae.last_spec(A) == lb
    assert amphorae.last_spec(A) is amphorae.last_spec(A)  # parsed once
    renamed = dataclasses.replace(lb, project_id="another")
    tmp = path.with_name("spec.json.tmp")
    tmp.write_text(s.to_json(renamed))
    tmp.replace(path)  # as an apply writes it
    assert amphorae.last_spec(A) == renamed
    path.unlink()
    assert amphorae.last_spec(A) is None
