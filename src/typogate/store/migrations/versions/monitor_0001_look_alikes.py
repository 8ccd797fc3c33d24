"""The monitor's snapshots: its runs and the look-alikes each saw.

Revision ID: monitor_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "monitor_0001"
down_revision = "0005"  # the newest of main when this was rebased; re-chained at merge
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "monitor_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("started", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished", sa.DateTime(timezone=True), nullable=False),
        sa.Column("protected", sa.Integer, nullable=False),
        sa.Column("asked", sa.Integer, nullable=False),
        sa.Column("changes", sa.Integer, nullable=False),
    )
    op.create_table(
        "look_alikes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, nullable=False, index=True),
        sa.Column("domain", sa.String(255), nullable=False),
        sa.Column("display", sa.String(255), nullable=False),
        sa.Column("intended", sa.String(255), nullable=False),
        sa.Column("probability", sa.Float, nullable=False),
        sa.Column("rank", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("mx", sa.Text, nullable=False),
        sa.Column("spf", sa.Boolean, nullable=False),
        sa.Column("dmarc", sa.Boolean, nullable=False),
        sa.Column("probe", sa.String(16)),
        sa.Column("change", sa.String(16), nullable=False),
        sa.UniqueConstraint("run_id", "domain"),
        sa.Index("ix_look_alikes_domain_run", "domain", "run_id"),
    )


def downgrade() -> None:
    op.drop_table("look_alikes")
    op.drop_table("monitor_runs")
