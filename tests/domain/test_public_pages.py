"""Pages of the public release list: keyset cursors that walk every entry exactly once, in order, even
through entries that share a time and a file, and that a release recorded between pages never shifts."""

from __future__ import annotations

import random
from typing import Any

import pytest

from domain.errors import MalformedInputError
from domain.projections import public_release_order, public_release_page


def entry(second: int, n: int, *, basis: str = "executive_order", fraction: str = "") -> dict[str, Any]:
    return {
        "sha256": f"{n:064x}",
        "released_at": f"2026-03-01T10:00:{second:02d}{fraction}Z",
        "basis": basis,
        "channel": "city website",
        "url": None,
    }


def walk(entries: list[dict[str, Any]], limit: int) -> list[list[dict[str, Any]]]:
    pages, after = [], None
    while True:
        page = public_release_page(entries, after=after, limit=limit)
        pages.append(page["items"])
        after = page["next"]
        if after is None:
            return pages


@pytest.mark.parametrize("seed", range(20))
def test_walking_the_pages_yields_every_entry_once_in_order(seed: int) -> None:
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    # few distinct times and files: many entries share both (identical ones included)
    entries = sorted(
        (entry(rng.randrange(3), rng.randrange(3), basis=rng.choice(["executive_order", "public_records_request"]))
         for _ in range(rng.randrange(0, 40))),
        key=public_release_order,
    )
    for limit in (1, 2, 3, 7, 1000):
        pages = walk(entries, limit)
        assert [e for page in pages for e in page] == entries
        assert all(1 <= len(page) <= limit for page in pages[:-1]) and len(pages[-1]) <= limit
        assert pages[-1] or not entries  # a full last page says so with next: null, never an empty page after


def test_a_release_recorded_between_pages_does_not_shift_them() -> None:
    entries = sorted([entry(1, 1), entry(2, 2), entry(3, 3), entry(5, 5)], key=public_release_order)
    first = public_release_page(entries, after=None, limit=2)
    assert first["next"] == f"2026-03-01T10:00:02Z_{2:064x}_1"
    grown = sorted([*entries, entry(0, 9), entry(4, 4)], key=public_release_order)  # one before, one after
    second = public_release_page(grown, after=first["next"], limit=2)
    assert second["items"] == [entry(3, 3), entry(4, 4)]


def test_times_that_are_equal_in_another_spelling_group_together() -> None:
    entries = sorted([entry(1, 1, fraction=".5"), entry(1, 1, fraction=".500", basis="public_records_request")],
                     key=public_release_order)
    first = public_release_page(entries, after=None, limit=1)
    assert first["next"] is not None and first["next"].endswith("_1")
    assert public_release_page(entries, after=first["next"], limit=1) == {"items": entries[1:], "next": None}


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "0",
        "2026-03-01T10:00:02Z",
        f"2026-03-01T10:00:02Z_{2:064x}_0",
        f"2026-03-01T10:00:02Z_{0xABC:064X}_1",
        f"2026-13-01T10:00:02Z_{2:064x}_1",
        f"2026-03-01T10:00:02+00:00_{2:064x}_1",
        f"2026-03-01T10:00:02Z_{2:064x}_1_",
    ],
)
def test_anything_but_a_cursor_is_bad_cursor(bad: str) -> None:
    with pytest.raises(MalformedInputError) as refused:
        public_release_page([entry(1, 1)], after=bad, limit=5)
    assert refused.value.code == "BAD_CURSOR"
    assert not bad or bad not in refused.value.message  # never echoed


def test_a_cursor_past_the_end_is_an_empty_last_page() -> None:
    entries = [entry(1, 1)]
    assert public_release_page(entries, after=f"2027-01-01T00:00:00Z_{0:064x}_1", limit=5) == {
        "items": [], "next": None
    }
