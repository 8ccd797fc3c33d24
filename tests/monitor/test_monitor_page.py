"""The monitor's page in a real Chromium and its API, on two real monitor runs against a
real DNS server (NSD) with a zone change in between: what is new, changed and gone, the
look-alikes that take mail, and the rules suggested for them (added by an admin, refused
to a viewer)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from dns_server import DnsServer
from lookalike_zone import ZONES
from mta import TYPOGATE, Server, Sink, web_on
from ports import free_port
from web_client import ApiClient, first_admin_password, sign_in_page

# army.ml is covered by the configuration's rule from the start.
CONFIG = """
[domains]
protected = ["army.mil"]
[web]
listen = "127.0.0.1:{port}"
[[rules]]
domain = "army.ml"
action = "reject"
"""
VIEWER_PASSWORD = "viewer-password-1"


def second_zones() -> dict[str, str]:
    """The zones of the second run: one look-alike with fewer hosts, one set up for mail,
    one that publishes SPF, one newly registered with a catch-all, one that lapsed."""
    zones = dict(ZONES)
    # army.ml drops a mail exchanger and its DMARC record.
    zones["army.ml"] = '@ MX 10 mail.army.ml.\nmail A 192.0.2.10\n@ TXT "v=spf1 mx -all"\n'
    zones["amry.mil"] = "@ MX 10 mx.amry.mil.\n"  # no_mail -> mx
    zones["arrny.mil"] = '@ MX 0 .\n@ TXT "v=spf1 -all"\n'  # null MX, SPF appears
    zones["amry.ml"] = "@ MX 5 catchall.amry.ml.\n"  # new
    del zones["armymil.com"]  # a_only -> gone
    return zones


def monitor(folder: Path, db: str, nameserver: str) -> list[dict]:
    done = subprocess.run(
        [TYPOGATE, "monitor", "--protect", "protected.txt", "--nameserver", nameserver,
         "--db", db, "--json"],
        capture_output=True, text=True, timeout=120, cwd=folder,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two monitor runs on one store with the zones changed in between: the store's file
    and both runs' findings."""
    folder = tmp_path_factory.mktemp("monitor-runs")
    (folder / "protected.txt").write_text("army.mil\n")
    store = folder / "store.db"
    with DnsServer(ZONES) as server:
        first = monitor(folder, f"sqlite:///{store}", server.nameserver)
        server.load(second_zones())
        second = monitor(folder, f"sqlite:///{store}", server.nameserver)
    return store, first, second


@pytest.fixture
def watched(runs, tmp_path):
    """``typogate web`` on a copy of that store (each test adds its own rules), with a
    viewer account; yields the web's URL, the admin's password and both runs' findings."""
    store, first, second = runs
    db = f"sqlite:///{tmp_path / 'store.db'}"
    shutil.copy(store, tmp_path / "store.db")
    port = free_port()
    config = tmp_path / "web.toml"
    config.write_text(CONFIG.format(port=port))
    web = Server(["web", "--db", db, "--config", str(config)], port, tmp_path / "web.log")
    web.start()
    try:
        viewer = subprocess.run(
            [TYPOGATE, "users", "add", "vera", "--role", "viewer", "--password-stdin",
             "--db", db],
            input=f"{VIEWER_PASSWORD}\n", capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert viewer.returncode == 0, viewer.stderr
        yield f"http://127.0.0.1:{port}", first_admin_password(web.log), first, second
    finally:
        web.stop()


def changes_of(findings: list[dict]) -> dict[str, str]:
    return {f["domain"]: f["change"] for f in findings if f["change"] != "same"}


def test_the_api_says_what_changed_what_takes_mail_and_which_rules_to_add(watched):
    url, password, first, second = watched
    # What the CLI said in each run is what the API says of it.
    assert set(changes_of(first).values()) == {"new"}
    assert changes_of(second) == {
        "army.ml": "changed",
        "amry.mil": "changed",
        "arrny.mil": "changed",
        "amry.ml": "new",
        "armymil.com": "gone",
    }
    admin = ApiClient(url, "admin", password)
    answer = admin.get("/api/monitor").json()
    assert [r["changes"] for r in answer["runs"]] == [5, len(first)]
    assert answer["run"] == answer["runs"][0]["id"]
    changes = {c["domain"]: c for c in answer["changes"]}
    assert {d: c["change"] for d, c in changes.items()} == changes_of(second)
    assert (changes["amry.mil"]["before"]["state"], changes["amry.mil"]["state"]) == (
        "no_mail",
        "mx",
    )
    assert changes["amry.mil"]["mx"] == ["mx.amry.mil"]
    assert changes["arrny.mil"]["before"]["spf"] is False and changes["arrny.mil"]["spf"]
    assert changes["armymil.com"]["before"]["state"] == "a_only"
    assert changes["armymil.com"]["state"] == "nxdomain"
    assert changes["amry.ml"]["before"] is None

    exists = {f["domain"]: f for f in second if f["state"] != "nxdomain"}
    latest = {f["domain"]: f for f in answer["look_alikes"]}
    assert latest.keys() == exists.keys()
    for domain, finding in exists.items():
        for key in ("intended", "probability", "rank", "state", "mx", "spf", "dmarc", "change"):
            assert latest[domain][key] == finding[key], (domain, key)
    assert latest["аrmy.mil"]["ascii"] == "xn--rmy-5cd.mil"
    assert latest["army.ml"]["covered_by"] == {
        "rule": "domain:army.ml",
        "action": "reject",
    }
    assert answer["protected"] == [
        {
            "intended": "army.mil",
            "run": answer["run"],
            "seen": answer["runs"][0]["finished"],
            "existing": len(exists),
            "accepting": sum(f["state"] in ("mx", "a_only") for f in exists.values()),
        }
    ]
    # Every look-alike taking mail that no rule covers, the likeliest first.
    suggested = answer["suggested_rules"]
    assert {s["ascii"] for s in suggested} == {"amry.mil", "amry.ml", "xn--rmy-5cd.mil"}
    probabilities = [s["probability"] for s in suggested]
    assert probabilities == sorted(probabilities, reverse=True)
    rule = next(s["rule"] for s in suggested if s["ascii"] == "amry.ml")
    assert rule["domain"] == "amry.ml" and rule["action"] == "reject"
    assert "army.mil" in rule["message"]

    older = admin.get("/api/monitor", params={"run": answer["runs"][1]["id"]}).json()
    assert len(older["changes"]) == len(first)
    assert {c["change"] for c in older["changes"]} == {"new"}
    other = admin.get("/api/monitor", params={"intended": "navy.mil"}).json()
    assert other["look_alikes"] == other["suggested_rules"] == other["changes"] == []
    assert other["protected"] == [] and other["runs"] == answer["runs"]
    mine = admin.get("/api/monitor", params={"intended": "ARMY.MIL"}).json()
    assert len(mine["look_alikes"]) == len(exists)

    # A viewer reads it but adds no rule; an admin adds the suggested rule as it is.
    viewer = ApiClient(url, "vera", VIEWER_PASSWORD)
    assert viewer.get("/api/monitor").json()["suggested_rules"] == suggested
    refused = viewer.post("/api/rules", json=rule, headers={"X-CSRF-Token": viewer.csrf_token})
    assert refused.status_code == 403
    assert admin.get("/api/check", params={"recipient": "jo@amry.ml"}).json()["rule"] == "model"
    added = admin.post("/api/rules", json=rule, headers={"X-CSRF-Token": admin.csrf_token})
    assert added.status_code == 201, added.text
    after = admin.get("/api/monitor").json()
    assert "amry.ml" not in {s["ascii"] for s in after["suggested_rules"]}
    covered = {f["domain"]: f["covered_by"] for f in after["look_alikes"]}
    assert covered["amry.ml"]["rule"] == "domain:amry.ml"
    assert covered["amry.ml"]["action"] == "reject"
    verdict = admin.get("/api/check", params={"recipient": "jo@amry.ml"}).json()
    assert (verdict["action"], verdict["rule"]) == ("reject", "rule:domain:amry.ml")

    # The page's form refuses what is not a suggestion, in words.
    form = {"csrf_token": admin.csrf_token, "domain": "amry.ml", "action": "reject"}
    again = admin.post("/monitor/rules", data=form)
    assert again.status_code == 409 and "covered already" in again.text
    form.update(domain="gmail.com")
    assert admin.post("/monitor/rules", data=form).status_code == 422
    form.update(domain="amry.mil", action="allow")
    assert admin.post("/monitor/rules", data=form).status_code == 422
    assert admin.post("/monitor/rules", data={**form, "csrf_token": "x"}).status_code == 403
    form.update(csrf_token=viewer.csrf_token, action="reject")
    assert viewer.post("/monitor/rules", data=form).status_code == 403
    stored = admin.get("/api/rules").json()["stored"]
    assert [r["domain"] for r in stored] == ["amry.ml"]


def test_metrics_tell_when_the_monitor_last_ran(watched):
    """Before: /metrics said nothing of the monitor. A watch whose cron job stopped (a
    changed path, a full disk) went on showing its last run on the dashboard, and nothing
    a Prometheus rule could read said how old it was. Now the newest run's end and its
    changes are gauges (absent before any run: `absent()` catches that too)."""
    url, password, _, _ = watched
    admin = ApiClient(url, "admin", password)
    newest = admin.get("/api/monitor").json()["runs"][0]
    metrics = admin.get("/metrics").text
    found = re.search(r"^typogate_monitor_last_run_timestamp_seconds (\S+)$", metrics, re.M)
    assert found is not None, metrics
    finished = datetime.fromisoformat(newest["finished"].replace("Z", "+00:00"))
    assert abs(float(found.group(1)) - finished.timestamp()) < 0.001
    assert re.search(r"^typogate_monitor_last_run_changes 5\.0$", metrics, re.M), metrics


def test_the_page_shows_the_changes_and_an_admin_blocks_a_look_alike(watched, browser):
    from playwright.sync_api import expect

    url, password, _, _ = watched
    admin = browser.new_context(viewport={"width": 1024, "height": 768})
    viewer = browser.new_context()
    try:
        page = admin.new_page()
        sign_in_page(page, url, password, "/monitor")
        expect(page.locator("h1")).to_have_text("Look-alikes of your domains")

        changes = page.locator("table.changes tbody tr")
        expect(changes).to_have_count(5)
        army_ml = changes.filter(has_text="army.ml")
        expect(army_ml).to_contain_text("hosts mail.army.ml mx2.army.ml → mail.army.ml")
        expect(army_ml).to_contain_text("DMARC removed")
        expect(changes.filter(has_text="amry.mil")).to_contain_text("no_mail → mx")
        expect(changes.filter(has_text="amry.mil")).not_to_contain_text("hosts")
        expect(changes.filter(has_text="amry.mil")).to_contain_text("mx.amry.mil")
        expect(changes.filter(has_text="arrny.mil")).to_contain_text("SPF appeared")
        expect(changes.filter(has_text="armymil.com")).to_contain_text("gone")
        expect(changes.filter(has_text="armymil.com")).to_contain_text("was a_only")
        expect(changes.filter(has_text="amry.ml")).to_contain_text("first seen")

        table = page.locator("#for-army\\.mil table.look-alikes")
        expect(table.locator("#look-alike-amry\\.ml")).to_contain_text("new")
        cyrillic = table.locator("#look-alike-xn--rmy-5cd\\.mil")
        expect(cyrillic).to_contain_text("аrmy.mil")  # and its A-label beside it
        expect(cyrillic).to_contain_text("xn--rmy-5cd.mil")
        expect(table.locator("#look-alike-army\\.ml")).to_contain_text("mail.army.ml")
        expect(table.locator("#look-alike-army\\.ml")).to_contain_text("SPF")
        expect(page.locator("#for-army\\.mil .gone-list")).to_contain_text("armymil.com")
        expect(page.locator("table.covered")).to_contain_text("domain:army.ml → reject")
        # Ordinary width: nothing pushes the page sideways.
        assert page.evaluate(
            "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
        )

        # Block the Cyrillic look-alike with a hold: the rule is stored as on the rules
        # page, and shown with its A-label wherever its Unicode form reads like army.mil.
        row = page.locator("#suggested-xn--rmy-5cd\\.mil")
        row.locator("select[name=action]").select_option("hold")
        row.get_by_role("button", name="Block it").click()
        expect(page.locator(".outcome")).to_contain_text("domain:xn--rmy-5cd.mil → hold")
        expect(page.locator("#suggested-xn--rmy-5cd\\.mil")).to_have_count(0)
        covered = page.locator("#covered-xn--rmy-5cd\\.mil")
        expect(covered).to_contain_text("domain:xn--rmy-5cd.mil → hold")
        expect(covered).to_contain_text("domain:xn--rmy-5cd.mil")
        page.get_by_role("link", name="Rules", exact=True).first.click()
        expect(page.locator("table.stored input[value='аrmy.mil']")).to_have_count(1)
        stored = ApiClient(url, "admin", password).get("/api/rules").json()["stored"]
        assert [(r["domain"], r["action"]) for r in stored] == [("аrmy.mil", "hold")]
        verdict = ApiClient(url, "admin", password).get(
            "/api/check", params={"recipient": "jo@xn--rmy-5cd.mil"}
        )
        assert verdict.json()["action"] == "hold"
        page.locator("nav").get_by_role("link", name="Monitor").click()
        expect(page).to_have_url(re.compile(r"/monitor$"))

        # A viewer sees the suggestions, and no form.
        seen = viewer.new_page()
        sign_in_page(seen, url, VIEWER_PASSWORD, "/monitor", username="vera")
        expect(seen.locator("#suggested-amry\\.ml")).to_contain_text("domain:amry.ml")
        expect(seen.locator("#suggested-xn--rmy-5cd\\.mil")).to_have_count(0)  # blocked
        expect(seen.locator("form.block-it")).to_have_count(0)
        expect(seen.locator("select[name=action]")).to_have_count(0)
    finally:
        admin.close()
        viewer.close()


def test_the_page_shows_what_the_smtp_probe_found(tmp_path, browser):
    """Before: `typogate monitor --probe-smtp` stored each probe's answer, and the page
    showed none of them: a look-alike whose server takes any recipient, where every slip
    is read by a stranger, looked like any other that takes mail. Now each shows what the
    probe found, in words, and the API's suggested rules carry it. The look-alikes that
    take any recipient are suggested first (before: by likelihood alone, so that with
    hundreds of suggestions a proven catch-all could be beyond the hundred shown)."""
    from playwright.sync_api import expect

    (tmp_path / "protected.txt").write_text("army.mil\n")
    db = f"sqlite:///{tmp_path / 'store.db'}"
    smtp = Sink(free_port()).start()  # takes any recipient
    zones = {
        "army.ml": "@ MX 10 mail.army.ml.\nmail A 127.0.0.3\n",  # the organisation's own
        "amry.mil": "@ MX 10 mx.amry.mil.\nmx A 127.0.0.1\n",  # less likely than army.ml
    }
    try:
        with DnsServer(zones) as server:
            done = subprocess.run(
                [TYPOGATE, "monitor", "--protect", "protected.txt", "--nameserver",
                 server.nameserver, "--db", db, "--probe-smtp", "--probe-private",
                 "--probe-port", str(smtp.port), "--own-network", "127.0.0.3"],
                capture_output=True, text=True, timeout=120, cwd=tmp_path,
            )  # fmt: skip
    finally:
        smtp.stop()
    assert done.returncode == 0, done.stderr
    web = web_on(db, tmp_path)
    context = browser.new_context()
    try:
        url, password = f"http://127.0.0.1:{web.port}", first_admin_password(web.log)
        page = context.new_page()
        sign_in_page(page, url, password, "/monitor")
        for row in ("#suggested-amry\\.mil", "#look-alike-amry\\.mil"):
            expect(page.locator(row)).to_contain_text("takes any recipient")
        for row in ("#suggested-army\\.ml", "#look-alike-army\\.ml"):
            expect(page.locator(row)).to_contain_text("not probed: your network")
        expect(page.locator("table.changes")).to_contain_text("takes any recipient")
        expect(page.locator("table.suggested tbody tr").first).to_contain_text("amry.mil")
        answer = ApiClient(url, "admin", password).get("/api/monitor").json()
        probes = [(s["ascii"], s["probe"]) for s in answer["suggested_rules"]]
        assert probes == [("amry.mil", "accepts_all"), ("army.ml", "own_network")], probes
    finally:
        context.close()
        web.stop()


def test_a_large_watch_is_paged_and_capped(tmp_path):
    """Thirty protected domains with five look-alikes taking mail each, recorded through the
    store as the monitor records a run: the page shows 25 domains and the likeliest 100
    suggestions at a time, a filter shows one domain's; the API has them all."""
    from typogate.store import Store
    from typogate.store.records import SeenLookAlike

    db = f"sqlite:///{tmp_path / 'store.db'}"
    protected = [f"org{n:02}.example" for n in range(30)]
    store = Store(db, writer=False)
    now = datetime.now(UTC)
    store.look_alikes.record(
        now, now, len(protected), 30 * 200,
        [
            SeenLookAlike(f"{name}{rank}.ml", f"{name}{rank}.ml", name, 0.5 / rank, rank,
                          "mx" if rank % 2 else "a_only", (), False, False, None, "new")
            for name in protected for rank in range(1, 6)
        ],
    )  # fmt: skip
    store.close()
    web = web_on(db, tmp_path)
    try:
        admin = ApiClient(f"http://127.0.0.1:{web.port}", "admin", first_admin_password(web.log))
        page = admin.get("/monitor").text
        assert page.count('<tr id="suggested-') == 100
        assert "The likeliest 100 of 150" in page
        assert page.count('<article class="protected"') == 25
        assert page.count('<tr class="new">') == 100 and "Only the first 100" in page
        second = admin.get("/monitor", params={"page": 2}).text
        assert second.count('<article class="protected"') == 5
        one = admin.get("/monitor", params={"intended": "org07.example"}).text
        assert one.count('<article class="protected"') == 1
        assert one.count('<tr id="suggested-') == 5
        assert 'id="suggested-org08.example1.ml"' not in one
        answer = admin.get("/api/monitor").json()
        assert len(answer["suggested_rules"]) == 150 and len(answer["changes"]) == 150
        assert len(answer["protected"]) == 30

        # A run kept while the web part runs shows at the next view.
        store = Store(db, writer=False)
        store.look_alikes.record(
            now, now, 1, 200,
            [SeenLookAlike("org00.example1.ml", "org00.example1.ml", "org00.example", 0.5, 1,
                           "nxdomain", (), False, False, None, "gone")],
        )  # fmt: skip
        store.close()
        page = admin.get("/monitor").text
        assert "The likeliest 100 of 149" in page and page.count('<tr class="gone">') == 1
        assert len(admin.get("/api/monitor").json()["suggested_rules"]) == 149
    finally:
        web.stop()
