"""Reading a deposit's history: event counts and whether any workflow task failed."""

from __future__ import annotations

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle


async def history_events(handle: WorkflowHandle) -> list:
    return [event async for event in handle.fetch_history_events()]


async def assert_no_task_failures(handle: WorkflowHandle) -> list:
    """The history's events, after checking no workflow task failed (K9)."""
    events = await history_events(handle)
    failed = [
        e for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
    ]
    assert not failed, f"workflow task failed: {failed[0]}"
    return events


def event_names(events: list) -> list[str]:
    return [EventType.Name(e.event_type).removeprefix("EVENT_TYPE_") for e in events]
