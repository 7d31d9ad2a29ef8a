"""push notification channels, and the connection's push columns

Revision ID: 0006_push_channels
Revises: 0005_push_and_claim_indexes

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006_push_channels'
down_revision = '0005_push_and_claim_indexes'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('push_channel',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('connection_id', sa.Integer(), nullable=False),
    sa.Column('provider_channel_id', sa.String(length=255), nullable=False),
    sa.Column('resource_id', sa.String(length=255), nullable=True),
    sa.Column('secret_hash', sa.String(length=64), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('renew_at', sa.DateTime(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['connection_id'], ['calendar_connection.id'], name=op.f('fk_push_channel_connection_id_calendar_connection'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_push_channel')),
    sa.UniqueConstraint('provider_channel_id', name=op.f('uq_push_channel_provider_channel_id'))
    )
    with op.batch_alter_table('push_channel', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_push_channel_connection_id'), ['connection_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_push_channel_renew_at'), ['renew_at'], unique=False)

    with op.batch_alter_table('calendar_connection', schema=None) as batch_op:
        batch_op.add_column(sa.Column('push_expires_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('push_due_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('push_error', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('push_retry_at', sa.DateTime(), nullable=True))

    op.create_index(
        'ix_calendar_connection_push_due_at',
        'calendar_connection',
        ['push_due_at'],
        unique=False,
        postgresql_where=sa.text('push_due_at IS NOT NULL'),
        sqlite_where=sa.text('push_due_at IS NOT NULL'),
    )


def downgrade():
    op.drop_index(
        'ix_calendar_connection_push_due_at',
        table_name='calendar_connection',
        postgresql_where=sa.text('push_due_at IS NOT NULL'),
        sqlite_where=sa.text('push_due_at IS NOT NULL'),
    )

    # On SQLite the batch below copies the table, and reflection cannot carry an expression
    # index across: drop it first and make it again after.
    op.drop_index(
        'ix_calendar_connection_sync_order',
        table_name='calendar_connection',
        postgresql_where=sa.text('connected'),
        sqlite_where=sa.text('connected'),
    )
    with op.batch_alter_table('calendar_connection', schema=None) as batch_op:
        batch_op.drop_column('push_retry_at')
        batch_op.drop_column('push_error')
        batch_op.drop_column('push_due_at')
        batch_op.drop_column('push_expires_at')
    op.create_index(
        'ix_calendar_connection_sync_order',
        'calendar_connection',
        [sa.text("coalesce(last_sync_at, '1970-01-01 00:00:00')"), 'id'],
        unique=False,
        postgresql_where=sa.text('connected'),
        sqlite_where=sa.text('connected'),
    )

    with op.batch_alter_table('push_channel', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_push_channel_renew_at'))
        batch_op.drop_index(batch_op.f('ix_push_channel_connection_id'))

    op.drop_table('push_channel')
