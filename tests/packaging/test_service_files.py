"""What a mail admin installs besides the package: the systemd units (checked by
systemd-analyze verify), the sysusers and logrotate files, the packaged configuration with
the Debian paths, and the container image (built and run when a container engine is
there)."""

from __future__ import annotations

import configparser
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from typogate.config import Config

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "packaging"
UNITS = sorted((PACKAGING / "systemd").glob("*.service"))
SOCKETS = sorted((PACKAGING / "systemd").glob("*.socket"))
TYPOGATE = str(Path(sys.executable).with_name("typogate"))
INSTALLED = "/opt/typogate/bin/typogate"  # where docs/install.md puts the command
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "RestrictSUIDSGID": "yes",
    "SystemCallFilter": "@system-service",
}


def unit(path: Path) -> configparser.ConfigParser:
    parsed = configparser.ConfigParser(strict=False, interpolation=None)
    parsed.optionxform = str  # type: ignore[assignment,method-assign]  # keys keep their case
    parsed.read(path)
    return parsed


def test_there_is_a_unit_for_serve_and_each_single_adapter():
    commands = {shlex.split(unit(path)["Service"]["ExecStart"])[1] for path in UNITS}
    assert commands == {"serve", "policy", "milter", "proxy", "web", "sink"}


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_each_listener_takes_the_socket_its_socket_unit_holds(path):
    # Every unit but the milter's (libmilter opens its own socket) requires a socket unit
    # of its name, which listens exactly where the packaged configuration (or the unit's
    # own --listen) has typogate listen: typogate refuses a socket no listener takes.
    service = unit(path)
    command = shlex.split(service["Service"]["ExecStart"])[1:]
    config = Config.load(PACKAGING / "typogate.toml")
    listen = command[command.index("--listen") + 1] if "--listen" in command else None
    expected = {
        "serve": [config.gateway.policy_listen, config.web.listen],
        "policy": [config.gateway.policy_listen],
        "proxy": [config.gateway.proxy_listen],
        "web": [config.web.listen],
        "sink": [listen],
        "milter": None,
    }[command[0]]
    socket_unit = path.with_suffix(".socket")
    if expected is None:
        assert not socket_unit.exists() and "Requires" not in service["Unit"]
        return
    assert service["Unit"]["Requires"] == socket_unit.name
    assert socket_unit.name in service["Unit"]["After"].split()
    listens = unit(socket_unit)["Socket"]
    assert listens["Accept"] == "no"
    streams = [
        line.partition("=")[2].strip()
        for line in socket_unit.read_text().splitlines()
        if line.startswith("ListenStream=")
    ]
    # "25" is [::]:25, every address: what 0.0.0.0:25 takes (typogate.gateway.activation).
    assert [s if ":" in s else f"0.0.0.0:{s}" for s in streams] == expected


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="scripts/setup.d installs it")
def test_units_pass_systemd_analyze_verify(tmp_path):
    # The units name the installed command; verify checks that it exists and runs.
    for path in UNITS + SOCKETS:
        (tmp_path / path.name).write_text(path.read_text().replace(INSTALLED, TYPOGATE))
    done = subprocess.run(
        ["systemd-analyze", "verify", *sorted(str(p) for p in tmp_path.iterdir())],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if "Failed to initialize manager" in done.stderr or "System has not been booted" in done.stderr:
        pytest.skip(f"systemd-analyze cannot run in this container: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", done.stderr  # not even a warning


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_units_are_hardened_and_their_command_lines_parse(path):
    service = unit(path)["Service"]
    for key, value in HARDENING.items():
        assert service.get(key) == value, (path.name, key)
    assert service["Environment"] == "TYPOGATE_CONFIG=/etc/typogate/typogate.toml"
    assert service["StateDirectory"] == "typogate"  # /var/lib/typogate
    command = shlex.split(service["ExecStart"])
    # The index kept between starts: a folder of the unit's own user, no one else's.
    assert service["CacheDirectory"] == f"typogate/{command[1]}"
    assert service["CacheDirectoryMode"] == "0700"
    if command[1] != "sink":  # the sink has nothing to reload
        assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert command[0] == INSTALLED
    # Ready once it answers (systemctl waits for it); kept alive while its loops run.
    assert service["Type"] == "notify"
    assert service["TimeoutStartSec"] == "5min"  # a large store's relationships load first
    assert service.get("WatchdogSec") == (None if command[1] == "milter" else "30s")
    done = subprocess.run([TYPOGATE, *command[1:], "--help"], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    if command[1] in ("serve", "web"):  # they release held mail: postsuper, as root
        assert "User" not in service
        assert service["CapabilityBoundingSet"] == "CAP_SETUID CAP_SETGID"
        assert service["ReadWritePaths"] == "-/var/spool/postfix"
    else:
        assert service["User"] == "typogate"
        assert service["CapabilityBoundingSet"] == ""


def test_the_packaged_configuration_has_the_debian_paths(tmp_path):
    config = Config.load(PACKAGING / "typogate.toml")
    assert config.store_url == "sqlite:////var/lib/typogate/typogate.db"
    assert str(config.gateway.journal).startswith("/var/log/typogate/")
    assert config.release.postfix_config == "/etc/postfix"
    # The files logrotate rotates are the journal the configuration names.
    rotated = (PACKAGING / "logrotate" / "typogate").read_text()
    assert re.search(r"^/var/log/typogate/\*\.jsonl \{", rotated, re.M)
    assert (PACKAGING / "sysusers.d" / "typogate.conf").read_text().count("\nu typogate ") == 1


def test_the_image_runs_serve_with_the_store_on_its_volume():
    dockerfile = (ROOT / "Dockerfile").read_text()
    volume = re.search(r"^VOLUME (\S+)$", dockerfile, re.M)
    assert volume is not None
    config = Config.load(PACKAGING / "docker" / "typogate.toml")
    assert config.store_url == f"sqlite:///{volume.group(1)}/typogate.db"
    entry = re.search(r'^ENTRYPOINT \["(\w+)"\]$', dockerfile, re.M)
    command = re.search(r'^CMD \["(\w+)"\]$', dockerfile, re.M)
    assert entry is not None and command is not None
    assert (entry.group(1), command.group(1)) == ("typogate", "serve")
    exposed = re.search(r"^EXPOSE (.+)$", dockerfile, re.M)
    assert exposed is not None
    ports = {config.gateway.policy_listen.rsplit(":", 1)[1], config.web.listen.rsplit(":", 1)[1]}
    ports.add(config.gateway.milter_listen.partition(":")[2].partition("@")[0])
    assert set(exposed.group(1).split()) == ports


def _engine() -> str | None:
    """A container engine that answers, or None."""
    for tool in ("docker", "podman"):
        if (
            shutil.which(tool)
            and subprocess.run([tool, "info"], capture_output=True).returncode == 0
        ):
            return tool
    return None


@pytest.mark.skipif(
    _engine() is None,
    reason="no container engine answers here (docker is only a client, with no daemon)",
)
def test_the_image_builds_and_serves(tmp_path):
    from mta import policy_answer
    from ports import free_port, wait_for_port

    engine = _engine()
    assert engine is not None
    tag, name, volume = (
        "typogate-test:latest",
        f"typogate-test-{os.getpid()}",
        f"tgtest{os.getpid()}",
    )
    build = subprocess.run(
        [engine, "build", "-t", tag, str(ROOT)], capture_output=True, timeout=1800
    )
    assert build.returncode == 0, build.stderr.decode()[-3000:]
    policy, web = free_port(), free_port()
    subprocess.run(
        [engine, "run", "-d", "--name", name, "-v", f"{volume}:/var/lib/typogate",
         "-p", f"127.0.0.1:{policy}:10040", "-p", f"127.0.0.1:{web}:8025", tag],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    try:
        wait_for_port(policy, timeout=120)
        assert policy_answer(policy, "john@army.ml").startswith("action=550 5.1.2 ")
        started = time.monotonic()
        stop = subprocess.run([engine, "stop", "-t", "30", name], capture_output=True, timeout=60)
        assert stop.returncode == 0 and time.monotonic() - started < 20
        state = subprocess.run(
            [engine, "inspect", "-f", "{{.State.ExitCode}}", name], capture_output=True, text=True
        )
        assert state.stdout.strip() == "0"
        listed = subprocess.run(
            [engine, "run", "--rm", "-v", f"{volume}:/data", "--entrypoint", "ls", tag, "/data"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert "typogate.db" in listed.stdout.split()
    finally:
        subprocess.run([engine, "rm", "-f", name], capture_output=True, timeout=60)
        subprocess.run([engine, "volume", "rm", "-f", volume], capture_output=True, timeout=60)
