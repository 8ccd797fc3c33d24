"""Is this machine set up the way docs/postfix.md and docs/operations.md say? The checks
behind ``typogate doctor``.

Postfix is read with ``postconf`` (``-c DIR`` for an instance other than the default), as
an admin reads it: the policy service in ``smtpd_recipient_restrictions`` (main.cf or a
master.cf service such as submission) before anything that would let mail skip it, the
milter for ``sendmail(1)`` in ``non_smtpd_milters``, the fail-open or fail-closed defaults
chosen on purpose, how long Postfix waits for an answer (bounded for a typogate that
hangs, and long enough for one that restarts: a start is timed by the caller,
:class:`StartCost`), and the queue id in policy requests when mail is held. Then typogate's
own parts: the store, the notice relay, the address release links point at. Every finding
that is missing carries the line that puts it right.
"""

from __future__ import annotations

import math
import re
import shlex
import smtplib
import socket
import struct
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from enum import StrEnum
from ipaddress import ip_address
from typing import Any
from urllib.parse import urlsplit

from typogate.config import SYSTEM_FILE, Config, host_and_port, milter_address, reachable
from typogate.errors import TypogateError
from typogate.vocabulary import Action

_TIMEOUT = 5.0
# What ends the evaluation of smtpd_recipient_restrictions before typogate is asked: mail
# that one of these lets through never meets the policy service.
_PERMITS = re.compile(r"^permit(_\w+)?$")
_MAIN_CF = "main.cf"
# A policy service's default_action that lets the mail go on unchecked (fail-open).
_PASSING = frozenset({"DUNNO", "OK", "WARN", "INFO", "PREPEND"})
# Postfix's wait for a policy answer (timeout times tries) beyond which doctor says how
# long a hung typogate holds each recipient; the timeout its line sets instead, unless a
# start of typogate needs Postfix to wait longer.
_LONGEST_WAIT = 30
_BOUNDED_TIMEOUT = 10
# Postfix should wait this many times what building typogate's judge took here: a start
# also imports Python and opens the listeners, and a restart may come on a busier machine.
_START_MARGIN = 2
_FROM_PARAMETER = ", from smtpd_policy_service_default_action"
_TIME_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class Status(StrEnum):
    """How a check came out: as the documentation says, missing (something to do), or a
    note (works, with a consequence worth knowing)."""

    OK = "ok"
    MISSING = "missing"
    NOTE = "note"


@dataclass(frozen=True, slots=True)
class Finding:
    """One check: what was looked at, how it came out, what was found (and what to do),
    and the shell line that puts it right, when one does."""

    check: str
    status: Status
    detail: str
    fix: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (``typogate doctor --json``)."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class StartCost:
    """What a start of typogate builds before it answers (its index, the store's rules
    and learned relationships), timed on this machine."""

    seconds: float
    relationships: int

    @property
    def patience(self) -> float:
        """How long Postfix should wait for a restarting typogate, tries together."""
        return _START_MARGIN * self.seconds


def checkup(
    config: Config, store_url: str | None, postfix_dir: str | None, start: StartCost | None = None
) -> list[Finding]:
    """Every check, in the order an admin sets things up; ``start``, when measured, is
    weighed against how long Postfix waits for an answer."""
    return [
        *check_postfix(config, postfix_dir, start),
        *check_answering(config),
        check_store(store_url, config),
        check_notice_relay(config),
        check_release_links(config, store_url),
    ]


# --- Postfix -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PostfixSettings:
    """What ``postconf`` says: every parameter in force, those set explicitly in main.cf,
    and master.cf's per-service overrides (``service/type/name``)."""

    values: dict[str, str]
    explicit: frozenset[str]
    services: dict[str, str]
    postconf: list[str]  # the command that reads this instance: postconf [-c DIR]


def read_postfix(postfix_dir: str | None) -> PostfixSettings:
    """Read one Postfix instance's settings; raises :class:`TypogateError` with what
    ``postconf`` said when it cannot."""
    postconf = ["postconf", *(["-c", postfix_dir] if postfix_dir else [])]

    def ask(*flags: str) -> dict[str, str]:
        try:
            done = subprocess.run(
                [*postconf, *flags], capture_output=True, text=True, timeout=30, check=False
            )
        except FileNotFoundError:
            raise TypogateError("postconf is not installed: is Postfix?") from None
        if done.returncode != 0:
            raise TypogateError(done.stderr.strip() or f"{' '.join(postconf)} failed")
        pairs = (line.partition(" = ") for line in done.stdout.splitlines())
        return {name: value for name, sep, value in pairs if sep}

    return PostfixSettings(ask(), frozenset(ask("-n")), ask("-P"), postconf)


def check_postfix(
    config: Config, postfix_dir: str | None, start: StartCost | None = None
) -> list[Finding]:
    """The policy service, the milter and their fail-open or fail-closed defaults, and
    (given ``start``) whether Postfix waits out a restart."""
    try:
        postfix = read_postfix(postfix_dir)
    except TypogateError as error:
        return [
            Finding(
                "Postfix",
                Status.MISSING,
                f"{error}; name the Postfix instance with --postfix-config DIR or "
                "release.postfix_config",
            )
        ]
    findings = [*_policy_service(config, postfix, start), *_milter(config, postfix)]
    if _holds(config):
        findings.append(_queue_id_for_holds(postfix))
    return findings


def _policy_service(
    config: Config, postfix: PostfixSettings, start: StartCost | None
) -> list[Finding]:
    host, port = host_and_port(config.gateway.policy_listen, "gateway.policy_listen")
    wanted = f"inet:{host}:{port}"
    where = {_MAIN_CF: postfix.values.get("smtpd_recipient_restrictions", "")}
    for key, value in postfix.services.items():  # submission/inet/smtpd_recipient_...
        if key.endswith("/smtpd_recipient_restrictions"):
            where[f"master.cf {key.rsplit('/', 1)[0]}"] = value
    asking = {place: value for place, value in where.items() if wanted in value}
    check = "policy service"
    if not asking:
        current = where[_MAIN_CF]
        elsewhere = "check_policy_service" in " ".join(where.values())
        return [
            Finding(
                check,
                Status.MISSING,
                f"no smtpd_recipient_restrictions asks {wanted}"
                + (" (a check_policy_service there asks another address)" if elsewhere else ""),
                _postconf(
                    postfix,
                    "smtpd_recipient_restrictions",
                    _join(
                        f"check_policy_service {{ {wanted}, default_action=DUNNO, "
                        f"timeout={_timeout_for(start, _tries(postfix) or 2)}s }}",
                        _restrictions(current),
                    ),
                ),
            )
        ]
    findings = []
    for place, value in asking.items():
        restrictions = _restrictions(value)
        first = next(i for i, item in enumerate(restrictions) if wanted in item)
        skipping = [item for item in restrictions[:first] if _PERMITS.match(item)]
        if skipping:
            reordered = [restrictions[first], *restrictions[:first], *restrictions[first + 1 :]]
            findings.append(
                Finding(
                    check,
                    Status.MISSING,
                    f"in {place}, {', '.join(skipping)} comes before typogate: that mail "
                    "is never checked",
                    _postconf_restrictions(postfix, place, reordered),
                )
            )
            continue
        findings.append(_default_action(postfix, place, restrictions[first], wanted))
        findings += _wait(postfix, place, restrictions, first, start)
    return findings


def _policy_setting(postfix: PostfixSettings, place: str, item: str, name: str) -> str | None:
    """One of Postfix's settings for a policy client (``timeout``, ``default_action``) as
    it is in force for ``item``: its own (``{ inet:..., timeout=10s }``), else the
    master.cf service's ``-o smtpd_policy_service_NAME``, else main.cf's; ``None`` when it
    is Postfix's default, chosen by nobody."""
    own = _item_settings(item).get(name)
    if own is not None:
        return own
    parameter = f"smtpd_policy_service_{name}"
    if place != _MAIN_CF:
        chosen = postfix.services.get(f"{place.removeprefix('master.cf ')}/{parameter}")
        if chosen is not None:
            return chosen
    return postfix.values.get(parameter) if parameter in postfix.explicit else None


def _default_action(postfix: PostfixSettings, place: str, item: str, wanted: str) -> Finding:
    check = "policy service"
    chosen = _policy_setting(postfix, place, item, "default_action")
    if chosen is None:
        return Finding(
            check,
            Status.NOTE,
            f"{place} asks {wanted} with no default_action: while typogate is down "
            "Postfix answers 451 4.3.5 (fail-closed, docs/postfix.md); "
            "default_action=DUNNO is fail-open",
        )
    mode = "fail-open" if chosen.upper().partition(" ")[0] in _PASSING else "fail-closed"
    where = "" if "default_action" in _item_settings(item) else _FROM_PARAMETER
    return Finding(
        check, Status.OK, f"{place} asks {wanted}, default_action={chosen} ({mode}){where}"
    )


def _wait(
    postfix: PostfixSettings,
    place: str,
    restrictions: list[str],
    first: int,
    start: StartCost | None,
) -> list[Finding]:
    """How long Postfix waits for typogate's answer, against what it should: a note when
    it would wait long for a typogate that hangs (a process stopped, or out of memory,
    that still holds its socket: each smtpd process asking waits, recipient after
    recipient, and a full pool of them is a mail outage), or (given ``start``) less than a
    restart takes; and how a restart goes when it waits long enough."""
    item = restrictions[first]
    timeout = _seconds(
        _policy_setting(postfix, place, item, "timeout")
        or postfix.values.get("smtpd_policy_service_timeout", "100s")
    )
    tries = _tries(postfix, place, item)
    if timeout is None or tries is None:
        return []
    waits = timeout * tries
    bounded = _timeout_for(start, tries)
    longest = max(_LONGEST_WAIT, bounded * tries)
    each = f"{timeout:g} s a try, {tries} {'try' if tries == 1 else 'tries'}"
    if waits > longest:
        return [
            Finding(
                "policy service",
                Status.NOTE,
                f"in {place}, Postfix waits {each}, for typogate's answer: while typogate "
                f"hangs, each smtpd process asking it waits {waits:g} s a recipient before "
                f"default_action applies. typogate answers in milliseconds: "
                f"timeout={bounded}s bounds the wait",
                _timeout_fix(postfix, place, restrictions, first, bounded),
            )
        ]
    if start is None:
        return []
    built = (
        f"typogate builds its index and {start.relationships:,} learned relationships in "
        f"{start.seconds:.1f} s here, as a start does"
    )
    if waits < start.patience:
        chosen = _policy_setting(postfix, place, item, "default_action") or "451 4.3.5"
        return [
            Finding(
                "restart",
                Status.NOTE,
                f"{built}; in {place} Postfix waits {each}: mail that reaches typogate early "
                f"in a restart gets default_action ({chosen}), even under the socket "
                f"units. timeout={bounded}s waits a restart out",
                _timeout_fix(postfix, place, restrictions, first, bounded),
            )
        ]
    return [
        Finding(
            "restart",
            Status.OK,
            f"{built}; in {place} Postfix waits {each}: under the socket units a restart "
            "delays mail and fails none (without them Postfix is refused while typogate "
            "restarts, and applies default_action: docs/install.md)",
        )
    ]


def _tries(postfix: PostfixSettings, place: str = _MAIN_CF, item: str = "") -> int | None:
    """How many times Postfix asks for a policy answer, as in force for ``item`` of
    ``place`` (main.cf's, without one; Postfix's default: 2); None when not a count."""
    tries = _policy_setting(postfix, place, item, "try_limit") or postfix.values.get(
        "smtpd_policy_service_try_limit", "2"
    )
    return int(tries) if tries.isdigit() and int(tries) > 0 else None


def _timeout_for(start: StartCost | None, tries: int) -> int:
    """The timeout (seconds) doctor's lines set: 10 s, or enough for ``tries`` tries
    together to wait out a start that takes longer (``StartCost.patience``)."""
    if start is None:
        return _BOUNDED_TIMEOUT
    return max(_BOUNDED_TIMEOUT, math.ceil(start.patience / tries))


def _timeout_fix(
    postfix: PostfixSettings, place: str, restrictions: list[str], first: int, seconds: int
) -> str | None:
    """The line that sets the policy client's timeout for typogate's restriction."""
    item = restrictions[first]
    if place == _MAIN_CF:
        bounded = [*restrictions[:first], _with_timeout(item, seconds), *restrictions[first + 1 :]]
        return _postconf_restrictions(postfix, place, bounded)
    if "timeout" in _item_settings(item):
        return None  # its own { timeout=... } in master.cf, which postconf -P cannot write
    return _postconf_service(postfix, place, "smtpd_policy_service_timeout", f"{seconds}s")


def _item_parts(item: str) -> tuple[str, list[str]]:
    """A restriction and its argument's parts: ``check_policy_service { SERVER,
    name=value, ... }`` (or ``check_policy_service SERVER``) -> the command, and
    ``[SERVER, name=value, ...]``."""
    command, _, argument = item.partition(" ")
    return command, _group_parts(argument)


def _group_parts(text: str) -> list[str]:
    """The parts of a ``{ SERVER, name=value, ... }`` group, or of a bare ``SERVER``."""
    parts = [part.strip() for part in text.strip().strip("{}").split(",")]
    return [part for part in parts if part]


def _item_settings(item: str) -> dict[str, str]:
    """The ``name=value`` settings of a restriction's ``{ server, name=value, ... }``."""
    return _settings(_item_parts(item)[1])


def _settings(parts: list[str]) -> dict[str, str]:
    pairs = (part.partition("=") for part in parts)
    return {name.strip(): value.strip() for name, sep, value in pairs if sep}


def _milter_item(word: str) -> tuple[str, dict[str, str]]:
    """A milter list's item: ``inet:HOST:PORT``, or ``{ inet:HOST:PORT, name=value, ... }``
    with settings of its own (Postfix 3.0: ``default_action``, ``command_timeout``, ...)
    -> the server, and its settings."""
    parts = _group_parts(word)
    return (parts[0], _settings(parts[1:])) if parts else ("", {})


def _with_timeout(item: str, seconds: int) -> str:
    """``check_policy_service SERVER`` or ``{ SERVER, ... }`` with timeout=SECONDSs in it."""
    command, parts = _item_parts(item)
    kept = [part for part in parts if part.partition("=")[0].strip() != "timeout"]
    return f"{command} {{ {', '.join([*kept, f'timeout={seconds}s'])} }}"


def _seconds(value: str) -> float | None:
    """A Postfix time value (``100s``, ``2m``, ``100``: seconds when it has no unit)."""
    matched = re.fullmatch(r"\s*(\d+)\s*([smhdw]?)\s*", value)
    if matched is None:
        return None
    return int(matched.group(1)) * _TIME_UNITS[matched.group(2) or "s"]


def _milter(config: Config, postfix: PostfixSettings) -> list[Finding]:
    wanted = postfix_milter_socket(config.gateway.milter_listen)
    current = postfix.values.get("non_smtpd_milters", "")
    milters = dict(_milter_item(word) for word in _words(current))
    found = [Finding("milter", Status.OK, f"non_smtpd_milters has {wanted} (sendmail(1))")]
    if wanted not in milters:
        found = [
            Finding(
                "milter",
                Status.MISSING,
                f"non_smtpd_milters does not have {wanted}: mail submitted with sendmail(1) "
                "is not checked",
                _postconf(postfix, "non_smtpd_milters", _join(wanted, _words(current))),
            )
        ]
    own = milters.get(wanted, {}).get("default_action")
    default = own or postfix.values.get("milter_default_action", "tempfail")
    mode = "fail-open" if default == "accept" else "fail-closed"
    if own is not None:
        found.append(Finding("milter", Status.OK, f"{wanted}: default_action={own} ({mode})"))
    elif "milter_default_action" in postfix.explicit:
        found.append(Finding("milter", Status.OK, f"milter_default_action = {default} ({mode})"))
    else:
        found.append(
            Finding(
                "milter",
                Status.NOTE,
                f"milter_default_action is Postfix's default, {default} ({mode}): choose it "
                "(docs/postfix.md); accept is fail-open",
            )
        )
    return found


def _queue_id_for_holds(postfix: PostfixSettings) -> Finding:
    name = "smtpd_delay_open_until_valid_rcpt"
    if postfix.values.get(name, "yes") == "no":
        return Finding("holds", Status.OK, f"{name} = no: policy requests carry the queue id")
    return Finding(
        "holds",
        Status.MISSING,
        f"{name} is not no: a policy HOLD is recorded without the Postfix queue id, and "
        "cannot be released by typogate",
        _postconf(postfix, name, "no"),
    )


def postfix_milter_socket(milter_listen: str) -> str:
    """libmilter's socket name (``inet:10041@127.0.0.1``) as Postfix writes it
    (``inet:127.0.0.1:10041``)."""
    kind, _, where = milter_listen.partition(":")
    if kind in ("inet", "inet6"):
        port, _, host = where.partition("@")
        host = host or ("::1" if kind == "inet6" else "127.0.0.1")
        return f"inet:[{host}]:{port}" if ":" in host else f"inet:{host}:{port}"
    return f"unix:{where}"


def _holds(config: Config) -> bool:
    return Action.HOLD in (config.actions.typo, config.actions.possible_typo) or any(
        rule.action is Action.HOLD for rule in config.rules
    )


def _restrictions(value: str) -> list[str]:
    """A restriction list's items, each with its argument: ``check_policy_service
    inet:127.0.0.1:10040`` and ``check_policy_service { inet:..., default_action=DUNNO }``
    are one item (an argument is a ``{ ... }`` group, or a word with a colon: a server
    or a lookup table)."""
    items: list[str] = []
    for word in _words(value):
        if items and (word.startswith("{") or ":" in word):
            items[-1] += f" {word}"
        else:
            items.append(word)
    return items


def _words(value: str) -> list[str]:
    """A Postfix list's words (separated by commas or whitespace), a ``{ ... }`` group
    one word."""
    words, depth, current = [], 0, ""
    for char in value:
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth == 0 and char in ", \t\n":
            if current.strip():
                words.append(current.strip())
            current = ""
        else:
            current += char
    if current.strip():
        words.append(current.strip())
    return words


def _join(first: str, items: list[str]) -> str:
    return ", ".join([first, *items])


def _postconf(postfix: PostfixSettings, name: str, value: str) -> str:
    return shlex.join([*postfix.postconf, "-e", f"{name} = {value}"])


def _postconf_restrictions(postfix: PostfixSettings, place: str, items: list[str]) -> str | None:
    """The line that sets ``place``'s smtpd_recipient_restrictions to ``items``; ``None``
    for a master.cf service whose items hold a ``{ }`` group: ``postconf -P`` writes no
    whitespace, which the group needs (master.cf is edited by hand then)."""
    if place == _MAIN_CF:
        return _postconf(postfix, "smtpd_recipient_restrictions", ", ".join(items))
    if any("{" in item for item in items):
        return None
    value = ",".join(item.replace(" ", ",") for item in items)  # one word: no spaces
    return _postconf_service(postfix, place, "smtpd_recipient_restrictions", value)


def _postconf_service(postfix: PostfixSettings, place: str, name: str, value: str) -> str:
    service = place.removeprefix("master.cf ")  # submission/inet
    return shlex.join([*postfix.postconf, "-P", f"{service}/{name}={value}"])


# --- typogate's own parts ------------------------------------------------------------------


def check_answering(config: Config) -> list[Finding]:
    """The policy service and the milter answer where Postfix asks them: Postfix set up
    right is no use while they do not, its default_action applies to every recipient."""
    policy = host_and_port(config.gateway.policy_listen, "gateway.policy_listen")
    milter = milter_address(config.gateway.milter_listen)
    return [
        _answering("policy service", policy, _policy_answers, "default_action"),
        _answering("milter", milter, _milter_answers, "milter_default_action"),
    ]


def _answering(
    what: str, where: tuple[str, int] | str, ask: Callable[[socket.socket], str], default: str
) -> Finding:
    """Connect to ``where`` (loopback for a wildcard address) and ``ask``; a finding that
    names the Postfix ``default`` that applies while nothing answers."""
    address: tuple[str, int] | str = where
    family, shown = socket.AF_UNIX, str(where)
    if not isinstance(where, str):
        host, port = where
        host = reachable(host, ipv6=":" in host)
        shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        address, family = (host, port), socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(_TIMEOUT)
            sock.connect(address)
            said = ask(sock)
    except OSError as error:
        return Finding(
            "answering",
            Status.MISSING,
            f"nothing answers at {shown} ({error.strerror or error}): until the {what} "
            f"runs there, Postfix's {default} decides for all the mail it would check; "
            "start typogate (systemctl start typogate)",
        )
    return Finding("answering", Status.OK, f"the {what} answers at {shown} ({said})")


def _policy_answers(sock: socket.socket) -> str:
    # A request at CONNECT: answered DUNNO, and neither judged nor recorded.
    sock.sendall(b"request=smtpd_access_policy\nprotocol_state=CONNECT\n\n")
    answer = b""
    while not answer.endswith(b"\n\n"):
        if not (chunk := sock.recv(4096)) or len(answer) > 4096:
            raise OSError(f"not a policy answer: {answer[:80]!r}")
        answer += chunk
    if not answer.startswith(b"action="):
        raise OSError(f"not a policy answer: {answer[:80]!r}")
    return answer.decode(errors="replace").strip()


def _milter_answers(sock: socket.socket) -> str:
    # The milter protocol's first step, as Postfix takes it (version 6, every action and
    # protocol flag offered); then quit. libmilter answers with its own options.
    sock.sendall(_milter_packet(b"O", struct.pack("!III", 6, 0x1FF, 0x1FFFFF)))
    head = _read_exactly(sock, 4)
    (length,) = struct.unpack("!I", head)
    reply = _read_exactly(sock, min(length, 1024))
    if reply[:1] != b"O" or len(reply) < 13:
        raise OSError(f"not a milter's answer: {reply[:20]!r}")
    sock.sendall(_milter_packet(b"Q", b""))
    version = struct.unpack("!I", reply[1:5])[0]
    return f"milter protocol version {version}"


def _milter_packet(command: bytes, data: bytes) -> bytes:
    return struct.pack("!I", len(command) + len(data)) + command + data


def _read_exactly(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        if not (chunk := sock.recv(count - len(data))):
            raise OSError("the connection closed before an answer")
        data += chunk
    return data


def check_store(store_url: str | None, config: Config) -> Finding:
    """The store opens (and is not made here: that is the gateway's first start)."""
    from typogate.store import Store
    from typogate.store.engine import StoreMissing, shown_url

    if store_url is None:
        return Finding("store", Status.NOTE, "no store: adapters record to gateway.journal")
    try:
        store = Store(store_url, writer=False, create=False)
    except StoreMissing as error:
        return Finding(
            "store",
            Status.MISSING,
            f"{error}: typogate serve makes it when it first starts; or set store.url in "
            f"{config.source or SYSTEM_FILE}",
        )
    except TypogateError as error:
        return Finding("store", Status.MISSING, str(error))
    try:
        held = len(store.holds.in_state())
    finally:
        store.close()
    return Finding("store", Status.OK, f"{shown_url(store_url)} opens, {held} held")


def check_notice_relay(config: Config) -> Finding:
    """Something answers SMTP where notices to senders go."""
    relay = config.gateway.notice_relay
    where = config.source or SYSTEM_FILE
    if not relay:
        return Finding(
            "notices", Status.NOTE, "gateway.notice_relay is empty: senders are not told"
        )
    host, port = host_and_port(relay, "gateway.notice_relay")
    try:
        with smtplib.SMTP(host, port, timeout=_TIMEOUT) as smtp:
            code, banner = smtp.ehlo()
    except (smtplib.SMTPException, OSError) as error:
        return Finding(
            "notices",
            Status.MISSING,
            f"no mail server answers on {relay} ({error or type(error).__name__}): senders of "
            "held or trimmed mail are not told. Start the local MTA, or set "
            f'gateway.notice_relay = "HOST:PORT" in {where}',
        )
    name = banner.decode(errors="replace").splitlines()[0] if banner else ""
    return Finding(
        "notices",
        Status.OK,
        f"{relay} answers ({code} {name}), notices from {config.gateway.notice_sender}",
    )


def check_release_links(config: Config, store_url: str | None) -> Finding:
    """Senders' links (release, and a warning's confirm link): signed, and pointing where
    a sender can open them."""
    if not config.release.secret and store_url is None:
        return Finding("release links", Status.NOTE, "off: no release.secret and no store")
    base = config.release.base_url.rstrip("/")
    where = config.source or SYSTEM_FILE
    try:
        with urllib.request.urlopen(f"{base}/health", timeout=_TIMEOUT) as answer:
            status = answer.status
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        return Finding(
            "release links",
            Status.MISSING,
            f"nothing answers at {base}/health ({reason}): senders' links would not open. "
            f'Run typogate serve or web there, or set release.base_url = "URL" in {where}',
        )
    host = urlsplit(base).hostname or ""
    if _loopback(host):
        return Finding(
            "release links",
            Status.NOTE,
            f"they point at {base}: only this machine can open them; set release.base_url "
            f"in {where} to the address senders reach (https://typogate.example.org)",
        )
    return Finding("release links", Status.OK, f"{base} answers ({status})")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False
