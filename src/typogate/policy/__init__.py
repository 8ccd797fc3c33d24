"""Configuration, blanket rules, and the Guard that turns a recipient into a Verdict."""

from typogate.policy.config import Config, ConfigError, Rule
from typogate.policy.guard import Guard
from typogate.policy.verdict import Action, DomainVerdict, Verdict

__all__ = ["Action", "Config", "ConfigError", "DomainVerdict", "Guard", "Rule", "Verdict"]
