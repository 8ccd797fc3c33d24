"""Stores as they were before a revision, for the tests of what a migration does to them."""

from __future__ import annotations

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory

from typogate.store import Store
from typogate.store.engine import MIGRATIONS


def take_back(store: Store, revision: str) -> None:
    """Downgrade ``store``'s schema to ``revision``, as a store made then would be."""
    with store.engine.begin() as connection:
        command.downgrade(_config(connection), revision)


def before(revision: str) -> str:
    """The revision ``revision`` upgrades from."""
    down = ScriptDirectory.from_config(_config(None)).get_revision(revision).down_revision
    assert isinstance(down, str)
    return down


def heads() -> list[str]:
    """The newest revisions of the migrations, as Alembic reads them."""
    return list(ScriptDirectory.from_config(_config(None)).get_heads())


def _config(connection: object) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config
