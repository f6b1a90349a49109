"""Case numbers are unique across cases: a check over the signed ``CaseOpened`` events themselves.

The append path refuses a ``CaseOpened`` whose number another case has (``DUPLICATE_CASE_NUMBER``),
looking the number up in the read models' ``case_state.case_number`` column under the write lock.
That column is a read model: someone who edits or deletes a row can make the lookup miss (reads and
lists of the case then refuse, and the projection check names the row). This check does not rest
on any read model: it reads the number from every logged envelope that opens a case, so a
duplicate that got in, whatever was done to the rows before or after, is named here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from domain.case_state import case_number_key
from domain.errors import LedgerError
from ledger.envelope.dsse import REGISTRY_CASE_ID, parse_envelope
from ledger.verify import Entry, EventRow, Finding

#: the check number (the case rules replayed from the events, here across cases)
STEP = 10


def case_number_findings(entries: Iterable[Entry], rows: Mapping[int, EventRow]) -> list[Finding]:
    """One ``DUPLICATE_CASE_NUMBER`` per ``CaseOpened`` (in leaf order) whose case number an earlier
    leaf's ``CaseOpened`` of another case already has. ``rows``: the stored event row of each leaf,
    whose seq says which envelopes can open a case (only those are parsed)."""
    first: dict[str, tuple[str, int]] = {}  # case number -> (case id, leaf index) of its first case
    findings = []
    for entry in sorted(entries, key=lambda e: e.leaf_index):
        row = rows.get(entry.leaf_index)
        if row is None or row.seq != 1:  # the engine reports a statement that disagrees with its row
            continue
        try:
            st = parse_envelope(entry.envelope).statement
        except LedgerError:
            continue  # reported by the envelope checks, with its reason
        number = st.body.get("case_number") if st.type == "CaseOpened" else None
        if not isinstance(number, str) or st.case_id == REGISTRY_CASE_ID:
            continue
        earlier = first.setdefault(case_number_key(number), (st.case_id, entry.leaf_index))
        if earlier[0] != st.case_id:
            findings.append(
                Finding(
                    "DUPLICATE_CASE_NUMBER",
                    STEP,
                    f"case number {number} was already opened by case {earlier[0]} (leaf {earlier[1]})",
                    leaf_index=entry.leaf_index,
                    case_id=st.case_id,
                    seq=st.seq,
                    evidence={"case_number": number, "first_case_id": earlier[0], "first_leaf_index": earlier[1]},
                )
            )
    return findings
