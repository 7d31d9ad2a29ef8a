"""indexes for the events list's order and for the links a listing showed

Revision ID: 0007_list_and_reconcile_indexes
Revises: 0006_push_channels

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007_list_and_reconcile_indexes'
down_revision = '0006_push_channels'
branch_labels = None
depends_on = None


def upgrade():
    # A user's live events by start, then id: a list page walks it, no sort.
    op.create_index(
        'ix_calendar_event_listing',
        'calendar_event',
        ['user_id', sa.text('coalesce(start_at, start_date)'), 'id'],
        unique=False,
        postgresql_where=sa.text('deleted_at IS NULL'),
        sqlite_where=sa.text('deleted_at IS NULL'),
    )
    with op.batch_alter_table('event_link', schema=None) as batch_op:
        batch_op.create_index('ix_event_link_connection_id_seen_round', ['connection_id', 'seen_round'], unique=False)


def downgrade():
    with op.batch_alter_table('event_link', schema=None) as batch_op:
        batch_op.drop_index('ix_event_link_connection_id_seen_round')
    op.drop_index(
        'ix_calendar_event_listing',
        table_name='calendar_event',
        postgresql_where=sa.text('deleted_at IS NULL'),
        sqlite_where=sa.text('deleted_at IS NULL'),
    )
