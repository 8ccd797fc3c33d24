"""A sender is one party however its local part was quoted: relationships that a log or
the milter stored under ``"sue doe"@example.org`` join those under ``sue doe@example.org``,
the name every path has used since (``policy.relationships.party_name``). Counts add up;
first and last seen span both. Irreversible: the downgrade leaves the rows as they are.

Revision ID: 0006
"""

import sqlalchemy as sa
from alembic import op

from typogate.policy.relationships import party_name

revision = "0006"
down_revision = "hardening_0001"  # the newest of main
branch_labels = None
depends_on = None

_CORRESPONDENTS = sa.table(
    "correspondents",
    sa.column("id", sa.Integer),
    sa.column("sender", sa.String),
    sa.column("recipient_domain", sa.String),
    sa.column("count", sa.Integer),
    sa.column("received", sa.Integer),
    sa.column("released", sa.Integer),
    sa.column("first_seen", sa.DateTime(timezone=True)),
    sa.column("last_seen", sa.DateTime(timezone=True)),
)
_COUNTS = ("count", "received", "released")


def upgrade() -> None:
    bind = op.get_bind()
    table = _CORRESPONDENTS
    quoted = bind.execute(sa.select(table).where(table.c.sender.like('"%'))).mappings().all()
    for row in quoted:  # few: a quoted envelope sender is rare
        name = party_name(row["sender"])
        if name == row["sender"]:
            continue
        same = (table.c.sender == name) & (table.c.recipient_domain == row["recipient_domain"])
        kept = bind.execute(sa.select(table).where(same)).mappings().first()
        if kept is None:
            bind.execute(sa.update(table).where(table.c.id == row["id"]).values(sender=name))
            continue
        bind.execute(
            sa.update(table)
            .where(table.c.id == kept["id"])
            .values(
                {column: kept[column] + row[column] for column in _COUNTS}
                | {
                    "first_seen": min(kept["first_seen"], row["first_seen"]),
                    "last_seen": max(kept["last_seen"], row["last_seen"]),
                }
            )
        )
        bind.execute(sa.delete(table).where(table.c.id == row["id"]))


def downgrade() -> None:
    pass  # the merged counts cannot be told apart again
