"""Record one deposit history per path as JSON, for the replay tests.

    .venv/bin/python -m tests.record_histories

Runs every path on a fresh in-memory dev server with the real simulator, receiver and
ledger, and writes tests/histories/<path>.json. Record anew only when the workflow's
command sequence changes on purpose (behind ``workflow.patched``); keep the old files so
the replay tests prove the new code still replays what running deposits recorded.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from deposits import search_attributes
from tests.harness import running_harness
from worker.binaries import temporal_cli

HISTORIES = Path(__file__).parent / "histories"
# path name -> (description, simulator knobs, settings overrides)
PATHS: dict[str, tuple[str, dict, dict]] = {
    "callback": ("Pass", {}, {"poll_schedule": [(60, 15)]}),
    "poll": ("Silent", {}, {"poll_schedule": [(60, 0.5)]}),
    "deadline": ("stays pending", {}, {"deadline_seconds": 2.0}),
    "rejected": ("Reject", {}, {}),
    "mismatch": (
        "scripted",
        {"scenario": "approve", "delay": 0.3, "status_amount": "99"},
        {"poll_schedule": [(60, 15)]},
    ),
}


async def record(names: list[str]) -> None:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(temporal_cli()),
        search_attributes=search_attributes.ALL,
        data_converter=pydantic_data_converter,
    )
    try:
        for name in names:
            description, knobs, overrides = PATHS[name]
            with tempfile.TemporaryDirectory() as tmp:
                async with running_harness(env.client, Path(tmp), **overrides) as h:
                    reference = f"history-{name}"
                    if knobs:
                        h.script(reference, **knobs)
                    handle = await h.start(description, reference=reference)
                    while await asyncio.to_thread(h.ledger.outcome, reference) is None:
                        await asyncio.sleep(0.2)
                    await asyncio.sleep(0.5)
                    history = await handle.fetch_history()
            (HISTORIES / f"{name}.json").write_text(history.to_json())
            print(f"recorded {name}: {len(history.events)} events")
    finally:
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(record(sys.argv[1:] or list(PATHS)))
