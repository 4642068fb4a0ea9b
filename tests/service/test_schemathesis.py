"""Property-based requests from the app's own OpenAPI schema: no 5xx, nothing off-schema.

Schemathesis generates requests for every operation (valid ones, ones with a served series fixed
so that the success paths run, and invalid ones); each answer must be a documented status with a
documented content type and body. Bounded: 25 examples per strategy, no shrinking.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode, checks

from tests.service.conftest import NAIVE_KEY, UCM_KEY

pytestmark = pytest.mark.slow

CONFORMANCE = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]
# Invalid requests must be refused, never crash the server.
REFUSAL = [checks.not_a_server_error, checks.content_type_conformance]
EXAMPLES = 25


def _run(strategy, base_url: str, chosen: list) -> None:
    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def exercise(case):
        case.call_and_validate(base_url=base_url, checks=chosen, timeout=60)

    exercise()


def test_api_answers_within_its_schema(server):
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    failures, ran = [], 0
    for result in schema.get_all_operations():
        operation = result.ok()
        names = {p.name for p in operation.query}
        variants = [(GenerationMode.POSITIVE, {}, CONFORMANCE)]
        if "series" in names:
            variants += [
                (GenerationMode.POSITIVE, {"series": key}, CONFORMANCE)
                for key in (NAIVE_KEY, UCM_KEY)
            ]
        if names or operation.body:
            variants.append((GenerationMode.NEGATIVE, {}, REFUSAL))
        for mode, query, chosen in variants:
            strategy = operation.as_strategy(mode, query=query or None)
            try:
                _run(strategy, server.url, chosen)
            except Exception as exc:  # noqa: BLE001 - collect every operation's failure
                failures.append(f"{operation.label} [{mode.value} {query}]: {exc}")
            ran += 1
    assert ran >= 15
    assert not failures, "\n\n".join(failures)
