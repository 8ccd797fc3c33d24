"""The benchmark data sets, built from bench/data (see its README.md) with a fixed seed.

The typo generator here is the benchmark's own, written independently of typogate's error
model: it applies each typo class named in the core issue and in issue 14 (doppelgangers,
two-letter look-alikes, suffix slips onto another real suffix, two slips in one name) to the
protected list, then drops every generated domain that is a real domain (so no real domain
is counted as a typo).
"""

from __future__ import annotations

import csv
import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import idna
from publicsuffixlist import PublicSuffixList

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"
DOMAINS = DATA / "domains"
CASES = DATA / "cases"
PROVIDERS = ROOT / "src" / "typogate" / "policy" / "profiles" / "mail-providers.txt"

# Organisation mail domains below the second level, where dots get lost (doppelgangers).
ORG_MAIL_DOMAINS = [
    "us.af.mil",
    "us.navy.mil",
    "us.army.mil",
    "se.ibm.com",
    "ca.ibm.com",
    "us.ibm.com",
    "aus.intel.com",
    "chn.dell.com",
]
# Organisations whose mail lives under host labels (se.ibm.com, chn.dell.com), protected at
# the registrable level only: a dot dropped after a host label that no list names is the
# "doppelganger" of Godai et al. (chndell.com for chn.dell.com).
ORG_PARENTS = [
    "ibm.com",
    "dell.com",
    "intel.com",
    "cisco.com",
    "oracle.com",
    "siemens.com",
    "nokia.com",
    "accenture.com",
]
# Host labels organisations put mail under: country and region codes, a few unit words.
HOST_LABELS = [
    *("us", "uk", "de", "fr", "se", "ca", "au", "jp", "cn", "in", "br", "mx", "es", "it"),
    *("nl", "ch", "kr", "sg", "usa", "chn", "aus", "ind", "jpn", "deu", "gbr", "can", "bra"),
    *("eu", "na", "la", "emea", "apac", "hq", "corp", "mail", "ext"),
]
KNOWN_SAMPLE = 2000
PER_CLASS = 300
SEED = 20261123

QWERTY = ["1234567890-", "qwertyuiop", "asdfghjkl", "zxcvbnm"]
# Where each row starts, in key widths from the digits' row, on a physical ANSI keyboard
# (Tab is 1.5 keys wide, Caps Lock 1.75, left Shift 2.25, against the 1-key backtick): the
# rows are staggered, so n touches b, m, h and j, and not g.
ROW_STARTS = [0.0, 0.5, 0.75, 1.25]
SUFFIX_SLIPS = {
    "mil": ["ml"],
    "com": ["co", "cm", "con", "om"],
    "gov": ["gv"],
    "net": ["ne"],
    "org": ["og"],
}
HOMOGLYPHS = {"m": "rn", "o": "0", "l": "1"}
# Letter pairs that draw one letter, typed either way (cl for d, d for cl).
SEQUENCES = {"d": "cl", "w": "vv", "m": "rn"}
# The ICANN suffixes, with no implicit rule: what a real suffix is, for this benchmark.
_PSL = PublicSuffixList(only_icann=True, accept_unknown=False)
CYRILLIC = {"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "x": "х"}


def read_list(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.split("#")[0].strip().lower() for line in lines if line.split("#")[0].strip()]


def _neighbours() -> dict[str, str]:
    """The keys that touch each key: the two beside it, and those of the rows above and
    below whose centre is less than a key's width away."""
    position = {
        key: (r, start + c)
        for r, (row, start) in enumerate(zip(QWERTY, ROW_STARTS, strict=True))
        for c, key in enumerate(row)
    }
    near: dict[str, str] = {}
    for key, (r, x) in position.items():
        near[key] = "".join(
            other
            for other, (r2, x2) in position.items()
            if other != key and abs(r - r2) <= 1 and abs(x - x2) <= 1
        )
    return near


NEAR = _neighbours()


def split(domain: str) -> tuple[str, str]:
    """(name, suffix) with a simple rule good enough for the scenario's suffixes."""
    for two in ("co.uk", "co.jp", "com.br", "com.au"):
        if domain.endswith("." + two):
            return domain[: -len(two) - 1], two
    name, _, suffix = domain.rpartition(".")
    return name, suffix


def _letter_slips(domain: str, rng: random.Random) -> dict[str, list[str]]:
    """The letter-level typo classes, applied to the name left of the suffix."""
    name, suffix = split(domain)
    out: dict[str, list[str]] = defaultdict(list)
    letters = [i for i, ch in enumerate(name) if ch.isalnum()]
    for i in letters:
        ch = name[i]
        out["omission"].append(name[:i] + name[i + 1 :])
        out["doubling"].append(name[:i] + ch + name[i:])
        for near in NEAR.get(ch, ""):
            if near.isalnum():
                out["keyboard"].append(name[:i] + near + name[i + 1 :])
                out["insertion"].append(name[: i + 1] + near + name[i + 1 :])
        if i + 1 < len(name) and name[i + 1].isalnum() and name[i + 1] != ch:
            out["transposition"].append(name[:i] + name[i + 1] + ch + name[i + 2 :])
        if ch in HOMOGLYPHS:
            out["ascii_homoglyph"].append(name[:i] + HOMOGLYPHS[ch] + name[i + 1 :])
        if ch in CYRILLIC:
            out["unicode_confusable"].append(name[:i] + CYRILLIC[ch] + name[i + 1 :])
    return {
        cls: [f"{v}.{suffix}" for v in values if _is_domain(f"{v}.{suffix}")]
        for cls, values in out.items()
    }


def _sequence_slips(name: str) -> list[str]:
    """A letter typed as the pair that draws it (dell -> clell), and a pair as its letter."""
    out = []
    for letter, pair in SEQUENCES.items():
        for i, ch in enumerate(name):
            if ch == letter:
                out.append(name[:i] + pair + name[i + 1 :])
        start = name.find(pair)
        while start >= 0:
            out.append(name[:start] + letter + name[start + 2 :])
            start = name.find(pair, start + 1)
    return out


def _suffix_edits(suffix: str) -> set[str]:
    """Every suffix one slip away (a letter left out, doubled, added next to its key, a
    neighbouring key, two letters swapped)."""
    out = set()
    for i, ch in enumerate(suffix):
        out.add(suffix[:i] + suffix[i + 1 :])
        out.add(suffix[:i] + ch + suffix[i:])
        for near in NEAR.get(ch, ""):
            if near.isalpha():
                out.add(suffix[:i] + near + suffix[i + 1 :])
                out.add(suffix[: i + 1] + near + suffix[i + 1 :])
        if i + 1 < len(suffix):
            out.add(suffix[:i] + suffix[i + 1] + ch + suffix[i + 2 :])
    return {s for s in out if s and not s.startswith(".") and not s.endswith(".") and ".." not in s}


def _one_slip(name: str, rng: random.Random) -> str:
    """One random letter slip somewhere in ``name``."""
    i = rng.choice([i for i, ch in enumerate(name) if ch.isalnum()])
    ch = name[i]
    kind = rng.choice(["omission", "doubling", "keyboard", "insertion", "transposition"])
    near = [k for k in NEAR.get(ch, "") if k.isalnum()] or [ch]
    if kind == "omission":
        return name[:i] + name[i + 1 :]
    if kind == "doubling":
        return name[:i] + ch + name[i:]
    if kind == "keyboard":
        return name[:i] + rng.choice(near) + name[i + 1 :]
    if kind == "insertion":
        return name[: i + 1] + rng.choice(near) + name[i + 1 :]
    if i + 1 < len(name) and name[i + 1].isalnum():
        return name[:i] + name[i + 1] + ch + name[i + 2 :]
    return name[:i] + name[i + 1 :]


def _two_slips(domain: str) -> list[str]:
    """Two slips in one domain: two in the name, or one in the name and one in the suffix.
    Names shorter than six letters are left out: two slips leave too little of them."""
    name, suffix = split(domain)
    if len(name.replace(".", "")) < 6:
        return []
    rng = random.Random(f"{SEED}:{domain}")
    out = [_one_slip(_one_slip(name, rng), rng) + "." + suffix for _ in range(4)]
    out += [f"{_one_slip(name, rng)}.{slip}" for slip in SUFFIX_SLIPS.get(suffix, [])[:2]]
    return [v for v in out if _is_domain(v) and v != domain]


def typo_variants(domain: str, rng: random.Random) -> dict[str, list[str]]:
    """Every typo class of the core issue for one protected domain."""
    name, suffix = split(domain)
    out = _letter_slips(domain, rng)
    out["lookalike_sequence"] = [f"{v}.{suffix}" for v in _sequence_slips(name)]
    out["suffix_real"] = sorted(  # a real suffix, and not a whole domain that is a suffix
        f"{name}.{slip}"
        for slip in _suffix_edits(suffix)
        if _PSL.is_public(slip) and not _PSL.is_public(f"{name}.{slip}")
    )
    out["two_slips"] = _two_slips(domain)
    out["suffix"] = [f"{name}.{slip}" for slip in SUFFIX_SLIPS.get(suffix, [])]
    dots = [i for i, ch in enumerate(domain) if ch == "."]
    out["dot"] = []
    for i in dots[:-1]:  # dropped dot inside the name: se.ibm.com -> seibm.com
        out["dot"].append(domain[:i] + domain[i + 1 :])
    last = dots[-1]
    if last + 2 < len(domain):  # dot shifted right: gmail.com -> gmailc.om
        out["dot"].append(domain[:last] + domain[last + 1] + "." + domain[last + 2 :])
    flat = domain.replace(".", "")
    tail = "net" if suffix == "com" else "com"
    out["merged_suffix"] = [f"{flat}.{tail}", f"{domain.replace('.', '-')}.{tail}"]
    slips = SUFFIX_SLIPS.get(suffix, [])
    # The suffix slipped and was typed again after the slip: gmail.co.com, army.ml.mil.
    out["suffix_again"] = [f"{name}.{slip}.{suffix}" for slip in slips]
    # The suffix cut short where that makes no suffix (typing stopped): gmail.c, army.m.
    out["suffix_cut"] = [
        f"{name}.{suffix[:cut]}"
        for cut in range(1, len(suffix) - 1)
        if not suffix[:cut].endswith(".") and not _PSL.is_public(suffix[:cut])
    ]
    # No suffix at all, a bare host: the domain without its dots (gmailcom), or the name
    # alone (gmail; what a mail program leaves of gmail,com).
    out["bare_host"] = [flat] if "." in name else [flat, name]
    if name.count(".") >= 1:  # us.af.mil -> us.af.ml
        out["subdomain"] = [f"{name}.{slip}" for slip in slips]
    else:  # a typo under a mail subdomain: mail.army.ml (meant: mail.army.mil)
        out["subdomain"] = [f"mail.{name}.{slip}" for slip in slips]
    unicode_forms = out.get("unicode_confusable", [])
    out["unicode_confusable"] = []
    for form in unicode_forms:
        try:
            ascii_form = idna.encode(form, uts46=True).decode()
        except idna.IDNAError:
            continue
        out["unicode_confusable"].append(form)
        out["unicode_confusable_xn"] = [*out.get("unicode_confusable_xn", []), ascii_form]
    return out


@dataclass
class Typo:
    domain: str
    intended: str  # the domain the sender meant (with the subdomain, for a typo under one)
    cls: str
    ambiguous: bool = False


@dataclass
class Scenario:
    protected: list[str]
    known: list[str]
    unseen: list[str]
    typos: list[Typo] = field(default_factory=list)


def real_domains() -> set[str]:
    real = set(read_list(DOMAINS / "dotgov_domains.txt"))
    real |= set(read_list(DOMAINS / "mil_domains.txt"))
    real |= set(read_list(DOMAINS / "mil_hostnames.txt"))
    return real


def doppelgangers(parent: str) -> list[tuple[str, str]]:
    """(typed, meant): a host label in front of ``parent`` with the dot left out."""
    name, suffix = split(parent)
    return [(f"{host}{name}.{suffix}", f"{host}.{parent}") for host in HOST_LABELS]


def gov_mil_scenario(per_class: int = PER_CLASS) -> Scenario:
    """Protect .mil + federal .gov + providers + a few organisations; know a sample of .gov;
    typos of every class."""
    rng = random.Random(SEED)
    protected = sorted(
        set(read_list(DOMAINS / "mil_domains.txt"))
        | set(read_list(DOMAINS / "dotgov_federal_domains.txt"))
        | set(read_list(PROVIDERS))
        | set(ORG_MAIL_DOMAINS)
        | set(ORG_PARENTS)
    )
    protected_set = set(protected)
    others = sorted(set(read_list(DOMAINS / "dotgov_domains.txt")) - protected_set)
    rng.shuffle(others)
    known, unseen = sorted(others[:KNOWN_SAMPLE]), sorted(others[KNOWN_SAMPLE:])
    real = real_domains() | protected_set
    sources: dict[str, set[str]] = defaultdict(set)
    by_class: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for domain in protected:
        for cls, variants in typo_variants(domain, rng).items():
            for variant in variants:
                canonical = idna.decode(variant) if "xn--" in variant else variant
                if variant in real or canonical in real:
                    continue
                sources[canonical].add(domain)
                by_class[cls].append((variant, domain))
    for parent in ORG_PARENTS:
        for variant, meant in doppelgangers(parent):
            if variant not in real:
                sources[variant].add(meant)
                by_class["doppelganger"].append((variant, meant))
    typos = []
    for cls in sorted(by_class):
        pairs = sorted(set(by_class[cls]))
        random.Random(f"{SEED}:{cls}").shuffle(pairs)
        for variant, intended in pairs[:per_class]:
            canonical = idna.decode(variant) if "xn--" in variant else variant
            if variant.startswith("mail.") and not intended.startswith("mail."):
                intended = f"mail.{intended}"
            typos.append(Typo(variant, intended, cls, ambiguous=len(sources[canonical]) > 1))
    return Scenario(protected, known, unseen, typos)


def _is_domain(text: str) -> bool:
    """Letters, digits, hyphens and dots only, no empty label, no label that starts or ends
    with a hyphen: a domain, not a fragment."""
    if "." not in text or not all(ch.isalnum() or ch in ".-" for ch in text):
        return False
    return all(part and part[0] != "-" and part[-1] != "-" for part in text.split("."))


def peer_cases() -> tuple[list[Typo], list[str], list[str], int]:
    """The peers' own typo pairs (whole domains only), their controls, a protected list."""
    typos: list[Typo] = []
    skipped = 0
    with open(CASES / "peer_typo_cases.tsv", encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            source = row["source"]
            if "[label-only" in source or "[tld-only" in source:
                skipped += 1
                continue
            typo, expected = row["typo_domain"].strip().lower(), row["expected_domain"].strip()
            if not _is_domain(typo) or typo == expected:
                skipped += 1
                continue
            typos.append(Typo(typo, expected, "peer"))
    with open(CASES / "peer_legit_controls.tsv", encoding="utf-8") as handle:
        controls = [row["domain"].strip() for row in csv.DictReader(handle, delimiter="\t")]
    protected = sorted({t.intended for t in typos} | set(read_list(PROVIDERS)))
    return typos, controls, protected, skipped


def known_leak_cases(protected: list[str]) -> tuple[list[Typo], list[str]]:
    """Typo domains with public evidence of receiving misdirected mail."""
    typos = []
    with open(CASES / "known_mail_receiving_typo_domains.tsv", encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            typos.append(Typo(row["typo_domain"], row["intended_domain"], "known_leak"))
    return typos, sorted(set(protected) | {t.intended for t in typos})
