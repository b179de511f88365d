"""schemathesis against the live gateway: docs/openapi.json's every operation, valid and invalid requests.

The gateway runs in the test's event loop with the fake model server behind it; schemathesis
(its Python API: a hypothesis strategy of cases per operation) sends requests from a thread with
the API token. Each answer must be no 5xx and exactly as documented: a documented status, its
content type, a body that fits the schema, the documented headers; an invalid request must be
refused (4xx). Examples are bounded and the seed is fixed, so a run is repeatable.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import hypothesis
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api_support import api_gateway
from tests.fakes.gateway_harness import TOKEN
from tests.fakes.model_server import FakeModelServer

DOCS = Path(__file__).resolve().parent.parent / "docs" / "openapi.json"
SEED = 31
EXAMPLES = {schemathesis.GenerationMode.POSITIVE: 5, schemathesis.GenerationMode.NEGATIVE: 5}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]


def fuzz(base_url: str) -> tuple[Counter[str], Counter[tuple[str, int]]]:
    """Run every operation of the document: the requests sent by operation, and (operation, status) counts."""
    schema = schemathesis.openapi.from_path(str(DOCS))
    sent: Counter[str] = Counter()
    statuses: Counter[tuple[str, int]] = Counter()
    with requests.Session() as session:
        for result in schema.get_all_operations():
            operation = result.ok()
            for mode, examples in EXAMPLES.items():
                checks = CHECKS + ([negative_data_rejection] if mode is schemathesis.GenerationMode.NEGATIVE else [])

                @hypothesis.seed(SEED)
                @settings(max_examples=examples, deadline=None, database=None, phases=[hypothesis.Phase.generate],
                          suppress_health_check=list(HealthCheck))
                @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
                def run(case: schemathesis.Case) -> None:
                    sent[operation.label] += 1
                    response = case.call_and_validate(base_url=base_url, session=session, checks=checks,
                                                      headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
                    statuses[operation.label, response.status_code] += 1

                try:
                    run()
                except hypothesis.errors.Unsatisfiable:
                    # nothing of this operation can be made invalid (no parameters, no body)
                    assert mode is schemathesis.GenerationMode.NEGATIVE, operation.label
    print(f"schemathesis: {len(sent)} operations, {sum(sent.values())} requests")
    return sent, statuses


async def test_no_request_gets_a_5xx_and_every_answer_is_as_documented(
        home: Path, model_server: FakeModelServer) -> None:
    async with api_gateway(home, model_server) as (gateway, _):
        sent, statuses = await asyncio.to_thread(fuzz, gateway.url.rstrip("/"))
    assert len(sent) >= 30  # every documented operation was fuzzed
    assert sum(sent.values()) >= 250
    # the fuzz reached the agent: some generated requests ran whole turns, others were refused
    for operation in ("POST /v1/chat/completions", "POST /v1/responses"):
        assert statuses[operation, 200] >= 1 and statuses[operation, 400] >= 1, (operation, statuses)
