"""The read models: case state (decision state and view), timeline and public release rows.

Written in the same transaction as the events they reflect (``ledger/append.py``), rebuilt from the
log by ``ledger/projection.py`` and by the audit's scratch rebuild; never evidence.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from domain import case as case_rules
from domain import projections, registry
from ledger.envelope import REGISTRY_CASE_ID
from ledger.storage.sql import Tx

TRACKING_NAME = "read_models"


@dataclass
class CaseHead:
    version: int
    head_sha256: str
    state: Any  # CaseState or KeyRegistryState


def load_state(case_id: str, state_json: str) -> Any:
    data = json.loads(state_json)
    if case_id == REGISTRY_CASE_ID:
        return registry.KeyRegistryState.from_json(data)
    return case_rules.CaseState.from_json(data)


def write_read_models(tx: Tx, heads: dict[str, CaseHead], leaf_of: dict[str, int]) -> None:
    """Upsert the case-state rows and the public release rows of the given cases."""
    rows = []
    releases: list[tuple[Any, ...]] = []
    for case_id, head in heads.items():
        state_json = json.dumps(head.state.to_json(), sort_keys=True, separators=(",", ":"))
        if case_id == REGISTRY_CASE_ID:
            status, category, view = "registry", "registry", state_json
        else:
            view_data = projections.case_view(head.state)
            status, category = view_data["status"], view_data["category"]
            view = json.dumps(view_data, sort_keys=True, separators=(",", ":"))
            for entry in projections.public_release_entries(head.state):
                releases.append(
                    (case_id, entry["footage_id"], entry["status"], json.dumps(entry, sort_keys=True))
                )
        rows.append(
            (case_id, head.version, head.head_sha256, status, category, leaf_of[case_id], state_json, view)
        )
    tx.executemany(
        "INSERT INTO case_state (case_id, version, head_sha256, status, category, updated_leaf, state, view)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (case_id) DO UPDATE SET version = excluded.version,"
        " head_sha256 = excluded.head_sha256, status = excluded.status, category = excluded.category,"
        " updated_leaf = excluded.updated_leaf, state = excluded.state, view = excluded.view",
        rows,
    )
    # A case's public rows are replaced whole: footage that stopped being eligible (a new hold) must vanish.
    tx.executemany(
        "DELETE FROM public_releases WHERE case_id = ?", [(cid,) for cid in heads if cid != REGISTRY_CASE_ID]
    )
    tx.executemany(
        "INSERT INTO public_releases (case_id, footage_id, status, entry) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (case_id, footage_id) DO UPDATE SET status = excluded.status, entry = excluded.entry",
        releases,
    )
