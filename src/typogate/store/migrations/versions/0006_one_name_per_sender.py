"""A sender is one party however its local part was quoted: what a log or the milter stored
under ``"sue doe"@example.org`` joins what is stored under ``sue doe@example.org``, the
name every path has used since (``policy.relationships.party_name``). Relationships add
their counts, and first and last seen span both; the dashboard's incident counts add up.
Irreversible: the downgrade leaves the rows as they are.

Revision ID: 0006
"""

from typing import Any

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
_INCIDENTS = sa.table(
    "incidents",
    sa.column("id", sa.Integer),
    sa.column("day", sa.String),
    sa.column("action", sa.String),
    sa.column("domain", sa.String),
    sa.column("suggestion", sa.String),
    sa.column("sender", sa.String),
    sa.column("count", sa.Integer),
)


def upgrade() -> None:
    _merge(
        _CORRESPONDENTS,
        key=("recipient_domain",),
        added=("count", "received", "released"),
        spanned=True,
    )
    _merge(_INCIDENTS, key=("day", "action", "domain", "suggestion"), added=("count",))


def downgrade() -> None:
    pass  # the merged counts cannot be told apart again


def _merge(
    table: Any, *, key: tuple[str, ...], added: tuple[str, ...], spanned: bool = False
) -> None:
    """Give each row whose sender is quoted the sender's one name; where a row of that name
    and ``key`` is there already, add the ``added`` columns into it (and with ``spanned``,
    take the earlier first_seen and later last_seen) and delete the quoted row."""
    bind = op.get_bind()
    quoted = bind.execute(sa.select(table).where(table.c.sender.like('"%'))).mappings().all()
    for row in quoted:  # few: a quoted envelope sender is rare
        name = party_name(row["sender"])
        if name == row["sender"]:
            continue
        same = sa.and_(table.c.sender == name, *(table.c[k] == row[k] for k in key))
        kept = bind.execute(sa.select(table).where(same)).mappings().first()
        if kept is None:
            bind.execute(sa.update(table).where(table.c.id == row["id"]).values(sender=name))
            continue
        values = {column: kept[column] + row[column] for column in added}
        if spanned:
            values["first_seen"] = min(kept["first_seen"], row["first_seen"])
            values["last_seen"] = max(kept["last_seen"], row["last_seen"])
        bind.execute(sa.update(table).where(table.c.id == kept["id"]).values(values))
        bind.execute(sa.delete(table).where(table.c.id == row["id"]))
