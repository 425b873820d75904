"""Alembic's entry point: runs the ledger's revisions on the connection it is handed."""

from alembic import context
from sqlalchemy import create_engine

from ledger.tables import Base

config = context.config
target_metadata = Base.metadata


def run_on(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot alter most columns in place; batch mode copies the table.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run_on(connection)
else:
    # The `alembic` command line: the URL comes from -x url=... or alembic.ini.
    url = context.get_x_argument(as_dictionary=True).get(
        "url"
    ) or config.get_main_option("sqlalchemy.url")
    engine = create_engine(url)
    with engine.connect() as connection:
        run_on(connection)
    engine.dispose()
