"""What changed since the last snapshot, and what a snapshot keeps."""

from __future__ import annotations

from typogate.domains import Slip
from typogate.monitor import Change, LookAlike, MailFacts, MailState, Observation
from typogate.monitor.snapshots import changes, compare, kept, reported


def seen(domain: str, facts: MailFacts) -> Observation:
    look_alike = LookAlike(domain, domain, "army.mil", 0.2, 1, Slip.SUFFIX)
    return Observation(look_alike, facts)


MX = MailFacts(MailState.MX, ("mx.army.ml",), spf=True)
NX = MailFacts(MailState.NXDOMAIN)
UNRESOLVED = MailFacts(MailState.UNRESOLVED)


def test_new_changed_same_gone():
    previous = {"same.ml": MX, "moved.ml": MX, "went.ml": MX, "back.ml": NX}
    now = [
        seen("same.ml", MX),
        seen("moved.ml", MailFacts(MailState.MX, ("other.example",), spf=True)),
        seen("went.ml", NX),
        seen("back.ml", MX),
        seen("fresh.ml", MailFacts(MailState.A_ONLY)),
        seen("never.ml", NX),
    ]
    found = {f.observation.look_alike.domain: f.change for f in compare(now, previous)}
    assert found == {
        "same.ml": Change.SAME,
        "moved.ml": Change.CHANGED,
        "went.ml": Change.GONE,
        "back.ml": Change.NEW,
        "fresh.ml": Change.NEW,
        "never.ml": Change.SAME,
    }
    shown = {f.observation.look_alike.domain for f in reported(compare(now, previous))}
    assert shown == {"same.ml", "moved.ml", "went.ml", "back.ml", "fresh.ml"}
    assert len(reported(compare(now, previous), everything=True)) == len(now)


def test_no_answer_is_no_news():
    findings = compare([seen("army.ml", UNRESOLVED), seen("arny.mil", UNRESOLVED)], {"army.ml": MX})
    assert [f.change for f in findings] == [Change.SAME, Change.NEW]
    assert changes(findings) == [] and kept(findings) == []  # the last known state stays
    assert [f.to_dict()["state"] for f in reported(findings)] == ["unresolved", "unresolved"]
