"""Hypothesis strategies for the fuzz tests (tests/core/test_fuzz.py) and the longer run in
bench/fuzz.py: addresses whose destination, as Postfix 3.7 delivers them, is known by
construction, however the address is spelled.

What Postfix does with each kind of spelling is checked through a real Postfix in
tests/gateway/test_spellings.py; here they are combined at random.
"""

from __future__ import annotations

from hypothesis import strategies as st

OWN_HOSTS = ("mail.example.org", "localhost")
PROTECTED = ("army.mil", "navy.mil", "gmail.com", "hotmail.com", "example.org")
TYPOS = ("army.ml", "navy.ml", "gmial.com", "hotmial.com", "exmaple.org", "arrny.mil")

# Characters UTS #46 ignores (Postfix's IDNA mapping drops them) and the dots it maps to ".".
IGNORED = ("\u200b", "\u00ad", "\ufeff", "\u2060", "\u034f", "\ufe00")
DOTS = (".", "\u3002", "\uff0e", "\uff61")
# Local parts may hold anything a client can send: invisible, bidi and format characters,
# quotes, @-signs, commas, spaces; never a line break (one SMTP line, one policy line).
LOCAL_TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00"),
    min_size=1,
    max_size=300,
)
ATOM = st.text("abcdefghijklmnopqrstuvwxyz0123456789.-_+=", min_size=1, max_size=40).filter(
    lambda text: not text.startswith(".") and not text.endswith(".") and ".." not in text
)


@st.composite
def spelled_host(draw: st.DrawFn, host: str) -> str:
    """``host`` as a sender may spell it and Postfix still delivers it there: any letter
    upper-case or full-width, ignored characters anywhere, any full stop for a dot, and
    maybe one trailing dot."""
    out = []
    for ch in host:
        if ch == ".":
            out.append(draw(st.sampled_from(DOTS)))
            continue
        form = draw(st.sampled_from(("plain", "upper", "wide")))
        if form == "upper":
            ch = ch.upper()
        elif form == "wide" and "!" <= ch <= "~":
            ch = chr(ord(ch) + 0xFEE0)
        out.append(ch)
        if draw(st.integers(0, 5)) == 0:
            out.append(draw(st.sampled_from(IGNORED)))
    if draw(st.booleans()):
        out.append(".")
    return "".join(out)


def _quoted(local: str) -> str:
    escaped = local.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


@st.composite
def spelled_address(
    draw: st.DrawFn, domain: str, local: st.SearchStrategy[str] = LOCAL_TEXT
) -> str:
    """An address whose mail Postfix delivers to ``domain``, in one of the spellings of
    issue 15: a quoted local part (drawn from ``local``), the unquoted form Postfix hands a
    policy service, or the percent hack or a bang path through one of ``OWN_HOSTS``."""
    host = draw(spelled_host(domain))
    kind = draw(st.sampled_from(("quoted", "unquoted", "percent", "bang")))
    if kind == "quoted":
        return f"{_quoted(draw(local))}@{host}"
    if kind == "unquoted":
        return f"{draw(local)}@{host}"
    own = draw(st.sampled_from(OWN_HOSTS))
    own = own.upper() if draw(st.booleans()) else own
    user = draw(ATOM)
    return f"{user}%{host}@{own}" if kind == "percent" else f"{host}!{user}@{own}"


@st.composite
def fresh_typo(draw: st.DrawFn) -> str:
    """A domain one slip away from a protected one, made here, not taken from a list:
    a letter left out, doubled, swapped with the next or replaced."""
    domain = draw(st.sampled_from(PROTECTED))
    name, _, suffix = domain.rpartition(".")
    word = draw(st.sampled_from((name, suffix)))
    at = draw(st.integers(0, len(word) - 1))
    letter = draw(st.sampled_from("abcdefghijklmnopqrstuvwxyz"))
    slip = draw(st.sampled_from(("omit", "double", "swap", "replace")))
    if slip == "omit":
        typed = word[:at] + word[at + 1 :]
    elif slip == "double":
        typed = word[:at] + word[at] + word[at:]
    elif slip == "swap" and at + 1 < len(word):
        typed = word[:at] + word[at + 1] + word[at] + word[at + 2 :]
    else:
        typed = word[:at] + letter + word[at + 1 :]
    return f"{typed}.{suffix}" if word == name else f"{name}.{typed}"


def request_bytes(attributes: dict[str, str]) -> bytes:
    """One policy request as Postfix writes it: ``name=value`` lines and a blank line."""
    return "".join(f"{name}={value}\n" for name, value in attributes.items()).encode() + b"\n"


def _one_request(data: bytes) -> bytes:
    """``data`` framed as exactly one request: no blank line in it, one at its end."""
    while b"\n\n" in data:
        data = data.replace(b"\n\n", b"\n")
    return data.rstrip(b"\n") + b"\n\n"


RAW_REQUEST = st.binary(max_size=600).map(_one_request)
