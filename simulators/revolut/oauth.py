"""Revolut Business OAuth: consent page, ``/auth/token`` with a ``private_key_jwt`` assertion, bearer check.

Lifetimes run on the simulator's clock so tests can jump past them: codes live 2 minutes and are single
use, access tokens 40 minutes (``expires_in: 2399``), refresh tokens never expire and are not rotated, and a
refresh revokes the access token it replaces at once (the guide's Troubleshooting section), which is why
the engine must never refresh in parallel. ``refresh_count`` lets tests assert that it did not.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from werkzeug.wrappers import Request, Response

from simulators.base import Abort, route
from simulators.revolut.common import UNAUTHORIZED, RevolutBase

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
AUDIENCE = "https://revolut.com"
CODE_TTL = 120.0
ACCESS_TTL = 2400.0  # 40 minutes; the token endpoint says 2399 so clients refresh a second early
DEFAULT_SCOPES = ("READ", "WRITE", "PAY")
PUBLIC_PATHS = ("/api/1.0/auth/token", "/app-confirm")


@dataclass
class OAuthClient:
    """An uploaded certificate with its redirect URI, as set up in Business app → APIs."""

    client_id: str
    redirect_uri: str
    public_key: Any
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    issuer: str = field(init=False)

    def __post_init__(self) -> None:
        self.issuer = urlsplit(self.redirect_uri).netloc  # the JWT ``iss``: the redirect domain, no scheme


def load_public_key(pem: str | bytes) -> Any:
    """Accept what Revolut accepts (an X509 certificate) and, for convenience, a bare public key."""
    data = pem.encode() if isinstance(pem, str) else pem
    if b"BEGIN CERTIFICATE" in data:
        return x509.load_pem_x509_certificate(data).public_key()
    return serialization.load_pem_public_key(data)


class RevolutOAuth(RevolutBase):
    """Mixin: the OAuth endpoints and ``authenticate``; state is in ``self.db`` so ``reset()`` clears it."""

    clients: dict[str, OAuthClient]
    refresh_count: int

    def configure_client(
        self,
        client_id: str,
        redirect_uri: str,
        certificate: str | bytes,
        scopes: tuple[str, ...] | None = None,
    ) -> OAuthClient:
        client = OAuthClient(
            client_id, redirect_uri, load_public_key(certificate), tuple(scopes or DEFAULT_SCOPES)
        )
        with self.lock:
            self.clients[client_id] = client
        return client

    def issue_tokens(
        self, client_id: str | None = None, scopes: tuple[str, ...] | None = None
    ) -> dict[str, Any]:
        """Tokens as if consent and code exchange had happened (demo and tests that are not about OAuth)."""
        with self.lock:
            cid = client_id or next(iter(self.clients), "sim-client")
            client = self.clients.get(cid)
            return self._grant(cid, tuple(scopes or (client.scopes if client else DEFAULT_SCOPES)))

    # ---- consent (the browser step) ---------------------------------------------------------------

    @route("GET", "/app-confirm")
    def consent(self, request: Request) -> Response:
        """The 2FA screen is skipped: a known client with its registered redirect URI gets a code at once."""
        args = request.args
        client = self.clients.get(args.get("client_id", ""))
        if client is None or args.get("redirect_uri") != client.redirect_uri:
            return Response("Invalid client_id or redirect_uri", status=400, mimetype="text/plain")
        if args.get("response_type") != "code":
            return Response("response_type must be code", status=400, mimetype="text/plain")
        wanted = tuple(s for s in (args.get("scope") or "").split(",") if s) or client.scopes
        if any(s not in client.scopes for s in wanted):
            return Response("Scope not enabled for this certificate", status=400, mimetype="text/plain")
        code = "oa_sand_" + secrets.token_urlsafe(24)
        self.db["oauth_codes"][code] = {
            "client_id": client.client_id,
            "scopes": wanted,
            "expires": self.now() + CODE_TTL,
        }
        sep = "&" if "?" in client.redirect_uri else "?"
        # The client's `state` comes back unchanged beside the code (RFC 6749 §4.1.2).
        back = {"code": code, **({"state": args["state"]} if args.get("state") else {})}
        return Response(status=302, headers={"Location": client.redirect_uri + sep + urlencode(back)})

    # ---- token endpoint ---------------------------------------------------------------------------

    @route("POST", "/api/1.0/auth/token")
    def token(self, request: Request) -> Response:
        form = request.form
        try:
            client = self._client_from_assertion(form)
            grant_type = form.get("grant_type")
            if grant_type == "authorization_code":
                return self.json(self._exchange_code(client, form.get("code", "")))
            if grant_type == "refresh_token":
                return self.json(self._refresh(client, form.get("refresh_token", "")))
            raise self._oauth_error("unsupported_grant_type", f"Unsupported grant_type: {grant_type}")
        except Abort as exc:
            return exc.response

    def _oauth_error(self, error: str, description: str, status: int = 400) -> Abort:
        return Abort(self.json({"error": error, "error_description": description}, status=status))

    def _client_from_assertion(self, form: Any) -> OAuthClient:
        if form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE:
            raise self._oauth_error(
                "invalid_request", "client_assertion_type must be " + CLIENT_ASSERTION_TYPE
            )
        assertion = form.get("client_assertion") or ""
        try:
            header = jwt.get_unverified_header(assertion)
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise self._oauth_error("invalid_request", "client_assertion is not a valid JWT") from None
        client = self.clients.get(str(unverified.get("sub")))
        if header.get("alg") != "RS256" or client is None:
            raise self._oauth_error("invalid_client", "Unknown client or unsupported algorithm", 401)
        try:  # exp/nbf are checked against the simulator clock below, not the wall clock
            claims = jwt.decode(
                assertion,
                client.public_key,
                algorithms=["RS256"],
                audience=AUDIENCE,
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "require": ["exp", "iss", "sub", "aud"],
                },
            )
        except jwt.InvalidSignatureError:
            raise self._oauth_error("invalid_client", "Invalid client assertion signature", 401) from None
        except jwt.PyJWTError as exc:
            raise self._oauth_error("invalid_request", f"Invalid client assertion: {exc}") from None
        exp = claims["exp"]
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise self._oauth_error("invalid_request", "exp must be a number")
        if exp <= self.now():
            when = datetime.fromtimestamp(exp, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            raise self._oauth_error("invalid_request", f"The Token has expired on {when}.")
        if claims["iss"] != client.issuer:
            raise self._oauth_error("invalid_request", "iss must be the domain of the redirect URI")
        return client

    def _exchange_code(self, client: OAuthClient, code: str) -> dict[str, Any]:
        entry = self.db["oauth_codes"].pop(code, None)  # single use: gone even when it fails below
        if entry is None or entry["client_id"] != client.client_id or entry["expires"] <= self.now():
            raise self._oauth_error("invalid_grant", "Authorization code is invalid or expired")
        return self._grant(client.client_id, entry["scopes"])

    def _grant(
        self, client_id: str, scopes: tuple[str, ...], refresh: str | None = None, access: str | None = None
    ) -> dict[str, Any]:
        """A new grant; ``refresh``/``access`` pin the token strings (seeded tokens), else random ones."""
        refresh = refresh or "oa_sand_" + secrets.token_urlsafe(32)
        self.db["oauth_grants"][refresh] = {"client_id": client_id, "scopes": scopes, "access": None}
        out = self._new_access(refresh, access)
        out["refresh_token"] = refresh
        return out

    def _refresh(self, client: OAuthClient, refresh: str) -> dict[str, Any]:
        grant = self.db["oauth_grants"].get(refresh)
        if grant is None or grant["client_id"] != client.client_id:
            raise self._oauth_error("invalid_grant", "Refresh token is invalid")
        self.refresh_count += 1
        return self._new_access(refresh)

    def _new_access(self, refresh: str, token: str | None = None) -> dict[str, Any]:
        grant = self.db["oauth_grants"][refresh]
        if grant["access"]:
            self.db["oauth_access"].pop(grant["access"], None)  # the previous token dies at once
        token = token or "oa_sand_" + secrets.token_urlsafe(32)
        grant["access"] = token
        self.db["oauth_access"][token] = {
            "refresh": refresh,
            "scopes": grant["scopes"],
            "expires": self.now() + ACCESS_TTL,
        }
        return {"access_token": token, "token_type": "bearer", "expires_in": int(ACCESS_TTL) - 1}

    # ---- every other request ----------------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        if request.path.rstrip("/") in PUBLIC_PATHS:
            return None
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        with self.lock:
            entry = self.db["oauth_access"].get(token.strip()) if scheme.lower() == "bearer" else None
            if entry is not None and entry["expires"] <= self.now():
                self.db["oauth_access"].pop(token.strip(), None)
                entry = None
        if entry is None:
            return self.json(UNAUTHORIZED, status=401)
        if required_scope(request.method, request.path) not in entry["scopes"]:
            return self.fail(403, 9002, "This action is forbidden", with_id=True).response
        return None


def required_scope(method: str, path: str) -> str:
    """[spec securitySchemes]: READ for GET, PAY to move money, WRITE for the rest."""
    if method in ("GET", "HEAD"):
        return "READ"
    if path.rstrip("/") in ("/api/1.0/pay", "/api/1.0/transfer"):
        return "PAY"
    return "WRITE"
