"""what each link's provider holds, per field group

Revision ID: 0003_link_synced_fields
Revises: 0002_events

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0003_link_synced_fields'
down_revision = '0002_events'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('event_link') as batch_op:
        batch_op.add_column(sa.Column('synced_fields', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('event_link') as batch_op:
        batch_op.drop_column('synced_fields')
