"""Group commit and the background checkpointer, directly and through concurrent HTTP clients."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from api.errors import UnavailableError
from api.group_commit import GroupCommitter
from domain.errors import ConflictError, LedgerError
from ledger.append import Receipt
from ledger.log.checkpointer import Checkpointer
from ledger.store import Ledger
from tests.support.api import Api, running_api
from tests.support.cases import Actors, case_opened, footage_captured, new_case_id


@pytest.fixture
def actors(ledger: Ledger) -> Actors:
    return Actors.register(ledger)


def _opened(actors: Actors, count: int) -> list[bytes]:
    return [actors.envelope("investigator", new_case_id(), "CaseOpened", case_opened()) for _ in range(count)]


def _submit_all(committer: GroupCommitter, actors: Actors, raws: list[bytes]) -> list[Any]:
    return [committer.submit(raw, actor="Det. A. Rivera") for raw in raws]


def test_waiting_envelopes_are_committed_together_in_bounded_batches(ledger: Ledger, actors: Actors) -> None:
    committer = GroupCommitter(ledger, max_batch=8)
    size = ledger.log_size()
    futures = _submit_all(committer, actors, _opened(actors, 40))
    committer.start()
    receipts = [f.result(timeout=30) for f in futures]
    committer.stop()
    assert sorted(r.leaf_index for r in receipts) == list(range(size, size + 40))
    histogram = committer.metrics.batch_size
    assert histogram.count == 5 and histogram.total == 40, "queued envelopes form batches of at most 8"


def test_one_refused_envelope_never_fails_the_others_in_its_batch(ledger: Ledger, actors: Actors) -> None:
    case_id = new_case_id()
    good = actors.envelope("investigator", case_id, "CaseOpened", case_opened())
    stale = actors.envelope("investigator", case_id, "FootageCaptured", footage_captured(), seq=5, prev="0" * 64)
    other = actors.envelope("supervisor", new_case_id(), "CaseOpened", case_opened())
    committer = GroupCommitter(ledger)
    futures = [
        committer.submit(good, actor="Det. A. Rivera"),
        committer.submit(stale, actor="Det. A. Rivera"),
        committer.submit(other, actor="Det. A. Rivera"),
    ]
    committer.start()  # the three were queued first: they form one batch
    assert isinstance(futures[0].result(timeout=30), Receipt)
    assert isinstance(futures[1].exception(timeout=30), ConflictError)
    mismatch = futures[2].exception(timeout=30)
    assert isinstance(mismatch, LedgerError) and mismatch.code == "SIGNER_NOT_CALLER"
    committer.stop()


def test_stop_finishes_queued_work_then_refuses_new_work(ledger: Ledger, actors: Actors) -> None:
    committer = GroupCommitter(ledger, max_batch=4)
    committer.start()
    futures = _submit_all(committer, actors, _opened(actors, 20))
    committer.stop()
    assert all(isinstance(f.result(timeout=0), Receipt) for f in futures)
    assert not committer.running
    with pytest.raises(UnavailableError):
        _submit_all(committer, actors, _opened(actors, 1))
    never_started = GroupCommitter(ledger)
    (queued,) = _submit_all(never_started, actors, _opened(actors, 1))
    never_started.stop()
    assert isinstance(queued.exception(timeout=0), UnavailableError)


def test_a_batch_level_failure_falls_back_to_one_by_one(
    ledger: Ledger, actors: Actors, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = ledger.append

    def flaky(raws: list[bytes], **kwargs: Any) -> list[Any]:
        if len(raws) > 1:
            raise ConflictError("a concurrent writer stored the same position first")
        return real(raws, **kwargs)

    monkeypatch.setattr(ledger, "append", flaky)
    committer = GroupCommitter(ledger)
    raws = _opened(actors, 10)
    futures = _submit_all(committer, actors, raws)
    committer.start()
    assert all(isinstance(f.result(timeout=30), Receipt) for f in futures)
    committer.stop()


def test_unknown_signers_are_refused(ledger: Ledger, actors: Actors) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    actors.keys["stranger"] = Ed25519PrivateKey.generate()
    raw = actors.envelope("stranger", new_case_id(), "CaseOpened", case_opened())
    committer = GroupCommitter(ledger)
    committer.start()
    future = committer.submit(raw, actor="Det. A. Rivera")
    error = future.exception(timeout=30)
    committer.stop()
    assert isinstance(error, LedgerError) and error.code == "UNKNOWN_KEY"


def test_the_checkpointer_signs_when_the_log_grew_and_on_request(ledger: Ledger, actors: Actors) -> None:
    checkpointer = Checkpointer(ledger, interval=3600)
    checkpointer.start()
    receipt = actors.ok("investigator", new_case_id(), "CaseOpened", case_opened())
    checkpoint = checkpointer.wait_for(receipt.leaf_index + 1, timeout=10)
    assert checkpoint is not None and checkpoint.size == receipt.leaf_index + 1
    receipt = actors.ok("investigator", new_case_id(), "CaseOpened", case_opened())
    checkpointer.stop()  # a last checkpoint on the way out
    latest = ledger.latest_checkpoint()
    assert latest is not None and latest.size == receipt.leaf_index + 1
    assert checkpointer.wait_for(receipt.leaf_index + 2, timeout=0.01) is None


def test_the_background_checkpointer_follows_the_log(ledger: Ledger, actors: Actors) -> None:
    import time

    checkpointer = Checkpointer(ledger, interval=0.05)
    checkpointer.start()
    receipt = actors.ok("investigator", new_case_id(), "CaseOpened", case_opened())
    deadline = time.monotonic() + 10
    while checkpointer.latest_size <= receipt.leaf_index and time.monotonic() < deadline:
        time.sleep(0.02)
    checkpointer.stop()
    assert checkpointer.latest_size == receipt.leaf_index + 1


@pytest.fixture
def api(ledger: Ledger) -> Iterator[Api]:
    with running_api(ledger) as running:
        yield running


def test_concurrent_http_clients_share_commits_and_get_contiguous_leaves(api: Api) -> None:
    size = api.ledger.log_size()
    token = api.auth("investigator")
    raws = [(case_id, api.envelope("investigator", case_id, "CaseOpened", case_opened()))
            for case_id in (new_case_id() for _ in range(64))]

    def post(item: tuple[str, bytes]) -> int:
        case_id, raw = item
        response = api.client.post(f"/v1/cases/{case_id}/events", content=raw, headers=token)
        assert response.status_code == 201, response.text
        return int(response.json()["leaf_index"])

    with ThreadPoolExecutor(16) as pool:
        leaves = list(pool.map(post, raws))
    assert sorted(leaves) == list(range(size, size + 64))
    metrics = api.client.get("/metrics").text
    assert 'evidence_ledger_append_seconds_count 64' in metrics
    assert f"evidence_ledger_log_size {size + 64}" in metrics


def test_an_append_whose_waiter_gave_up_before_the_batch_is_not_written(ledger: Ledger, actors: Actors) -> None:
    kept, dropped = new_case_id(), new_case_id()
    committer = GroupCommitter(ledger)
    first = committer.submit(actors.envelope("investigator", kept, "CaseOpened", case_opened()),
                             actor="Det. A. Rivera")
    second = committer.submit(actors.envelope("investigator", dropped, "CaseOpened", case_opened()),
                              actor="Det. A. Rivera")
    assert second.cancel()
    committer.start()
    assert isinstance(first.result(timeout=30), Receipt)
    committer.stop()
    assert ledger.case_head(kept)[0] == 1 and ledger.case_head(dropped) == (0, None)
    assert not first.cancel(), "once batched, a waiter can no longer cancel"
