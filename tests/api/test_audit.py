"""`audit --server` against the real API: the contract the auditor reads is the one the server serves."""

from __future__ import annotations

from ledger.audit.run import run_audit
from ledger.audit.source import read_server
from ledger.store import Ledger
from tests.support.api import running_api
from tests.support.audit import Raw, options
from tests.support.cases import case_opened, footage_captured, new_case_id


def test_the_real_server_is_audited_and_a_deleted_row_is_named(ledger: Ledger) -> None:
    with running_api(ledger) as api:
        case_id = new_case_id()
        api.ok("investigator", case_id, "CaseOpened", case_opened())
        second = api.ok("investigator", case_id, "FootageCaptured", footage_captured())
        token = api.token("auditor")
        report = run_audit(read_server("http://testserver", token, client=api.client), options(ledger))
        assert report.findings == [] and report.log_size == ledger.log_size()
        raw = Raw(ledger)
        raw.run(f"DELETE FROM {raw.events} WHERE originator_id = ? AND originator_version = 2", (raw.key(case_id),))
        report = run_audit(read_server("http://testserver", token, client=api.client), options(ledger))
        found = [(f.code, f.leaf_index, f.case_id, f.seq) for f in report.findings]
        assert found == [("MISSING_ENTRY", second["leaf_index"], case_id, 2)]
