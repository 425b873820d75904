"""Log set-up shared by every process of the product."""

from __future__ import annotations

import logging


def configure(level: str = "INFO") -> None:
    """Plain, timestamped lines on stderr; quiet third-party chatter."""
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("httpx", "httpcore", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
