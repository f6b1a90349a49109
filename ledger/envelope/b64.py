"""Standard, padded, canonical base64: the only form signed notes and Merkle proofs use.

Go's decoder and ours must read the same bytes from the same text, so anything else is refused:
the URL-safe alphabet, missing or extra padding, whitespace, non-ASCII text and non-zero trailing
bits (``YR==`` decodes like ``YQ==`` in most decoders; only ``YQ==`` is accepted here).
"""

from __future__ import annotations

import base64
import binascii

from domain.errors import MalformedInputError


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode(text: object, *, what: str, code: str = MalformedInputError.code) -> bytes:
    """Decode canonical standard base64 or raise MalformedInputError naming ``what``."""
    if not isinstance(text, str):
        raise MalformedInputError(f"{what} must be a base64 string, found {type(text).__name__}", code=code)
    if not text.isascii():
        raise MalformedInputError(f"{what} must be ASCII base64, found non-ASCII text", code=code)
    try:
        data = base64.b64decode(text, validate=True)
    except binascii.Error:
        raise MalformedInputError(f"{what} must be standard padded base64", code=code) from None
    if b64encode(data) != text:
        raise MalformedInputError(f"{what} must be canonical base64 (zero trailing bits)", code=code)
    return data
