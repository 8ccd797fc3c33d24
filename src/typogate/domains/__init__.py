"""Domain names, the typo (error) model and the candidate index: pure, no I/O, the hot path.

Nothing here imports from the rest of typogate but its error root (``typogate.errors``).
"""

from typogate.domains.channel import (
    MIN_EDIT_COST,
    Edit,
    Explanation,
    Slip,
    explain,
    explain_host,
    merged,
    within_edits,
)
from typogate.domains.confusables import (
    as_seen,
    latin_readings,
    mixed_script_label,
    read_as,
    readings,
    skeleton,
)
from typogate.domains.index import CandidateIndex
from typogate.domains.names import (
    Destination,
    Domain,
    InvalidAddress,
    Recipient,
    Route,
    ascii_form,
    external_form,
    host_name,
    internal_form,
    is_utf8,
    parse_address,
    parse_domain,
    printable_form,
    read_destination,
    writable_form,
    written_form,
)

__all__ = [
    "MIN_EDIT_COST",
    "CandidateIndex",
    "Destination",
    "Domain",
    "Edit",
    "Explanation",
    "InvalidAddress",
    "Recipient",
    "Route",
    "Slip",
    "as_seen",
    "ascii_form",
    "explain",
    "explain_host",
    "external_form",
    "internal_form",
    "is_utf8",
    "latin_readings",
    "host_name",
    "merged",
    "mixed_script_label",
    "parse_address",
    "parse_domain",
    "printable_form",
    "read_as",
    "read_destination",
    "readings",
    "skeleton",
    "writable_form",
    "written_form",
    "within_edits",
]
