"""An Xprizo simulator: the deposit, status and webhook endpoints, state in memory.

Each deposit plays out the Scenario chosen for its reference; the ``/_sim/`` control
endpoints script scenarios and endpoint faults, drive deposits by hand and show what
the simulator received and sent. docs/SIMULATOR.md describes them.
"""

import asyncio
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import httpx
from fastapi import FastAPI, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from simulator.scenarios import (
    Endpoint,
    EndpointFaults,
    Scenario,
    ScenarioKind,
    scenario_from_description,
)

__all__ = ["SimTransaction", "create_app"]

logger = logging.getLogger(__name__)

CURRENCY = "KES"
CREATED_BY_ID = 7001
TRANSACTION_TYPE = "MPD"
REJECT_REASON = "Rejected by simulator: test mode Reject"
_CALLBACK_TIMEOUT = 5.0
_CENT = Decimal("0.01")
_WAIT_SLICE = 0.05

_CALLBACK_WORDS = {0: "None", 1: "New", 2: "Accepted", 3: "Rejected", 4: "Cancelled"}
_ERROR_WORDS = {
    400: "BadRequest",
    404: "NotFound",
    429: "TooManyRequests",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}
_APPROVED_WORDS = frozenset({"active"})
_RECORDED_HEADERS = frozenset({b"x-api-version", b"accept", b"content-type"})
_GARBLED_BODY = "<html><body>Service temporarily unavailable</body></html>"


class SimTransaction(BaseModel):
    """One transaction the simulator holds, as the control endpoints show it."""

    id: int
    reference: str
    mobile_number: str
    amount: Decimal
    currency: str = CURRENCY
    description: str | None
    routing_code: str | None
    status: str
    scenario: Scenario
    created_at: datetime
    updated_at: datetime
    decided_at: datetime | None = None


class Decision(BaseModel):
    """A hand-made decision for ``POST /_sim/transactions/{reference}/decide``."""

    model_config = ConfigDict(extra="forbid")

    status: str = "Active"
    callback: bool = True


class CallbackOrder(BaseModel):
    """A callback sent on demand by ``POST /_sim/transactions/{reference}/callback``."""

    model_config = ConfigDict(extra="forbid")

    status_type: int = Field(default=2, ge=0, le=4)
    null_transaction_fields: bool = False
    copies: int = Field(default=1, ge=1, le=50)


@dataclass
class _Play:
    """What a transaction's script has done so far."""

    created_monotonic: float
    status_calls: int = 0
    new_sent: bool = False


@dataclass
class _State:
    api_key: str
    account_id: int
    callback_delay: float
    webhook_url: str | None = None
    next_id: int = 1001
    transactions: dict[str, SimTransaction] = field(default_factory=dict)
    plays: dict[str, _Play] = field(default_factory=dict)
    scenarios: dict[str, Scenario] = field(default_factory=dict)
    create_attempts: dict[str, int] = field(default_factory=dict)
    unknown_status_calls: dict[str, int] = field(default_factory=dict)
    faults: EndpointFaults = field(default_factory=EndpointFaults)
    endpoint_calls: dict[str, int] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def spawn(self, coro: Any) -> None:
        # Keep a reference, or the event loop may garbage-collect a running task.
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


class _RequestLog:
    """ASGI middleware that records every Xprizo API request and the status answered."""

    def __init__(self, app: ASGIApp, state: _State) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        headers = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope["headers"]
            if name in _RECORDED_HEADERS
        }
        entry: dict[str, Any] = {
            "method": scope["method"],
            "path": scope["path"],
            "endpoint": None,
            "reference": query.get("reference", [None])[0],
            "time": datetime.now(UTC).isoformat(),
            "status_code": None,
            # Never the x-api-key: the log is for assertions and may be printed.
            "headers": headers,
        }
        self.state.requests.append(entry)
        scope.setdefault("state", {})["sim_entry"] = entry

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry["status_code"] = message["status"]
            await send(message)

        await self.app(scope, receive, sending)


def _dumps(value: Any) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return json.dumps(value.isoformat())
    if isinstance(value, BaseModel):
        return _dumps(value.model_dump(mode="python"))
    if isinstance(value, dict):
        return (
            "{"
            + ",".join(f"{json.dumps(str(k))}:{_dumps(v)}" for k, v in value.items())
            + "}"
        )
    if isinstance(value, list | tuple):
        return "[" + ",".join(_dumps(v) for v in value) + "]"
    return json.dumps(value)


def _json(value: Any, status_code: int = 200) -> Response:
    """Answer JSON with Decimals as exact numbers, as Xprizo's own JSON does."""
    return Response(
        _dumps(value), status_code=status_code, media_type="application/json"
    )


def _text(reason: str, status_code: int) -> Response:
    return Response(reason, status_code=status_code, media_type="text/plain")


def _error(message: str, status_code: int = 400) -> Response:
    body = {
        "timestamp": datetime.now(UTC),
        "statusCode": status_code,
        "status": _ERROR_WORDS.get(status_code, "Error"),
        "errorCode": "simulator.invalid_request"
        if status_code == 400
        else "simulator.fault",
        "message": message,
    }
    return _json(body, status_code)


def _fault(code: int, retry_after: int | None) -> Response:
    """A scripted error answer: 429 as plain text with Retry-After, others as JSON."""
    if code == 429:
        response = _text("Too Many Requests", 429)
    else:
        response = _error(f"Simulated fault {code}", code)
    if retry_after is not None and code in (429, 503):
        response.headers["Retry-After"] = str(retry_after)
    return response


async def _wait(request: Request, seconds: float) -> bool:
    """Wait, giving up early when the caller hangs up; True if the caller is gone."""
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        if await request.is_disconnected():
            return True
        await asyncio.sleep(min(_WAIT_SLICE, remaining))
    return False


def create_app(
    *, api_key: str, account_id: int, callback_delay: float = 2.0
) -> FastAPI:
    """Build the simulator app; every instance holds its own in-memory state."""
    state = _State(
        api_key=api_key, account_id=account_id, callback_delay=callback_delay
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        for task in list(state.tasks):
            task.cancel()
        await asyncio.gather(*state.tasks, return_exceptions=True)

    app = FastAPI(title="Xprizo simulator", lifespan=lifespan)
    app.state.sim = state
    app.add_middleware(_RequestLog, state=state)

    def mark(request: Request, endpoint: Endpoint) -> None:
        request.state.sim_entry["endpoint"] = endpoint

    def refuse(request: Request, account: int | None) -> Response | None:
        given = request.headers.get("x-api-key", "")
        if not secrets.compare_digest(given.encode(), state.api_key.encode()):
            return _text("Unauthorized", 401)
        if account is not None and account != state.account_id:
            return _text("Profile has no rights on this account", 403)
        return None

    async def endpoint_fault(request: Request, endpoint: Endpoint) -> Response | None:
        """Apply the endpoint-wide faults: a delay, then the next scripted error."""
        faults = state.faults
        slow = faults.slow.get(endpoint)
        if slow:
            await _wait(request, slow)
        calls = state.endpoint_calls.get(endpoint, 0)
        state.endpoint_calls[endpoint] = calls + 1
        codes = faults.errors.get(endpoint, [])
        if calls < len(codes):
            return _fault(codes[calls], faults.retry_after)
        if endpoint in faults.garbled:
            return Response(_GARBLED_BODY, media_type="text/html")
        return None

    # -- Xprizo's API --------------------------------------------------------------

    @app.post("/api/Transaction/MPesaDeposit")
    async def mpesa_deposit(request: Request) -> Response:
        mark(request, "create")
        denied = refuse(request, None)
        if denied is not None:
            return denied
        raw = await request.body()
        try:
            body = json.loads(raw, parse_float=Decimal)
        except ValueError:
            body = None
        reference = body.get("reference") if isinstance(body, dict) else None
        if isinstance(reference, str):
            request.state.sim_entry["reference"] = reference
        faulted = await endpoint_fault(request, "create")
        if faulted is not None:
            return faulted
        if body is None:
            return _error("Request body is not valid JSON")
        if not isinstance(body, dict):
            return _error("Request body must be a JSON object")
        account = body.get("accountId")
        if not isinstance(account, int) or isinstance(account, bool):
            return _error("accountId is required and must be an integer")
        denied = refuse(request, account)
        if denied is not None:
            return denied
        problem = _check_create(body)
        if problem is not None:
            return _error(problem)
        assert isinstance(reference, str)

        description = body.get("description")
        scenario = state.scenarios.get(reference) or scenario_from_description(
            description
        )
        slow = scenario.slow.get("create")
        if slow:
            await _wait(request, slow)
        attempt = state.create_attempts.get(reference, 0)
        state.create_attempts[reference] = attempt + 1
        if attempt < len(scenario.create_errors):
            # Refused before anything exists: a retry creates the deposit afresh.
            return _fault(scenario.create_errors[attempt], scenario.retry_after)

        existing = state.transactions.get(reference)
        if existing is not None:
            if existing.decided_at is None:
                return _text(
                    "A pending transaction with this reference already exists "
                    f"(Ref:{reference})",
                    400,
                )
            return _text("A transaction with this reference already exists", 400)

        if scenario.scenario is ScenarioKind.REJECT:
            return _rejected(scenario)

        now = datetime.now(UTC)
        transaction = SimTransaction(
            id=state.next_id,
            reference=reference,
            mobile_number=body["mobileNumber"],
            amount=Decimal(body["amount"]),
            description=description,
            routing_code=body.get("routingCode"),
            status=scenario.pending_status or "Pending",
            scenario=scenario,
            created_at=now,
            updated_at=now,
        )
        state.next_id += 1
        state.transactions[reference] = transaction
        state.plays[reference] = _Play(created_monotonic=time.monotonic())
        logger.info(
            "simulator created transaction %s for reference %s (%s)",
            transaction.id,
            reference,
            scenario.scenario.value,
        )
        state.spawn(_play_out(state, reference))
        if scenario.forge_approval_callback_after is not None:
            state.spawn(_forge(state, reference))

        # The transaction exists from here on; what follows only loses the answer.
        if scenario.create_hang_after_create:
            await _wait(request, scenario.create_hang_after_create)
        if scenario.create_error_after_create is not None:
            return _fault(scenario.create_error_after_create, scenario.retry_after)
        return _json(
            {
                "key": transaction.id,
                "statusCode": 0,
                "status": "Pending",
                "value": "Awaiting payer confirmation",
            }
        )

    async def status(request: Request, accountId: int, reference: str = "") -> Response:
        mark(request, "status")
        denied = refuse(request, accountId)
        if denied is not None:
            return denied
        faulted = await endpoint_fault(request, "status")
        if faulted is not None:
            return faulted
        transaction = state.transactions.get(reference)
        play = state.plays.get(reference)
        if transaction is not None:
            scenario = transaction.scenario
        else:
            scenario = state.scenarios.get(reference) or Scenario()
        slow = scenario.slow.get("status")
        if slow:
            await _wait(request, slow)
        if play is not None:
            calls = play.status_calls
            play.status_calls += 1
        else:
            calls = state.unknown_status_calls.get(reference, 0)
            state.unknown_status_calls[reference] = calls + 1
        if calls < len(scenario.status_errors):
            return _fault(scenario.status_errors[calls], scenario.retry_after)

        if transaction is None or play is None:
            return _json({"id": 0, "description": "NotFound"})
        if (
            scenario.not_found_for is not None
            and time.monotonic() - play.created_monotonic < scenario.not_found_for
        ):
            return _json({"id": 0, "description": "NotFound"})
        return _json(
            {
                "id": transaction.id,
                "description": transaction.status,
                "amount": _first(scenario.status_amount, transaction.amount),
                "currencyCode": scenario.status_currency or transaction.currency,
                "reference": scenario.status_reference or transaction.reference,
            }
        )

    app.get("/api/Transaction/StatusByReference/{accountId}")(status)
    app.get("/api/Transaction/Status/{accountId}")(status)

    @app.put("/api/Preference/SetApprovalWebhook")
    async def set_approval_webhook(request: Request, url: str = "") -> Response:
        mark(request, "set_webhook")
        denied = refuse(request, None)
        if denied is not None:
            return denied
        faulted = await endpoint_fault(request, "set_webhook")
        if faulted is not None:
            return faulted
        if not url.startswith(("http://", "https://")):
            return _text("Invalid webhook url", 400)
        state.webhook_url = url
        return _json({"status": "success"})

    @app.get("/api/Preference/TestApprovalWebhook")
    async def test_approval_webhook(request: Request) -> Response:
        mark(request, "test_webhook")
        denied = refuse(request, None)
        if denied is not None:
            return denied
        faulted = await endpoint_fault(request, "test_webhook")
        if faulted is not None:
            return faulted
        if state.webhook_url is None:
            return _text("No approval webhook is set", 400)
        state.spawn(_post_callback(state, _callback_body(0, None), None))
        return _json({"status": "success"})

    @app.get("/api/Preference")
    async def preference(request: Request) -> Response:
        mark(request, "preference")
        denied = refuse(request, None)
        if denied is not None:
            return denied
        faulted = await endpoint_fault(request, "preference")
        if faulted is not None:
            return faulted
        return _json(
            {"accountId": state.account_id, "approvalWebhook": state.webhook_url}
        )

    # -- control endpoints for tests ------------------------------------------------

    @app.put("/_sim/scenarios/{reference}")
    async def set_scenario(reference: str, scenario: Scenario) -> Response:
        state.scenarios[reference] = scenario
        return _json(scenario.model_dump(mode="json"))

    @app.get("/_sim/scenarios/{reference}")
    async def get_scenario(reference: str) -> Response:
        scenario = state.scenarios.get(reference)
        if scenario is None:
            return _text("No scenario scripted for this reference", 404)
        return _json(scenario.model_dump(mode="json"))

    @app.delete("/_sim/scenarios/{reference}")
    async def delete_scenario(reference: str) -> Response:
        state.scenarios.pop(reference, None)
        return Response(status_code=204)

    @app.put("/_sim/faults")
    async def set_faults(faults: EndpointFaults) -> Response:
        state.faults = faults
        state.endpoint_calls.clear()
        return _json(faults.model_dump(mode="json"))

    @app.get("/_sim/faults")
    async def get_faults() -> Response:
        return _json(state.faults.model_dump(mode="json"))

    @app.delete("/_sim/faults")
    async def clear_faults() -> Response:
        state.faults = EndpointFaults()
        state.endpoint_calls.clear()
        return Response(status_code=204)

    @app.get("/_sim/requests")
    async def list_requests(
        reference: str | None = None, endpoint: str | None = None
    ) -> Response:
        return _json(
            [
                entry
                for entry in state.requests
                if (reference is None or entry["reference"] == reference)
                and (endpoint is None or entry["endpoint"] == endpoint)
            ]
        )

    @app.get("/_sim/callbacks")
    async def list_callbacks(reference: str | None = None) -> Response:
        return _json(
            [
                record
                for record in state.callbacks
                if reference is None or record["reference"] == reference
            ]
        )

    @app.get("/_sim/transactions/{reference}")
    async def get_transaction(reference: str) -> Response:
        transaction = state.transactions.get(reference)
        if transaction is None:
            return _text("Unknown reference", 404)
        return _json(transaction.model_dump(mode="python"))

    @app.post("/_sim/transactions/{reference}/decide")
    async def decide(reference: str, decision: Decision) -> Response:
        if reference not in state.transactions:
            return _text("Unknown reference", 404)
        transaction = _settle(state, reference, decision.status)
        # Spawned, not awaited: the caller may be the webhook receiver's own loop.
        if decision.callback:
            state.spawn(_send_decision_callback(state, reference))
        return _json(transaction.model_dump(mode="python"))

    @app.post("/_sim/transactions/{reference}/callback")
    async def send_callback(reference: str, order: CallbackOrder) -> Response:
        transaction = state.transactions.get(reference)
        if transaction is None:
            return _text("Unknown reference", 404)
        body = _callback_body(
            order.status_type,
            transaction,
            null_fields=order.null_transaction_fields,
        )

        async def post_all() -> None:
            for copy in range(order.copies):
                await _post_callback(state, body, reference, copy=copy, forged=True)

        state.spawn(post_all())
        return _json({"sending": order.copies})

    return app


def _first(override: Decimal | None, value: Decimal) -> Decimal:
    return value if override is None else override


def _rejected(scenario: Scenario) -> Response:
    reason = scenario.reason or REJECT_REASON
    if scenario.reject_in_body:
        # The create's own answer says Rejected; no transaction is kept.
        return _json({"key": 0, "statusCode": 3, "status": "Rejected", "value": reason})
    if scenario.reject_json:
        return _error(reason, 400)
    return _text(reason, 400)


def _check_create(body: dict[str, Any]) -> str | None:
    for name in ("mobileNumber", "reference"):
        value = body.get(name)
        if not isinstance(value, str) or not value.strip():
            return f"{name} is required and must be a non-empty string"
    amount = body.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, int | Decimal):
        return "amount is required and must be a number"
    amount = Decimal(amount)
    if amount <= 0 or amount != amount.quantize(_CENT):
        return "Invalid amount: must be greater than zero with at most 2 decimals"
    for name in ("description", "routingCode"):
        if body.get(name) is not None and not isinstance(body[name], str):
            return f"{name} must be a string"
    return None


def _settle(state: _State, reference: str, word: str) -> SimTransaction:
    """Move a transaction to a final status word now."""
    now = datetime.now(UTC)
    transaction = state.transactions[reference].model_copy(
        update={"status": word, "updated_at": now, "decided_at": now}
    )
    state.transactions[reference] = transaction
    logger.info("simulator moved reference %s to %s", reference, word)
    return transaction


async def _play_out(state: _State, reference: str) -> None:
    """Run a transaction's script: the new callback, the decision, its callback."""
    transaction = state.transactions[reference]
    scenario = transaction.scenario
    if not scenario.new_after_decision:
        await _send_new_callback(state, reference)
    if scenario.scenario not in (
        ScenarioKind.APPROVE,
        ScenarioKind.CANCEL,
        ScenarioKind.SILENT,
    ):
        return
    delay = state.callback_delay if scenario.delay is None else scenario.delay
    await asyncio.sleep(delay)
    if scenario.scenario is ScenarioKind.CANCEL:
        final = scenario.final_status or "Cancelled"
    else:
        final = scenario.final_status or "Active"
    _settle(state, reference, final)
    if scenario.scenario is not ScenarioKind.SILENT:
        if scenario.late_callback_after:
            await asyncio.sleep(scenario.late_callback_after)
        await _send_decision_callback(
            state, reference, approved=scenario.scenario is ScenarioKind.APPROVE
        )
    await _send_new_callback(state, reference)


async def _forge(state: _State, reference: str) -> None:
    """Post an Accepted callback that Xprizo never decided: the status is unchanged."""
    scenario = state.transactions[reference].scenario
    assert scenario.forge_approval_callback_after is not None
    await asyncio.sleep(scenario.forge_approval_callback_after)
    transaction = state.transactions[reference]
    body = _callback_body(2, transaction, amount=scenario.callback_amount)
    await _post_copies(state, scenario, body, reference, forged=True)
    await _send_new_callback(state, reference)


async def _send_new_callback(state: _State, reference: str) -> None:
    play = state.plays[reference]
    transaction = state.transactions[reference]
    scenario = transaction.scenario
    if play.new_sent or scenario.no_callbacks:
        return
    play.new_sent = True
    body = _callback_body(
        1,
        transaction.model_copy(update={"updated_at": transaction.created_at}),
        amount=scenario.callback_amount,
        currency=scenario.callback_currency,
    )
    await _post_copies(state, scenario, body, reference)


async def _send_decision_callback(
    state: _State, reference: str, *, approved: bool | None = None
) -> None:
    """Send the decision callback; without `approved`, the status word decides."""
    transaction = state.transactions[reference]
    scenario = transaction.scenario
    if scenario.no_callbacks:
        return
    if approved is None:
        approved = transaction.status.strip().lower() in _APPROVED_WORDS
    status_type = 2 if approved else scenario.cancel_callback_type
    body = _callback_body(
        status_type,
        transaction,
        amount=scenario.callback_amount,
        currency=scenario.callback_currency,
        null_fields=scenario.null_transaction_fields,
    )
    await _post_copies(state, scenario, body, reference)


def _callback_body(
    status_type: int,
    transaction: SimTransaction | None,
    *,
    amount: Decimal | None = None,
    currency: str | None = None,
    null_fields: bool = False,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "statusType": status_type,
        "status": _CALLBACK_WORDS[status_type],
        "description": transaction.description if transaction else "Test callback",
        "actionedById": CREATED_BY_ID,
        "transaction": None,
    }
    if transaction is None:
        return body
    if null_fields:
        body["transaction"] = dict.fromkeys(
            (
                "id",
                "createdById",
                "type",
                "date",
                "reference",
                "currencyCode",
                "amount",
            )
        )
        return body
    body["affectedContactIds"] = [CREATED_BY_ID]
    body["transaction"] = {
        # Xprizo sends 0 as the id on the "new" callback.
        "id": 0 if status_type == 1 else transaction.id,
        "createdById": CREATED_BY_ID,
        "type": TRANSACTION_TYPE,
        "date": transaction.updated_at,
        "reference": transaction.reference,
        "currencyCode": currency or transaction.currency,
        "amount": _first(amount, transaction.amount),
    }
    return body


async def _post_copies(
    state: _State,
    scenario: Scenario,
    body: dict[str, Any],
    reference: str,
    *,
    forged: bool = False,
) -> None:
    for copy in range(scenario.duplicate_callbacks):
        await _post_callback(state, body, reference, copy=copy, forged=forged)


async def _post_callback(
    state: _State,
    body: dict[str, Any],
    reference: str | None,
    *,
    copy: int = 0,
    forged: bool = False,
) -> None:
    url = state.webhook_url
    record: dict[str, Any] = {
        "time": datetime.now(UTC).isoformat(),
        "url": url,
        "reference": reference,
        "statusType": body["statusType"],
        "copy": copy,
        "forged": forged,
        "delivered": False,
        "response_status": None,
        "error": None,
    }
    state.callbacks.append(record)
    if url is None:
        record["error"] = "no webhook registered"
        logger.info("no webhook registered, callback for %s not sent", reference)
        return
    request = httpx.Request(
        "POST",
        url,
        content=_dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        extensions={"timeout": httpx.Timeout(_CALLBACK_TIMEOUT).as_dict()},
    )
    try:
        # The transport directly, not a client: no proxy from the environment, and no
        # httpx log line, which would print the URL and the receiver's secret in it.
        async with httpx.AsyncHTTPTransport() as transport:
            response = await transport.handle_async_request(request)
            await response.aread()
    except httpx.HTTPError as exc:
        record["error"] = type(exc).__name__
        logger.warning(
            "callback %s for %s failed: %s", body["statusType"], reference, exc
        )
        return
    record["response_status"] = response.status_code
    record["delivered"] = response.is_success
    if not response.is_success:
        logger.warning(
            "callback %s for %s answered %s",
            body["statusType"],
            reference,
            response.status_code,
        )
