"""Events, holds and correspondents.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("domain", sa.String(255), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("adapter", sa.String(16), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("sender", sa.String(320)),
        sa.Column("sasl_username", sa.String(320)),
        sa.Column("suggestion", sa.String(255)),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("rule", sa.String(128), nullable=False),
        sa.Column("queue_id", sa.String(64)),
        sa.Column("client_address", sa.String(64)),
    )
    op.create_index("ix_events_time", "events", ["time"])
    op.create_index("ix_events_domain", "events", ["domain"])
    op.create_index("ix_events_action", "events", ["action"])
    op.create_table(
        "holds",
        sa.Column("hold_id", sa.String(64), primary_key=True),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("sender", sa.String(320)),
        sa.Column("recipients", sa.Text, nullable=False),
        sa.Column("reasons", sa.Text, nullable=False),
        sa.Column("suggestions", sa.Text, nullable=False),
        sa.Column("queue_id", sa.String(64)),
        sa.Column("message_path", sa.Text),
        sa.Column("state", sa.String(16), nullable=False),
    )
    op.create_index("ix_holds_time", "holds", ["time"])
    op.create_index("ix_holds_queue_id", "holds", ["queue_id"])
    op.create_index("ix_holds_state", "holds", ["state"])
    op.create_table(
        "correspondents",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("sender", sa.String(320), nullable=False),
        sa.Column("recipient_domain", sa.String(255), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("sender", "recipient_domain"),
    )
    op.create_index("ix_correspondents_recipient", "correspondents", ["recipient_domain"])


def downgrade() -> None:
    op.drop_table("correspondents")
    op.drop_table("holds")
    op.drop_table("events")
