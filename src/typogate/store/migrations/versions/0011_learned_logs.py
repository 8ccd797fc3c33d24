"""How far `typogate learn` read each log, so that learning the same logs again (next
week's run over the rotated files) no longer counts their mail twice.

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


def downgrade() -> None:
    op.drop_table("learned_logs")
