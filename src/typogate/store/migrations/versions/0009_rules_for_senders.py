"""A rule written in the web interface may name senders (addresses or domains): an allow
rule that is theirs alone. Rules stored before have none, and stay for every sender.

Revision ID: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("rules", sa.Column("senders", sa.Text, nullable=False, server_default="[]"))


def downgrade() -> None:
    # The older version would read a rule for some senders as one for everyone: an allow
    # for all. Such rules go.
    op.execute("DELETE FROM rules WHERE senders <> '[]'")
    with op.batch_alter_table("rules") as rules:  # SQLite drops a column by copying the table
        rules.drop_column("senders")
