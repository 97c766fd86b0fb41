"""The dashboard's session: a cookie signed with itsdangerous, `HttpOnly`, `SameSite=Strict`,
`Secure` where the service is reached over https, for SESSION_SECONDS.

It holds no key: only the SHA-256 of the key signed in with, checked again on every request,
so that a key revoked or removed ends its sessions at once; and the session's CSRF token, which
every form sends back. A visitor who has not signed in gets a session too, so that the sign-in
form itself is protected."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

COOKIE = "shortener_dashboard"
SESSION_SECONDS = 8 * 3600
# Far longer than any cookie this service signs; a longer one is not read at all.
MAX_COOKIE_LENGTH = 1024
_SALT = "shortener dashboard session"


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a key is: an org's key, or an admin's."""

    org: str | None
    admin: bool


@dataclass(frozen=True, slots=True)
class Session:
    csrf: str
    # The SHA-256 (hex) of the key signed in with; empty until then.
    key: str = ""
    identity: Identity | None = None
    # Whether the cookie must be sent (again).
    fresh: bool = False

    @property
    def signed_in(self) -> bool:
        return self.identity is not None

    @property
    def admin(self) -> bool:
        return self.identity is not None and self.identity.admin

    @property
    def org(self) -> str | None:
        return None if self.identity is None else self.identity.org

    def describe(self) -> str:
        if self.identity is None:
            return ""
        return "admin" if self.identity.admin else f"org {self.identity.org}"

    def holds(self, token: str | None) -> bool:
        """Whether a form's CSRF token is this session's."""
        return token is not None and hmac.compare_digest(token.encode(), self.csrf.encode())


class Sessions:
    def __init__(self, secret: bytes, *, https: bool) -> None:
        self._signer = URLSafeTimedSerializer(secret, salt=_SALT)
        # Whether the service is reached over https (its base URL says so): then the cookie is
        # `Secure` also where a proxy in front ends TLS and the request arrives as http.
        self._https = https

    def read(self, request: Request, identify: Callable[[bytes], Identity | None]) -> Session:
        """The request's session: a new one (signed out) unless its cookie is good, young
        enough, and names a key that is still valid."""
        raw = request.cookies.get(COOKIE, "")
        if raw and len(raw) <= MAX_COOKIE_LENGTH:
            try:
                value = self._signer.loads(raw, max_age=SESSION_SECONDS)
            except BadSignature:
                value = None
            if isinstance(value, dict):
                csrf, key = value.get("c"), value.get("k")
                if isinstance(csrf, str) and isinstance(key, str):
                    identity = _identity(key, identify)
                    if identity is not None or not key:
                        return Session(csrf, key, identity)
        return self.new()

    @staticmethod
    def new(key: bytes | None = None, identity: Identity | None = None) -> Session:
        """A session with a new CSRF token: signed out, or signed in with `key` (its digest)."""
        return Session(secrets.token_urlsafe(24), "" if key is None else key.hex(), identity, True)

    def send(self, request: Request, response: Response, session: Session) -> None:
        if not session.fresh:
            return
        response.set_cookie(
            COOKIE,
            self._signer.dumps({"c": session.csrf, "k": session.key}),
            max_age=SESSION_SECONDS,
            path="/dashboard",
            secure=self._https or request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )


def _identity(key: str, identify: Callable[[bytes], Identity | None]) -> Identity | None:
    if not key:
        return None
    try:
        digest = bytes.fromhex(key)
    except ValueError:
        return None
    return identify(digest)
