"""Property-based API fuzzing from the published OpenAPI schema: no input may cause a 5xx.

schemathesis builds hypothesis strategies for every operation of the live backend's schema, in
both positive (schema-valid) and negative (schema-violating) modes; each generated request is sent
with a real API key and the only check is "not a server error". Bounded by ``max_examples``.
"""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hft_platform.devstack.stack import LoopbackStack
from hypothesis import HealthCheck, given, settings
from platform_support import register
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

pytestmark = pytest.mark.slow

OPERATIONS = [
    "POST /v1/users",
    "POST /v1/orders",
    "GET /v1/orders/{order_id}",
    "DELETE /v1/orders/{order_id}",
    "GET /v1/book/{symbol}",
    "GET /healthz",
    "GET /readyz",
    "GET /metrics",
]


@pytest.fixture(scope="module")
def api_schema(stack: LoopbackStack):
    return schemathesis.openapi.from_url(stack.backend_url() + "/openapi.json")


@pytest.fixture(scope="module")
def fuzz_headers(stack: LoopbackStack) -> dict[str, str]:
    with httpx.Client(base_url=stack.backend_url(), timeout=15) as client:
        return register(client, "fuzzer")


def test_schema_lists_every_operation(api_schema) -> None:
    labels = {result.ok().label for result in api_schema.get_all_operations()}
    assert set(OPERATIONS) <= labels


WITHOUT_INPUT = {"GET /healthz", "GET /readyz", "GET /metrics"}  # nothing to make schema-invalid
CASES = [(label, GenerationMode.POSITIVE) for label in OPERATIONS] + [
    (label, GenerationMode.NEGATIVE) for label in OPERATIONS if label not in WITHOUT_INPUT
]


@pytest.mark.parametrize(("label", "mode"), CASES, ids=[f"{label}-{mode.value}" for label, mode in CASES])
def test_no_input_causes_a_server_error(
    api_schema, stack: LoopbackStack, fuzz_headers: dict[str, str], label: str, mode: GenerationMode
) -> None:
    operation = api_schema.find_operation_by_label(label)
    assert operation is not None, label
    calls = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    def check(case) -> None:
        has_key = any(k.lower() == "x-api-key" for k in (case.headers or {}))
        response = case.call(
            base_url=stack.backend_url(), headers=None if has_key else fuzz_headers, timeout=15
        )
        calls.append(response.status_code)
        case.validate_response(response, checks=[not_a_server_error])

    check()
    assert calls, f"expected schemathesis to generate requests for {label}"
    assert all(code < 500 for code in calls), calls
