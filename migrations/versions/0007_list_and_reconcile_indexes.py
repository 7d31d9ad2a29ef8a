"""indexes for the events list's order and for the links a listing has still to confirm

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
    # A connection's links a listing has still to confirm (partial: no other query of a
    # connection's links may take it for a cheaper path).
    op.create_index(
        'ix_event_link_unconfirmed',
        'event_link',
        ['connection_id', 'seen_round'],
        unique=False,
        postgresql_where=sa.text('seen_round <= 0'),
        sqlite_where=sa.text('seen_round <= 0'),
    )


def downgrade():
    op.drop_index(
        'ix_event_link_unconfirmed',
        table_name='event_link',
        postgresql_where=sa.text('seen_round <= 0'),
        sqlite_where=sa.text('seen_round <= 0'),
    )
    op.drop_index(
        'ix_calendar_event_listing',
        table_name='calendar_event',
        postgresql_where=sa.text('deleted_at IS NULL'),
        sqlite_where=sa.text('deleted_at IS NULL'),
    )
