"""Async HTTP client for the parts of the Xprizo API that M-Pesa deposits use."""

import json
import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Self

import httpx
from pydantic import SecretStr, ValidationError

from xprizo.errors import (
    XprizoBadResponseError,
    XprizoConnectionError,
    XprizoCredentialsError,
    XprizoRateLimitedError,
    XprizoRejectedError,
    XprizoServerError,
    XprizoTimeoutError,
)
from xprizo.models import CreatedDeposit, Preference, StatusReport, loads_json

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
_ACCOUNT_PLACEHOLDER = "{account_id}"
_WEBHOOK_URL_PARAM = re.compile(r"([?&]url=)[^&\s\"]*")


class _RedactWebhookUrl(logging.Filter):
    """Hide the `url=` query value in httpx's request log lines.

    SetApprovalWebhook sends the webhook URL, which carries the receiver's secret, as
    a query parameter, and httpx logs every request URL at INFO.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args and isinstance(record.args, tuple):
            record.args = tuple(
                _WEBHOOK_URL_PARAM.sub(r"\1<redacted>", str(arg))
                if "SetApprovalWebhook" in str(arg)
                else arg
                for arg in record.args
            )
        return True


_httpx_logger = logging.getLogger("httpx")
if not any(isinstance(f, _RedactWebhookUrl) for f in _httpx_logger.filters):
    _httpx_logger.addFilter(_RedactWebhookUrl())


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
        self._status_path = _status_path(status_path, account_id)
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
                "POST",
                "Transaction/MPesaDeposit",
                content=_encode_json(body),
                reference=reference,
            )
        except XprizoRejectedError as exc:
            # 400 is documented; a 409 with the same sentence means the same thing.
            if exc.status_code in (400, 409) and _is_already_exists(exc.reason):
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
            raise XprizoBadResponseError(
                f"Xprizo answered the create for reference {reference} with an "
                "unreadable body; the deposit may exist, check its status",
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
            self._status_path,
            params={"reference": reference},
            reference=reference,
        )
        try:
            return StatusReport.model_validate(data)
        except ValidationError as exc:
            raise XprizoBadResponseError(
                f"Xprizo answered the status check for reference {reference} with "
                "an unreadable body",
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

    async def get_preference(self) -> Preference:
        """Return the profile's preferences, the approval webhook among them."""
        data = await self._request("GET", "Preference")
        try:
            return Preference.from_response(data)
        except (ValueError, ValidationError) as exc:
            raise XprizoBadResponseError(
                "Xprizo answered the preference request with an unreadable body",
                status_code=200,
            ) from exc

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        content: bytes | None = None,
        expect_json: bool = True,
        reference: str | None = None,
    ) -> Any:
        headers = {"Content-Type": _CONTENT_TYPE} if content is not None else None
        try:
            response = await self._http.request(
                method, path, params=params, content=content, headers=headers
            )
        except httpx.TimeoutException as exc:
            raise XprizoTimeoutError(
                f"Xprizo {method} {path}{_for(reference)} timed out "
                f"({type(exc).__name__})"
            ) from None
        except httpx.TransportError as exc:
            raise XprizoConnectionError(
                f"Xprizo {method} {path}{_for(reference)} failed to connect "
                f"({type(exc).__name__})"
            ) from None
        logger.debug(
            "Xprizo %s %s%s answered %s",
            method,
            path,
            _for(reference),
            response.status_code,
        )
        self._raise_for_status(method, path, response, reference)
        if not expect_json:
            return None
        try:
            return loads_json(response.content)
        except ValueError as exc:
            raise XprizoBadResponseError(
                f"Xprizo {method} {path}{_for(reference)} answered "
                f"{response.status_code} with a body that is not JSON",
                status_code=response.status_code,
            ) from exc

    def _raise_for_status(
        self,
        method: str,
        path: str,
        response: httpx.Response,
        reference: str | None,
    ) -> None:
        code = response.status_code
        if 200 <= code < 300:
            return
        reason = self._scrub(_reason_from_body(response))
        message = f"Xprizo {method} {path}{_for(reference)} answered {code}: {reason}"
        if code == 429 or code >= 500:
            error = XprizoRateLimitedError if code == 429 else XprizoServerError
            raise error(
                message,
                status_code=code,
                retry_after=_retry_after(response.headers.get("Retry-After")),
                reason=reason,
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


def _for(reference: str | None) -> str:
    return "" if reference is None else f" for reference {reference}"


def _status_path(template: str, account_id: int) -> str:
    """The status path: `{account_id}` filled in, or the id appended as a segment."""
    path = template.strip().strip("/")
    if _ACCOUNT_PLACEHOLDER in path:
        return path.replace(_ACCOUNT_PLACEHOLDER, str(account_id))
    return f"{path}/{account_id}"


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
    # Contained, not a prefix: a gateway or a newer API version may wrap the sentence.
    lowered = " ".join(reason.lower().split())
    return any(phrase in lowered for phrase in _ALREADY_EXISTS)


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
