"""An Xprizo simulator: the deposit, status and webhook endpoints, state in memory."""

import asyncio
import json
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response
from pydantic import BaseModel

from simulator.scenarios import Scenario, ScenarioKind, scenario_from_description

__all__ = ["SimTransaction", "create_app"]

logger = logging.getLogger(__name__)

CURRENCY = "KES"
CREATED_BY_ID = 7001
TRANSACTION_TYPE = "MPD"
REJECT_REASON = "Rejected by simulator: test mode Reject"
_CALLBACK_TIMEOUT = 5.0
_CENT = Decimal("0.01")

_CALLBACK_WORDS = {0: "None", 1: "New", 2: "Accepted", 3: "Rejected", 4: "Cancelled"}


class SimTransaction(BaseModel):
    """One transaction the simulator holds, as the control endpoints show it."""

    id: int
    reference: str
    mobile_number: str
    amount: Decimal
    description: str | None
    routing_code: str | None
    status: str
    scenario: Scenario
    created_at: datetime
    updated_at: datetime


@dataclass
class _State:
    api_key: str
    account_id: int
    callback_delay: float
    webhook_url: str | None = None
    next_id: int = 1001
    transactions: dict[str, SimTransaction] = field(default_factory=dict)
    scenarios: dict[str, Scenario] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def spawn(self, coro: Any) -> None:
        # Keep a reference, or the event loop may garbage-collect a running task.
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


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
        "status": "BadRequest",
        "errorCode": "simulator.invalid_request",
        "message": message,
    }
    return _json(body, status_code)


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

    @app.middleware("http")
    async def record_requests(request: Request, call_next: Any) -> Response:
        if not request.url.path.startswith("/api/"):
            return await call_next(request)
        entry: dict[str, Any] = {
            "method": request.method,
            "path": request.url.path,
            "reference": request.query_params.get("reference"),
            "time": datetime.now(UTC).isoformat(),
            "status_code": None,
        }
        state.requests.append(entry)
        request.state.sim_entry = entry
        response = await call_next(request)
        entry["status_code"] = response.status_code
        return response

    def refuse(request: Request, account: int | None) -> Response | None:
        given = request.headers.get("x-api-key", "")
        if not secrets.compare_digest(given.encode(), state.api_key.encode()):
            return _text("Unauthorized", 401)
        if account is not None and account != state.account_id:
            return _text("Profile has no rights on this account", 403)
        return None

    # -- Xprizo's API --------------------------------------------------------------

    @app.post("/api/Transaction/MPesaDeposit")
    async def mpesa_deposit(request: Request) -> Response:
        denied = refuse(request, None)
        if denied is not None:
            return denied
        try:
            body = json.loads(await request.body(), parse_float=Decimal)
        except ValueError:
            return _error("Request body is not valid JSON")
        if not isinstance(body, dict):
            return _error("Request body must be a JSON object")
        reference = body.get("reference")
        if isinstance(reference, str):
            request.state.sim_entry["reference"] = reference
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

        existing = state.transactions.get(reference)
        if existing is not None:
            if existing.status == "Pending":
                return _text(
                    "A pending transaction with this reference already exists "
                    f"(Ref:{reference})",
                    400,
                )
            return _text("A transaction with this reference already exists", 400)

        description = body.get("description")
        scenario = state.scenarios.get(reference) or scenario_from_description(
            description
        )
        if scenario.scenario is ScenarioKind.REJECT:
            return _text(scenario.reason or REJECT_REASON, 400)

        now = datetime.now(UTC)
        transaction = SimTransaction(
            id=state.next_id,
            reference=reference,
            mobile_number=body["mobileNumber"],
            amount=Decimal(body["amount"]),
            description=description,
            routing_code=body.get("routingCode"),
            status="Pending",
            scenario=scenario,
            created_at=now,
            updated_at=now,
        )
        state.next_id += 1
        state.transactions[reference] = transaction
        logger.info(
            "simulator created transaction %s for reference %s (%s)",
            transaction.id,
            reference,
            scenario.scenario.value,
        )
        state.spawn(_send_callback(state, transaction, status_type=1))
        if scenario.scenario in (
            ScenarioKind.APPROVE,
            ScenarioKind.CANCEL,
            ScenarioKind.SILENT,
        ):
            state.spawn(_play_out(state, reference))
        return _json(
            {
                "key": transaction.id,
                "statusCode": 0,
                "status": "Pending",
                "value": "Awaiting payer confirmation",
            }
        )

    async def status(request: Request, accountId: int, reference: str = "") -> Response:
        denied = refuse(request, accountId)
        if denied is not None:
            return denied
        transaction = state.transactions.get(reference)
        if transaction is None:
            return _json({"id": 0, "description": "NotFound"})
        return _json(
            {
                "id": transaction.id,
                "description": transaction.status,
                "amount": transaction.amount,
                "currencyCode": CURRENCY,
                "reference": transaction.reference,
            }
        )

    app.get("/api/Transaction/StatusByReference/{accountId}")(status)
    app.get("/api/Transaction/Status/{accountId}")(status)

    @app.put("/api/Preference/SetApprovalWebhook")
    async def set_approval_webhook(request: Request, url: str = "") -> Response:
        denied = refuse(request, None)
        if denied is not None:
            return denied
        if not url.startswith(("http://", "https://")):
            return _text("Invalid webhook url", 400)
        state.webhook_url = url
        return _json({"status": "success"})

    @app.get("/api/Preference/TestApprovalWebhook")
    async def test_approval_webhook(request: Request) -> Response:
        denied = refuse(request, None)
        if denied is not None:
            return denied
        if state.webhook_url is None:
            return _text("No approval webhook is set", 400)
        state.spawn(_send_test_callback(state))
        return _json({"status": "success"})

    @app.get("/api/Preference")
    async def preference(request: Request) -> Response:
        denied = refuse(request, None)
        if denied is not None:
            return denied
        return _json(
            {"accountId": state.account_id, "approvalWebhook": state.webhook_url}
        )

    # -- control endpoints for tests ------------------------------------------------

    @app.put("/_sim/scenarios/{reference}")
    async def set_scenario(reference: str, scenario: Scenario) -> Response:
        state.scenarios[reference] = scenario
        return _json(scenario.model_dump(mode="json"))

    @app.get("/_sim/requests")
    async def list_requests() -> Response:
        return _json(state.requests)

    @app.get("/_sim/callbacks")
    async def list_callbacks() -> Response:
        return _json(state.callbacks)

    @app.get("/_sim/transactions/{reference}")
    async def get_transaction(reference: str) -> Response:
        transaction = state.transactions.get(reference)
        if transaction is None:
            return _text("Unknown reference", 404)
        return _json(transaction.model_dump(mode="python"))

    return app


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


async def _play_out(state: _State, reference: str) -> None:
    transaction = state.transactions[reference]
    scenario = transaction.scenario
    delay = state.callback_delay if scenario.delay is None else scenario.delay
    await asyncio.sleep(delay)
    if scenario.scenario is ScenarioKind.CANCEL:
        final, status_type = "Cancelled", 4
    else:
        final, status_type = "Active", 2
    transaction = transaction.model_copy(
        update={"status": final, "updated_at": datetime.now(UTC)}
    )
    state.transactions[reference] = transaction
    logger.info("simulator moved reference %s to %s", reference, final)
    if scenario.scenario is not ScenarioKind.SILENT:
        await _send_callback(state, transaction, status_type=status_type)


def _callback_body(
    status_type: int, transaction: SimTransaction | None, actioned_by: int
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "statusType": status_type,
        "status": _CALLBACK_WORDS[status_type],
        "description": transaction.description if transaction else "Test callback",
        "actionedById": actioned_by,
        "transaction": None,
    }
    if transaction is not None:
        body["transaction"] = {
            # Xprizo sends 0 as the id on the "new" callback.
            "id": 0 if status_type == 1 else transaction.id,
            "createdById": CREATED_BY_ID,
            "type": TRANSACTION_TYPE,
            "date": transaction.updated_at,
            "reference": transaction.reference,
            "currencyCode": CURRENCY,
            "amount": transaction.amount,
        }
    return body


async def _send_callback(
    state: _State, transaction: SimTransaction, *, status_type: int
) -> None:
    await _post_callback(
        state,
        _callback_body(status_type, transaction, CREATED_BY_ID),
        transaction.reference,
    )


async def _send_test_callback(state: _State) -> None:
    await _post_callback(state, _callback_body(0, None, CREATED_BY_ID), None)


async def _post_callback(
    state: _State, body: dict[str, Any], reference: str | None
) -> None:
    url = state.webhook_url
    record: dict[str, Any] = {
        "time": datetime.now(UTC).isoformat(),
        "url": url,
        "reference": reference,
        "statusType": body["statusType"],
        "delivered": False,
        "response_status": None,
        "error": None,
    }
    state.callbacks.append(record)
    if url is None:
        record["error"] = "no webhook registered"
        logger.info("no webhook registered, callback for %s not sent", reference)
        return
    try:
        # trust_env=False: callbacks go straight to the registered URL, never a proxy.
        async with httpx.AsyncClient(
            timeout=_CALLBACK_TIMEOUT, trust_env=False
        ) as http:
            response = await http.post(
                url,
                content=_dumps(body).encode(),
                headers={"Content-Type": "application/json"},
            )
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
