"""indexes for the push's pending query and the scheduler's claim

Revision ID: 0005_push_and_claim_indexes
Revises: 0004_idempotency_keys

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0005_push_and_claim_indexes'
down_revision = '0004_idempotency_keys'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('event_link', schema=None) as batch_op:
        # Its leading column serves what the single-column index on event_id did.
        batch_op.create_index('ix_event_link_event_id_connection_id_kind', ['event_id', 'connection_id', 'kind'], unique=False)
        batch_op.drop_index('ix_event_link_event_id')

    op.create_index(
        'ix_calendar_connection_sync_order',
        'calendar_connection',
        [sa.text("coalesce(last_sync_at, '1970-01-01 00:00:00')"), 'id'],
        unique=False,
        postgresql_where=sa.text('connected'),
        sqlite_where=sa.text('connected'),
    )


def downgrade():
    op.drop_index(
        'ix_calendar_connection_sync_order',
        table_name='calendar_connection',
        postgresql_where=sa.text('connected'),
        sqlite_where=sa.text('connected'),
    )

    with op.batch_alter_table('event_link', schema=None) as batch_op:
        batch_op.create_index('ix_event_link_event_id', ['event_id'], unique=False)
        batch_op.drop_index('ix_event_link_event_id_connection_id_kind')
