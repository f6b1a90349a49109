"""Shared harness for the HTTP API tests (no tests here): a running app on a test ledger.

``running_api(ledger)`` registers one signing key per role (``tests.support.Actors``), starts the
app in-process with ``TestClient`` (lifespan included, so the group committer and checkpointer run)
and issues bearer tokens whose actor is the actor of the matching key.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from api.runtime import Runtime
from api.settings import ApiSettings
from ledger.envelope.keys import load_private_key
from ledger.settings import key_path
from ledger.store import Ledger
from tests.support.cases import ROLES, Actors

# who -> (actor, role, authority) of the token that goes with the key of the same name
TOKEN_HOLDERS: dict[str, tuple[str, str, str | None]] = {
    name: (actor, "prosecutor" if name == "ag_prosecutor" else name, authority)
    for name, (actor, authority) in ROLES.items()
}
TOKEN_HOLDERS["admin"] = ("admin", "admin", None)


@dataclass
class Api:
    app: FastAPI
    client: TestClient
    ledger: Ledger
    actors: Actors
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def runtime(self) -> Runtime:
        runtime = self.app.state.runtime
        assert isinstance(runtime, Runtime)
        return runtime

    def issue(self, who: str, *, expires_in: timedelta = timedelta(days=1), **overrides: Any) -> str:
        actor, role, authority = TOKEN_HOLDERS[who]
        fields = {"actor": actor, "role": role, "authority": authority, **overrides}
        assert self.runtime.tokens is not None
        issued = self.runtime.tokens.issue(expires_in=expires_in, now=self.ledger.clock(), **fields)
        return issued.token

    def token(self, who: str) -> str:
        if who not in self.tokens:
            self.tokens[who] = self.issue(who)
        return self.tokens[who]

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(who)}"}

    def envelope(self, who: str, case_id: str, event_type: str, body: dict[str, Any], **kw: Any) -> bytes:
        return self.actors.envelope(who, case_id, event_type, body, **kw)

    def post(self, who: str, case_id: str, event_type: str, body: dict[str, Any], *,
             caller: str | None = None, wait: bool = False, **kw: Any) -> httpx.Response:
        """Sign as ``who`` and post with the token of ``caller`` (default: the same person)."""
        raw = self.envelope(who, case_id, event_type, body, **kw)
        return self.post_raw(case_id, raw, caller or who, wait=wait)

    def post_raw(self, case_id: str, raw: bytes, caller: str, *, wait: bool = False) -> httpx.Response:
        params = {"wait": "true"} if wait else None
        return self.client.post(f"/v1/cases/{case_id}/events", content=raw, params=params, headers=self.auth(caller))

    def ok(self, who: str, case_id: str, event_type: str, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
        response = self.post(who, case_id, event_type, body, **kw)
        assert response.status_code == 201, (event_type, response.status_code, response.text)
        result: dict[str, Any] = response.json()
        return result

    def admin_key(self) -> Any:
        return load_private_key(key_path(self.ledger.data_dir, "admin"))


@contextmanager
def running_api(ledger: Ledger, **api_overrides: Any) -> Iterator[Api]:
    actors = Actors.register(ledger)
    app = create_app(ledger=ledger, api_settings=ApiSettings(**api_overrides))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(app=app, client=client, ledger=ledger, actors=actors)


@contextmanager
def captured_logs() -> Iterator[io.StringIO]:
    """Every structured and standard log line of the service, at DEBUG, into one buffer."""
    import logging

    import structlog

    from api.logs import configure_logging

    buffer = io.StringIO()
    configure_logging(stream=buffer, level=logging.DEBUG)
    handler = logging.StreamHandler(buffer)
    logging.getLogger().addHandler(handler)
    try:
        yield buffer
    finally:
        logging.getLogger().removeHandler(handler)
        structlog.reset_defaults()


COUNSEL = "Counsel F. Moreau"


def add_counsel(api: Api) -> None:
    """Register a counsel key and token (the role two-person disclosure needs beside a supervisor)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from ledger.bootstrap import register_key
    from ledger.envelope.keys import raw_public_key
    from ledger.settings import key_path

    key = Ed25519PrivateKey.generate()
    register_key(api.ledger, key_path(api.ledger.data_dir, "admin"), raw_public_key(key), actor=COUNSEL,
                 role="counsel", authority=None)
    api.actors.keys["counsel"] = key
    assert api.runtime.tokens is not None
    api.tokens["counsel"] = api.runtime.tokens.issue(
        actor=COUNSEL, role="counsel", authority=None, expires_in=timedelta(days=1), now=api.ledger.clock()
    ).token


def problem(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """Assert an RFC 9457 problem response and return its body."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["type"].startswith("urn:evidence-ledger:problem:")
    assert {"title", "detail", "code", "refs"} <= body.keys()
    if code is not None:
        assert body["code"] == code, body
    return body


def assert_same_404(first: dict[str, Any], first_id: str, second: dict[str, Any], second_id: str) -> None:
    """Two problem answers are the same but for the case id each names (the one its caller asked for)
    and their request ids: a case the caller may not see answers exactly like a missing one."""
    import json

    def shape(body: dict[str, Any], case_id: str) -> str:
        text = json.dumps({k: v for k, v in body.items() if k != "request_id"}, sort_keys=True)
        assert case_id in text, body  # the answer names the case asked for
        return text.replace(case_id, "CASE")

    assert shape(first, first_id) == shape(second, second_id)
