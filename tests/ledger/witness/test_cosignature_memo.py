"""Stored cosignature lines are verified once per (note, line, witness key, log key): a line edited in the
database after the published checkpoint was read and verified is not taken on the strength of that
earlier answer."""

from __future__ import annotations

from pathlib import Path

from ledger.log import note
from ledger.log.witnessing import checkpoint_with_witnesses, configure_witness
from tests.support.audit import Raw
from tests.support.cases import Actors, case_opened, new_case_id
from tests.support.production import production_ledger, witnesses

DA, AG = "middlesexda.gov/witness", "mass.gov/ago-witness"


def test_an_edited_line_of_the_published_checkpoint_unpublishes_it_after_it_was_verified(tmp_path: Path) -> None:
    ledger = production_ledger(tmp_path, None)
    with witnesses(ledger, tmp_path, DA, AG) as running:
        for witness in running:
            configure_witness(ledger.data_dir, witness.url, str(witness.vkey))
        Actors.register(ledger).ok("investigator", new_case_id(), "CaseOpened", case_opened())
        checkpoint_with_witnesses(ledger, timeout=10)
    published = ledger.published_checkpoint()
    assert published is not None and len(published.cosignatures) == 2
    assert ledger.published_checkpoint() == published  # read again: the remembered answers

    line = published.cosignatures[0]
    parsed = note.open_note(published.note + line.encode())[1][-1]
    flipped = parsed.signature[:-1] + bytes([parsed.signature[-1] ^ 0x01])
    forged = note.SignatureLine(parsed.name, parsed.key_id, flipped).encode().decode()
    Raw(ledger).run("UPDATE log_cosignatures SET line = ? WHERE size = ? AND line = ?",
                    (forged, published.size, line))

    after = ledger.published_checkpoint()
    assert after is None or after.size < published.size  # one valid cosignature left: not published
    assert forged not in ledger.checkpoint_at(published.size).cosignatures  # left out, as before
    ledger.close()
