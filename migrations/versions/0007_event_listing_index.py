"""an index in the events list's order: a user's live events by start, then id

Revision ID: 0007_event_listing_index
Revises: 0006_push_channels

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007_event_listing_index'
down_revision = '0006_push_channels'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index(
        'ix_calendar_event_listing',
        'calendar_event',
        ['user_id', sa.text('coalesce(start_at, start_date)'), 'id'],
        unique=False,
        postgresql_where=sa.text('deleted_at IS NULL'),
        sqlite_where=sa.text('deleted_at IS NULL'),
    )


def downgrade():
    op.drop_index(
        'ix_calendar_event_listing',
        table_name='calendar_event',
        postgresql_where=sa.text('deleted_at IS NULL'),
        sqlite_where=sa.text('deleted_at IS NULL'),
    )
