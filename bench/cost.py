"""Cost per deposit: history events, Temporal actions and Xprizo calls for each path.

Run: ``.venv/bin/python -m bench.cost``. One dev server (in memory) and the in-process
stack of tests/harness.py (real simulator, receiver, ledger and worker over HTTP on
127.0.0.1). The one-hour wait runs Xprizo's production schedule scaled down 120 times
(30 s instead of an hour), as tests/test_workflow_cost.py does: the history depends
on the schedule's shape, not its unit. The no-op baseline of bench/baseline.py is
measured on the same server for comparison.

Actions are an estimate from the history, counted the way Temporal Cloud bills them:
the start, each signal, each activity scheduled, each timer, each search-attribute
upsert, and one for all the local activities of one workflow task. Heartbeats leave
no event; the poller's are estimated from how long it ran (the SDK sends at most one
per 0.8 x the 30 s heartbeat timeout).
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import uuid
from collections import Counter
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from bench._stack import machine
from bench.baseline import NoopDeposit, noop
from deposits import search_attributes
from tests.harness import running_harness
from tests.history_tools import history_events
from worker.binaries import temporal_cli

SCALE = 120
HEARTBEAT_EVERY = 0.8 * 30
E = EventType

ONE_HOUR = {
    "poll_schedule": [(60 / SCALE, 15 / SCALE), (300 / SCALE, 30 / SCALE)]
    + [(600 / SCALE, 60 / SCALE)],
    "poll_interval_after_seconds": 300 / SCALE,
    "deadline_seconds": 3600 / SCALE,
    "not_found_grace_seconds": 120 / SCALE,
}
# name, description (the simulator's scenario), settings, time scale
PATHS = [
    ("callback", "Pass", {"poll_schedule": [(60, 15)]}, 1),
    ("poll only (callback lost)", "Silent", {"poll_schedule": [(60, 1)]}, 1),
    ("one-hour wait (scaled 1/120)", "stays pending", ONE_HOUR, SCALE),
    ("rejected at create", "Reject", {}, 1),
]


def actions(events: list, scale: float) -> tuple[int, int]:
    """Billable actions from a history, and the poller's estimated heartbeats."""
    billed = {
        E.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
        E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
        E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
        E.EVENT_TYPE_TIMER_STARTED,
        E.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
        E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
    }
    count = sum(e.event_type in billed for e in events)
    marker_tasks = {
        e.marker_recorded_event_attributes.workflow_task_completed_event_id
        for e in events
        if e.event_type == E.EVENT_TYPE_MARKER_RECORDED
    }
    count += len(marker_tasks)
    started = {
        e.activity_task_started_event_attributes.scheduled_event_id: e.event_time
        for e in events
        if e.event_type == E.EVENT_TYPE_ACTIVITY_TASK_STARTED
    }
    heartbeats = 0
    for e in events:
        ended = {
            E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: "activity_task_completed",
            E.EVENT_TYPE_ACTIVITY_TASK_CANCELED: "activity_task_canceled",
            E.EVENT_TYPE_ACTIVITY_TASK_FAILED: "activity_task_failed",
            E.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: "activity_task_timed_out",
        }.get(e.event_type)
        if ended is None:
            continue
        attributes = getattr(e, f"{ended}_event_attributes")
        began = started.get(attributes.scheduled_event_id)
        if began is not None:
            ran = (e.event_time.ToDatetime() - began.ToDatetime()).total_seconds()
            heartbeats += 1 + int(ran * scale / HEARTBEAT_EVERY)
    return count, heartbeats


async def wait_for_ledger(harness, reference: str, timeout: float) -> None:
    # The ledger, not a query: a query would add workflow-task events of its own.
    for _ in range(int(timeout / 0.2)):
        if await asyncio.to_thread(harness.ledger.outcome, reference) is not None:
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"{reference} had no outcome within {timeout}s")


async def measure_path(env, name, description, overrides, scale) -> str:
    with tempfile.TemporaryDirectory(prefix="bench-cost-") as folder:
        async with running_harness(env.client, Path(folder), **overrides) as harness:
            reference = f"cost-{uuid.uuid4().hex[:10]}"
            handle = await harness.start(description, reference=reference)
            await wait_for_ledger(harness, reference, timeout=3600 / SCALE + 60)
            events = await history_events(handle)
            row = harness.ledger.outcome(reference)
            calls = Counter(
                request["endpoint"]
                for request in harness.sim_requests(reference, "/api/Transaction/")
            )
    count, heartbeats = actions(events, scale)
    xprizo = ", ".join(f"{n} {endpoint}" for endpoint, n in sorted(calls.items()))
    return (
        f"| {name} | {row.outcome} by {row.decided_by} | {len(events)} | {count} | "
        f"{heartbeats} | {sum(calls.values())} ({xprizo}) |"
    )


async def measure_baseline(env) -> str:
    queue = f"baseline-{uuid.uuid4().hex[:8]}"
    async with Worker(
        env.client, task_queue=queue, workflows=[NoopDeposit], activities=[noop]
    ):
        handle = await env.client.start_workflow(
            NoopDeposit.run, "noop", id=f"noop-{uuid.uuid4().hex}", task_queue=queue
        )
        await handle.signal(NoopDeposit.callback)
        await handle.result()
        events = await history_events(handle)
    count, _ = actions(events, 1)
    name = "no-op baseline (bench/baseline.py)"
    return f"| {name} | done | {len(events)} | {count} | 0 | 0 |"


async def main() -> None:
    logging.disable(logging.WARNING)
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(temporal_cli()),
        search_attributes=search_attributes.ALL,
        data_converter=pydantic_data_converter,
        dev_server_extra_args=["--log-level", "error"],
    )
    try:
        print(f"machine: {machine()}")
        print(
            "| path | outcome | history events | actions (est.) | "
            "heartbeats (est., unscaled) | Xprizo calls |"
        )
        print("|---|---|---|---|---|---|")
        for path in PATHS:
            print(await measure_path(env, *path), flush=True)
        print(await measure_baseline(env))
    finally:
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
