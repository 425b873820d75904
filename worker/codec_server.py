"""The codec endpoint: the Temporal UI and CLI decode (and encode) payloads through it.

It follows Temporal's remote codec protocol: ``POST /encode`` and ``POST /decode`` (also
under a ``/{namespace}/`` prefix, for the CLI's templated endpoint) take and answer
``{"payloads": [...]}`` in protobuf JSON. The browser calls it straight from the UI's
page, so the UI's origin must be in ``DEPOSITS_CODEC_SERVER_CORS_ORIGINS``.

Decoded JSON payloads leave with every phone number masked: operators read deposits in
the UI and CLI, and never need the full number the worker sends to Xprizo. Anyone who
reaches this endpoint can read deposits, so it listens on 127.0.0.1 by default; put it
behind the same authentication as the UI before exposing it.

Run it with ``python -m worker.codec_server``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from temporalio.api.common.v1 import Payload, Payloads

from deposits.http_serving import serve_app
from deposits.settings import Settings
from deposits.validation import mask_phone
from worker.codec import EncryptionCodec, PayloadDecryptionError, parse_key

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 4 * 1024 * 1024
# Kenyan mobile numbers in any of the forms a person types or the product normalises
# to, not inside a longer run of digits (a timestamp in a reference is not a phone).
PHONE_LIKE = re.compile(r"(?<![\d+])(?:\+?254|0)[17]\d{8}(?!\d)")


def mask_phones(value: Any) -> Any:
    """The JSON value with every phone field and phone-like string masked."""
    if isinstance(value, dict):
        return {
            key: mask_phone(item)
            if key == "phone" and isinstance(item, str)
            else mask_phones(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [mask_phones(item) for item in value]
    if isinstance(value, str):
        return PHONE_LIKE.sub(lambda m: mask_phone(m.group(0)), value)
    return value


def masked(payload: Payload) -> Payload:
    """A decoded payload fit for an operator's screen: its phone numbers masked."""
    if payload.metadata.get("encoding") != b"json/plain":
        return payload
    try:
        value = json.loads(payload.data)
    except ValueError:
        return payload
    shown = Payload()
    shown.CopyFrom(payload)
    shown.data = json.dumps(mask_phones(value), separators=(",", ":")).encode()
    return shown


def create_app(codec: EncryptionCodec, cors_origins: list[str]) -> Starlette:
    """The codec endpoint's ASGI app for one key and the UI origins allowed to call."""

    async def payloads_of(request: Request) -> Payloads | Response:
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return JSONResponse({"error": "body too large"}, status_code=413)
        try:
            return json_format.Parse(body, Payloads())
        except (json_format.ParseError, DecodeError, UnicodeDecodeError) as err:
            return JSONResponse(
                {"error": f"not a payloads document: {err}"}, status_code=400
            )

    def answer(payloads: list[Payload]) -> JSONResponse:
        return JSONResponse(
            json_format.MessageToDict(Payloads(payloads=payloads)) or {"payloads": []}
        )

    async def encode(request: Request) -> Response:
        parsed = await payloads_of(request)
        if isinstance(parsed, Response):
            return parsed
        return answer(await codec.encode(parsed.payloads))

    async def decode(request: Request) -> Response:
        parsed = await payloads_of(request)
        if isinstance(parsed, Response):
            return parsed
        try:
            decoded = await codec.decode(parsed.payloads)
        except PayloadDecryptionError as err:
            log.warning("codec endpoint: a payload could not be decrypted: %s", err)
            return JSONResponse({"error": str(err)}, status_code=400)
        return answer([masked(p) for p in decoded])

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/encode", encode, methods=["POST"]),
            Route("/decode", decode, methods=["POST"]),
            Route("/{namespace}/encode", encode, methods=["POST"]),
            Route("/{namespace}/decode", decode, methods=["POST"]),
            Route("/healthz", health, methods=["GET"]),
        ],
        middleware=[
            Middleware(
                CORSMiddleware,
                allow_origins=cors_origins,
                allow_methods=["POST"],
                allow_headers=["Content-Type", "X-Namespace", "Authorization"],
                allow_credentials=True,
            )
        ],
    )


def app_for(settings: Settings) -> Starlette:
    """The codec endpoint for the settings' key; RuntimeError when none is set."""
    secret = settings.payload_codec_key
    if secret is None or not secret.get_secret_value().strip():
        raise RuntimeError(
            "DEPOSITS_PAYLOAD_CODEC_KEY is not set: payloads are plain and need no "
            "codec endpoint"
        )
    codec = EncryptionCodec(parse_key(secret.get_secret_value()))
    return create_app(codec, settings.codec_server_cors_origins)


async def serve(settings: Settings) -> None:
    """Serve the codec endpoint until SIGTERM/SIGINT."""
    app = app_for(settings)
    origins = ", ".join(settings.codec_server_cors_origins)
    await serve_app(
        app,
        host=settings.codec_server_host,
        port=settings.codec_server_port,
        what=f"codec endpoint for {origins}",
        grace_seconds=5,
    )


def main() -> None:
    """``python -m worker.codec_server``: serve with the environment's settings."""
    from deposits.logs import configure
    from deposits.settings import get_settings

    configure()
    asyncio.run(serve(get_settings()))


if __name__ == "__main__":
    main()
