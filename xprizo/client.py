"""Async HTTP client for the parts of the Xprizo API that M-Pesa deposits use."""

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Self

import httpx
from pydantic import SecretStr, ValidationError

from xprizo.errors import (
    XprizoCredentialsError,
    XprizoRejectedError,
    XprizoTransientError,
)
from xprizo.models import CreatedDeposit, StatusReport, loads_json

__all__ = ["XprizoClient"]

logger = logging.getLogger(__name__)

API_VERSION = "1.0"
_ACCEPT = f"text/plain; x-api-version={API_VERSION}"
_CONTENT_TYPE = f"application/json; x-api-version={API_VERSION}"
_ALREADY_EXISTS = (
    "a transaction with this reference already exists",
    "a pending transaction with this reference already exists",
)
_MAX_REASON = 500


class XprizoClient:
    """Async client for Xprizo's deposit, status and webhook-preference endpoints.

    Every HTTP failure becomes an XprizoError: transient ones (5xx, 429, timeouts,
    connection errors) are worth a retry, rejected ones are final. The API key is sent
    only in the `x-api-key` header and scrubbed from every message.
    """

    def __init__(
        self,
        base_url: str,
        api_key: SecretStr,
        account_id: int,
        *,
        status_path: str = "Transaction/StatusByReference",
        timeout: float = 15.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not isinstance(api_key, SecretStr):
            raise TypeError("api_key must be a pydantic SecretStr")
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._account_id = account_id
        self._status_path = status_path.strip("/")
        self._http = httpx.AsyncClient(
            base_url=self._base_url + "/",
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
            headers={
                "x-api-key": api_key.get_secret_value(),
                "x-api-version": API_VERSION,
                "Accept": _ACCEPT,
            },
        )

    def __repr__(self) -> str:
        return (
            f"XprizoClient(base_url={self._base_url!r}, "
            f"account_id={self._account_id}, api_key=SecretStr('**********'))"
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the underlying HTTP connections."""
        await self._http.aclose()

    async def create_mpesa_deposit(
        self,
        *,
        mobile_number: str,
        amount: Decimal,
        reference: str,
        description: str | None = None,
        routing_code: str | None = None,
    ) -> CreatedDeposit:
        """Create a pending M-Pesa deposit, which sends the STK push to the payer.

        Idempotent by reference: when Xprizo says the reference already exists, the
        earlier transaction is adopted (`already_existed=True`) instead of raising.
        """
        body: dict[str, Any] = {
            "mobileNumber": mobile_number,
            "accountId": self._account_id,
            "amount": _checked_amount(amount),
            "reference": reference,
        }
        if description is not None:
            body["description"] = description
        if routing_code is not None:
            body["routingCode"] = routing_code
        try:
            data = await self._request(
                "POST", "Transaction/MPesaDeposit", content=_encode_json(body)
            )
        except XprizoRejectedError as exc:
            if exc.status_code == 400 and _is_already_exists(exc.reason):
                logger.info(
                    "Xprizo already has a transaction for reference %s, adopting it",
                    reference,
                )
                return CreatedDeposit(
                    transaction_id=None,
                    status="Pending",
                    status_code=None,
                    message=exc.reason,
                    already_existed=True,
                )
            raise
        try:
            created = CreatedDeposit.from_response(data)
        except (ValueError, ValidationError) as exc:
            raise XprizoTransientError(
                "Xprizo answered the create with an unreadable body; the deposit may "
                "exist, check its status",
                status_code=200,
            ) from exc
        logger.info(
            "Xprizo created deposit for reference %s: status %s, transaction %s",
            reference,
            created.status,
            created.transaction_id,
        )
        return created

    async def status_by_reference(self, reference: str) -> StatusReport:
        """Ask Xprizo for the current status of the transaction with this reference."""
        data = await self._request(
            "GET",
            f"{self._status_path}/{self._account_id}",
            params={"reference": reference},
        )
        try:
            return StatusReport.model_validate(data)
        except ValidationError as exc:
            raise XprizoTransientError(
                "Xprizo answered the status check with an unreadable body",
                status_code=200,
            ) from exc

    async def set_approval_webhook(self, url: str) -> None:
        """Register the URL that Xprizo POSTs approval callbacks to."""
        await self._request(
            "PUT",
            "Preference/SetApprovalWebhook",
            params={"url": url},
            expect_json=False,
        )

    async def test_approval_webhook(self) -> None:
        """Ask Xprizo to send a test callback to the registered webhook."""
        await self._request("GET", "Preference/TestApprovalWebhook", expect_json=False)

    async def get_preference(self) -> dict[str, Any]:
        """Return the processing profile's preferences, `approvalWebhook` among them."""
        data = await self._request("GET", "Preference")
        if not isinstance(data, dict):
            raise XprizoTransientError(
                "Xprizo answered the preference request with an unreadable body",
                status_code=200,
            )
        return data

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        content: bytes | None = None,
        expect_json: bool = True,
    ) -> Any:
        headers = {"Content-Type": _CONTENT_TYPE} if content is not None else None
        try:
            response = await self._http.request(
                method, path, params=params, content=content, headers=headers
            )
        except httpx.TimeoutException as exc:
            raise XprizoTransientError(
                f"Xprizo {method} {path} timed out ({type(exc).__name__})"
            ) from None
        except httpx.TransportError as exc:
            raise XprizoTransientError(
                f"Xprizo {method} {path} failed to connect ({type(exc).__name__})"
            ) from None
        logger.debug("Xprizo %s %s answered %s", method, path, response.status_code)
        self._raise_for_status(method, path, response)
        if not expect_json:
            return None
        try:
            return loads_json(response.content)
        except ValueError as exc:
            raise XprizoTransientError(
                f"Xprizo {method} {path} answered {response.status_code} with a body "
                "that is not JSON",
                status_code=response.status_code,
            ) from exc

    def _raise_for_status(
        self, method: str, path: str, response: httpx.Response
    ) -> None:
        code = response.status_code
        if 200 <= code < 300:
            return
        reason = self._scrub(_reason_from_body(response))
        message = f"Xprizo {method} {path} answered {code}: {reason}"
        if code == 429 or code >= 500:
            raise XprizoTransientError(
                message,
                status_code=code,
                retry_after=_retry_after(response.headers.get("Retry-After")),
            )
        if code in (401, 403):
            raise XprizoCredentialsError(message, status_code=code, reason=reason)
        # 3xx land here too: httpx does not follow them and they mean a wrong base URL.
        raise XprizoRejectedError(message, status_code=code, reason=reason)

    def _scrub(self, text: str) -> str:
        secret = self._api_key.get_secret_value()
        if secret:
            text = text.replace(secret, "**********")
        return text


def _checked_amount(amount: Decimal) -> Decimal:
    if isinstance(amount, bool) or not isinstance(amount, Decimal | int):
        raise TypeError(f"amount must be a Decimal, got {type(amount).__name__}")
    amount = Decimal(amount)
    if not amount.is_finite() or amount <= 0:
        raise ValueError("amount must be a finite number greater than zero")
    if amount != amount.quantize(Decimal("0.01")):
        raise ValueError("amount must have at most 2 decimal places")
    return amount


def _encode_json(value: Any) -> bytes:
    """Encode JSON with Decimals written as plain numbers, never through a float."""
    return _encode(value).encode("utf-8")


def _encode(value: Any) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        items = (f"{json.dumps(str(k))}:{_encode(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_encode(v) for v in value) + "]"
    if isinstance(value, float):
        raise TypeError("floats are not allowed in Xprizo request bodies")
    return json.dumps(value)


def _is_already_exists(reason: str) -> bool:
    lowered = reason.strip().lower()
    return any(lowered.startswith(prefix) for prefix in _ALREADY_EXISTS)


def _reason_from_body(response: httpx.Response) -> str:
    text = response.text.strip()
    if text[:1] in ("{", '"'):
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, str):
            text = data.strip()
        elif isinstance(data, dict):
            for field in ("message", "title", "detail", "value", "error"):
                found = data.get(field)
                if isinstance(found, str) and found.strip():
                    text = found.strip()
                    break
    if not text:
        text = response.reason_phrase or f"HTTP {response.status_code}"
    if len(text) > _MAX_REASON:
        text = text[:_MAX_REASON] + "..."
    return text


def _retry_after(header: str | None) -> float | None:
    if header is None:
        return None
    header = header.strip()
    try:
        seconds = float(header)
    except ValueError:
        try:
            when = parsedate_to_datetime(header)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if seconds != seconds or seconds < 0:  # NaN or a date in the past
        return 0.0 if seconds == seconds else None
    return seconds
