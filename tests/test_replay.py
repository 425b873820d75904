"""K9: recorded histories of every path replay against the current workflow code.

A change to the workflow's command sequence that is not behind ``workflow.patched``
makes these fail with a nondeterminism error. See docs/VERSIONING.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows import DepositWorkflow, ReconcileWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_there_is_a_recorded_history_for_every_path():
    names = {path.stem for path in HISTORIES}
    assert {"callback", "poll", "deadline", "rejected", "mismatch"} <= names


@pytest.mark.parametrize("history_file", HISTORIES, ids=lambda p: p.stem)
async def test_recorded_history_replays_deterministically(history_file: Path):
    history = WorkflowHistory.from_json(history_file.stem, history_file.read_text())
    replayer = Replayer(
        workflows=[DepositWorkflow, ReconcileWorkflow],
        data_converter=pydantic_data_converter,
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None


async def test_k9_a_deposit_queried_during_its_first_task_still_replays(
    dev_env, tmp_path
):
    # A query landing in the first workflow task splits it in two; replay then runs
    # init in the second one. Anything init took from workflow.now() would move (the
    # deadline did), and the deadline path would replay differently: stuck forever.
    import asyncio

    from tests.harness import running_harness

    overrides = {"poll_schedule": [(60, 1.0)], "deadline_seconds": 4.0}
    async with running_harness(dev_env.client, tmp_path, **overrides) as harness:
        handle = await harness.start("stays pending")
        # Query all along, as `deposits watch` and the API do, until the outcome.
        while (await handle.query(DepositWorkflow.state)).outcome is None:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        history = await handle.fetch_history()

    replayer = Replayer(
        workflows=[DepositWorkflow, ReconcileWorkflow],
        data_converter=pydantic_data_converter,
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
