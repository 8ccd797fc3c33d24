"""Hold actions are recorded as intents before postsuper runs, so that a crash between
Postfix acting and the store recording it is finished on the next start.

Revision ID: hardening_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "hardening_0001"
down_revision = "auditweb_0001"  # the newest of main when this was rebased
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hold_intents",
        sa.Column("hold_id", sa.String(64), primary_key=True),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("queue_id", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(320), nullable=False),
        sa.Column("why", sa.Text, nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("owner", sa.String(320), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("hold_intents")
