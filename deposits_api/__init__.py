"""The deposits HTTP API: the merchant's services start and read deposits over HTTP."""

from deposits_api.app import create_app

__all__ = ["create_app"]
