"""The protected and known domains a configuration names: its own lists and the built-in
profiles (``profiles/``), each entry with where it was written, for errors."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import NamedTuple

from typogate.config import Config
from typogate.errors import ConfigError
from typogate.vocabulary import Profile

# The list files of each profile in typogate/policy/profiles/: (protected, known).
PROFILES: dict[Profile, tuple[tuple[str, ...], tuple[str, ...]]] = {
    Profile.US_GOV: (
        ("us-mil", "us-mil-mail", "us-gov-federal", "mail-providers"),
        ("us-gov-all", "mail-provider-companies", "mail-provider-countries"),
    ),
    Profile.PROVIDERS: (
        ("mail-providers",),
        ("mail-provider-companies", "mail-provider-countries"),
    ),
    Profile.NONE: ((), ()),
}
DEFAULT_PROFILE = Profile.US_GOV


class Listed(NamedTuple):
    """One domain from a list, and where it was written (``file:line``) for errors."""

    text: str
    origin: str


@dataclass(frozen=True, slots=True)
class DomainLists:
    """Every protected and known domain as written, and the profile that was used."""

    protected: list[Listed]
    known: list[Listed]
    profile: Profile | None


def domain_lists(config: Config) -> DomainLists:
    """Every protected and known domain ``config`` names, with where it came from.

    The profile's built-in lists are used only when nothing else names protected domains
    (or when ``profile`` is set explicitly). Raises :class:`ConfigError` for a list file
    that cannot be read.
    """
    domains = config.domains
    protected = [Listed(d, "config: domains.protected") for d in domains.protected]
    known = [Listed(d, "config: domains.known") for d in domains.known]
    for file in domains.protected_files:
        protected.extend(_read_list(config.base_dir / file))
    for file in domains.known_files:
        known.extend(_read_list(config.base_dir / file))
    profile = config.profile or (None if protected else DEFAULT_PROFILE)
    if profile is not None:
        protected_names, known_names = PROFILES[profile]
        for name in protected_names:
            protected.extend(_read_profile(name))
        for name in known_names:
            known.extend(_read_profile(name))
    return DomainLists(protected, known, profile)


def _parse_lines(text: str, origin: str) -> list[Listed]:
    listed = []
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.split("#", 1)[0].strip()
        if entry:
            listed.append(Listed(entry, f"{origin}:{number}"))
    return listed


def _read_list(file: Path) -> list[Listed]:
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{file}: cannot read domain list: {error.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{file}: domain list is not UTF-8 text") from None
    return _parse_lines(text, str(file))


def _read_profile(name: str) -> list[Listed]:
    text = resources.files("typogate.policy").joinpath(f"profiles/{name}.txt").read_text("utf-8")
    return _parse_lines(text, f"profile {name}")
