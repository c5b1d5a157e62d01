"""events: no primary key

Revision ID: 3f6c2a9d1b7e
Revises: e8d5b200abe0
Create Date: 2026-11-26 17:35:00.000000

The key ``(id, created_at)`` was an index written with every event and read by nothing:
``id`` is minted by the server, client retries are deduplicated by ``event_keys``, and every
read by id names its site and goes through ``ix_events_site_id_id``. On PostgreSQL dropping
it on the partitioned table drops it on every partition.
"""
from collections.abc import Sequence

from alembic import op

revision: str = '3f6c2a9d1b7e'
down_revision: str | None = 'e8d5b200abe0'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_constraint('pk_events', type_='primary')


def downgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_primary_key('pk_events', ['id', 'created_at'])
