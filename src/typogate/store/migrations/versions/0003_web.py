"""The web interface: daily incident counts, accounts, sessions, rules, own secrets.

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("day", sa.String(10), nullable=False, index=True),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("domain", sa.String(255), nullable=False),
        sa.Column("suggestion", sa.String(255), nullable=False),
        sa.Column("sender", sa.String(320), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.UniqueConstraint("day", "action", "domain", "suggestion", "sender"),
    )
    # Events recorded before this revision are counted once, here.
    day = "substr(CAST(time AS TEXT), 1, 10)"
    op.execute(
        "INSERT INTO incidents (day, action, domain, suggestion, sender, count) "
        f"SELECT {day}, action, domain, COALESCE(suggestion, ''), COALESCE(sender, ''), "
        f"count(*) FROM events WHERE action <> 'allow' GROUP BY {day}, action, domain, "
        "COALESCE(suggestion, ''), COALESCE(sender, '')"
    )
    op.execute(
        "INSERT INTO incidents (day, action, domain, suggestion, sender, count) "
        f"SELECT {day}, 'allow', '*', '', '*', count(*) FROM events WHERE action = 'allow' "
        f"GROUP BY {day}"
    )
    op.create_table(
        "accounts",
        sa.Column("username", sa.String(64), primary_key=True),
        sa.Column("password_hash", sa.String(256), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "web_sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, index=True),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires", sa.DateTime(timezone=True), nullable=False, index=True),
    )
    op.create_table(
        "rules",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("suffix", sa.String(255)),
        sa.Column("domain", sa.String(255)),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("exceptions", sa.Text, nullable=False),
        sa.Column("message", sa.Text),
        sa.Column("author", sa.String(64), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "secrets",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(128), nullable=False),
    )


def downgrade() -> None:
    for table in ("secrets", "rules", "web_sessions", "accounts", "incidents"):
        op.drop_table(table)
