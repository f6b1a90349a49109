"""What a verification report shows of a replayed case: the domain's case projection, reduced to
ids, enums, hashes and times (:func:`domain.projections.case_summary`).

Narratives, summaries, reasons, dispositions, notes, locations and custodians are evidence and stay
in the envelopes; reports never copy free text.
"""

from __future__ import annotations

from typing import Any

from domain.case_state import CaseState
from domain.projections import case_summary as _summary


def case_summary(state: CaseState | None) -> dict[str, Any] | None:
    """The replayed case (accepted events only), without free text; None if none was accepted."""
    return None if state is None else _summary(state)
