"""Who is calling: the :class:`Principal`, the :class:`Authenticator` protocol and the FastAPI dependencies.

Routes never see tokens: they depend on ``Annotated[Principal, Depends(require(...))]``. Replacing
the token store with an OIDC provider means writing another :class:`Authenticator` (validate the
JWT, map its claims to a Principal) and passing it to :func:`api.app.create_app`; see docs/api.md.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Protocol

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from api.errors import UnauthenticatedError
from domain.errors import AuthorizationError
from ledger.tokens import API_ROLES, NEEDS_IO, TokenRecord, TokenStore

ACTOR_SCOPE_KEY = "evidence_ledger.principal"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. ``actor`` must equal the registry actor of any key it signs with."""

    actor: str
    role: str
    authority: str | None = None
    subject_id: str | None = None  # token id, or the IdP's subject


class Authenticator(Protocol):
    """Turns the credential of a request into a Principal, or None when it is not valid now."""

    def authenticate(self, credential: str, *, now: datetime) -> Principal | None: ...


class TokenAuthenticator:
    """Opaque bearer tokens from :class:`ledger.tokens.TokenStore`."""

    def __init__(self, store: TokenStore) -> None:
        self.store = store

    def authenticate(self, credential: str, *, now: datetime) -> Principal | None:
        return _principal(self.store.verify(credential, now=now))

    def authenticate_cached(self, credential: str, *, now: datetime) -> Principal | object | None:
        """The answer from the token cache alone (no I/O), or NEEDS_IO when it would take a database read."""
        record = self.store.verify_cached(credential, now=now)
        return NEEDS_IO if record is NEEDS_IO else _principal(record)  # type: ignore[arg-type]


def _principal(record: TokenRecord | None) -> Principal | None:
    if record is None:
        return None
    return Principal(actor=record.actor, role=record.role, authority=record.authority, subject_id=record.token_id)


bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearerToken",
    description="`evidence-ledger tokens issue` prints a token; send it as `Authorization: Bearer <token>`.",
)


async def current_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    """The authenticated caller; 401 for a missing, unknown, expired or revoked credential.

    An authenticator may offer ``authenticate_cached`` (no I/O: a Principal, None, or NEEDS_IO);
    otherwise, or when it answers NEEDS_IO, ``authenticate`` runs in the threadpool."""
    if credentials is None:
        raise UnauthenticatedError(
            "a bearer token is required: an admin issues one with evidence-ledger tokens issue --actor … --role …;"
            " send it as Authorization: Bearer <token> (evidence-ledger … --token, or EVIDENCE_LEDGER_TOKEN)"
        )
    runtime = request.app.state.runtime
    authenticator, now = runtime.authenticator, runtime.clock()
    cached = getattr(authenticator, "authenticate_cached", None)
    principal = NEEDS_IO if cached is None else cached(credentials.credentials, now=now)
    if principal is NEEDS_IO:
        principal = await run_in_threadpool(authenticator.authenticate, credentials.credentials, now=now)
    if principal is None:
        raise UnauthenticatedError(
            "the bearer token is not valid (unknown, expired or revoked): ask an admin for a new one"
            " (evidence-ledger tokens issue --actor … --role …)"
        )
    assert isinstance(principal, Principal)
    request.scope[ACTOR_SCOPE_KEY] = principal
    return principal


def require(*roles: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that admits only the given roles (403 ROLE_NOT_ALLOWED for the others)."""
    unknown = set(roles) - set(API_ROLES)
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}")

    async def dependency(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:  # no thread hop
        if principal.role not in roles:
            raise AuthorizationError(
                f"role '{principal.role}' may not use this endpoint", code="ROLE_NOT_ALLOWED", role=principal.role
            )
        return principal

    return dependency


def may_see_case(principal: Principal, view: dict[str, object]) -> bool:
    """Prosecutors see only cases referred to their authority; every other role sees every case."""
    if principal.role != "prosecutor":
        return True
    referrals = view.get("referrals")
    return isinstance(referrals, list) and any(
        isinstance(r, dict) and r.get("authority") == principal.authority for r in referrals
    )


Reader = Annotated[Principal, Depends(require(*API_ROLES))]
CaseWriter = Annotated[Principal, Depends(require("investigator", "supervisor", "prosecutor", "counsel"))]
Sealer = Annotated[Principal, Depends(require("investigator", "supervisor"))]
Replayer = Annotated[Principal, Depends(require("auditor", "supervisor", "admin"))]
Admin = Annotated[Principal, Depends(require("admin"))]
