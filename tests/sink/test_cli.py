"""``typogate sink``'s bad usage: a clear line and exit status 2 (1 when the address is
taken), never a traceback."""

from __future__ import annotations

from mta import run_typogate
from ports import port_in_use


def test_bad_configurations_are_refused_with_the_key_named(tmp_path):
    cases = {
        "nothing.toml": ("[sink]\n", "sink.serve names no look-alike domain"),
        "both.toml": (
            '[[sink.serve]]\ndomain = "army.ml"\nsuffix = "ml"\n',
            "sink.serve.0: Value error, a served entry names exactly one of",
        ),
        "forward.toml": (
            '[[sink.serve]]\ndomain = "shop.ml"\nchoice = "forward"\n',
            "'forward_to' is set exactly when",
        ),
        "choice.toml": ('[[sink.serve]]\nsuffix = "ml"\nchoice = "drop"\n', "sink.serve.0.choice"),
        "domain.toml": (
            '[[sink.serve]]\ndomain = "not a domain!"\n',
            "sink.serve: 'not a domain!'",
        ),
        "hostport.toml": (
            '[[sink.serve]]\ndomain = "shop.ml"\nchoice = "forward"\nforward_to = "mx.shop.ml"\n',
            "'mx.shop.ml' is not HOST:PORT",
        ),
    }
    for name, (text, said) in cases.items():
        (tmp_path / name).write_text(text)
        status, stderr = run_typogate(
            "sink", "run", "--config", name, "--listen", "127.0.0.1:1", "--db", "sqlite:///s.db",
            cwd=tmp_path,
        )  # fmt: skip
        assert status == 2, (name, stderr)
        assert said in stderr, (name, stderr)
        assert "Traceback" not in stderr
    status, stderr = run_typogate("sink", "records", "--config", "domain.toml", cwd=tmp_path)
    assert (status, "not a domain!" in stderr) == (2, True)


def test_a_taken_address_is_one_line_and_status_1(tmp_path):
    (tmp_path / "t.toml").write_text('[[sink.serve]]\nsuffix = "ml"\n')
    with port_in_use() as port:
        status, stderr = run_typogate(
            "sink", "run", "--config", "t.toml", "--listen", f"127.0.0.1:{port}",
            "--db", "sqlite:///s.db", cwd=tmp_path,
        )  # fmt: skip
    assert status == 1
    assert f"cannot run the sink on 127.0.0.1:{port}: Address already in use" in stderr
    status, stderr = run_typogate(
        "sink", "run", "-c", "t.toml", "--listen", "nowhere", cwd=tmp_path
    )
    assert (status, "--listen: 'nowhere' is not HOST:PORT" in stderr) == (2, True)
