"""What a verification report shows of a replayed case: ids, enums, hashes and times only.

Narratives, summaries, reasons, dispositions, notes, locations and custodians are evidence and stay
in the envelopes; reports never copy free text.
"""

from __future__ import annotations

from typing import Any

from domain.projections import release_status


def _footage(state: Any, footage: Any) -> dict[str, Any]:
    return {
        "footage_id": footage.footage_id,
        "source": footage.source,
        "sha256": footage.sha256,
        "size_bytes": footage.size_bytes,
        "media_type": footage.media_type,
        "depicts": list(footage.depicts),
        "stored": footage.stored,
        "captured_at": footage.captured_at,
        "release_status": release_status(state, footage),
        "held_by": [h.hold_id for h in state.active_holds_covering(footage.footage_id)],
        "derivatives": [
            {"derivative_id": d.derivative_id, "kind": d.kind, "sha256": d.sha256, "created_at": d.created_at}
            for d in footage.derivatives
        ],
        "accesses": footage.accesses,
    }


def _hold(hold: Any) -> dict[str, Any]:
    return {
        "hold_id": hold.hold_id,
        "authority": hold.authority,
        "scope": hold.scope if hold.scope == "case" else list(hold.scope),
        "active": hold.active,
        "placed_at": hold.placed_at,
        "lifted_at": hold.lifted_at,
    }


def _release(release: Any) -> dict[str, Any]:
    return {
        "footage_id": release.footage_id,
        "derivative_id": release.derivative_id,
        "sha256": release.sha256,
        "basis": release.basis,
        "url": release.url,
        "released_at": release.at,
        "seq": release.seq,
    }


def _referral(referral: Any) -> dict[str, Any]:
    ack = referral.acknowledgement
    return {
        "referral_id": referral.referral_id,
        "authority": referral.authority,
        "made_at": referral.made_at,
        "seq": referral.seq,
        "bundle_sha256": referral.bundle_sha256,
        "acknowledged_at": None if ack is None else ack.at,
        "acknowledged_by": None if ack is None else ack.actor,
    }


def case_summary(state: Any) -> dict[str, Any] | None:
    """The replayed case (accepted events only), without free text."""
    if state is None:
        return None
    return {
        "case_number": state.case_number,
        "category": state.category,
        "status": state.status,
        "version": state.version,
        "opened_at": state.opened_at,
        "closed_at": state.closed_at,
        "reopen_count": state.reopen_count,
        "footage": [_footage(state, f) for f in state.footage],
        "holds": [_hold(h) for h in state.holds],
        "active_holds": [h.hold_id for h in state.holds if h.active],
        "releases": [_release(r) for r in state.releases],
        "referrals": [_referral(r) for r in state.referrals],
        "accesses": state.accesses,
    }
