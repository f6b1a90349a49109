"""Reading members straight from an in-memory zip gives exactly what zipfile gives: the same bytes,
hashes and sizes, and for every damaged member the same error."""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Callable

import pytest

from ledger.verify.bundle_files import BundleFiles, _plain_member, read_members


def _zip(compression: int = zipfile.ZIP_DEFLATED) -> bytearray:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        zf.writestr("manifest.json", b"{}")
        zf.writestr("envelopes/0.json", b'{"a":"' + os.urandom(200).hex().encode() + b'"}')
        zf.writestr("leaves/0.json", b"x" * 300)
        zf.writestr(zipfile.ZipInfo("stored.json"), b"stored bytes", compress_type=zipfile.ZIP_STORED)
        zf.writestr("empty.json", b"")
    return bytearray(buf.getvalue())


def _local(raw: bytearray, name: str) -> int:
    """Offset of the local header of ``name`` (the first place its name appears)."""
    return raw.index(name.encode()) - 30


def _central(raw: bytearray, name: str) -> int:
    """Offset of the central directory record of ``name``."""
    return raw.rindex(name.encode()) - 46


def _both(raw: bytes) -> tuple[BundleFiles, BundleFiles]:
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        return read_members(zf, raw), read_members(zf)


def _flip_data_byte(raw: bytearray) -> None:
    at = _local(raw, "leaves/0.json") + 30 + len("leaves/0.json") + 2
    raw[at] ^= 0xFF


def _rename_in_local_header(raw: bytearray) -> None:
    raw[_local(raw, "leaves/0.json") + 30] = ord("L")


def _bad_central_crc(raw: bytearray) -> None:
    raw[_central(raw, "leaves/0.json") + 16] ^= 0x01


def _encrypted_flag(raw: bytearray) -> None:
    raw[_central(raw, "leaves/0.json") + 8] |= 0x01


def _shorter_declared_size(raw: bytearray) -> None:
    at = _central(raw, "leaves/0.json") + 24
    raw[at : at + 4] = (299).to_bytes(4, "little")


def _unknown_method(raw: bytearray) -> None:
    at = _central(raw, "leaves/0.json") + 10
    raw[at : at + 2] = (99).to_bytes(2, "little")


def test_a_sound_zip_reads_the_same_and_every_member_takes_the_short_way() -> None:
    raw = bytes(_zip())
    fast, slow = _both(raw)
    assert fast == slow and not any(m.error for m in fast.members.values())
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        assert all(_plain_member(raw, info) == zf.read(info) for info in zf.infolist())


def test_other_compressions_are_left_to_zipfile() -> None:
    raw = bytes(_zip(zipfile.ZIP_BZIP2))
    fast, slow = _both(raw)
    assert fast == slow
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        assert _plain_member(raw, zf.getinfo("leaves/0.json")) is None


@pytest.mark.parametrize(
    "damage",
    [_flip_data_byte, _rename_in_local_header, _bad_central_crc, _encrypted_flag, _shorter_declared_size,
     _unknown_method],
)
def test_a_damaged_member_gives_zipfiles_own_verdict(damage: Callable[[bytearray], None]) -> None:
    raw = _zip()
    damage(raw)
    fast, slow = _both(bytes(raw))
    assert fast == slow
    assert fast.members["leaves/0.json"].error is not None
