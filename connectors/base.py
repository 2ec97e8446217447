"""What every connector shares: auth hook, timeouts, retries with backoff and Retry-After, the service's
circuit breaker, and one classification of every failure (Retryable, Ambiguous, Permanent, AuthExpired,
CircuitOpen)."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Self
from urllib.parse import quote, urljoin, urlsplit

import requests
from sqlalchemy.orm import Session

from syncengine.breaker import Breaker, breaker_for
from syncengine.errors import Ambiguous, AuthExpired, Permanent, Retryable, SyncError
from syncengine.http import (
    DEFAULT_TIMEOUT,
    RETRYABLE_STATUS,
    SAFE_METHODS,
    RetryPolicy,
    new_session,
    parse_retry_after,
)
from syncengine.idempotency import DEFAULT_LEASE, Attempt, Effect, once
from syncengine.locks import lock
from syncengine.redaction import redact
from syncengine.settings import Secret, Settings, get_settings

log = logging.getLogger(__name__)
_WARNED: set[tuple[str, str]] = set()  # (server, what) warned about by Connector.warn_once
UNIQUE_TTL = 600.0  # seconds a server's answer to "is this field unique?" is trusted (Connector.unique_on)
_UNIQUE: dict[tuple[str, str], tuple[float, bool]] = {}  # (server, what) -> (monotonic time asked, unique)


class Connector:
    """One service's API client. Subclasses set `service`, implement `authenticate`, and add the
    vendor's calls and paginators; they may refine `classify` for the vendor's error conventions."""

    service = "generic"
    retry_policy = RetryPolicy()
    timeout = DEFAULT_TIMEOUT

    def __init__(
        self, base_url: str, *, session: requests.Session | None = None, breaker: Breaker | None = None,
        sleep: Callable[[float], None] = time.sleep, timeout: float | tuple[float, float] | None = None,
    ) -> None:  # fmt: skip
        self.base_url = base_url.rstrip("/")
        self.session = session or new_session()
        self.breaker = breaker or breaker_for(self.service)
        self.sleep = sleep
        if timeout is not None:
            self.timeout = timeout

    # --- hooks -------------------------------------------------------------------------------------

    def warn_once(self, what: str, message: str, *args: Any) -> None:
        """Log a warning about `what` on this server once per process (a grant it lacks, say), not once per
        call: the caller carries on without what it was refused."""
        if (self.base_url, what) not in _WARNED:
            _WARNED.add((self.base_url, what))
            logging.getLogger(type(self).__module__).warning(message, *args)

    def authenticate(self, headers: dict[str, str]) -> None:
        """Add the vendor's credentials to the outgoing headers."""

    def on_auth_expired(self) -> bool:
        """Refresh credentials after a 401; True if a retry with new credentials makes sense."""
        return False

    def classify(self, response: requests.Response) -> SyncError | None:
        """None for a success; otherwise the one class this failure belongs to."""
        status = response.status_code
        if status < 400:
            return None
        detail = f"{self.service} {response.request.method} {_path(response.url)} answered {status}"
        if status in RETRYABLE_STATUS:
            return Retryable(detail, parse_retry_after(response.headers.get("Retry-After")), status)
        if status == 401:
            return AuthExpired(detail)
        return Permanent(f"{detail}: {redact(response.text[:300])}", status, _body(response))

    # --- the call ----------------------------------------------------------------------------------

    def request(
        self, method: str, path: str, *, params: Mapping[str, Any] | list | None = None, json: Any = None,
        data: Any = None, headers: Mapping[str, str] | None = None, idempotent: bool | None = None,
    ) -> requests.Response:  # fmt: skip
        """Send with retries. `idempotent` says a repeat is harmless (safe methods, or a vendor
        idempotency key in the request); otherwise a request that may have arrived is never repeated
        here: it raises Ambiguous for the caller's read-back."""
        method = method.upper()
        repeatable = method in SAFE_METHODS if idempotent is None else idempotent
        refreshed = False
        attempt = 0
        while True:
            attempt += 1
            self.breaker.before_call()
            try:
                response = self._send(method, path, params, json, data, headers)
            except (requests.ConnectionError, requests.Timeout) as exc:
                self.breaker.record_failure()
                error = self._transport_error(method, path, exc, repeatable)
            else:
                error = self.classify(response)
                self._update_breaker(error)
                if error is None:
                    return response
                if isinstance(error, AuthExpired) and not refreshed and self.on_auth_expired():
                    refreshed = True
                    attempt -= 1
                    continue
                if isinstance(error, Retryable) and not (repeatable or error.status == 429):
                    # A 5xx to a create may still have taken effect; only 429 says it did not.
                    error = Ambiguous(str(error), error.retry_after, error.status)
            if not isinstance(error, Retryable) or isinstance(error, Ambiguous):
                raise error
            wait = self.retry_policy.delay(attempt, error.retry_after)
            if attempt >= self.retry_policy.attempts or wait > self.retry_policy.max_inline_wait:
                raise Retryable(str(error), retry_after=wait, status=error.status) from error
            log.info("%s: %s, retry %s in %.1f s", self.service, error, attempt, wait)
            self.sleep(wait)

    def get_json(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs).json()

    def download(self, path: str, *, limit: int, what: str = "file") -> bytes:
        """A file's bytes, streamed and refused past `limit` bytes (a record saying 10 bytes may serve
        200 MiB). A redirect is followed only within this service's own origin: the credentials we send
        must never reach another host, and a file record may point anywhere."""
        url = self.url(path)
        for _hop in range(MAX_REDIRECTS + 1):
            self.breaker.before_call()
            headers = {"Accept": "*/*"}
            self.authenticate(headers)
            with self.session.get(url, headers=headers, stream=True, allow_redirects=False,
                                  timeout=self.timeout) as response:  # fmt: skip
                if response.is_redirect:
                    url = urljoin(url, response.headers.get("Location", ""))
                    if _origin(url) != _origin(self.base_url):
                        raise Permanent(f"{self.service} {what} redirects to another host; not followed", 502)
                    continue
                error = self.classify(response)
                self._update_breaker(error)
                if error is not None:
                    raise error
                return _read_capped(response, limit, f"{self.service} {what}")
        raise Permanent(f"{self.service} {what}: more than {MAX_REDIRECTS} redirects", 502)

    def delete_if_present(self, path: str) -> bool:
        """True if we deleted it, False if it was already gone (a repeat after a lost answer)."""
        try:
            self.request("DELETE", path)
        except Permanent as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def create_once(
        self, effect: Effect, *, marker: str, find: Callable[[], Any | None],
        create: Callable[[Attempt], Any], on_finish: Callable[[Session, Any], None] | None = None,
        unique: bool = False, locked: bool = False,
    ) -> Any:  # fmt: skip
        """Create something in a vendor that has no idempotency key, once: under a lock on our marker
        (email, number, external id), look it up by that marker and create it only if it is absent. A
        create whose answer was lost is found by the look-up on the next try, and two effects after the
        same object (a contact arriving from two systems) serialise on the marker. The lock is held until
        `on_finish` has committed the link, so the vendor's webhook for the new object, taken meanwhile,
        can wait on the same lock (`marker_lock`) and find it linked: without a natural key, nothing else
        tells our own create from a new object made there.

        `unique`: the vendor itself keeps the marker unique, compared as `find` compares it, and `create`
        answers the object that already holds it (Mautic's 200 on a matched email, or a unique-field
        conflict read back). The create then goes first, with no look-up: one request less, and no window
        between a look-up and the create in which another writer could make the object. Only a lost answer
        is looked up.

        `locked`: the caller holds the marker's lock already (tasks.push_batch, from before its look-up)."""

        def call(attempt: Attempt) -> Any:
            if not unique and (found := find()) is not None:
                return found
            try:
                return create(attempt)
            except Ambiguous:
                # The answer was lost; the object is usually there already, so the effect can
                # finish now rather than on the task's retry.
                found = find()
                if found is None:
                    raise
                log.info("%s: the answer to %s was lost; found by its marker", self.service, attempt.key)
                return found

        # A worker killed inside holds the marker no longer than its effect's lease, after which the effect
        # itself may be recovered by another.
        if locked:
            return once(effect, call, on_finish=on_finish)
        with lock(marker_lock(self.service, marker), timeout=DEFAULT_LEASE.total_seconds()):
            return once(effect, call, on_finish=on_finish)

    def unique_on(self, what: str, learn: Callable[[], bool]) -> bool:
        """Whether this server keeps `what` (a field of ours) unique, as `learn` asks it: asked once per
        process and server, then again after UNIQUE_TTL (a constraint removed by hand is noticed). A server
        that cannot be asked (a token without read on its schema) is taken as not unique, with one warning:
        its objects are looked up before they are created, as always; a passing failure is asked again."""
        key, now = (self.base_url, what), time.monotonic()
        known = _UNIQUE.get(key)
        if known is not None and now - known[0] < UNIQUE_TTL:
            return known[1]
        try:
            unique = learn()
        except Retryable:
            return False
        except SyncError as exc:
            self.warn_once(f"unique:{what}", "%s: cannot tell whether %s is unique, so objects are looked up "
                           "before they are created (%s)", self.service, what, exc)  # fmt: skip
            unique = False
        _UNIQUE[key] = (now, unique)
        return unique

    def _send(self, method, path, params, json, data, headers) -> requests.Response:  # type: ignore[no-untyped-def]
        outgoing = {"Accept": "application/json", **(headers or {})}
        self.authenticate(outgoing)
        started = time.monotonic()
        response = self.session.request(
            method,
            self.url(path),
            params=params,
            json=json,
            data=data,
            headers=outgoing,
            timeout=self.timeout,
        )
        elapsed_ms = (time.monotonic() - started) * 1000
        status = response.status_code
        log.debug("%s %s %s -> %s in %.0f ms", self.service, method, _path(response.url), status, elapsed_ms)
        return response

    def url(self, path: str) -> str:
        return path if path.startswith("http") else f"{self.base_url}/{path.lstrip('/')}"

    def _update_breaker(self, error: SyncError | None) -> None:
        if isinstance(error, Retryable) and error.status != 429:
            self.breaker.record_failure()
        elif error is None or isinstance(error, Permanent | AuthExpired):
            self.breaker.record_success()  # the service answered sanely

    def _transport_error(self, method: str, path: str, exc: Exception, repeatable: bool) -> SyncError:
        detail = f"{self.service} {method} {_path(path)}: {type(exc).__name__}"
        never_sent = isinstance(exc, requests.ConnectTimeout) or (
            isinstance(exc, requests.ConnectionError) and "NewConnectionError" in repr(exc)
        )
        if repeatable or never_sent:
            return Retryable(detail)
        return Ambiguous(detail)


def marker_lock(service: str, marker: str) -> str:
    """The lock a create in `service` holds on our marker, from the look-up until its link is stored."""
    return f"{service}:marker:{marker}"


def pages_after(
    fetch: Callable[[Any], list[dict[str, Any]]], page_size: int, key: Callable[[dict[str, Any]], Any],
    first: Any = None,
) -> Iterator[dict[str, Any]]:  # fmt: skip
    """Rows page after page, each page asked as "past the last row's key" (`fetch(key(last row))`; `first`
    for the first page), until a short one: unlike an offset, a row added, edited or deleted during the
    listing moves no other row between pages. The key is the listing's order (an id, a name, a stamp and
    a name)."""
    last = first
    while True:
        rows = fetch(last)
        yield from rows
        if len(rows) < page_size:
            return
        last = key(rows[-1])


def pages_by_id(fetch: Callable[[int], list[dict[str, Any]]], page_size: int) -> Iterator[dict[str, Any]]:
    """`pages_after` by `id > the last id seen`, from 0."""
    return pages_after(fetch, page_size, lambda row: int(row["id"]), 0)


# The shapes vendors give their ids. An id from outside (a webhook, an answer) must have its vendor's shape
# before it goes into a URL: `../users/me` or `1?fields=*` would otherwise reach another path, or add a query,
# with our credentials.
ID_SHAPES = {
    "integer": re.compile(r"[0-9]{1,19}"),  # Mautic, Directus collections with integer keys
    "uuid": re.compile(
        r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    ),  # Revolut
    "hashid": re.compile(r"[A-Za-z0-9]{1,64}"),  # Invoice Ninja's hashed ids
    # A Frappe document name: free text (a customer's name), but one line, not a dot segment, bounded.
    "name": re.compile(r"(?!\.{1,2}\Z)[^\x00-\x1f\x7f]{1,140}"),
}


def segment(value: Any, *shapes: str, what: str = "id") -> str:
    """`value` as one URL path segment, once it has one of its vendor's `shapes`; quoted, so even a name
    holding `/` or `?` stays inside its segment. Anything else is refused before any request is made."""
    text = str(value)
    if not any(ID_SHAPES[shape].fullmatch(text) for shape in shapes):
        raise Permanent(f"refused {what} {text[:40]!r}: not a {' or '.join(shapes)} id", 400)
    return quote(text, safe="")


MAX_REDIRECTS = 3


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _read_capped(response: requests.Response, limit: int, what: str) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Permanent(f"{what} is {int(declared)} bytes, over the {limit}-byte limit", 413)
    chunks, size = [], 0
    for chunk in response.iter_content(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise Permanent(f"{what} is over the {limit}-byte limit", 413)
        chunks.append(chunk)
    return b"".join(chunks)


def _path(url: str) -> str:
    """The path only: query strings can carry tokens (Directus access_token)."""
    return url.split("?", 1)[0]


def _body(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:500]


class TokenConnector(Connector):
    """A service reached with one long-lived token, read from <SERVICE>_URL and <SERVICE>_TOKEN
    (Invoice Ninja, Directus); subclasses say how the token is sent in `authenticate`."""

    label = "generic"  # the name a person knows the service by, for configuration errors
    default_page_size = 100

    def __init__(
        self, base_url: str, token: Secret | str, *, page_size: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(base_url, **kwargs)
        self._token = token if isinstance(token, Secret) else Secret(token)
        self.page_size = page_size or self.default_page_size

    @classmethod
    def from_settings(cls, settings: Settings | None = None, **kwargs: Any) -> Self:
        svc = (settings or get_settings()).services[cls.service]
        token = svc.credentials.get("token")
        if not svc.url or token is None:
            prefix = cls.service.upper()
            raise Permanent(f"{cls.label} is not configured: set {prefix}_URL and {prefix}_TOKEN")
        return cls(svc.url, token, **kwargs)
