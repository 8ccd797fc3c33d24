"""`typogate doctor` against a real Postfix instance (read with postconf -c DIR): it names
what docs/postfix.md asks for and is missing, the lines it prints put it right, and once
typogate runs, nothing is missing."""

from __future__ import annotations

import json
import shutil
import subprocess

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
            "store": ["missing"],
            "notices": ["missing"],
            "release links": ["missing"],
        }
        policy_fix = found["policy service"][0]["fix"]
        asks = f"inet:127.0.0.1:{ports['policy']}, default_action=DUNNO"
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
            "milter": ["ok", "note"],  # milter_default_action left to Postfix: said
            "holds": ["ok"],
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
        assert first.endswith("default_action=DUNNO }'")
    finally:
        postfix.remove()
