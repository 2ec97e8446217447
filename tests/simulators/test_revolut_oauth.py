"""Revolut OAuth as the guide describes it: consent → 2-minute single-use code → tokens; refresh revokes the
previous access token at once; 40-minute access tokens; the client assertion is an RS256 JWT whose ``iss`` is
the redirect URI's domain. The key pair and certificate are generated here, never committed."""

from __future__ import annotations

import threading
import time
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from simulators.revolut import RevolutSimulator
from tests import revolut_keys

CLIENT_ID = "cid-test-1"
REDIRECT = "https://example.com/revolut/callback"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return revolut_keys.new_key()


@pytest.fixture()
def revolut(serve, key):
    sim = RevolutSimulator()
    sim.configure_client(CLIENT_ID, REDIRECT, revolut_keys.self_signed(key))
    return sim, serve(sim).url


def assertion(sim: RevolutSimulator, key, **overrides) -> str:
    claims = {
        "iss": "example.com",
        "sub": CLIENT_ID,
        "aud": "https://revolut.com",
        "exp": int(sim.now()) + 60,
    }
    claims.update(overrides)
    return jwt.encode(claims, key, algorithm="RS256")


def consent(base: str) -> str:
    params = {"client_id": CLIENT_ID, "redirect_uri": REDIRECT, "response_type": "code"}
    r = requests.get(f"{base}/app-confirm", params=params, allow_redirects=False, timeout=5)
    assert r.status_code == 302
    location = urlsplit(r.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    code = parse_qs(location.query)["code"][0]
    assert code.startswith("oa_sand_")
    return code


def token(base: str, sim, key, **form) -> requests.Response:
    data = {"client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion(sim, key), **form}
    return requests.post(f"{base}/api/1.0/auth/token", data=data, timeout=5)


def accounts(base: str, access: str) -> requests.Response:
    return requests.get(f"{base}/api/1.0/accounts", headers={"Authorization": f"Bearer {access}"}, timeout=5)


def test_full_flow_gives_working_tokens(revolut, key):
    sim, base = revolut
    r = token(base, sim, key, grant_type="authorization_code", code=consent(base))
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 2399
    assert body["access_token"].startswith("oa_sand_") and body["refresh_token"].startswith("oa_sand_")
    assert accounts(base, body["access_token"]).status_code == 200


def test_code_is_single_use_and_lives_two_minutes(revolut, key):
    sim, base = revolut
    code = consent(base)
    assert token(base, sim, key, grant_type="authorization_code", code=code).status_code == 200
    reused = token(base, sim, key, grant_type="authorization_code", code=code)
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"

    late = consent(base)
    sim.clock.advance(121)
    expired = token(base, sim, key, grant_type="authorization_code", code=late)
    assert expired.status_code == 400 and expired.json()["error"] == "invalid_grant"


def test_refresh_revokes_previous_access_token_and_keeps_refresh_token(revolut, key):
    sim, base = revolut
    first = token(base, sim, key, grant_type="authorization_code", code=consent(base)).json()
    r = token(base, sim, key, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert r.status_code == 200
    second = r.json()
    assert "refresh_token" not in second and second["access_token"] != first["access_token"]
    old = accounts(base, first["access_token"])
    assert old.status_code == 401 and old.json() == {"message": "The request should be authorized."}
    assert accounts(base, second["access_token"]).status_code == 200
    # the refresh token does not rotate: it works again
    again = token(base, sim, key, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert again.status_code == 200 and sim.refresh_count == 2


def test_access_token_expires_after_40_minutes(revolut, key):
    sim, base = revolut
    access = token(base, sim, key, grant_type="authorization_code", code=consent(base)).json()["access_token"]
    sim.clock.advance(39 * 60)
    assert accounts(base, access).status_code == 200
    sim.clock.advance(61)
    r = accounts(base, access)
    assert r.status_code == 401 and r.json() == {"message": "The request should be authorized."}


@pytest.mark.parametrize(
    ("claims", "status", "error"),
    [
        ({"iss": CLIENT_ID}, 400, "invalid_request"),  # the seed's mistake: iss must be the redirect domain
        ({"iss": "https://example.com"}, 400, "invalid_request"),  # domain without scheme
        ({"aud": "https://b2b.revolut.com"}, 400, "invalid_request"),
        ({"sub": "someone-else"}, 401, "invalid_client"),
    ],
)
def test_bad_client_assertion_claims(revolut, key, claims, status, error):
    sim, base = revolut
    data = {
        "grant_type": "authorization_code",
        "code": consent(base),
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion(sim, key, **claims),
    }
    r = requests.post(f"{base}/api/1.0/auth/token", data=data, timeout=5)
    assert r.status_code == status and r.json()["error"] == error


def test_expired_assertion_and_foreign_key(revolut, key):
    sim, base = revolut
    data = {
        "grant_type": "authorization_code",
        "code": consent(base),
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion(sim, key, exp=int(sim.now()) - 5),
    }
    r = requests.post(f"{base}/api/1.0/auth/token", data=data, timeout=5)
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_request"
    assert r.json()["error_description"].startswith("The Token has expired on ")

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    data["client_assertion"] = assertion(sim, other)
    r = requests.post(f"{base}/api/1.0/auth/token", data=data, timeout=5)
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


def test_consent_rejects_unknown_redirect(revolut):
    _, base = revolut
    params = {"client_id": CLIENT_ID, "redirect_uri": "https://evil.example/cb", "response_type": "code"}
    assert (
        requests.get(f"{base}/app-confirm", params=params, allow_redirects=False, timeout=5).status_code
        == 400
    )


def test_scope_is_enforced(revolut):
    sim, base = revolut
    access = sim.issue_tokens(CLIENT_ID, scopes=("READ",))["access_token"]
    h = {"Authorization": f"Bearer {access}"}
    assert requests.get(f"{base}/api/1.0/accounts", headers=h, timeout=5).status_code == 200
    r = requests.post(f"{base}/api/1.0/counterparty", headers=h, json={"name": "x", "revtag": "x"}, timeout=5)
    assert r.status_code == 403 and r.json()["code"] == 9002 and "error_id" in r.json()


def test_refreshes_are_counted_exactly_under_concurrency(revolut, key):
    """What the connector's single-flight test relies on: every refresh call is counted, none lost."""
    sim, base = revolut
    refresh = token(base, sim, key, grant_type="authorization_code", code=consent(base)).json()[
        "refresh_token"
    ]
    sim.set_faults(rate_limit={"limit": 10_000, "window": 60})
    results: list[int] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        results.append(token(base, sim, key, grant_type="refresh_token", refresh_token=refresh).status_code)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert results == [200] * 8 and sim.refresh_count == 8
    assert len(sim.db["oauth_access"]) == 1  # only the last refresh's token survives
    assert time.monotonic() - started < 10
