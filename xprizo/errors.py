"""The Xprizo client's errors: which are worth retrying and which are final.

XprizoError
├── XprizoTransientError       the outcome is unknown; retry (``retryable`` is True)
│   ├── XprizoTimeoutError     no answer in time
│   ├── XprizoConnectionError  no connection, or it broke
│   ├── XprizoServerError      5xx
│   ├── XprizoRateLimitedError 429, ``retry_after`` from the Retry-After header
│   └── XprizoBadResponseError a 2xx answer whose body cannot be read
└── XprizoRejectedError        a final 4xx, Xprizo's ``reason`` kept (not retryable)
    └── XprizoCredentialsError 401 bad key, 403 no rights on the wallet

"Already exists" answers to a create are not errors: the client adopts the transaction.
No message or attribute ever carries the API key.
"""

__all__ = [
    "XprizoBadResponseError",
    "XprizoConnectionError",
    "XprizoCredentialsError",
    "XprizoError",
    "XprizoRateLimitedError",
    "XprizoRejectedError",
    "XprizoServerError",
    "XprizoTimeoutError",
    "XprizoTransientError",
]


class XprizoError(Exception):
    """Base of every error raised by the Xprizo client; never carries the API key."""

    retryable: bool = False


class XprizoTransientError(XprizoError):
    """The outcome of a call is unknown (5xx, 429, timeout, lost connection): retry it.

    For a create this is ambiguous: the deposit may exist at Xprizo, which a retry with
    the same reference discovers through the "already exists" answer.
    """

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.retry_after = retry_after
        self.reason = reason


class XprizoTimeoutError(XprizoTransientError):
    """Xprizo did not answer within the client's timeout."""


class XprizoConnectionError(XprizoTransientError):
    """The connection to Xprizo could not be made or broke before an answer."""


class XprizoServerError(XprizoTransientError):
    """Xprizo answered with a 5xx status."""


class XprizoRateLimitedError(XprizoTransientError):
    """Xprizo answered 429; `retry_after` holds its Retry-After in seconds, if given."""


class XprizoBadResponseError(XprizoTransientError):
    """Xprizo answered 2xx with a body the client cannot read."""


class XprizoRejectedError(XprizoError):
    """Xprizo refused the call with a final 4xx answer; retrying will not help."""

    retryable = False

    def __init__(self, message: str, *, status_code: int | None, reason: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.reason = reason


class XprizoCredentialsError(XprizoRejectedError):
    """Xprizo refused the API key (401) or the profile's rights on the wallet (403)."""
