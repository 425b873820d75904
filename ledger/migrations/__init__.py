"""Alembic revisions of the ledger's schema, applied by ``Ledger.migrate()``."""
