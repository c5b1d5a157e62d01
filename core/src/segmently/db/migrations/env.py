"""Alembic environment shared by every branch; configured by segmently.db.migrate."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.pool import NullPool

import segmently.db.models  # noqa: F401  (kernel tables on the metadata)
from segmently.db.base import Base
from segmently.db.engine import create_engine
from segmently.db.models.events import PARTITION_NAME

config = context.config
branch = config.attributes["branch"]
other_prefixes: tuple[str, ...] = config.attributes["other_prefixes"]


def include_name(name: str | None, type_: str, _parent: Any) -> bool:
    """Autogenerate compares only this branch's tables (a plugin's start with its name)."""
    if type_ != "table" or name is None:
        return True
    if name.startswith("alembic_version") or PARTITION_NAME.match(name):
        return False
    if branch.table_prefix:
        return name.startswith(branch.table_prefix)
    return not name.startswith(other_prefixes)


def include_object(obj: Any, name: str | None, type_: str, _reflected: bool, _compare_to: Any) -> bool:
    """The same rule for the models' side: a branch's revision never touches another's tables."""
    if type_ == "table":
        return include_name(name, type_, None)
    table = getattr(obj, "table", None)
    return table is None or include_name(table.name, "table", None)


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=branch.version_table,
        include_name=include_name,
        include_object=include_object,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def main() -> None:
    engine = create_engine(config.attributes["url"], poolclass=NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(run)
        await connection.commit()
    await engine.dispose()


asyncio.run(main())
