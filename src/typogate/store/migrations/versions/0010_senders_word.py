"""A used link keeps what its sender said: who, and for which recipients (a release
link's are its hold's, filled in here for the links used before). The dashboard lists a
sender's releases and confirmations from them: a confirmation ends that sender's warnings
about a domain, and was only in the log.

Revision ID: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("spent_links") as links:
        links.add_column(sa.Column("sender", sa.Text, nullable=False, server_default=""))
        links.add_column(sa.Column("recipients", sa.Text, nullable=False, server_default="[]"))
    op.execute(
        """
        UPDATE spent_links SET
            sender = COALESCE(
                (SELECT holds.sender FROM holds WHERE holds.hold_id = spent_links.hold_id), ''),
            recipients = COALESCE(
                (SELECT holds.recipients FROM holds WHERE holds.hold_id = spent_links.hold_id),
                '[]')
        WHERE hold_id <> ''
        """
    )


def downgrade() -> None:
    with op.batch_alter_table("spent_links") as links:  # SQLite drops a column by copying
        links.drop_column("recipients")
        links.drop_column("sender")
