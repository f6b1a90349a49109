"""The engine's checks over a whole log, with parsing and signatures done on all cores meanwhile.

``engine.check_entries`` parses every entry, then verifies all signatures in a process pool (the
main process waits), then checks the entries one by one (the pool idles). Here the same pieces run
as a pipeline over chunks of entries: worker processes parse each chunk strictly and verify its
signatures, while the main process runs the ``EntryChecker`` over the chunks already back, in leaf
order. A bounded window of chunks is in flight.

Signature verdicts are position-free (a key id names exactly one public key: it is the key's
SHA-256) and only an optimisation: the checker still judges every signer's registration and status
at its own position, and verifies inline any signature that came back without a verdict (a key
the workers did not know yet). Workers know the keys given up front (``known_keys``: the caller's
registry entries, parsed first), the keys registered inside their own chunk, and every key the
main process has seen come back so far.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor

from domain.context import DomainConfig
from domain.errors import LedgerError
from ledger.envelope.dsse import PAYLOAD_TYPE, UnverifiedEnvelope, pae, parse_envelope
from ledger.verify.engine import Entry, EntryChecker, _verify_one, public_keys_in

CHUNK = 1000
WINDOW_PER_WORKER = 3
Progress = Callable[[str, int, int | None], None]
Parsed = tuple[int, UnverifiedEnvelope | None, bool | None]  # leaf index, envelope, signature verdict


def parse_all(entries: Iterable[Entry]) -> dict[int, UnverifiedEnvelope]:
    parsed = {}
    for entry in entries:
        with contextlib.suppress(LedgerError):  # the checker reports it with its exact reason
            parsed[entry.leaf_index] = parse_envelope(entry.envelope)
    return parsed


def parse_and_verify(raws: list[tuple[int, bytes]], keys: dict[str, bytes]) -> list[Parsed]:
    """Worker side: strict parse, then the signature check where the signer's key is known."""
    parsed = parse_all(Entry(i, raw) for i, raw in raws)
    keys = {**keys, **public_keys_in(parsed.values())}
    out: list[Parsed] = []
    for index, _ in raws:
        envelope = parsed.get(index)
        public = None if envelope is None else keys.get(envelope.keyid)
        verdict = None
        if envelope is not None and public is not None:
            verdict = _verify_one((public, envelope.sig, pae(PAYLOAD_TYPE, envelope.payload)))
        out.append((index, envelope, verdict))
    return out


class PipelinedCheck:
    """One pass over the entries in leaf order; ``run`` returns the checker and the parsed envelopes."""

    def __init__(
        self, checker: EntryChecker, workers: int, known_keys: Mapping[str, bytes], progress: Progress | None
    ) -> None:
        self.checker = checker
        self.workers = workers
        self.keys = dict(known_keys)
        self.progress = progress
        self.parsed: dict[int, UnverifiedEnvelope] = {}
        self.checked = 0
        self.total = 0

    def run(self, entries: Sequence[Entry]) -> tuple[EntryChecker, dict[int, UnverifiedEnvelope]]:
        self.total = len(entries)
        if self.workers <= 1 or len(entries) <= CHUNK:
            self.parsed = parse_all(entries)
            self._check(entries)
            return self.checker, self.parsed
        chunks = deque(entries[start : start + CHUNK] for start in range(0, len(entries), CHUNK))
        window: deque[tuple[Sequence[Entry], Future[list[Parsed]]]] = deque()
        with ProcessPoolExecutor(max_workers=self.workers) as pool:
            while chunks or window:
                while chunks and len(window) < self.workers * WINDOW_PER_WORKER:
                    part = chunks.popleft()
                    raws = [(e.leaf_index, e.envelope) for e in part]
                    window.append((part, pool.submit(parse_and_verify, raws, self.keys)))
                part, future = window.popleft()
                self._receive(future.result())
                self._check(part)
        return self.checker, self.parsed

    def _receive(self, results: list[Parsed]) -> None:
        received = []
        for index, envelope, verdict in results:
            if envelope is not None:
                self.parsed[index] = envelope
                received.append(envelope)
            if verdict is not None:
                self.checker.verdicts[index] = verdict
        self.keys.update(public_keys_in(received))

    def _check(self, part: Sequence[Entry]) -> None:
        for entry in part:
            self.checker.check(entry, self.parsed.get(entry.leaf_index))
        self.checked += len(part)
        if self.progress is not None:
            self.progress("checking", self.checked, self.total)


def check_pipelined(
    entries: Sequence[Entry],
    *,
    origin: str | None,
    config: DomainConfig | None = None,
    trust_root: str | None = None,
    workers: int = 1,
    known_keys: Mapping[str, bytes] | None = None,
    progress: Progress | None = None,
) -> tuple[EntryChecker, dict[int, UnverifiedEnvelope]]:
    """What ``engine.check_entries`` does, pipelined; also returns the parsed envelopes."""
    checker = EntryChecker(origin=origin, config=config, trust_root=trust_root, keep_events=True)
    return PipelinedCheck(checker, workers, known_keys or {}, progress).run(entries)
