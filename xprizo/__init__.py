"""Client for the Xprizo payments API: M-Pesa deposits, status checks, callbacks."""

from xprizo.client import XprizoClient
from xprizo.errors import (
    XprizoBadResponseError,
    XprizoConnectionError,
    XprizoCredentialsError,
    XprizoError,
    XprizoRateLimitedError,
    XprizoRejectedError,
    XprizoServerError,
    XprizoTimeoutError,
    XprizoTransientError,
)
from xprizo.models import (
    CALLBACK_ACCEPTED,
    CALLBACK_CANCELLED,
    CALLBACK_NEW,
    CALLBACK_NONE,
    CALLBACK_REJECTED,
    Callback,
    CallbackTransaction,
    CallbackType,
    CreatedDeposit,
    Preference,
    StatusReport,
    loads_json,
)
from xprizo.status import Verdict, map_status

__all__ = [
    "CALLBACK_ACCEPTED",
    "CALLBACK_CANCELLED",
    "CALLBACK_NEW",
    "CALLBACK_NONE",
    "CALLBACK_REJECTED",
    "Callback",
    "CallbackTransaction",
    "CallbackType",
    "CreatedDeposit",
    "Preference",
    "StatusReport",
    "Verdict",
    "XprizoBadResponseError",
    "XprizoClient",
    "XprizoConnectionError",
    "XprizoCredentialsError",
    "XprizoError",
    "XprizoRateLimitedError",
    "XprizoRejectedError",
    "XprizoServerError",
    "XprizoTimeoutError",
    "XprizoTransientError",
    "loads_json",
    "map_status",
]
