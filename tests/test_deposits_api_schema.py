"""Schemathesis against the deposits API's own OpenAPI document, over real HTTP.

The app runs on the dev server with the whole harness (simulator, receiver, worker);
generated requests, valid and invalid, must never get a 5xx or an answer that breaks
the document. Bounded in examples so it stays a few seconds.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from deposits_api import create_app
from tests.harness import running_harness
from tests.servers import serve_in_loop

EXAMPLES_PER_OPERATION = 40
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def fuzz(base_url: str) -> list[str]:
    """Run every operation in both modes; return one line per failing operation."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def run(case) -> None:
                case.call_and_validate(base_url=base_url, checks=CHECKS)

            try:
                run()
            except (Exception, BaseExceptionGroup) as err:  # report every operation
                failures.append(f"{operation.label} ({mode.value}): {err}")
    return failures


@pytest.fixture(scope="module")
async def api_url(dev_env, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("schema")
    async with running_harness(dev_env.client, tmp_path) as harness:
        app = create_app(harness.settings, harness.deposits)
        async with serve_in_loop(app) as url:
            yield url


async def test_generated_requests_get_no_5xx_and_no_schema_violation_k6(api_url):
    async with httpx.AsyncClient() as http:
        document = (await http.get(f"{api_url}/openapi.json")).json()
    assert set(document["paths"]) == {"/deposits", "/deposits/{reference}"}

    # The generator is synchronous; the server keeps running in this test's loop.
    failures = await asyncio.to_thread(fuzz, api_url)

    assert failures == []
