"""The closed vocabularies of the ledger: roles and the enumerated values of event fields.

Kept apart from :mod:`domain.events` so that the rules (which the event types name as their
effects) and the role table (derived from the event types) can use them without an import cycle.
"""

from __future__ import annotations

ROLES: tuple[str, ...] = (
    "investigator", "supervisor", "auditor", "prosecutor", "admin", "service", "counsel"
)

#: who may append an event type (see ``Rules.roles`` in :mod:`domain.events`)
INVESTIGATION: frozenset[str] = frozenset({"investigator", "supervisor"})
SUPERVISION: frozenset[str] = frozenset({"supervisor"})
PROSECUTION: frozenset[str] = frozenset({"prosecutor"})
ADMINISTRATION: frozenset[str] = frozenset({"admin"})
SERVICE: frozenset[str] = frozenset({"service"})
#: who may ask for a sealed record to be disclosed (and, once approved, receive it)
DISCLOSURE: frozenset[str] = frozenset({"investigator", "supervisor", "counsel"})
#: who may approve a disclosure (never the person who asked)
DISCLOSURE_APPROVAL: frozenset[str] = frozenset({"supervisor", "counsel"})
#: who may shred a sealed record (the service does it for retention)
SHREDDING: frozenset[str] = frozenset({"supervisor", "counsel", "service"})

CATEGORIES = ("violence", "property_damage", "criminal_conduct", "observed_federal_activity")
REPORT_CHANNELS = ("911_call", "walk_in", "online", "officer_observation")
CONDUCT = ("violence", "property_damage", "other")
FOOTAGE_SOURCES = ("body_worn_camera", "city_surveillance_camera", "resident_submitted", "other")
DEPICTS = ("violence_by_federal_officials", "property_damage_by_federal_officials", "other")
#: what the executive order promises to release (unless under an investigation hold)
RELEASABLE_DEPICTS = frozenset(DEPICTS[:2])
DERIVATIVE_KINDS = ("redaction", "clip", "transcode")
HOLD_AUTHORITIES = ("cpd", "middlesex_da", "massachusetts_ag", "court")
RELEASE_BASES = ("executive_order", "public_records_request", "court_order", "other")
#: the event types whose refusal is recorded as a SealedDisclosureRefused (the disclosure attempts)
DISCLOSURE_ATTEMPTS = ("SealedDisclosureRequested", "SealedDisclosureApproved", "SealedRecordDisclosed")
