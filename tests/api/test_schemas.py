"""The OpenAPI schemas describe the ledger's own values and cannot drift from them."""

from __future__ import annotations

import dataclasses
import typing

from api.schemas import Receipt as ReceiptSchema
from ledger.append import Receipt


def test_the_receipt_schema_has_the_receipts_fields_with_their_types() -> None:
    hints = typing.get_type_hints(Receipt)
    expected = {field.name: hints[field.name] for field in dataclasses.fields(Receipt)}
    described = {name: info.annotation for name, info in ReceiptSchema.model_fields.items()}
    assert described == expected


def test_the_receipt_schema_reads_a_receipts_wire_form() -> None:
    receipt = Receipt(
        event_id="e",
        case_id="c",
        seq=1,
        leaf_index=7,
        leaf_hash="h",
        envelope_sha256="s",
        integrated_at="2026-12-03T00:00:00Z",
        duplicate=True,
    )
    wire = {**receipt.to_json(), "duplicate": receipt.duplicate}
    assert ReceiptSchema.model_validate(wire).model_dump() == dataclasses.asdict(receipt)
