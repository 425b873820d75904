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
