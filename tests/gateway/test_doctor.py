"""`typogate doctor` against a real Postfix instance (read with postconf -c DIR): it names
what docs/postfix.md asks for and is missing, the lines it prints put it right, and once
typogate runs, nothing is missing."""

from __future__ import annotations

import json
import os
import random
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from mta import TYPOGATE, Postfix, Server, Sink, postfix_root
from ports import free_port

pytestmark = [
    pytest.mark.postfix,
    pytest.mark.skipif(shutil.which("postconf") is None, reason="make test installs postfix"),
]

CONFIG = """
[domains]
protected = ["army.mil"]
[actions]
typo = "hold"
[store]
url = "sqlite:///typogate.db"
[gateway]
policy_listen = "127.0.0.1:{policy}"
milter_listen = "inet:{milter}@127.0.0.1"
notice_relay = "127.0.0.1:{relay}"
[web]
listen = "127.0.0.1:{web}"
[release]
postfix_config = "{postfix}"
base_url = "http://127.0.0.1:{web}"
"""


def doctor(config) -> tuple[int, dict[str, list[dict]]]:
    done = subprocess.run(
        [TYPOGATE, "doctor", "--json", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stderr == "", done.stderr
    found: dict[str, list[dict]] = {}
    for finding in json.loads(done.stdout):
        found.setdefault(finding["check"], []).append(finding)
    return done.returncode, found


def statuses(found: dict[str, list[dict]]) -> dict[str, list[str]]:
    return {check: [f["status"] for f in findings] for check, findings in found.items()}


def test_doctor_names_what_is_missing_and_its_lines_put_it_right(tmp_path):
    sink = Sink(free_port()).start()
    postfix = Postfix(
        postfix_root(),
        free_port(),
        sink.port,
        {
            # A common main.cf: permit_mynetworks first would let the users' mail skip
            # typogate even once it is added after it.
            "smtpd_recipient_restrictions": "permit_mynetworks, reject_unauth_destination",
            "smtpd_delay_open_until_valid_rcpt": "yes",
        },
    )
    ports = {"policy": free_port(), "milter": free_port(), "web": free_port()}
    config = tmp_path / "typogate.toml"
    config.write_text(CONFIG.format(**ports, relay=free_port(), postfix=postfix.config_dir))
    server = None
    try:
        postfix.start()
        status, found = doctor(config)
        assert status == 1
        assert statuses(found) == {
            "policy service": ["missing"],
            "milter": ["missing", "note"],
            "holds": ["missing"],
            "answering": ["missing", "missing"],
            "store": ["missing"],
            "notices": ["missing"],
            "release links": ["missing"],
        }
        # Postfix set up right is no use while typogate does not run: its default_action
        # applies to every recipient. doctor once called that nothing missing.
        down = found["answering"][0]["detail"]
        assert f"nothing answers at 127.0.0.1:{ports['policy']}" in down
        assert "default_action" in down
        assert f"nothing answers at 127.0.0.1:{ports['milter']}" in found["answering"][1]["detail"]
        policy_fix = found["policy service"][0]["fix"]
        asks = f"inet:127.0.0.1:{ports['policy']}, default_action=DUNNO, timeout=10s"
        assert f"= check_policy_service {{ {asks} }}, permit_mynetworks" in policy_fix
        assert f"non_smtpd_milters = inet:127.0.0.1:{ports['milter']}" in found["milter"][0]["fix"]
        assert "no store at" in found["store"][0]["detail"]
        # Run the lines doctor printed, as they are.
        for check in ("policy service", "milter", "holds"):
            fix = found[check][0]["fix"]
            assert fix.startswith(f"postconf -c {postfix.config_dir} -e ")
            subprocess.run(fix, shell=True, check=True, timeout=30)
        # typogate running (it makes the store and answers release links), notices through
        # the Postfix instance.
        config.write_text(
            CONFIG.format(**ports, relay=postfix.smtpd_port, postfix=postfix.config_dir)
        )
        server = Server(
            ["serve", "--config", str(config)], ports["web"], tmp_path / "serve.log"
        ).start()
        status, found = doctor(config)
        assert status == 0, found
        assert statuses(found) == {
            "policy service": ["ok"],
            "restart": ["ok"],  # a start in about a second, which 10 s a try waits out
            "milter": ["ok", "note"],  # milter_default_action left to Postfix: said
            "holds": ["ok"],
            "answering": ["ok", "ok"],  # a policy request, and the milter's negotiation
            "store": ["ok"],
            "notices": ["ok"],
            "release links": ["note"],  # only this machine can open 127.0.0.1 links
        }
        assert "(fail-open)" in found["policy service"][0]["detail"]
    finally:
        if server is not None:
            server.stop()
        postfix.remove()
        sink.stop()


def test_doctor_table_reads_at_80_columns_and_the_lines_are_whole(tmp_path):
    postfix = Postfix(postfix_root(), free_port(), free_port())
    try:
        postfix.config_dir.mkdir(parents=True)
        (postfix.config_dir / "main.cf").write_text("compatibility_level = 3.6\n")
        shutil.copy("/etc/postfix/master.cf", postfix.config_dir / "master.cf")
        done = subprocess.run(
            [TYPOGATE, "doctor", "--postfix-config", str(postfix.config_dir)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            env={"COLUMNS": "80", "PATH": "/usr/sbin:/usr/bin:/bin"},
        )
        assert done.returncode == 1
        table, _, lines = done.stdout.partition("\n1. ")
        assert max(len(line) for line in table.splitlines()) <= 80
        assert "Run line 1 below." in " ".join(table.split())
        first = lines.splitlines()[0]  # whole, for copying, however long
        assert first.startswith(f"postconf -c {postfix.config_dir} -e ")
        assert first.endswith("default_action=DUNNO, timeout=10s }'")
    finally:
        postfix.remove()


@pytest.fixture
def instance(tmp_path):
    """A Postfix instance that is only its configuration files (doctor reads every instance
    with postconf -c DIR), and typogate's configuration naming it: ``write(main_cf, *args)``
    writes main.cf and runs ``postconf -c DIR ARGS`` for each master.cf change, with PORT
    standing for typogate's policy port; ``policy()`` is doctor's policy service findings."""
    port = free_port()
    postfix = Postfix(postfix_root(), free_port(), free_port())
    postfix.config_dir.mkdir(parents=True)
    shutil.copy("/etc/postfix/master.cf", postfix.config_dir / "master.cf")
    config = tmp_path / "typogate.toml"
    config.write_text(
        f'[gateway]\npolicy_listen = "127.0.0.1:{port}"\n'
        f'[release]\npostfix_config = "{postfix.config_dir}"\n'
    )

    class Instance:
        def __init__(self) -> None:
            self.config = config
            self.postconf = ["postconf", "-c", str(postfix.config_dir)]

        def write(self, main_cf: str, *changes: list[str]) -> None:
            main = main_cf.replace("PORT", str(port))
            (postfix.config_dir / "main.cf").write_text(f"compatibility_level = 3.6\n{main}\n")
            for change in changes:
                command = ["postconf", "-c", str(postfix.config_dir)]
                command += [arg.replace("PORT", str(port)) for arg in change]
                subprocess.run(command, check=True, timeout=30)

        def policy(self) -> list[dict]:
            return doctor(config)[1]["policy service"]

    try:
        yield Instance()
    finally:
        postfix.remove()


def test_doctor_reads_the_default_action_set_for_every_policy_service(instance):
    """smtpd_policy_service_default_action (Postfix 3.0) chooses for every policy service
    that names none of its own; doctor once called that fail-closed."""
    instance.write(
        "smtpd_policy_service_default_action = DUNNO\n"
        "smtpd_policy_service_timeout = 10s\n"
        "smtpd_recipient_restrictions = check_policy_service inet:127.0.0.1:PORT"
    )
    found = instance.policy()
    assert [f["status"] for f in found] == ["ok"], found
    assert "default_action=DUNNO (fail-open)" in found[0]["detail"]


def test_doctor_reads_a_services_own_settings_and_its_lines_are_one_word(instance):
    """A master.cf service's -o smtpd_policy_service_default_action is its own choice; the
    line doctor gives it for the timeout is one postconf -P can write (no whitespace)."""
    instance.write(
        "",
        ["-M", "submission/inet=submission inet n - y - - smtpd"],
        [
            "-P",
            "submission/inet/smtpd_recipient_restrictions="
            "check_policy_service,inet:127.0.0.1:PORT,permit_sasl_authenticated,reject",
        ],
        ["-P", "submission/inet/smtpd_policy_service_default_action=DUNNO"],
    )
    found = instance.policy()
    assert [f["status"] for f in found] == ["ok", "note"], found
    assert "master.cf submission/inet" in found[0]["detail"]
    assert "(fail-open)" in found[0]["detail"]
    fix = found[1]["fix"]
    assert fix.endswith(" -P submission/inet/smtpd_policy_service_timeout=10s")
    subprocess.run(fix, shell=True, check=True, timeout=30)
    assert [f["status"] for f in instance.policy()] == ["ok"]


def test_doctor_notes_how_long_postfix_waits_for_a_typogate_that_hangs(instance):
    """Postfix waits smtpd_policy_service_timeout (100 s) a try, two tries, for an answer:
    a typogate that hangs holds every smtpd process that asks it for 200 s a recipient.
    doctor says so, and its line bounds the wait; once run, the note is gone."""
    instance.write(
        "smtpd_recipient_restrictions = "
        "check_policy_service { inet:127.0.0.1:PORT, default_action=DUNNO }"
    )
    found = instance.policy()
    assert [f["status"] for f in found] == ["ok", "note"], found
    assert "200 s" in found[1]["detail"]
    fix = found[1]["fix"]
    assert "default_action=DUNNO, timeout=10s }" in fix
    subprocess.run(fix, shell=True, check=True, timeout=30)
    found = instance.policy()
    assert [f["status"] for f in found] == ["ok"], found


def test_the_submission_lines_of_postfix_md_are_taken_and_read_as_fail_open(instance):
    """docs/postfix.md's submission block, run as it is written (on this instance, and for
    typogate's port here): postconf takes every line, and doctor finds nothing to add."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "postfix.md").read_text()
    block = text.split("## Submission", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    lines = [line for line in block.splitlines() if line.startswith("postconf ")]
    assert len(lines) >= 5
    instance.write("", *(shlex.split(line.replace(":10040", ":PORT"))[1:] for line in lines))
    found = instance.policy()
    assert [f["status"] for f in found] == ["ok"], found
    assert "master.cf submission/inet" in found[0]["detail"]
    assert "(fail-open)" in found[0]["detail"]


def test_doctor_says_when_postfix_gives_up_on_a_restarting_typogate(
    instance, tmp_path, monkeypatch
):
    """Before: doctor told every admin to bound Postfix's wait (timeout=10s) and never
    looked at how long typogate takes to start. A start builds the index and learns every
    relationship (28 s for 90,000 domains learned from deliveries, bench/ready.py): when
    it takes longer than Postfix waits, tries together, the mail reaching typogate early
    in a restart gets default_action (fail-open: unchecked), even under the socket units.
    doctor now builds what a start builds, times it, and says so, with the timeout that
    waits it out (twice the time measured). What it times is the start after an upgrade:
    it builds the index of the lists, though an earlier start kept it (that is 6 to 8 s
    of a start on 200,000 listed domains)."""
    from typogate.store import Store

    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    checked = subprocess.run(
        [TYPOGATE, "check", "--config", str(instance.config), "x@example.org"],
        capture_output=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr
    (kept,) = (cache / "typogate").glob("*.index")
    os.utime(kept, (1e9, 1e9))  # a read sets it to now

    url = f"sqlite:///{tmp_path / 'learned.db'}"
    store = Store(url, create=True)
    consonants, vowels = "bcdfghjklmnprstvwz", "aeiou"
    names = random.Random(14)
    counts = {}
    for number in range(100):  # 10,000 correspondents learned from deliveries alone
        sender = f"user{number}@example.org"
        for _ in range(100):
            name = "".join(names.choice(consonants) + names.choice(vowels) for _ in range(4))
            for party in ("*", "example.org", sender):
                counts[(party, f"{name}.com")] = 3
    store.history.learn(counts)
    store.close()
    instance.config.write_text(instance.config.read_text() + f'[store]\nurl = "{url}"\n')
    instance.write(
        "smtpd_recipient_restrictions = check_policy_service "
        "{ inet:127.0.0.1:PORT, default_action=DUNNO, timeout=1s, try_limit=1 }"
    )
    found = doctor(instance.config)[1]
    assert list((cache / "typogate").iterdir()) == [kept] and kept.stat().st_mtime == 1e9
    assert statuses(found)["policy service"] == ["ok"]  # a short wait: no note of it
    assert statuses(found)["restart"] == ["note"], found["restart"]
    detail, fix = found["restart"][0]["detail"], found["restart"][0]["fix"]
    measured = re.search(r"and ([\d,]+) learned relationships in ([\d.]+) s here", detail)
    assert measured is not None, detail
    assert int(measured.group(1).replace(",", "")) == len(counts)
    assert "in main.cf Postfix waits 1 s a try, 1 try" in detail
    assert "default_action" in detail
    timeout = re.search(r"try_limit=1, timeout=(\d+)s \}", fix)
    assert timeout is not None, fix
    assert int(timeout.group(1)) >= 2 * float(measured.group(2))
    subprocess.run(fix, shell=True, check=True, timeout=30)
    restrictions = subprocess.run(
        [*instance.postconf, "-h", "smtpd_recipient_restrictions"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"timeout={timeout.group(1)}s" in restrictions
    assert "try_limit=1" in restrictions  # the rest of the item as it was


def test_the_wait_doctor_suggests_waits_out_a_start_it_measured(instance):
    """The two notes agree: Postfix's default wait (100 s a try, 2 tries) is long for a
    typogate that hangs, and the timeout doctor gives instead is 10 s, unless a start
    takes longer than two tries of 10 s can wait out (a start of 23.4 s, as a store of
    90,000 domains learned from deliveries may take: 24 s a try)."""
    from typogate import Config
    from typogate.gateway.checkup import StartCost, check_postfix

    instance.write(
        "smtpd_recipient_restrictions = "
        "check_policy_service { inet:127.0.0.1:PORT, default_action=DUNNO }"
    )
    config = Config.load(instance.config)
    postfix_dir = config.release.postfix_config

    def policy_client(start):
        found = check_postfix(config, postfix_dir, start)
        return [f for f in found if f.check in ("policy service", "restart")]

    quick = policy_client(StartCost(1.5, 0))
    assert [f.status for f in quick] == ["ok", "note"]
    assert "timeout=10s }" in quick[1].fix
    slow = policy_client(StartCost(23.4, 90_000))
    assert [f.status for f in slow] == ["ok", "note"]
    assert "timeout=24s }" in slow[1].fix
    subprocess.run(slow[1].fix, shell=True, check=True, timeout=30)
    waited = policy_client(StartCost(23.4, 90_000))
    assert [(f.check, f.status) for f in waited] == [("policy service", "ok"), ("restart", "ok")]
    assert "Postfix waits 24 s a try, 2 tries" in waited[1].detail


def test_doctor_reads_a_milter_with_settings_of_its_own(instance):
    """Postfix 3.0 takes settings per milter: ``{ inet:..., default_action=accept }`` makes
    typogate's milter fail open while another milter (OpenDKIM, here on 8891) keeps
    Postfix's tempfail. Before: doctor read the group as no milter of typogate's, said it
    was missing, and its line added typogate's address a second time; and it took
    milter_default_action for the one in force."""
    instance.write(
        "non_smtpd_milters = { inet:127.0.0.1:10041, default_action=accept }, inet:127.0.0.1:8891"
    )
    milter = doctor(instance.config)[1]["milter"]
    assert [f["status"] for f in milter] == ["ok", "ok"], milter
    assert "non_smtpd_milters has inet:127.0.0.1:10041" in milter[0]["detail"]
    assert milter[1]["detail"] == "inet:127.0.0.1:10041: default_action=accept (fail-open)"
    # Another milter alone, with its own settings: typogate's is missing, and the line
    # that adds it keeps the other's group whole.
    instance.write("non_smtpd_milters = { inet:127.0.0.1:8891, default_action=accept }")
    milter = doctor(instance.config)[1]["milter"]
    assert [f["status"] for f in milter] == ["missing", "note"], milter
    fix = milter[0]["fix"]
    assert fix.endswith(
        "'non_smtpd_milters = inet:127.0.0.1:10041, { inet:127.0.0.1:8891, default_action=accept }'"
    ), fix
    subprocess.run(fix, shell=True, check=True, timeout=30)
    assert [f["status"] for f in doctor(instance.config)[1]["milter"]] == ["ok", "note"]
