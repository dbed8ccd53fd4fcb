"""Console sign-in: demo mode lets anyone pick a user; otherwise a per-user token signed with a secret."""

from __future__ import annotations

import hashlib
import hmac
import secrets


def _mac(key: bytes, purpose: str, user_id: str) -> str:
    return hmac.new(key, f"{purpose}|{user_id}".encode(), hashlib.sha256).hexdigest()[:32]


def make_token(secret: str, user_id: str) -> str:
    """The sign-in token an admin hands to ``user_id`` (``salesbot console token USER``)."""
    return f"{user_id}.{_mac(secret.encode(), 'console-token', user_id)}"


def check_token(secret: str, token: str) -> str | None:
    """The user id a valid token belongs to, else None (constant-time comparison)."""
    user_id, _, mac = token.strip().rpartition(".")
    if not user_id or not mac:
        return None
    return user_id if hmac.compare_digest(mac, _mac(secret.encode(), "console-token", user_id)) else None


class SessionSigner:
    """Signs the session cookie (``user_id.mac``) with a key that lives as long as the configured secret."""

    def __init__(self, secret: str | None) -> None:
        # Demo mode without a configured secret: a key per process (sign in again after a restart).
        self._key = (secret or secrets.token_hex(32)).encode() + b"|session"

    def sign(self, user_id: str) -> str:
        return f"{user_id}.{_mac(self._key, 'session', user_id)}"

    def verify(self, cookie: str | None) -> str | None:
        if not cookie:
            return None
        user_id, _, mac = cookie.rpartition(".")
        if not user_id or not hmac.compare_digest(mac, _mac(self._key, "session", user_id)):
            return None
        return user_id
