"""Blanket rules, the domain lists, and the Guard that turns a recipient into a Verdict."""

from typogate.config import Config, Rule
from typogate.errors import ConfigError
from typogate.policy.guard import Guard
from typogate.policy.verdict import DomainVerdict, Verdict
from typogate.vocabulary import Action

__all__ = ["Action", "Config", "ConfigError", "DomainVerdict", "Guard", "Rule", "Verdict"]
