"""Response and request-body schemas, for the OpenAPI document only.

Handlers build plain dicts (the hot path skips pydantic); the schemathesis suite checks that every
response conforms to these models. Request bodies are read raw and parsed strictly (see
:mod:`api.bodies`), so their schemas are given as JSON Schema in ``openapi_extra``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Receipt(BaseModel):
    """The wire form of :class:`ledger.append.Receipt`, for the OpenAPI document.

    The dataclass is the definition; this model only describes it (with field descriptions), and
    ``tests/api/test_schemas.py`` keeps the two field for field.
    """

    event_id: str
    case_id: str
    seq: int
    leaf_index: int
    leaf_hash: str
    envelope_sha256: str
    integrated_at: str
    duplicate: bool = Field(description="true when this exact envelope had already been accepted")
    receipt: str = Field(
        description="the signed receipt (C2SP signed note by the log key, docs/formats.md §10): the log's"
        " promise that a checkpoint covers the entry within its max delay; the same bytes for a duplicate"
    )


class InclusionProof(BaseModel):
    leaf_index: int
    tree_size: int
    audit_path: list[str] = Field(description="base64 SHA-256 hashes, leaf to root (RFC 6962)")


class ConsistencyProof(BaseModel):
    first: int
    second: int
    consistency: list[str] = Field(description="base64 SHA-256 hashes (RFC 6962)")


class WaitedReceipt(Receipt):
    checkpoint: str | None = Field(default=None, description="signed note (with cosignatures) covering the entry")
    inclusion_proof: InclusionProof | None = None


class AsOf(BaseModel):
    leaf_index: int = Field(description="the last log entry taken into account")
    integrated_at: str | None = Field(description="when that entry was integrated")
    requested: str | None = Field(description="the `as_of` asked for (null with `at_index`)")


class CaseView(BaseModel):
    """The case projection; no narratives, locations or reporter data."""

    model_config = ConfigDict(extra="allow")
    case_id: str
    version: int
    head_sha256: str | None = Field(default=None, description="hash of the case's last envelope (single case only)")
    status: str
    category: str
    referrals: list[dict[str, Any]]
    as_of: AsOf | None = Field(
        default=None, description="only with `?as_of=` or `?at_index=`: the point in the log the view is taken at"
    )


class CasePage(BaseModel):
    items: list[CaseView]
    next: str | None = Field(description="pass as `after` to get the next page; null at the end")


class StoredEnvelope(BaseModel):
    seq: int
    envelope: str = Field(description="the DSSE envelope exactly as stored (canonical JSON)")


class EnvelopePage(BaseModel):
    items: list[StoredEnvelope]
    next: int | None = Field(description="pass as `after` to get the next page; null at the end")


class TimelineEntry(BaseModel):
    model_config = ConfigDict(extra="allow")
    seq: int
    type: str
    occurred_at: str
    actor: str
    role: str
    label: str


class TimelinePage(BaseModel):
    items: list[TimelineEntry]
    next: int | None = Field(description="pass as `after` to get the next page; null at the end")


class CustodyLink(BaseModel):
    step: int = Field(description="the link's number in the chain (1: the capture)")
    from_custodian: str | None = Field(description="null for the first link (the capture)")
    to_custodian: str
    purpose: str = Field(description="`capture` for the first link")
    at: str = Field(description="the signed statement's occurred_at")
    seq: int = Field(description="the case event that made the link")
    leaf_index: int = Field(description="that event's log entry")


class CustodyPage(BaseModel):
    items: list[CustodyLink]
    next: int | None = Field(description="pass as `after` to get the next page; null at the end")


class LogEnvelope(BaseModel):
    leaf_index: int
    case_id: str
    seq: int
    envelope: str | None = Field(
        description="the DSSE envelope exactly as stored (canonical JSON); null when no event row holds it"
    )
    leaf: str | None = Field(
        description="the exact leaf bytes (ASCII canonical JSON), as GET /v1/log/entries/{index} serves them; "
        "null only if the stored leaf is not ASCII (fetch that endpoint for its bytes)"
    )


class LogEnvelopePage(BaseModel):
    items: list[LogEnvelope]
    next: int | None = Field(description="pass as `after` to get the next page; null at the end")


class CheckpointTimestamp(BaseModel):
    tsa: str = Field(description="the name of the time-stamping authority (tsa.json)")
    token: str = Field(
        description="base64 of the DER TimeStampResp (RFC 3161) exactly as the TSA sent it, over SHA-256 of the "
        "checkpoint's body (origin, size and root lines); check it with the TSA's CA certificate"
    )


class CheckpointTimestampPage(BaseModel):
    items: list[CheckpointTimestamp]
    next: str | None = Field(description="pass as `after` to get the next page; null at the end")


class StoredEvidence(BaseModel):
    sha256: str = Field(description="the file's SHA-256 (64 lowercase hex): its name in the store")
    size_bytes: int


class SealedRef(BaseModel):
    sealed_ref: str
    commitment: str


class KeyInfo(BaseModel):
    model_config = ConfigDict(extra="allow")
    key_id: str
    public_key_b64: str
    actor: str
    role: str
    authority: str | None
    revoked: bool


class KeyRegistry(BaseModel):
    root_key_id: str | None
    version: int
    head_sha256: str | None = Field(description="hash of the registry stream's last envelope (its `prev`)")
    keys: list[KeyInfo]


class PublicRelease(BaseModel):
    """One release, with only what the supervisor's signed release decision says."""

    model_config = ConfigDict(extra="forbid")
    sha256: str = Field(description="SHA-256 of the released file (the footage or a derivative of it)")
    released_at: str = Field(description="the time of the signed release decision (RFC 3339, UTC)")
    basis: str = Field(description="the release basis, e.g. executive_order or public_records_request")
    channel: str = Field(description="where it was released")
    url: str | None = Field(description="where the file can be found, when the decision names one")


class PublicReleasePage(BaseModel):
    items: list[PublicRelease]
    next: str | None = Field(description="pass as `after` to get the next page; null at the end")


class CountRange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    at_least: int = Field(ge=0, description="the count rounded down to a multiple of the bucket")
    at_most: int = Field(ge=0, description="at_least + bucket - 1")


class MonthStatistics(BaseModel):
    model_config = ConfigDict(extra="forbid")
    month: str = Field(description="the month of capture, YYYY-MM (UTC)")
    as_of: str = Field(description="the cutoff: every footage captured in the month is counted as it stood then")
    released: CountRange
    withheld_under_investigation: CountRange
    awaiting_decision: CountRange


class PublicStatistics(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bucket: int = Field(description="the width of every count range")
    lag_months: int = Field(description="months between the end of a month and its cutoff")
    months: list[MonthStatistics] = Field(description="every month whose cutoff has passed, oldest first")


class Health(BaseModel):
    status: str


class ReplicaStatus(BaseModel):
    reachable: bool = Field(description="the read replica answered just now")
    log_size: int | None = Field(description="log entries the replica has replayed (null: unreachable)")
    lag: int | None = Field(description="entries the primary has that the replica has not replayed yet")
    floor: int = Field(description="no routed read reflects fewer entries (newest checkpoint signed or served)")
    fallback: str = Field(description="primary (serve lagging reads from the primary) or unavailable (503)")


class TilesStatus(BaseModel):
    size: int = Field(description="tree size of the checkpoint in the tiles directory (0: none yet)")
    error: str | None = Field(
        description="why the last publication failed (`TILE_CONFLICT: ...`: the directory holds other bytes or"
        " a checkpoint the database does not extend; never rewritten); null after a success"
    )
    conflicts: int = Field(description="TILE_CONFLICTs seen since the service started")


class Readiness(BaseModel):
    status: str
    admin_key_on_server: bool = Field(
        description="true in demo mode: the trust-root admin private key is in the server's data dir"
    )
    keystore_in_data_dir: bool = Field(
        description="true in demo mode: the sealed records' keys are in the server's data dir"
    )
    profile: str = Field(description="standard, or production: checkpoints are published once witnessed")
    min_witnesses: int = Field(
        description="cosignatures by witnesses in other trust domains a checkpoint needs to be published (0: none)"
    )
    witnessed_size: int = Field(
        description="tree size of the newest checkpoint cosigned as the profile asks (at least one witness;"
        " production: the published one); 0 before there is one"
    )
    replica: ReplicaStatus | None = Field(
        default=None, description="the read replica (docs/scaling-reads.md); absent when none is configured"
    )
    tiles: TilesStatus | None = Field(default=None, description="the tiled log the service publishes (docs/tiles.md)")


class Disclosure(BaseModel):
    sealed_ref: str
    data: Any = Field(description="the unsealed personal data, exactly as sealed")
    commitment: str = Field(description="HMAC commitment recomputed from the data; equals the one in the report")
    receipt: Receipt


ENVELOPE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": (
        "One DSSE envelope in RFC 8785 canonical form, signed with Ed25519 over PAE(payloadType, payload). "
        "The payload is the canonical JSON statement {body, case_id, event_id, ledger, occurred_at, prev, seq, "
        "signer, type, type_version}."
    ),
    "required": ["payload", "payloadType", "signatures"],
    "additionalProperties": False,
    "properties": {
        "payload": {"type": "string", "description": "base64 of the canonical statement"},
        "payloadType": {"type": "string", "enum": ["application/vnd.evidence-ledger.event.v1+json"]},
        "signatures": {
            "type": "array",
            "minItems": 1,
            "maxItems": 1,
            "items": {
                "type": "object",
                "required": ["keyid", "sig"],
                "additionalProperties": False,
                "properties": {
                    "keyid": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                    "sig": {"type": "string"},
                },
            },
        },
    },
}


def json_body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {"application/json": {"schema": schema}},
        }
    }


class AccessEntry(BaseModel):
    action: str
    actor: str = Field(description='"anonymous" when the caller was not authenticated')
    case_id: str | None
    code: str | None = Field(description="the problem code of a denial; null when allowed")
    index: int
    item: str | None = Field(description="the file's SHA-256, a sealed_ref, or null")
    outcome: str = Field(description="allowed or denied")
    recorded_at: str
    request_id: str | None
    role: str | None
    token_id: str | None
    v: int


class AccessLogItem(BaseModel):
    leaf_index: int
    entry: AccessEntry | None = Field(description="the entry (null if the stored bytes do not parse: tampering)")
    leaf: str = Field(description="the exact leaf bytes (the entry's RFC 8785 canonical JSON)")


class AccessLogPage(BaseModel):
    items: list[AccessLogItem]
    next: int | None = Field(description="pass as `after` to get the next page; null at the end")
