"""Schemathesis against the webhook receiver, which serves no OpenAPI document (K6).

The receiver faces the internet and so publishes no schema; the document below is this
test's own description of what Xprizo sends, the secret path segment fixed so that
generated requests reach the parser. Valid and invalid callbacks alike must get no
5xx, with the receiver on the dev server and the whole harness behind it. The deposits
API's own document is fuzzed in tests/test_deposits_api_schema.py.
"""

from __future__ import annotations

import asyncio

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from tests.harness import running_harness

pytestmark = pytest.mark.e2e

EXAMPLES_PER_MODE = 120
TRANSACTION = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "reference": {"type": "string", "maxLength": 80},
        "amount": {"type": "number"},
        "currencyCode": {"type": "string", "maxLength": 5},
    },
}
CALLBACK = {
    "type": "object",
    "required": ["statusType", "status"],
    "properties": {
        "statusType": {"type": "integer", "minimum": 0, "maximum": 4},
        "status": {"type": "string", "maxLength": 40},
        "transaction": {"oneOf": [TRANSACTION, {"type": "null"}]},
    },
}


def receiver_document(secret: str) -> dict:
    """An OpenAPI document of the callback endpoint with the secret as its one value."""
    return {
        "openapi": "3.0.3",
        "info": {"title": "Xprizo callback receiver (test's own)", "version": "1"},
        "paths": {
            "/xprizo/callback/{token}": {
                "post": {
                    "parameters": [
                        {
                            "name": "token",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "enum": [secret]},
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": CALLBACK}},
                    },
                    "responses": {
                        "200": {"description": "kept, signalled if decisive"},
                        "400": {"description": "not a callback"},
                        "413": {"description": "too large"},
                    },
                }
            }
        },
    }


def fuzz(base_url: str, secret: str) -> list[str]:
    """Every mode's generated callbacks; one line per failing mode."""
    schema = schemathesis.openapi.from_dict(receiver_document(secret))
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES_PER_MODE,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def run(case) -> None:
                case.call_and_validate(base_url=base_url, checks=[not_a_server_error])

            try:
                run()
            except (Exception, BaseExceptionGroup) as err:  # report every mode
                failures.append(f"{operation.label} ({mode.value}): {err}")
    return failures


async def test_generated_callbacks_get_no_5xx_from_the_receiver_k6(dev_env, tmp_path):
    async with running_harness(dev_env.client, tmp_path) as harness:
        # A few real deposits, so generated references can hit running workflows.
        for reference in ("r", "a", "0"):
            harness.script(reference, "pending")
            await harness.start("fuzzed", reference=reference)
        secret = harness.settings.webhook_secret.get_secret_value()
        # The generator is synchronous; the receiver runs in this test's loop.
        failures = await asyncio.to_thread(
            fuzz, harness.settings.webhook_public_url, secret
        )
        kept = len(harness.ledger.callbacks())
        for reference in ("r", "a", "0"):
            await harness.temporal.get_workflow_handle(
                f"deposit-{reference}"
            ).terminate("fuzzing over")
    assert failures == []
    assert kept >= EXAMPLES_PER_MODE, "generated requests did not reach the parser"
