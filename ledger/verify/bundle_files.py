"""Reading an evidence bundle without trusting it (its layout: ``ledger.verify.bundle_format``).

Reading never extracts anything: members are only looked up by their exact names and hashed as
streams; small members are kept in memory up to a size cap.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from domain.errors import MalformedInputError
from ledger.envelope.dsse import REGISTRY_CASE_ID
from ledger.verify.bundle_format import (
    BUNDLE_FORMAT,
    BUNDLE_FORMATS,
    ENVELOPES,
    HEX64,
    INDEXED,
    LEAVES,
    MANIFEST,
    MANIFEST_FILE_KEYS,
    MANIFEST_KEYS_BY_FORMAT,
    MEDIA,
    PROOFS,
    RECEIPT_FORMATS,
    file_sha256,
)

MAX_SMALL = 4 * 1024 * 1024  # any member that is not media
MAX_MANIFEST = 64 * 1024 * 1024
IN_MEMORY = 256 * 1024 * 1024  # bundles up to this size are read into memory once
CHUNK = 1024 * 1024


class BundleUnusable(MalformedInputError):
    """The bundle itself cannot be used (not a zip, no or unreadable manifest): exit code 2."""

    code = "UNUSABLE_BUNDLE"


@dataclass(frozen=True)
class ManifestFile:
    path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Manifest:
    origin: str
    case_id: str
    created_at: str
    trust_root_key_id: str | None
    authorities: tuple[str, ...] | None
    disclosure_window_seconds: int | None
    checkpoint_size: int | None
    case_events: int | None
    files: tuple[ManifestFile, ...]
    format: str = BUNDLE_FORMAT
    access_checkpoint_size: int | None = None
    access_entries: int | None = None

    @property
    def has_access_log(self) -> bool:
        """Format 2 and later carry the case's access-log entries."""
        return self.format != BUNDLE_FORMATS[0]

    @property
    def has_receipts(self) -> bool:
        """Format 3 and later carry the signed receipt of every leaf."""
        return self.format in RECEIPT_FORMATS


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise BundleUnusable(f"manifest.json: {message}")


def _optional_str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    _require(value is None or isinstance(value, str), f"{key} must be a string")
    return value


def _optional_int(data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    _require(value is None or (type(value) is int and value >= 0), f"{key} must be an integer >= 0")
    return value


def _window(data: dict[str, Any]) -> int | None:
    value = _optional_int(data, "disclosure_window_seconds")
    _require(value is None or value > 0, "disclosure_window_seconds must be an integer > 0")
    return value


def _file_entry(item: object) -> ManifestFile:
    _require(isinstance(item, dict) and set(item) == MANIFEST_FILE_KEYS, "files[] are {path, sha256, size}")
    assert isinstance(item, dict)
    path, sha, size = item["path"], item["sha256"], item["size"]
    _require(isinstance(path, str) and 0 < len(path) <= 300, "a file path is a short string")
    _require(isinstance(sha, str) and HEX64.fullmatch(sha) is not None, "a file sha256 is 64 lowercase hex")
    _require(type(size) is int and size >= 0, "a file size is an integer >= 0")
    return ManifestFile(path, sha, size)


def parse_manifest(raw: bytes) -> Manifest:
    """Strictly parse manifest.json; BundleUnusable when it cannot be used at all."""
    from ledger.envelope.canonical import parse_strict

    try:
        data = parse_strict(raw, max_int=2**63 - 1)
    except MalformedInputError as exc:
        raise BundleUnusable(f"manifest.json is not strict JSON: {exc.message}") from None
    _require(isinstance(data, dict), "must be a JSON object")
    fmt = data.get("format")
    _require(fmt in BUNDLE_FORMATS, f"format must be one of {', '.join(map(repr, BUNDLE_FORMATS))}")
    keys = MANIFEST_KEYS_BY_FORMAT[fmt]
    _require(set(data) <= keys, f"unknown keys {sorted(set(data) - keys)}")
    origin, case_id = data.get("origin"), data.get("case_id")
    _require(isinstance(origin, str) and bool(origin), "origin must be a non-empty string")
    _require(isinstance(case_id, str) and bool(case_id), "case_id must be a non-empty string")
    _require(case_id != REGISTRY_CASE_ID, "case_id names the key registry stream, which is not a case")
    authorities = data.get("authorities")
    _require(
        authorities is None
        or (isinstance(authorities, list) and all(isinstance(a, str) for a in authorities)),
        "authorities must be a list of strings",
    )
    files = data.get("files")
    _require(isinstance(files, list), "files must be a list")
    return Manifest(
        origin=origin,
        case_id=case_id,
        created_at=_optional_str(data, "created_at") or "",
        trust_root_key_id=_optional_str(data, "trust_root_key_id"),
        authorities=None if authorities is None else tuple(authorities),
        disclosure_window_seconds=_window(data),
        checkpoint_size=_optional_int(data, "checkpoint_size"),
        case_events=_optional_int(data, "case_events"),
        files=tuple(_file_entry(item) for item in files),
        format=fmt,
        access_checkpoint_size=_optional_int(data, "access_checkpoint_size"),
        access_entries=_optional_int(data, "access_entries"),
    )


@dataclass
class MemberInfo:
    """What reading one zip member gave: its hash and size, or why it could not be read."""

    name: str
    sha256: str | None = None
    size: int = 0
    error: str | None = None


@dataclass
class BundleFiles:
    """Every member of the bundle hashed once; small members kept for the checks."""

    members: dict[str, MemberInfo] = field(default_factory=dict)
    duplicates: list[str] = field(default_factory=list)
    content: dict[str, bytes] = field(default_factory=dict)
    _indexes: dict[str, list[int]] = field(default_factory=dict)

    def small(self, name: str) -> bytes | None:
        return self.content.get(name)

    def names(self, prefix: str) -> list[str]:
        return sorted(n for n in self.members if n.startswith(prefix))

    def indexes(self, kind: str) -> list[int]:
        """Leaf indexes of the ``envelopes/``, ``leaves/`` or ``proofs/`` members, ascending."""
        if not self._indexes:
            by_kind: dict[str, list[int]] = {ENVELOPES: [], LEAVES: [], PROOFS: []}
            for name in self.members:
                match = INDEXED.fullmatch(name)
                if match:
                    by_kind[match.group(1) + "/"].append(int(match.group(2)))
            self._indexes.update((k, sorted(v)) for k, v in by_kind.items())
        return list(self._indexes.get(kind, []))


_READ_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    RuntimeError,
    NotImplementedError,
    OSError,
    EOFError,
    ValueError,
)


#: progress of a long read: ``(stage, bytes done, bytes in the stage)``, called after each chunk
Progress = Callable[[str, int, int], None]


def _stream_hash(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, advance: Callable[[int], None] | None = None
) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with zf.open(info) as stream:
        for chunk in iter(lambda: stream.read(CHUNK), b""):
            digest.update(chunk)
            size += len(chunk)
            if advance is not None:
                advance(len(chunk))
    return digest.hexdigest(), size


_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # zipfile's structFileHeader
_LOCAL_MAGIC = b"PK\x03\x04"
_UNREADABLE_FLAGS = 0x1 | 0x20 | 0x40  # encrypted, compressed patched data, strong encryption


def _plain_member(raw: bytes, info: zipfile.ZipInfo) -> bytes | None:
    """A stored or deflated member's bytes read straight from the in-memory zip, or None whenever
    anything is unusual (zipfile then reads it, and says what is wrong exactly as before).

    It returns bytes only when every check ``zipfile`` makes would pass: the local header's magic
    and name, no encryption or patch flag, the data complete, the stream ending exactly at the
    declared size, the CRC. zipfile's own reading costs ~15 µs a member in Python; this a few."""
    start = info.header_offset
    if info.flag_bits & _UNREADABLE_FLAGS or start < 0 or start + _LOCAL_HEADER.size > len(raw):
        return None
    header = _LOCAL_HEADER.unpack_from(raw, start)
    if header[0] != _LOCAL_MAGIC:
        return None
    name_end = start + _LOCAL_HEADER.size + header[10]
    try:
        name = raw[start + _LOCAL_HEADER.size : name_end].decode("utf-8" if header[3] & 0x800 else "cp437")
    except UnicodeDecodeError:
        return None
    begin = name_end + header[11]
    data = raw[begin : begin + info.compress_size]
    if name != info.orig_filename or len(data) != info.compress_size:
        return None
    if info.compress_type == zipfile.ZIP_DEFLATED:
        inflater = zlib.decompressobj(-15)
        try:
            data = inflater.decompress(data, info.file_size + 1)
        except zlib.error:
            return None
        if not inflater.eof:
            return None
    elif info.compress_type != zipfile.ZIP_STORED:
        return None
    if len(data) != info.file_size or zlib.crc32(data) != info.CRC:
        return None
    return data


def _read_member(
    zf: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    keep: bool,
    raw: bytes | None = None,
    advance: Callable[[int], None] | None = None,
) -> tuple[MemberInfo, bytes | None]:
    """Hash one member; keep its bytes if asked and small. zipfile never inflates a member beyond
    its declared size and checks its CRC, so a lying header is a read error, not a memory bomb
    (nor is it in ``_plain_member``, which inflates at most one byte more than declared)."""
    result = MemberInfo(info.filename)
    try:
        if keep and info.file_size <= MAX_SMALL:
            plain = None if raw is None else _plain_member(raw, info)
            data = zf.read(info) if plain is None else plain
            result.sha256, result.size = hashlib.sha256(data).hexdigest(), len(data)
            if advance is not None:
                advance(len(data))
            return result, data
        result.sha256, result.size = _stream_hash(zf, info, advance)
    except _READ_ERRORS as exc:
        result.error = f"cannot be read: {type(exc).__name__}"
        return result, None
    if keep:
        result.error = f"is larger than {MAX_SMALL} bytes"
    return result, None


def _counter(stage: str, total: int, progress: Progress | None) -> Callable[[int], None] | None:
    """``advance(n)`` reporting ``stage`` to ``progress`` (None without one)."""
    if progress is None:
        return None
    done = [0]

    def advance(n: int) -> None:
        done[0] += n
        progress(stage, done[0], total)

    progress(stage, 0, total)
    return advance


def read_members(zf: zipfile.ZipFile, raw: bytes | None = None, progress: Progress | None = None) -> BundleFiles:
    """Every member hashed once (``raw``: the whole zip, when it is in memory); ``progress`` hears of
    the bytes read after each chunk (stage "reading files")."""
    files = BundleFiles()
    advance = _counter("reading files", sum(i.file_size for i in zf.infolist() if not i.is_dir()), progress)
    for info in zf.infolist():
        if info.is_dir():
            continue
        if info.filename in files.members:
            files.duplicates.append(info.filename)
            continue
        keep = not info.filename.startswith(MEDIA) and info.filename != MANIFEST
        member, data = _read_member(zf, info, keep, raw, advance)
        files.members[info.filename] = member
        if data is not None:
            files.content[info.filename] = data
    return files


def load_bundle(path: Path, progress: Progress | None = None) -> tuple[str, Path | io.BytesIO]:
    """(SHA-256 of the bundle file, what to open): small bundles are read into memory once; a large
    one is hashed in chunks, each reported to ``progress`` (stage "hashing the bundle")."""
    try:
        size = path.stat().st_size
        if size <= IN_MEMORY:
            data = path.read_bytes()
            if progress is not None:
                progress("hashing the bundle", size, size)
            return hashlib.sha256(data).hexdigest(), io.BytesIO(data)
        return file_sha256(path, _counter("hashing the bundle", size, progress))[0], path
    except OSError as exc:
        raise BundleUnusable(f"cannot read {path}: {exc.strerror or exc}") from None


@contextmanager
def open_bundle(source: Path | IO[bytes], name: str) -> Iterator[tuple[zipfile.ZipFile, bytes]]:
    """The open zip and its manifest bytes; BundleUnusable when either is missing or unreadable."""
    try:
        zf = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise BundleUnusable(f"{name} is not a readable zip file: {type(exc).__name__}") from None
    with zf:
        try:
            info = zf.getinfo(MANIFEST)
        except KeyError:
            raise BundleUnusable("the bundle has no manifest.json") from None
        if info.file_size > MAX_MANIFEST:
            raise BundleUnusable(f"manifest.json is larger than {MAX_MANIFEST} bytes")
        try:
            with zf.open(info) as stream:
                raw = stream.read(MAX_MANIFEST + 1)
        except (zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError, OSError, EOFError) as exc:
            raise BundleUnusable(f"manifest.json cannot be read: {type(exc).__name__}") from None
        if len(raw) > MAX_MANIFEST:
            raise BundleUnusable(f"manifest.json is larger than {MAX_MANIFEST} bytes")
        yield zf, raw
