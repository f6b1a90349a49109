"""Bearer tokens, roles and case visibility: 401 / 403 / 404 as the spec says, on both backends."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from typer.testing import CliRunner

from domain.errors import MalformedInputError
from ledger.store import Ledger
from ledger.tokens import token_id_of
from tests.support.api import Api, assert_same_404, problem, running_api
from tests.support.cases import case_opened, new_case_id, referral_made


@pytest.fixture
def api(ledger: Ledger) -> Iterator[Api]:
    with running_api(ledger) as running:
        yield running


def _without_request_id(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "request_id"}


def test_missing_unknown_expired_and_revoked_tokens_are_the_same_401(api: Api) -> None:
    expired = api.issue("investigator", expires_in=timedelta(hours=1))
    revoked = api.issue("investigator")
    assert api.client.get("/v1/cases", headers={"Authorization": f"Bearer {expired}"}).status_code == 200
    api.ledger.clock.advance(hours=2)  # type: ignore[attr-defined]
    assert api.runtime.tokens is not None
    api.runtime.tokens.revoke(token_id_of(revoked), now=api.ledger.clock())
    unknown = "elt_0123456789abcdef_" + "A" * 43
    bodies = []
    for headers in (
        {},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": f"Bearer {unknown}"},
        {"Authorization": f"Bearer {expired}"},
        {"Authorization": f"Bearer {revoked}"},
        {"Authorization": f"Basic {revoked}"},
    ):
        response = api.client.get("/v1/cases", headers=headers)
        body = problem(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")
        bodies.append(_without_request_id(body))
    assert bodies[0]["code"] == "UNAUTHENTICATED"
    assert all(b == bodies[1] for b in bodies[1:-1])
    # each says how to get a token, and none repeats the one sent
    assert "evidence-ledger tokens issue --actor … --role …" in bodies[0]["detail"]
    assert "Authorization: Bearer <token>" in bodies[0]["detail"] and bodies[-1] == bodies[0]
    assert bodies[1]["detail"].startswith("the bearer token is not valid (unknown, expired or revoked)")
    assert "evidence-ledger tokens issue" in bodies[1]["detail"]
    assert not any(t in json.dumps(bodies) for t in (expired, revoked, unknown, "not-a-token"))


def test_appends_need_a_valid_token(api: Api) -> None:
    case_id = new_case_id()
    raw = api.envelope("investigator", case_id, "CaseOpened", case_opened())
    problem(api.client.post(f"/v1/cases/{case_id}/events", content=raw), 401, "UNAUTHENTICATED")
    assert api.ledger.case_head(case_id) == (0, None)


def test_auditors_read_everything_and_append_nothing(api: Api) -> None:
    case_id = new_case_id()
    api.ok("investigator", case_id, "CaseOpened", case_opened())
    auditor = api.auth("auditor")
    for path in (f"/v1/cases/{case_id}", f"/v1/cases/{case_id}/events", f"/v1/cases/{case_id}/timeline",
                 "/v1/cases", "/v1/keys", "/v1/log/envelopes"):
        assert api.client.get(path, headers=auditor).status_code == 200, path
    raw = api.envelope("auditor", case_id, "CaseClosed", {"disposition": "x"})
    problem(api.client.post(f"/v1/cases/{case_id}/events", content=raw, headers=auditor), 403, "ROLE_NOT_ALLOWED")
    problem(api.client.post("/v1/sealed", content=b'{"a":1}', headers=auditor), 403, "ROLE_NOT_ALLOWED")
    problem(api.client.post("/v1/keys", content=raw, headers=auditor), 403, "ROLE_NOT_ALLOWED")


def test_a_prosecutor_cannot_tell_an_unreferred_case_from_a_missing_one(api: Api) -> None:
    hidden, referred, missing = new_case_id(), new_case_id(), new_case_id()
    api.ok("investigator", hidden, "CaseOpened", case_opened("CPD-1"))
    api.ok("investigator", referred, "CaseOpened", case_opened("CPD-2"))
    api.ok("investigator", referred, "ReferralMade", referral_made())
    prosecutor = api.auth("prosecutor")
    for suffix in ("", "/events", "/timeline"):
        absent = problem(api.client.get(f"/v1/cases/{missing}{suffix}", headers=prosecutor), 404)
        invisible = problem(api.client.get(f"/v1/cases/{hidden}{suffix}", headers=prosecutor), 404)
        assert_same_404(absent, missing, invisible, hidden)
        assert api.client.get(f"/v1/cases/{referred}{suffix}", headers=prosecutor).status_code == 200
        assert api.client.get(f"/v1/cases/{hidden}{suffix}", headers=api.auth("supervisor")).status_code == 200
    listed = api.client.get("/v1/cases", params={"limit": 1}, headers=prosecutor).json()
    assert [c["case_id"] for c in listed["items"]] == [referred]
    everyone = api.client.get("/v1/cases", headers=api.auth("investigator")).json()["items"]
    assert {hidden, referred} <= {c["case_id"] for c in everyone}


def test_case_list_pages_with_a_cursor_and_filters(api: Api) -> None:
    ids = sorted(new_case_id() for _ in range(3))
    for case_id in ids:
        api.ok("investigator", case_id, "CaseOpened", case_opened())
    headers = api.auth("supervisor")
    seen: list[str] = []
    after: str | None = None
    while True:
        page = api.client.get("/v1/cases", params={"limit": 2, **({"after": after} if after else {})}, headers=headers)
        body = page.json()
        seen += [c["case_id"] for c in body["items"]]
        if body["next"] is None:
            break
        after = body["next"]
    assert seen == ids
    closed = api.client.get("/v1/cases", params={"status": "closed"}, headers=headers).json()
    assert closed == {"items": [], "next": None}
    problem(api.client.get("/v1/cases", params={"after": "not-a-uuid"}, headers=headers), 400, "INVALID_REQUEST")


def test_only_investigators_and_supervisors_seal(api: Api) -> None:
    for who, status in (("investigator", 201), ("supervisor", 201), ("prosecutor", 403), ("admin", 403)):
        response = api.client.post("/v1/sealed", content=b'{"name":"x"}', headers=api.auth(who))
        assert response.status_code == status, (who, response.text)


def test_tokens_are_stored_as_sha256_only_and_compared_in_constant_time(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ledger.tokens as tokens

    token = api.token("investigator")
    with api.ledger.db.read() as tx:
        rows = tx.query("SELECT * FROM api_tokens")
    assert rows and not any(token in str(v) for row in rows for v in row)
    assert any(hashlib.sha256(token.encode()).hexdigest() in row for row in rows)
    calls: list[tuple[bytes, bytes]] = []
    real = tokens.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(tokens.hmac, "compare_digest", spy)
    assert api.client.get("/v1/keys", headers=api.auth("investigator")).status_code == 200
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert api.client.get("/v1/keys", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    token_compares = [c for c in calls if isinstance(c[0], bytes)]  # row MAC checks compare hex strings
    assert len(token_compares) == 2


def test_token_issue_checks_role_authority_and_lifetime(api: Api) -> None:
    store, now = api.runtime.tokens, api.ledger.clock()
    assert store is not None
    bad = [
        {"actor": "x", "role": "custodian", "authority": None, "expires_in": timedelta(days=1)},
        {"actor": "x", "role": "prosecutor", "authority": None, "expires_in": timedelta(days=1)},
        {"actor": "x", "role": "prosecutor", "authority": "fbi", "expires_in": timedelta(days=1)},
        {"actor": "x", "role": "auditor", "authority": "middlesex_da", "expires_in": timedelta(days=1)},
        {"actor": "x", "role": "auditor", "authority": None, "expires_in": timedelta(days=91)},
        {"actor": "", "role": "auditor", "authority": None, "expires_in": timedelta(days=1)},
    ]
    for fields in bad:
        with pytest.raises(MalformedInputError):
            store.issue(now=now, **fields)  # type: ignore[arg-type]


def test_tokens_cli_issue_list_revoke(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from ledger.cli.app import app, commands

    commands()

    if api.ledger.settings.database_url:
        monkeypatch.setenv("EVIDENCE_LEDGER_DATABASE_URL", api.ledger.settings.database_url)
    data_dir = ["--data-dir", str(api.ledger.data_dir)]
    runner = CliRunner()
    issued = runner.invoke(app, ["tokens", "issue", "--actor", "Sgt. B. Chen", "--role", "supervisor",
                                 "--expires-in", "12h", *data_dir])
    assert issued.exit_code == 0, issued.output
    token = issued.output.strip().splitlines()[-1]
    assert token.startswith("elt_") and " " not in token
    token_id = token_id_of(token)
    secret = token[len("elt_") + len(token_id) + 1 :]
    listed = runner.invoke(app, ["tokens", "list", *data_dir])
    assert listed.exit_code == 0 and token_id in listed.output and secret not in listed.output
    assert hashlib.sha256(token.encode()).hexdigest() not in listed.output
    refused = runner.invoke(app, ["tokens", "issue", "--actor", "x", "--role", "prosecutor", *data_dir])
    assert refused.exit_code == 2 and "authority" in refused.output
    revoked = runner.invoke(app, ["tokens", "revoke", token_id, *data_dir])
    assert revoked.exit_code == 0, revoked.output
    listed = runner.invoke(app, ["tokens", "list", "--json", *data_dir])
    assert [t["status"] for t in json.loads(listed.output) if t["token_id"] == token_id] == ["revoked"]
    problem(api.client.get("/v1/cases", headers={"Authorization": f"Bearer {token}"}), 401)


def test_a_revocation_by_another_process_applies_within_the_token_cache_ttl(api: Api) -> None:
    from ledger.tokens import TokenStore

    store = api.runtime.tokens
    assert store is not None and store.cache_seconds == 2.0  # the documented default
    ticks = [1000.0]
    store._monotonic = lambda: ticks[0]
    token = api.issue("auditor")
    headers = {"Authorization": f"Bearer {token}"}
    assert api.client.get("/v1/cases", headers=headers).status_code == 200  # now cached
    other = TokenStore(  # as `evidence-ledger tokens revoke`
        api.ledger.db, api.ledger.mac, authorities=store.authorities, registry=api.ledger.registry_state
    )
    other.revoke(token_id_of(token), now=api.ledger.clock())
    assert api.client.get("/v1/cases", headers=headers).status_code == 200  # within the TTL
    ticks[0] += 2.01
    problem(api.client.get("/v1/cases", headers=headers), 401, "UNAUTHENTICATED")
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")  # a cached id never admits another secret
    problem(api.client.get("/v1/cases", headers={"Authorization": f"Bearer {forged}"}), 401)
