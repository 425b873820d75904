"""Optional AES-GCM encryption of every payload Temporal stores for a deposit.

With a key set, workflow inputs and results, signal, update and query arguments,
activity inputs and results, and the summaries the UI shows are encrypted before they
leave the process; the Temporal server and its database only ever hold ciphertext.
Search attributes are not payloads and stay readable (they hold no personal data).

A payload that is not encrypted passes through unchanged, so a worker with the key still
reads histories written before the key was set.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12
KEY_BYTES = 32


class CodecKeyError(ValueError):
    """A payload codec key that is not base64 of exactly 32 bytes."""


class PayloadDecryptionError(ValueError):
    """An encrypted payload this codec cannot open (another key, or tampered)."""


def parse_key(encoded: str) -> bytes:
    """The 32 raw key bytes from their base64 form; CodecKeyError otherwise."""
    try:
        key = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise CodecKeyError(
            "DEPOSITS_PAYLOAD_CODEC_KEY is not base64 (make one with python -c "
            "'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')"
        ) from None
    if len(key) != KEY_BYTES:
        raise CodecKeyError(
            f"DEPOSITS_PAYLOAD_CODEC_KEY decodes to {len(key)} bytes; AES-256-GCM "
            f"needs {KEY_BYTES}"
        )
    return key


def new_key() -> str:
    """A fresh random key in the form DEPOSITS_PAYLOAD_CODEC_KEY takes."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


class EncryptionCodec(PayloadCodec):
    """Encrypts each payload whole (metadata and data) with AES-256-GCM."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise CodecKeyError(f"an AES-256-GCM key is {KEY_BYTES} bytes")
        self._aead = AESGCM(key)
        # Names the key without revealing it, so a wrong key fails with a clear error.
        self.key_id = hashlib.sha256(key).hexdigest()[:16].encode()

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._decrypt(p) for p in payloads]

    def _encrypt(self, payload: Payload) -> Payload:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, payload.SerializeToString(), self.key_id)
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID: self.key_id},
            data=nonce + sealed,
        )

    def _decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID, b"")
        if key_id != self.key_id:
            raise PayloadDecryptionError(
                f"payload was encrypted with key {key_id.decode(errors='replace')}, "
                f"this codec holds key {self.key_id.decode()}"
            )
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        try:
            plain = self._aead.decrypt(nonce, sealed, key_id)
        except InvalidTag:
            raise PayloadDecryptionError(
                "encrypted payload failed its integrity check"
            ) from None
        return Payload.FromString(plain)
