"""A held message's sender is kept whole. Postfix takes an address as long as its command
line allows (a local part of 600 characters), and PostgreSQL refused such a sender in the
320 characters the column had: the message could not be held, and was deferred (451) until
its sender's server gave up. Text has no such limit; SQLite never enforced one.

Revision ID: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":  # text and varchar share a form: no rewrite
        op.alter_column("holds", "sender", type_=sa.Text(), existing_type=sa.String(320))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("holds", "sender", type_=sa.String(320), existing_type=sa.Text())
