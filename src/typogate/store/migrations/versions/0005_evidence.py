"""Relationships keep their kind of evidence: mail received from a domain and senders'
releases, beside the deliveries to it (``count``); ``last_seen`` is indexed so a running
gateway can read what changed since it last asked.

Revision ID: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("correspondents") as table:
        table.add_column(sa.Column("received", sa.Integer, nullable=False, server_default="0"))
        table.add_column(sa.Column("released", sa.Integer, nullable=False, server_default="0"))
    op.create_index("ix_correspondents_last_seen", "correspondents", ["last_seen"])


def downgrade() -> None:
    op.drop_index("ix_correspondents_last_seen", table_name="correspondents")
    with op.batch_alter_table("correspondents") as table:
        table.drop_column("released")
        table.drop_column("received")
