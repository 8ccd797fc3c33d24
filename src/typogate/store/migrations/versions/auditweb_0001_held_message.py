"""What the sender's release page shows of a held message: its subject, when it was
written, and every recipient (not only the ones that held it).

Revision ID: auditweb_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "auditweb_0001"
down_revision = "sink_0001"  # main's newest when this was rebased
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("holds") as table:
        table.add_column(sa.Column("subject", sa.Text, nullable=True))
        table.add_column(sa.Column("written", sa.DateTime(timezone=True), nullable=True))
        table.add_column(sa.Column("all_recipients", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("holds") as table:
        table.drop_column("all_recipients")
        table.drop_column("written")
        table.drop_column("subject")
