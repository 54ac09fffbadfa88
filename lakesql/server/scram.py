"""SCRAM-SHA-256 password authentication, server side (RFC 5802 / RFC 7677, as Postgres uses it).

The server keeps only the salted keys, never the password. No channel binding: the server does
not offer TLS, so clients use the ``n,,`` GS2 header.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

MECHANISM = "SCRAM-SHA-256"
ITERATIONS = 4096


def _hmac(key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass(frozen=True)
class Verifier:
    """What the server stores for one password: salt, iteration count, StoredKey, ServerKey."""

    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes

    @classmethod
    def from_password(cls, password: str, iterations: int = ITERATIONS) -> Verifier:
        salt = secrets.token_bytes(16)
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
        client_key = _hmac(salted, b"Client Key")
        return cls(
            salt, iterations, hashlib.sha256(client_key).digest(), _hmac(salted, b"Server Key")
        )

    def to_text(self) -> str:
        """PostgreSQL's form of a stored SCRAM secret (pg_authid.rolpassword)."""
        return (
            f"{MECHANISM}${self.iterations}:{_b64(self.salt)}$"
            f"{_b64(self.stored_key)}:{_b64(self.server_key)}"
        )

    @classmethod
    def from_text(cls, text: str) -> Verifier:
        """Read PostgreSQL's form (see to_text).

        Raises:
            ValueError: not a SCRAM-SHA-256 secret.
        """
        try:
            mechanism, params, keys = text.split("$")
            iterations, salt = params.split(":")
            stored, server = keys.split(":")
            if mechanism != MECHANISM:
                raise ValueError(f"not {MECHANISM}")
            return cls(
                base64.b64decode(salt, validate=True),
                int(iterations),
                base64.b64decode(stored, validate=True),
                base64.b64decode(server, validate=True),
            )
        except (ValueError, TypeError) as e:
            raise ValueError(
                f"not a {MECHANISM} verifier ({MECHANISM}$<iterations>:<salt>$<StoredKey>:"
                f"<ServerKey>): {e}"
            ) from e


class AuthenticationFailed(Exception):
    """The client's proof does not match, or its messages are malformed."""


def _attributes(message: str) -> dict[str, str]:
    out = {}
    for part in message.split(","):
        key, sep, value = part.partition("=")
        if not sep or len(key) != 1:
            raise AuthenticationFailed(f"malformed SCRAM attribute {part!r}")
        out[key] = value
    return out


class Exchange:
    """One SCRAM exchange: client-first -> server-first, client-final -> server-final."""

    def __init__(self, verifier: Verifier):
        self.verifier = verifier
        self._client_first_bare = ""
        self._server_first = ""
        self._nonce = ""

    def server_first(self, client_first: str) -> str:
        header, sep, bare = client_first.partition(",")
        if header not in ("n", "y") or not sep:
            raise AuthenticationFailed("channel binding is not supported by this server")
        _authzid, sep, bare = bare.partition(",")
        if not sep:
            raise AuthenticationFailed("malformed SCRAM client-first message")
        attrs = _attributes(bare)
        if "r" not in attrs:
            raise AuthenticationFailed("SCRAM client-first message has no nonce")
        self._client_first_bare = bare
        self._nonce = attrs["r"] + _b64(secrets.token_bytes(18))
        self._server_first = (
            f"r={self._nonce},s={_b64(self.verifier.salt)},i={self.verifier.iterations}"
        )
        return self._server_first

    def server_final(self, client_final: str) -> str:
        without_proof, sep, proof_text = client_final.rpartition(",p=")
        if not sep:
            raise AuthenticationFailed("SCRAM client-final message has no proof")
        attrs = _attributes(without_proof)
        if attrs.get("r") != self._nonce:
            raise AuthenticationFailed("SCRAM nonce mismatch")
        auth_message = ",".join(
            (self._client_first_bare, self._server_first, without_proof)
        ).encode()
        try:
            proof = base64.b64decode(proof_text, validate=True)
        except ValueError as e:
            raise AuthenticationFailed("malformed SCRAM proof") from e
        signature = _hmac(self.verifier.stored_key, auth_message)
        if len(proof) != len(signature):
            raise AuthenticationFailed("malformed SCRAM proof")
        client_key = bytes(a ^ b for a, b in zip(proof, signature, strict=True))
        if not hmac.compare_digest(hashlib.sha256(client_key).digest(), self.verifier.stored_key):
            raise AuthenticationFailed("password does not match")
        return "v=" + _b64(_hmac(self.verifier.server_key, auth_message))
