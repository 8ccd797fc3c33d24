"""Configuration: TOML loading, errors that name the key, domain lists, profiles."""

import pytest

from typogate import Config, ConfigError, Guard
from typogate.policy.lists import domain_lists


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_full_config_loads(tmp_path):
    write(tmp_path, "protected.txt", "# our domains\narmy.mil\n\nnavy.mil  # the navy\n")
    config = Config.load(
        write(
            tmp_path,
            "typogate.toml",
            """
mode = "audit"

[domains]
protected = ["af.mil"]
protected_files = ["protected.txt"]
known = ["partner.com"]

[model]
reject_at = 0.95
warn_at = 0.6

[actions]
typo = "hold"
possible_typo = "warn"

[[rules]]
suffix = "ml"
action = "reject"
except = ["partner.ml"]
""",
        )
    )
    assert config.mode == "audit"
    lists = domain_lists(config)
    assert [d.text for d in lists.protected] == ["af.mil", "army.mil", "navy.mil"]
    assert lists.protected[1].origin.endswith("protected.txt:2")
    assert lists.profile is None  # explicit protected domains: no built-in list
    guard = Guard(config)
    assert guard.domain_count == 4
    assert guard.evaluate("a@army.ml").reason == "blocked.suffix"


@pytest.mark.parametrize(
    ("toml", "names"),
    [
        ("mode = 'sometimes'", "mode"),
        ("[model]\nreject_at = 2.0", "model.reject_at"),
        ("[model]\nreject_at = 0.5\nwarn_at = 0.7", "model"),
        ("[actions]\ntypo = 'explode'", "actions.typo"),
        ("[[rules]]\naction = 'reject'", "rules.0"),
        ("[[rules]]\nsuffix = 'ml'\ndomain = 'x.ml'\naction = 'reject'", "rules.0"),
        ("[[rules]]\nsuffix = 'ml'\naction = 'delete'", "rules.0.action"),
        ("[domains]\nprotectd = ['army.mil']", "domains.protectd: unknown key"),
        ("profile = 'nato'", "unknown profile"),
    ],
)
def test_config_errors_name_the_key(tmp_path, toml, names):
    with pytest.raises(ConfigError) as raised:
        Config.load(write(tmp_path, "bad.toml", toml))
    assert names in str(raised.value)
    assert "bad.toml" in str(raised.value)


def test_broken_toml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        Config.load(write(tmp_path, "broken.toml", "[domains\nprotected = "))
    with pytest.raises(ConfigError, match="cannot read"):
        Config.load(tmp_path / "missing.toml")


def test_bad_domain_in_a_list_names_file_and_line(tmp_path):
    write(tmp_path, "protected.txt", "army.mil\nnot a domain\n")
    config = Config.load(
        write(tmp_path, "c.toml", "[domains]\nprotected_files = ['protected.txt']")
    )
    with pytest.raises(ConfigError, match=r"protected\.txt:2"):
        Guard(config)


def test_missing_list_file(tmp_path):
    config = Config.load(write(tmp_path, "c.toml", "[domains]\nprotected_files = ['nope.txt']"))
    with pytest.raises(ConfigError, match="nope.txt"):
        domain_lists(config)


def test_bad_rule_target(tmp_path):
    with pytest.raises(ConfigError, match="rules.0.suffix"):
        Config.from_mapping({"rules": [{"suffix": "not a suffix!", "action": "reject"}]})


def test_default_profile_only_without_protected_domains():
    assert domain_lists(Config()).profile == "us-gov"
    explicit = Config.from_mapping({"domains": {"protected": ["army.mil"]}})
    assert domain_lists(explicit).profile is None
    both = Config.from_mapping({"profile": "providers", "domains": {"protected": ["army.mil"]}})
    lists = domain_lists(both)
    assert "gmail.com" in {d.text for d in lists.protected}


def test_with_lists_adds_files(tmp_path):
    extra = write(tmp_path, "more.txt", "example.org\n")
    config = Config().with_lists([extra], [])
    lists = domain_lists(config)
    assert [d.text for d in lists.protected] == ["example.org"]
