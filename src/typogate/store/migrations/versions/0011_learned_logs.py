"""How far `typogate learn` read each log, so that learning the same logs again no longer
counts their mail twice; and what the latest run refused, with the senders who wrote
there (the dashboard's list for the admin's first review).

Revision ID: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "learned_logs",
        sa.Column("log", sa.String(64), primary_key=True),
        sa.Column("learned", sa.BigInteger, nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "learn_refusals",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("domain", sa.String(255), nullable=False),
        sa.Column("sender", sa.Text, nullable=False),
        sa.Column("deliveries", sa.Integer, nullable=False),
        sa.Column("suggestion", sa.String(255)),
        sa.Column("why", sa.Text, nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("learn_refusals")
    op.drop_table("learned_logs")
