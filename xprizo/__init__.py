"""Client for the Xprizo payments API: M-Pesa deposits, status checks, callbacks."""

from xprizo.client import XprizoClient
from xprizo.errors import (
    XprizoCredentialsError,
    XprizoError,
    XprizoRejectedError,
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
    "StatusReport",
    "Verdict",
    "XprizoClient",
    "XprizoCredentialsError",
    "XprizoError",
    "XprizoRejectedError",
    "XprizoTransientError",
    "loads_json",
    "map_status",
]
