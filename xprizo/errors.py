"""The Xprizo client's errors: which are worth retrying and which are final."""

__all__ = [
    "XprizoCredentialsError",
    "XprizoError",
    "XprizoRejectedError",
    "XprizoTransientError",
]


class XprizoError(Exception):
    """Base of every error raised by the Xprizo client; never carries the API key."""


class XprizoTransientError(XprizoError):
    """The outcome of a call is unknown (5xx, 429, timeout, lost connection): retry it.

    For a create this is ambiguous: the deposit may exist at Xprizo, which a retry with
    the same reference discovers through the "already exists" answer.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.retry_after = retry_after


class XprizoRejectedError(XprizoError):
    """Xprizo refused the call with a final 4xx answer; retrying will not help."""

    def __init__(self, message: str, *, status_code: int | None, reason: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.reason = reason


class XprizoCredentialsError(XprizoRejectedError):
    """Xprizo refused the API key (401) or the profile's rights on the wallet (403)."""
