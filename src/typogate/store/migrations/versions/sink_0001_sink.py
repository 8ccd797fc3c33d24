"""The sink: metadata of every recipient it answered, and the daily reports it sent.

Revision ID: sink_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "sink_0001"
down_revision = "monitor_0001"  # after the monitor's tables
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sink_records",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("client_address", sa.String(64), nullable=False),
        sa.Column("client_range", sa.String(64), nullable=False),
        sa.Column("helo", sa.String(255), nullable=False),
        sa.Column("sender_domain", sa.String(255), nullable=False),
        sa.Column("local_hash", sa.String(64), nullable=False),
        sa.Column("recipient", sa.String(320)),
        sa.Column("lookalike", sa.String(255), nullable=False),
        sa.Column("intended", sa.String(255), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reply", sa.Text, nullable=False),
    )
    op.create_index("ix_sink_records_day_intended", "sink_records", ["day", "intended"])
    op.create_table(
        "sink_reports",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("intended", sa.String(255), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("contact", sa.String(320), nullable=False),
        sa.Column("messages", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.UniqueConstraint("intended", "day"),
    )


def downgrade() -> None:
    op.drop_table("sink_reports")
    op.drop_table("sink_records")
