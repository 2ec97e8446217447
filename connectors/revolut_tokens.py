"""Revolut Business OAuth: consent URL, code exchange, encrypted token store and single-flight refresh.

Revolut's rules (its Business API guide: docs/architecture.md, "Vendors' documentation") shape everything
here: the client authenticates with a short-lived RS256 JWT whose ``iss`` is the *domain of the redirect URI*;
an authorization code lives 2 minutes; an access token lives 40; a refresh returns a new access token and no
new refresh token, and **cancels the previous access token at once**. So two processes refreshing together
would each revoke the other's token: every refresh runs under one lock that spans processes and machines
(Redis when configured, else the database row), and re-reads the store after taking it, so N workers finding
an expired token make exactly one refresh call.

Tokens are stored in ``oauth_tokens`` encrypted with Fernet (key from ``SYNCENGINE_SECRET_KEY``) and
registered with the log redaction filter as soon as they are read or received.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt
import redis
import requests
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from syncengine import at_rest, oauth_state, redaction
from syncengine.db import engine_for
from syncengine.models import OAuthToken
from syncengine.redis_tls import client_kwargs
from syncengine.settings import Settings, get_settings

log = logging.getLogger(__name__)

PROVIDER = "revolut"
AUDIENCE = "https://revolut.com"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME = 120  # seconds: "just enough to refresh the access_token" (Revolut's guide)
REFRESH_MARGIN = 300  # refresh on demand when the token has less than this left
REFRESH_EVERY = 35 * 60  # the beat period; a token fresher than this is not refreshed again by the task
HTTP_TIMEOUT = (3.05, 20)  # connect, read: well inside the lock's lifetime
LOCK_NAME = "syncengine:lock:oauth:revolut"
LOCK_TIMEOUT = 60  # a crashed refresher's Redis lock lapses after this
LOCK_WAIT = 45  # how long a worker waits for another's refresh before giving up
NEEDS_CONSENT = "no Revolut token stored: run `syncengine revolut consent` and approve access in Revolut"
# Revolut's consent page is on another host than its API; a simulator serves both on one origin.
_CONSENT_HOSTS = {
    "b2b.revolut.com": "https://business.revolut.com",
    "sandbox-b2b.revolut.com": "https://sandbox-business.revolut.com",
}

Clock = Callable[[], float]


class TokenError(Exception):
    """Anything that keeps us from holding a valid Revolut access token."""


class NotConfigured(TokenError, at_rest.NotConfigured):
    """Revolut (or the secret key) is not configured: nothing to do until an operator sets it up."""


class ConsentRequired(TokenError):
    """No usable grant: a human must run `syncengine revolut consent` and approve in Revolut."""


class NoTokenStored(ConsentRequired):
    """Nobody has approved access yet (as opposed to a grant Revolut revoked)."""


class TokenRequestFailed(TokenError):
    """Revolut's token endpoint refused or could not be reached; `retryable` says whether to try later."""

    def __init__(self, message: str, *, status: int | None = None, error: str = "", retryable: bool) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.retryable = retryable


_clock: Clock = time.time


def set_clock(clock: Clock | None) -> None:
    """Run the token logic on another clock (a simulator's), so tests expire tokens without sleeping."""
    global _clock
    _clock = clock or time.time


def _default_now() -> float:
    return _clock()


def _as_datetime(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def _secret_key(settings: Settings) -> str:
    try:
        return at_rest.secret_key(settings)
    except at_rest.NotConfigured as exc:
        raise NotConfigured(str(exc)) from None


def _fernet(settings: Settings) -> Fernet:
    try:
        return at_rest.store_cipher(settings)
    except at_rest.NotConfigured as exc:
        raise NotConfigured(str(exc)) from None


def issuer_of(redirect_uri: str) -> str:
    """The JWT ``iss``: the redirect URI's domain without scheme or path (Revolut rejects anything else)."""
    parts = urlsplit(redirect_uri if "//" in redirect_uri else "//" + redirect_uri)
    return parts.netloc.rpartition("@")[2]


def consent_base(api_url: str) -> str:
    """business.revolut.com for b2b.revolut.com (and the sandbox pair); the API's own origin otherwise."""
    parts = urlsplit(api_url)
    return _CONSENT_HOSTS.get(parts.hostname or "", f"{parts.scheme}://{parts.netloc}")


def _read_private_key(settings: Settings) -> RSAPrivateKey:
    revolut = settings.services[PROVIDER]
    secret = revolut.credentials.get("private_key")
    path = revolut.options.get("private_key_path")
    if secret:
        pem = secret.reveal()
        if "\\n" in pem and "\n" not in pem:  # a one-line config var with escaped newlines
            pem = pem.replace("\\n", "\n")
        data = pem.encode()
    elif path:
        try:
            data = Path(path).expanduser().read_bytes()
        except OSError as exc:
            raise NotConfigured(f"cannot read REVOLUT_PRIVATE_KEY_PATH {path}: {exc.strerror}") from None
    else:
        raise NotConfigured("set REVOLUT_PRIVATE_KEY or REVOLUT_PRIVATE_KEY_PATH")
    text = data.decode(errors="replace")
    lines = [line for line in text.splitlines() if len(line) >= 16 and "-----" not in line]
    redaction.install([text.strip(), *lines])  # a traceback may show any part of it
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise NotConfigured("the Revolut private key is not an unencrypted PEM private key") from None
    if not isinstance(key, RSAPrivateKey):
        raise NotConfigured("the Revolut private key must be an RSA key (RS256)")
    return key


@dataclass(frozen=True)
class RevolutConfig:
    """The OAuth app as registered in Revolut Business → APIs: client id, redirect URI, signing key."""

    api_url: str
    client_id: str
    redirect_uri: str
    private_key: RSAPrivateKey

    @classmethod
    def from_settings(cls, settings: Settings) -> RevolutConfig:
        revolut = settings.services[PROVIDER]
        missing = [
            name
            for name, value in (
                ("REVOLUT_URL", revolut.url),
                ("REVOLUT_CLIENT_ID", revolut.options.get("client_id")),
                ("REVOLUT_REDIRECT_URI", revolut.options.get("redirect_uri")),
            )
            if not value
        ]
        if missing:
            raise NotConfigured("Revolut OAuth is not configured: set " + ", ".join(missing))
        return cls(
            api_url=str(revolut.url),
            client_id=revolut.options["client_id"],
            redirect_uri=revolut.options["redirect_uri"],
            private_key=_read_private_key(settings),
        )

    @property
    def token_url(self) -> str:
        return f"{self.api_url}/auth/token"

    @property
    def issuer(self) -> str:
        return issuer_of(self.redirect_uri)


def client_assertion(config: RevolutConfig, now: float) -> str:
    """A fresh RS256 JWT proving we hold the key whose certificate was uploaded to Revolut."""
    claims = {
        "iss": config.issuer,
        "sub": config.client_id,
        "aud": AUDIENCE,
        "exp": int(now) + ASSERTION_LIFETIME,
    }
    return jwt.encode(claims, config.private_key, algorithm="RS256", headers={"typ": "JWT"})


def consent_url(settings: Settings | None = None, scope: str | None = None) -> str:
    """Where a human approves our access; Revolut then redirects to REVOLUT_REDIRECT_URI with a code and
    our signed `state`. The whole configuration is checked first: a code issued now is worthless 2 minutes
    later."""
    settings = settings or get_settings()
    config = RevolutConfig.from_settings(settings)
    _fernet(settings)
    params = {
        "client_id": config.client_id, "redirect_uri": config.redirect_uri, "response_type": "code",
        "state": oauth_state.issue(_secret_key(settings), PROVIDER, _default_now()),
    }  # fmt: skip
    if scope:
        params["scope"] = scope
    return f"{consent_base(config.api_url)}/app-confirm?{urlencode(params)}"


def check_state(state: str, settings: Settings | None = None) -> None:
    """Raise oauth_state.InvalidState unless `state` came from our consent URL minutes ago (the callback's
    first step: nothing is read, locked or sent before it passes); NotConfigured without a secret key."""
    oauth_state.check(state, _secret_key(settings or get_settings()), PROVIDER, _default_now())


@dataclass(frozen=True)
class StoredToken:
    access_token: str
    refresh_token: str
    expires_at: float

    def lasts(self, now: float) -> float:
        return self.expires_at - now


class RevolutTokens:
    """Hands connectors a valid access token; refreshes it once, whoever and however many ask."""

    def __init__(self, settings: Settings | None = None, *, now: Clock | None = None) -> None:
        self.settings = settings or get_settings()
        self.config = RevolutConfig.from_settings(self.settings)
        self.fernet = _fernet(self.settings)
        self.now = now or _default_now
        self._redis = (
            redis.Redis.from_url(
                self.settings.redis_url,
                socket_connect_timeout=2,
                socket_timeout=5,
                **client_kwargs(self.settings.redis_url, self.settings.redis_ssl_cert_reqs),
            )
            if self.settings.redis_url
            else None
        )
        self._http = requests.Session()

    def access_token(self) -> str:
        """A token valid for at least REFRESH_MARGIN seconds, refreshed first if it is not."""
        stored = self._load()
        if stored.lasts(self.now()) > REFRESH_MARGIN:
            return stored.access_token
        return self._single_flight(lambda t: t.lasts(self.now()) > REFRESH_MARGIN)[0]

    def on_unauthorized(self, stale_token: str) -> str:
        """Revolut answered 401 to `stale_token`: refresh once (unless someone already did); retry once."""
        return self._single_flight(
            lambda t: t.access_token != stale_token and t.lasts(self.now()) > REFRESH_MARGIN
        )[0]

    def call(self, send: Callable[[str], requests.Response]) -> requests.Response:
        """`send(token)` with a valid token; on a 401, once more with a refreshed one."""
        token = self.access_token()
        response = send(token)
        if response.status_code == 401:
            response = send(self.on_unauthorized(token))
        return response

    def scheduled_refresh(self) -> bool:
        """The beat's refresh: True when it refreshed, False when another process did so moments ago
        (a duplicate beat, a retried task, an on-demand refresh) and the token outlives the next run."""
        return self._single_flight(lambda t: t.lasts(self.now()) > REFRESH_EVERY)[1]

    def exchange_code(self, code: str) -> datetime:
        """Trade a consent code (valid 2 minutes, single use) for tokens; store them; say when they expire.
        The caller has checked the callback's signed state first: no lock is taken for an unchecked code."""
        with self._exclusive() as session:
            self._row(session, for_update=True)
            body = self._token_request({"grant_type": "authorization_code", "code": code})
            if not body.get("refresh_token"):
                raise TokenRequestFailed("Revolut returned no refresh_token", retryable=False)
            stored = self._save(
                session, str(body["access_token"]), str(body["refresh_token"]), body.get("expires_in")
            )
        log.info("revolut connected; access token expires at %s", _as_datetime(stored.expires_at))
        return _as_datetime(stored.expires_at)

    def stored(self) -> StoredToken | None:
        """What the store holds now (decrypted), or None before the first consent."""
        with self._transaction() as session:
            return self._decrypt(session.get(OAuthToken, PROVIDER))

    def _single_flight(self, good_enough: Callable[[StoredToken], bool]) -> tuple[str, bool]:
        """Under the lock, re-read: if another process refreshed meanwhile, use its token, else refresh.
        Returns (access token, whether this call refreshed)."""
        with self._exclusive() as session:
            current = self._decrypt(self._row(session, for_update=True))
            if current is None:
                raise NoTokenStored(NEEDS_CONSENT)
            if good_enough(current):
                return current.access_token, False
            body = self._token_request(
                {"grant_type": "refresh_token", "refresh_token": current.refresh_token}
            )
            # Revolut does not rotate refresh tokens; should it ever send one, keep the newer.
            refresh = str(body.get("refresh_token") or current.refresh_token)
            stored = self._save(session, str(body["access_token"]), refresh, body.get("expires_in"))
        log.info("revolut access token refreshed; expires at %s", _as_datetime(stored.expires_at))
        return stored.access_token, True

    @contextmanager
    def _exclusive(self) -> Iterator[Session]:
        """One refresher at a time: the Redis lock keeps waiters off the database; the row lock taken in
        the same transaction (``FOR UPDATE`` on Postgres, SQLite's write lock) serialises without Redis and
        backs the Redis lock up should its timeout lapse mid-refresh."""
        if self._redis is None:
            with self._transaction() as session:
                yield session
            return
        lock = self._redis.lock(LOCK_NAME, timeout=LOCK_TIMEOUT, blocking_timeout=LOCK_WAIT, sleep=0.05)
        if not lock.acquire():
            raise TokenRequestFailed("timed out waiting for another process's token refresh", retryable=True)
        try:
            with self._transaction() as session:
                yield session
        finally:
            try:
                lock.release()
            except redis.exceptions.LockError:
                log.warning(
                    "the revolut refresh lock lapsed before release (refresh slower than %s s)", LOCK_TIMEOUT
                )

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        with (
            Session(engine_for(self.settings.database_url), expire_on_commit=False) as session,
            session.begin(),
        ):
            yield session

    def _token_request(self, form: dict[str, str]) -> dict[str, Any]:
        """POST /auth/token, form-encoded, with a fresh client assertion (they expire within minutes)."""
        data = {
            **form,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": client_assertion(self.config, self.now()),
        }
        try:
            response = self._http.post(self.config.token_url, data=data, timeout=HTTP_TIMEOUT)
        except requests.RequestException as exc:
            raise TokenRequestFailed(
                f"Revolut token endpoint unreachable: {type(exc).__name__}", retryable=True
            ) from None
        body = _json(response)
        if response.status_code == 200 and body.get("access_token"):
            redaction.register_secrets([str(body["access_token"]), str(body.get("refresh_token") or "")])
            return body
        raise _endpoint_error(response.status_code, body, form["grant_type"])

    def _load(self) -> StoredToken:
        stored = self.stored()
        if stored is None:
            raise NoTokenStored(NEEDS_CONSENT)
        return stored

    @staticmethod
    def _row(session: Session, for_update: bool = False) -> OAuthToken | None:
        query = select(OAuthToken).where(OAuthToken.provider == PROVIDER)
        return session.scalars(query.with_for_update() if for_update else query).one_or_none()

    def _decrypt(self, row: OAuthToken | None) -> StoredToken | None:
        if row is None or not row.access_token_enc or not row.refresh_token_enc or row.expires_at is None:
            return None
        try:
            access = self.fernet.decrypt(row.access_token_enc).decode()
            refresh = self.fernet.decrypt(row.refresh_token_enc).decode()
        except InvalidToken:
            raise ConsentRequired(
                "stored Revolut tokens do not decrypt with SYNCENGINE_SECRET_KEY (was it changed?): "
                "run `syncengine revolut consent` again"
            ) from None
        redaction.register_secrets([access, refresh])
        return StoredToken(access, refresh, row.expires_at.timestamp())

    def _save(self, session: Session, access: str, refresh: str, expires_in: Any) -> StoredToken:
        """Encrypt and write both tokens; expires_at from Revolut's expires_in (2399 s)."""
        now = self.now()
        row = self._row(session) or OAuthToken(provider=PROVIDER)
        row.access_token_enc = self.fernet.encrypt(access.encode())
        row.refresh_token_enc = self.fernet.encrypt(refresh.encode())
        row.expires_at = _as_datetime(now + float(expires_in or 0))
        row.refreshed_at = _as_datetime(now)
        session.add(row)
        return StoredToken(access, refresh, row.expires_at.timestamp())


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _endpoint_error(status: int, body: dict[str, Any], grant_type: str) -> TokenError:
    """Classify once: a refused grant needs a human, a refused assertion is configuration, 5xx/429 retry."""
    error = str(body.get("error") or "")
    description = str(body.get("error_description") or body.get("message") or "")[:200]
    message = f"Revolut token endpoint answered {status} {error}: {description}".rstrip(": ")
    if grant_type == "refresh_token" and error == "invalid_grant":
        return ConsentRequired(message + " (the refresh token was revoked: run `syncengine revolut consent`)")
    retryable = status >= 500 or status in (408, 429)
    return TokenRequestFailed(message, status=status, error=error, retryable=retryable)


_default: tuple[Settings, RevolutTokens] | None = None


def default_tokens() -> RevolutTokens:
    """The store for the current settings (rebuilt when tests change them); raises NotConfigured."""
    global _default
    settings = get_settings()
    if _default is None or _default[0] is not settings:
        _default = (settings, RevolutTokens(settings))
    return _default[1]


def access_token() -> str:
    return default_tokens().access_token()


def on_unauthorized(stale_token: str) -> str:
    return default_tokens().on_unauthorized(stale_token)


def exchange_code(code: str) -> datetime:
    return default_tokens().exchange_code(code)
