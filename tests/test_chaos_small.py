"""The chaos script at CI size: kills of worker, receiver and dev server lose nothing.

Design invariant 7 (K2, K4, K8): with the worker SIGKILLed three times, the webhook
receiver and the Temporal dev server once each (restarted on the same SQLite file),
deposits of every simulator scenario each end with exactly one correct outcome, no
second transaction at the simulator and no deposit stuck. bench/chaos.py runs the
stack as processes, so it runs here as one too, bounded in time.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent


def test_kills_of_every_process_leave_one_correct_outcome_per_deposit_k2_k4_k8():
    run = subprocess.run(
        [sys.executable, "-m", "bench.chaos", "--small", "--seed", "8"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    report = run.stdout
    assert run.returncode == 0, report + run.stderr[-3000:]
    assert "RESULT: ok" in report
    assert "wrong outcomes: 0" in report
    assert "stuck (no outcome): 0" in report
    assert "references with a second transaction: 0" in report
    assert "product logs with the phone number or a secret: 0" in report
