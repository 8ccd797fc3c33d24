"""What a start learned from every relationship, kept for the next start on the same code,
configuration, lists and rules: a restart on a large store takes seconds, not minutes.
Nothing else reads it; dropping it costs one slow start.

Revision ID: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "learned_sets",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("learned", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("learned_sets")
