"""Connecting to Temporal with the data converter every client and worker shares."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from deposits.settings import Settings


async def connect(settings: Settings) -> Client:
    """A Temporal client whose converter round-trips Decimal and aware datetimes."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
    )
