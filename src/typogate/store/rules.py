"""Blanket rules written in the web interface, kept in the store.

The configuration file's rules stay where they are (read-only here); these come after them
and can be added, changed and removed while typogate runs.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from pydantic import ValidationError
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from typogate.config import Rule, rule_problem
from typogate.store.models import RuleRow
from typogate.store.records import StoredRule, utc
from typogate.vocabulary import Action

log = logging.getLogger(__name__)


class RuleTable:
    """The web's rules: list, save (add or replace), remove."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def all(self) -> list[StoredRule]:
        """Every stored rule, oldest first."""
        with Session(self.engine) as session:
            return [_stored(row) for row in session.scalars(select(RuleRow).order_by(RuleRow.id))]

    def version(self) -> tuple[int, int, datetime | None]:
        """Changes whenever a rule is added, changed or removed: a cheap question that a
        running gateway asks every few seconds to pick up rules written elsewhere."""
        query = select(func.count(), func.max(RuleRow.id), func.max(RuleRow.updated))
        with Session(self.engine) as session:
            count, newest, changed = session.execute(query).one()
        return int(count), int(newest or 0), changed

    def in_force(self, configured: list[Rule]) -> list[Rule]:
        """The rules a Guard uses: the configuration's, then the stored ones that are
        valid (a rule stored before its kind was refused is left out, and said so)."""
        used = []
        for stored in self.all():
            if stored.problem is None:
                used.append(stored.rule)
            else:
                log.warning("store: rule %d is not used: %s", stored.id, stored.problem)
        return [*configured, *used]

    def save(self, rule: Rule, author: str, rule_id: int | None = None) -> StoredRule:
        """Add ``rule`` (or replace rule ``rule_id``); raises KeyError for an unknown id."""
        with Session(self.engine) as session, session.begin():
            row = RuleRow() if rule_id is None else session.get(RuleRow, rule_id)
            if row is None:
                raise KeyError(rule_id)
            row.suffix, row.domain, row.action = rule.suffix, rule.domain, rule.action.value
            row.exceptions = json.dumps(rule.exceptions)
            row.message = rule.message
            row.senders = json.dumps(rule.senders)
            row.author, row.updated = author, datetime.now(UTC)
            session.add(row)
            session.flush()
            return _stored(row)

    def remove(self, rule_id: int) -> bool:
        """Remove rule ``rule_id``; False when there was none."""
        with Session(self.engine) as session, session.begin():
            row = session.get(RuleRow, rule_id)
            if row is None:
                return False
            session.delete(row)
            return True


def _stored(row: RuleRow) -> StoredRule:
    fields = {
        "suffix": row.suffix,
        "domain": row.domain,
        "action": row.action,
        "except": json.loads(row.exceptions),
        "message": row.message,
        "senders": json.loads(row.senders),
    }
    try:
        return StoredRule(row.id, Rule.model_validate(fields), row.author, utc(row.updated))
    except ValidationError as error:
        # Stored before the checks refused it (a suffix not on the Public Suffix List, say):
        # shown with why, so that it can be changed or removed, and not used.
        rule = Rule.model_construct(
            suffix=row.suffix,
            domain=row.domain,
            action=Action(row.action),
            exceptions=fields["except"],
            message=row.message,
            senders=fields["senders"],
        )
        return StoredRule(row.id, rule, row.author, utc(row.updated), rule_problem(error))
