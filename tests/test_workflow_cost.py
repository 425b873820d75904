"""A deposit's cost in history events and Xprizo calls, measured from real histories.

Runs on the dev server in real time with the real simulator, receiver and ledger. The
one-hour wait runs Xprizo's production schedule scaled down by ``SCALE``: the history
and the number of status checks depend on the schedule's shape, not on its unit.
"""

from __future__ import annotations

import pytest

from deposits.models import DecidedBy, Outcome
from tests.harness import running_harness
from tests.history_tools import assert_no_task_failures, event_names

SCALE = 120
HOUR = 3600


def xprizo_checks_in(seconds: float) -> int:
    """How often Xprizo itself checks a pending transaction in ``seconds``.

    Every 15 s in the first minute, 30 s to five minutes, 60 s to ten minutes; the
    published list stops there, so it is continued at its slowest published rate.
    """
    checks, t = 0, 0.0
    while True:
        t += 15 if t < 60 else 30 if t < 300 else 60
        if t > seconds:
            return checks
        checks += 1


async def test_happy_path_costs_at_most_16_events_and_two_xprizo_calls(
    dev_env, tmp_path
):
    async with running_harness(
        dev_env.client, tmp_path, poll_schedule=[(60, 15)]
    ) as harness:
        handle = await harness.start("Pass")
        result = await handle.result()
        events = await assert_no_task_failures(handle)
        reference = result.reference
        calls = harness.sim_requests(reference, "/api/Transaction/")

        print(f"\nhappy path: {len(events)} events, {len(calls)} Xprizo calls")
        print(" ", " ".join(event_names(events)))
        assert (result.outcome, result.decided_by) == (
            Outcome.APPROVED,
            DecidedBy.CALLBACK,
        )
        assert len(events) <= 16
        assert [c["path"].split("/")[3] for c in calls] == [
            "MPesaDeposit",
            "StatusByReference",
        ]


@pytest.mark.slow
async def test_an_hour_without_callbacks_stays_under_40_events_and_xprizos_pace(
    dev_env, tmp_path
):
    # K1 at length: no callback for the whole (scaled) hour, then the deadline.
    async with running_harness(
        dev_env.client,
        tmp_path,
        poll_schedule=[
            (60 / SCALE, 15 / SCALE),
            (300 / SCALE, 30 / SCALE),
            (600 / SCALE, 60 / SCALE),
        ],
        poll_interval_after_seconds=300 / SCALE,
        deadline_seconds=HOUR / SCALE,
        not_found_grace_seconds=120 / SCALE,
    ) as harness:
        handle = await harness.start("stays pending")
        state = await harness.outcome_of(handle, timeout=HOUR / SCALE + 30)
        events = await assert_no_task_failures(handle)
        checks = harness.sim_requests(state.reference, "StatusByReference")

        print(
            f"\none-hour wait: {len(events)} events, {len(checks)} status checks "
            f"(Xprizo's own schedule: {xprizo_checks_in(HOUR)})"
        )
        print(" ", " ".join(event_names(events)))
        assert state.outcome == Outcome.NEEDS_REVIEW
        assert state.decided_by == DecidedBy.DEADLINE
        assert len(events) <= 40
        assert len(checks) <= xprizo_checks_in(HOUR)


@pytest.mark.parametrize(
    ("path", "description", "knobs", "outcome", "max_events", "max_calls"),
    [
        ("poll only", "Silent", {}, Outcome.APPROVED, 22, 4),
        ("rejected", "Reject", {}, Outcome.REJECTED, 10, 1),
        (
            "amount mismatch",
            None,
            {"scenario": "approve", "status_amount": "99"},
            Outcome.NEEDS_REVIEW,
            16,
            2,
        ),
    ],
)
async def test_other_paths_cost(
    dev_env, tmp_path, path, description, knobs, outcome, max_events, max_calls
):
    async with running_harness(dev_env.client, tmp_path, poll_schedule=[(60, 1)]) as h:
        reference = f"cost-{path.replace(' ', '-')}-{tmp_path.name[-6:]}"
        if knobs:
            h.script(reference, **knobs)
        handle = await h.start(description or "scripted", reference=reference)
        state = await h.outcome_of(handle, timeout=30)
        events = await assert_no_task_failures(handle)
        calls = h.sim_requests(reference, "/api/Transaction/")

        print(f"\n{path}: {len(events)} events, {len(calls)} Xprizo calls")
        print(" ", " ".join(event_names(events)))
        assert state.outcome == outcome
        assert len(events) <= max_events
        assert len(calls) <= max_calls
