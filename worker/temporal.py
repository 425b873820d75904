"""Connecting to Temporal with the data converter every client and worker shares."""

from __future__ import annotations

import dataclasses

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.runtime import Runtime
from temporalio.service import RPCError, RPCStatusCode

from deposits import search_attributes
from deposits.settings import Settings
from worker.codec import EncryptionCodec, parse_key


def data_converter(settings: Settings) -> DataConverter:
    """The pydantic converter, encrypting payloads when a codec key is set.

    Every client, worker and test environment of one deployment must use the same
    one: a process without the key cannot read an encrypted deposit.
    """
    secret = settings.payload_codec_key
    if secret is None or not secret.get_secret_value().strip():
        return pydantic_data_converter
    key = parse_key(secret.get_secret_value())
    return dataclasses.replace(
        pydantic_data_converter, payload_codec=EncryptionCodec(key)
    )


async def connect(settings: Settings, runtime: Runtime | None = None) -> Client:
    """A Temporal client whose converter round-trips Decimal and aware datetimes.

    With ``tracing_enabled`` it carries Temporal's OpenTelemetry plugin, so starts,
    signals and the workers built on it all join one trace.
    """
    from worker.telemetry import tracing_plugins

    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings),
        runtime=runtime,
        plugins=tracing_plugins(settings),
    )


async def ensure_search_attributes(client: Client, namespace: str) -> None:
    """Register the project's search attributes on a server that lacks them."""
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace)
        )
        existing = set(listed.custom_attributes)
    except RPCError as err:
        # The time-skipping test server can add attributes but not list them.
        if err.status != RPCStatusCode.UNIMPLEMENTED:
            raise
        existing = set()
    missing = {
        key.name: IndexedValueType.ValueType(key.indexed_value_type)
        for key in search_attributes.ALL
        if key.name not in existing
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
        )
