"""Property-based requests from the served OpenAPI document (schemathesis).

Every operation of the document gets generated requests (valid and invalid
bodies, paths and query strings); no request may cause a 5xx, and responses
must match the document (status codes, content types, schemas). The number
of requests tried is printed at the end of the run ("schemathesis: N requests
tried"), and a run of every case that tried fewer than :data:`MIN_REQUESTS`
fails (tests/conftest.py): issue 9 asks for at least 5,000 per CI run.
:data:`EXAMPLES` per case gives about 5,500 (133 cases; some exhaust their input)
in about 5 minutes on two xdist workers of this shared 2-core machine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from lbaas.api.app import create_app
from lbaas.drivers.noop import NoopDriver
from lbaas.service import Service
from tests.conftest import make_settings

REQUESTS_PROPERTY = "schemathesis_requests"  # summed by tests/conftest.py
CASES_PROPERTY = "schemathesis_cases"  # how many cases a whole run has
MIN_REQUESTS = 5000
EXAMPLES = 50
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


def _operations() -> list[tuple[str, GenerationMode]]:
    """(operation, mode) pairs; negative data only where there is input to spoil."""
    document: dict[str, Any] = create_app(None).openapi()  # type: ignore[arg-type]
    cases = []
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            label = f"{method.upper()} {path}"
            cases.append((label, GenerationMode.POSITIVE))
            # A path-only operation takes any string: there is no invalid input.
            if op.get("requestBody") or any(p.get("in") != "path"
                                            for p in op.get("parameters", [])):
                cases.append((label, GenerationMode.NEGATIVE))
    return cases


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    tmp: Path = tmp_path_factory.mktemp("schemathesis")
    noop = NoopDriver()
    svc = Service(make_settings(tmp), drivers={"noop": noop, "haproxy": noop})
    svc.start()
    yield schemathesis.openapi.from_asgi("/openapi.json", svc.app)
    svc.stop()


CASES = _operations()


@pytest.mark.parametrize(("label", "mode"), CASES,
                         ids=[f"{label}-{mode.value}" for label, mode in CASES])
def test_no_server_errors_and_responses_match_the_document(
        schema: schemathesis.BaseSchema, label: str, mode: GenerationMode,
        record_property: Callable[[str, object], None]) -> None:
    method, path = label.split(" ", 1)
    operation = schema[path][method]
    sent = [0]

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        sent[0] += 1
        case.validate_response(case.call(), checks=CHECKS)

    try:
        run()
    finally:
        record_property(REQUESTS_PROPERTY, sent[0])
        record_property(CASES_PROPERTY, len(CASES))
        record_property("schemathesis_minimum", MIN_REQUESTS)
