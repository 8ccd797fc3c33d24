"""The monitor: which look-alikes of the protected domains exist and would accept mail.

Ranked by typogate's own error model (``lookalikes``), their mail state asked in DNS
(``mail_state``), optionally probed over SMTP (``probe``), compared with the last snapshot
(``snapshots``), exported for Postfix or as CSV (``exports``), locally or on Dask
(``engines``); ``run_monitor`` (``run``) does it all from a list of domains. Imports
``domains`` below it; nothing but the CLI imports it.
"""

from typogate.monitor.engines import Settings
from typogate.monitor.lookalikes import LookAlike, look_alikes
from typogate.monitor.mail_state import Lookup, MailFacts, MailState, Nameserver, mail_states
from typogate.monitor.run import MonitorInputError, MonitorRun, run_monitor
from typogate.monitor.snapshots import Change, Finding, Observation
from typogate.vocabulary import Engine, Probe

__all__ = [
    "Change",
    "Engine",
    "Finding",
    "LookAlike",
    "Lookup",
    "MailFacts",
    "MailState",
    "MonitorInputError",
    "MonitorRun",
    "Nameserver",
    "Observation",
    "Probe",
    "Settings",
    "look_alikes",
    "mail_states",
    "run_monitor",
]
