"""Generation and hashing of API keys, enrolment tokens and gateway passwords.

A key or token is `<prefix>_<id>_<secret>`: the id finds the row, the secret is
checked against its argon2 hash. Verifying argon2 costs tens of milliseconds
and megabytes of memory on purpose, so each process remembers the SHA-256 of
secrets it already verified and checks only the row's revocation on later uses.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import threading
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

logger = logging.getLogger(__name__)

API_KEY_PREFIX = "cmk"
ENROLMENT_PREFIX = "cme"
# 24 random bytes (192 bits) make guessing a secret hopeless even without
# the cost of argon2.
SECRET_BYTES = 24
ID_BYTES = 6
# Mosquitto 2.x reads `$7$<iterations>$<salt>$<hash>` as PBKDF2-HMAC-SHA512
# with a 12-byte salt; 101 iterations is the value mosquitto_passwd writes.
MOSQUITTO_ITERATIONS = 101
MOSQUITTO_SALT_BYTES = 12

# argon2id with 19 MiB, 2 passes and 1 lane: the minimum the OWASP Password
# Storage Cheat Sheet recommends, a few tens of milliseconds per hash.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


@dataclass(frozen=True, slots=True)
class IssuedSecret:
    """A new secret as shown once to its owner, with its id and hash to store."""

    id: str
    token: str
    secret_hash: str


def new_secret() -> str:
    """Return a random URL-safe secret."""
    return secrets.token_urlsafe(SECRET_BYTES)


def hash_secret(secret: str) -> str:
    """Return the argon2id hash of a secret."""
    return _hasher.hash(secret)


def issue(prefix: str) -> IssuedSecret:
    """Create a token `<prefix>_<id>_<secret>` and the hash of its secret."""
    token_id = secrets.token_hex(ID_BYTES)
    secret = new_secret()
    return IssuedSecret(token_id, f"{prefix}_{token_id}_{secret}", hash_secret(secret))


def split_token(token: str, prefix: str) -> tuple[str, str] | None:
    """Split a token into (id, secret), or return None if it is malformed."""
    parts = token.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != prefix or not parts[1] or not parts[2]:
        return None
    if len(parts[1]) != 2 * ID_BYTES or len(parts[2]) > 200:
        return None
    return parts[1], parts[2]


class SecretVerifier:
    """Checks secrets against argon2 hashes, remembering those already verified."""

    def __init__(self) -> None:
        self._verified: dict[str, str] = {}
        self._lock = threading.Lock()

    def verify(self, owner: str, secret: str, secret_hash: str) -> bool:
        """Tell whether `secret` matches `secret_hash`; `owner` names the row."""
        digest = hashlib.sha256(secret.encode()).hexdigest()
        # Keyed by the hash too, so a rotated secret never matches an old entry.
        slot = f"{owner} {secret_hash}"
        with self._lock:
            known = self._verified.get(slot)
        if known is not None and hmac.compare_digest(known, digest):
            return True
        try:
            _hasher.verify(secret_hash, secret)
        except VerifyMismatchError:
            return False
        except (VerificationError, InvalidHashError):
            logger.warning("stored hash of %s cannot be verified", owner)
            return False
        with self._lock:
            self._verified[slot] = digest
        return True


def mosquitto_hash(password: str) -> str:
    """Return a password hash in the `$7$` format of Mosquitto 2.x password files."""
    salt = secrets.token_bytes(MOSQUITTO_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac(
        "sha512", password.encode(), salt, MOSQUITTO_ITERATIONS
    )
    salt_b64 = base64.b64encode(salt).decode()
    digest_b64 = base64.b64encode(digest).decode()
    return f"$7${MOSQUITTO_ITERATIONS}${salt_b64}${digest_b64}"
