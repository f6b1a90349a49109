"""Ed25519 key files and key ids.

Private keys are PEM PKCS#8 files with mode 0600; public keys PEM SubjectPublicKeyInfo. A key id is
the lowercase hex SHA-256 of the 32-byte raw public key. Key material never appears in output.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from domain.errors import MalformedInputError

_RAW = serialization.Encoding.Raw
_RAW_PUB = serialization.PublicFormat.Raw


def raw_public_key(key: Ed25519PublicKey | Ed25519PrivateKey) -> bytes:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(_RAW, _RAW_PUB)


def key_id(key: Ed25519PublicKey | Ed25519PrivateKey | bytes) -> str:
    raw = key if isinstance(key, bytes) else raw_public_key(key)
    return hashlib.sha256(raw).hexdigest()


def public_key_b64(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    return base64.b64encode(raw_public_key(key)).decode("ascii")


def public_key_from_raw(raw: bytes) -> Ed25519PublicKey:
    if len(raw) != 32:
        raise MalformedInputError("an Ed25519 public key is 32 bytes", code="BAD_KEY")
    return Ed25519PublicKey.from_public_bytes(raw)


def write_private_key(key: Ed25519PrivateKey, path: Path) -> None:
    """Write a PEM PKCS#8 private key with mode 0600, refusing to overwrite."""
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(path, 0o600)


def write_public_key(key: Ed25519PublicKey | Ed25519PrivateKey, path: Path) -> None:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    path.write_bytes(pem)


def generate_key_pair(path: Path) -> Ed25519PrivateKey:
    """Create FILE (private, 0600) and FILE.pub (public)."""
    key = Ed25519PrivateKey.generate()
    write_private_key(key, path)
    write_public_key(key, Path(str(path) + ".pub"))
    return key


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MalformedInputError(
            f"cannot read private key file {path}: {exc.strerror}", code="BAD_KEY"
        ) from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise MalformedInputError(f"{path} is not an unencrypted PEM private key", code="BAD_KEY") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise MalformedInputError(f"{path} is not an Ed25519 private key", code="BAD_KEY")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MalformedInputError(
            f"cannot read public key file {path}: {exc.strerror}", code="BAD_KEY"
        ) from None
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise MalformedInputError(f"{path} is not a PEM public key", code="BAD_KEY") from None
    if not isinstance(key, Ed25519PublicKey):
        raise MalformedInputError(f"{path} is not an Ed25519 public key", code="BAD_KEY")
    return key
