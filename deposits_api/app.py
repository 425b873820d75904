"""The deposits HTTP API for the merchant's own services (never exposed to Xprizo).

``POST /deposits`` is idempotent by reference, ``GET /deposits/{reference}`` reads one
deposit, ``GET /deposits`` lists them; the OpenAPI document is at ``/openapi.json``.
"""

from __future__ import annotations

import hmac
import logging
from decimal import Decimal
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.service import RPCError, RPCStatusCode

from deposits.client import (
    MAX_PAGE_SIZE,
    REFERENCE_RULE,
    DepositClient,
    DepositConflictError,
    DepositNotFoundError,
    DepositPage,
    DepositQueryError,
    DepositValidationError,
    DepositView,
)
from deposits.models import DepositStatus
from deposits.settings import Settings
from deposits.validation import mask_phone

log = logging.getLogger(__name__)

REFERENCE_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"
BEARER = HTTPBearer(auto_error=False, description="the API token, when one is set")


class Problem(BaseModel):
    """An error answer: what went wrong, in one sentence."""

    detail: str


class FieldError(BaseModel):
    """One invalid field: where it is and why it is refused."""

    loc: list[str | int]
    msg: str
    type: str


class ValidationProblem(BaseModel):
    """A 422 answer: every invalid field with its own message."""

    detail: list[FieldError]


class StartDeposit(BaseModel):
    """A service's request for a deposit; the reference makes it idempotent."""

    model_config = ConfigDict(extra="forbid")

    reference: str = Field(
        description=f"unique merchant reference: {REFERENCE_RULE}",
        json_schema_extra={"pattern": REFERENCE_PATTERN},
        examples=["order-1001"],
    )
    amount: str | int = Field(
        description="amount in KES as a string ('150') or an integer; JSON fractions "
        "are refused because a binary float cannot say which cents were meant",
        examples=["150"],
    )
    phone: str = Field(
        description="payer's M-Pesa number: 07XXXXXXXX, 01XXXXXXXX, 2547XXXXXXXX, "
        "+2547XXXXXXXX (spaces and dashes allowed)",
        examples=["0712345678"],
    )
    description: str | None = Field(
        default=None, max_length=200, description="narrative sent to Xprizo"
    )

    @field_validator("amount", mode="before")
    @classmethod
    def _no_float_or_bool(cls, value: Any) -> Any:
        if isinstance(value, bool) or isinstance(value, float):
            raise ValueError(
                "amount must be a string like '150' or an integer, not a JSON "
                "fraction or boolean"
            )
        return value


class StartedDeposit(BaseModel):
    """The deposit a start request refers to, new or already existing."""

    reference: str
    workflow_id: str
    created: bool = Field(description="false when this reference already existed")
    amount: Decimal
    currency: str
    phone_masked: str


def _problem(status: int, detail: str, **headers: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers or None)


def _field_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Validation errors without the input echoed back (it may hold a phone number)."""
    shaped = []
    for error in errors:
        loc = [part if isinstance(part, int) else str(part) for part in error["loc"]]
        msg = error["msg"]
        if loc[-1:] == ["reference"]:
            msg = f"reference must be {REFERENCE_RULE}"
        shaped.append({"loc": loc, "msg": msg, "type": error["type"]})
    return shaped


def create_app(settings: Settings, deposits: DepositClient) -> FastAPI:
    """The API's app, starting and reading deposits through ``deposits``."""
    app = FastAPI(
        title="Deposits API",
        version="1.0",
        summary="Start M-Pesa deposits and read their outcomes",
        docs_url=None,
        redoc_url=None,
    )
    token = (
        settings.api_token.get_secret_value().encode() if settings.api_token else None
    )
    common: dict[int | str, dict[str, Any]] = {
        401: {"model": Problem, "description": "missing or wrong API token"},
        422: {"model": ValidationProblem, "description": "invalid fields"},
        503: {"model": Problem, "description": "Temporal unavailable, retry later"},
    }

    async def authorised(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    ) -> None:
        if token is None:
            return
        given = credentials.credentials.encode() if credentials else b""
        if not hmac.compare_digest(given, token):
            raise _UnauthorisedError

    @app.exception_handler(RequestValidationError)
    async def validation_failed(request: Request, exc: RequestValidationError):
        return JSONResponse({"detail": _field_errors(list(exc.errors()))}, 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        # FastAPI answers an undecodable body with a bare 400; say it like any
        # other invalid body, so clients handle one shape.
        if exc.status_code == 400:
            detail = [
                {"loc": ["body"], "msg": "body is not JSON", "type": "json_invalid"}
            ]
            return JSONResponse({"detail": detail}, 422)
        return JSONResponse(
            {"detail": str(exc.detail)}, exc.status_code, headers=exc.headers
        )

    @app.exception_handler(DepositValidationError)
    async def deposit_invalid(request: Request, exc: DepositValidationError):
        detail = [
            {"loc": ["body", name], "msg": message, "type": "value_error"}
            for name, message in exc.errors.items()
        ]
        return JSONResponse({"detail": detail}, 422)

    @app.exception_handler(RPCError)
    async def temporal_failed(request: Request, exc: RPCError):
        log.error("Temporal call failed: %s", exc.status.name if exc.status else exc)
        return _problem(
            503, "Temporal is unavailable, retry later", **{"Retry-After": "5"}
        )

    @app.exception_handler(RuntimeError)
    async def connection_failed(request: Request, exc: RuntimeError):
        # A lazily connected Temporal client reports a refused connection this way.
        if "connect" in str(exc).lower():
            log.error("Temporal connection failed: %s", type(exc).__name__)
            return _problem(
                503, "Temporal is unavailable, retry later", **{"Retry-After": "5"}
            )
        log.exception("unexpected error on %s", request.url.path)
        return _problem(500, "internal error")

    @app.exception_handler(_UnauthorisedError)
    async def unauthorised(request: Request, exc: Exception):
        return _problem(
            401, "missing or wrong API token", **{"WWW-Authenticate": "Bearer"}
        )

    @app.post(
        "/deposits",
        status_code=201,
        response_model=StartedDeposit,
        dependencies=[Depends(authorised)],
        responses={
            200: {"model": StartedDeposit, "description": "the same deposit again"},
            201: {"description": "a new deposit started"},
            409: {"model": Problem, "description": "reference used with other values"},
            **common,
        },
    )
    async def start_deposit(body: StartDeposit, response: Response) -> StartedDeposit:
        """Start a deposit, or return the existing one for the same request."""
        try:
            started = await deposits.start_deposit(
                reference=body.reference,
                amount=body.amount,
                phone=body.phone,
                description=body.description,
            )
        except DepositConflictError as err:
            return _problem(409, str(err))  # type: ignore[return-value]
        request = deposits.build_request(
            reference=body.reference, amount=body.amount, phone=body.phone
        )
        response.status_code = 201 if started.created else 200
        response.headers["Location"] = f"/deposits/{body.reference}"
        log.info(
            "deposit %s: %s through the API",
            body.reference,
            "started" if started.created else "already exists",
        )
        return StartedDeposit(
            reference=request.reference,
            workflow_id=started.handle.id,
            created=started.created,
            amount=request.amount,
            currency=request.currency,
            phone_masked=mask_phone(request.phone),
        )

    @app.get(
        "/deposits/{reference}",
        response_model=DepositView,
        dependencies=[Depends(authorised)],
        responses={404: {"model": Problem, "description": "no such deposit"}, **common},
    )
    async def get_deposit(
        reference: Annotated[str, Path(pattern=REFERENCE_PATTERN)],
    ) -> DepositView:
        """A deposit's state, outcome and timestamps."""
        try:
            return await deposits.view(reference)
        except DepositNotFoundError:
            return _problem(404, f"no deposit with reference {reference}")  # type: ignore[return-value]

    @app.get(
        "/deposits",
        response_model=DepositPage,
        dependencies=[Depends(authorised)],
        responses=common,
    )
    async def list_deposits(
        status: Annotated[
            DepositStatus | None, Query(description="only deposits in this status")
        ] = None,
        since: Annotated[
            AwareDatetime | None,
            Query(description="only deposits started at or after this time"),
        ] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
        page_token: Annotated[
            str | None, Query(max_length=4096, description="from the previous page")
        ] = None,
    ) -> DepositPage:
        """Deposits newest first, from Temporal's visibility (eventually consistent)."""
        try:
            return await deposits.list(
                status=status, since=since, limit=limit, page_token=page_token
            )
        except DepositQueryError as err:
            return _bad_query(err.field, str(err))  # type: ignore[return-value]
        except RPCError as err:
            # A forged token comes back INVALID_ARGUMENT, or UNKNOWN from the dev
            # server's visibility store.
            bad_token = (RPCStatusCode.INVALID_ARGUMENT, RPCStatusCode.UNKNOWN)
            if err.status in bad_token and page_token:
                return _bad_query(  # type: ignore[return-value]
                    "page_token", "page_token is not a token this API handed out"
                )
            raise

    @app.get("/healthz", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


class _UnauthorisedError(Exception):
    """A /deposits call without the configured API token."""


def _bad_query(name: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"detail": [{"loc": ["query", name], "msg": message, "type": "value_error"}]},
        422,
    )
