"""Events are listed by id (ids grow with time): the time index only cost writes.

Revision ID: 0004
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_events_time", table_name="events")


def downgrade() -> None:
    op.create_index("ix_events_time", "events", ["time"])
