"""Directus, the data hub: items of any collection, found by a unique field of ours.

Inputs and outputs are plain dicts as Directus stores the row (`data` of its answers). Directus has no
idempotency keys, so every create is looked up first by a unique field we own (`ext_id` by default) under a
lock, and a unique-field conflict on create is read back instead of failing.

What Directus 11 does that a client must not take for success: it drops a field the collection does not
have and answers 200; it answers `PATCH` of a missing item with 204 and no body, and `DELETE` of one with
204 (logging a delete and firing the Flow again); it answers a missing item, a missing collection and one
the token may not read with the same 403. So every write is checked against the item it answers with,
and a 403 is told apart (gone, or refused) before anything is called gone.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

import requests

from syncengine.errors import Permanent, SyncError
from syncengine.idempotency import Effect
from syncengine.settings import get_settings

from .base import TokenConnector, pages_by_id, segment

log = logging.getLogger(__name__)
REVISIONS_WHY = "a change read back is dated by the revision that wrote it"
REVISIONS = 25  # the writes looked at; a group written back and forth more often is dated by the item

DEFAULT_PAGE_SIZE = 100  # Directus' own default `limit`
MARKER_FIELD = "ext_id"  # the unique field our collections carry for our record id
REVIEWS = "reviews"
SETUP = "run `syncengine setup --system directus`"


class Refused(Permanent):
    """The token may not do this (or the collection or field is missing): the message names the grant."""


def refused(action: str, collection: str, why: str, said: str = "") -> Refused:
    """One line: what was refused, why the engine needs it, and what to grant (or create)."""
    grant = f"grant {action} on {collection} to the policy of DIRECTUS_TOKEN's user"
    if not collection.startswith("directus_"):
        grant = f"{SETUP} if it is missing, else {grant}"
    detail = f" [Directus: {said}]" if "field" in said else ""  # which field, when Directus names one
    return Refused(f"directus refused {action} on {collection} ({why}): {grant}{detail}", 403)


class Directus(TokenConnector):
    """The Directus REST API with a static token (`Authorization: Bearer`)."""

    service = "directus"

    label = "Directus"
    default_page_size = DEFAULT_PAGE_SIZE

    # --- the shared connector's hooks ----------------------------------------------------------------

    def authenticate(self, headers: dict[str, str]) -> None:
        """The header, never `?access_token=` (a query string ends up in access logs)."""
        headers["Authorization"] = f"Bearer {self._token.reveal()}"

    def classify(self, response: requests.Response) -> SyncError | None:
        """A static token never expires, so a 401 is configuration (a wrong or regenerated token), not a
        refresh: Permanent."""
        error = super().classify(response)
        if response.status_code == 401:
            return Permanent(
                f"directus refused the token: check DIRECTUS_TOKEN ({error})", 401, _body(response)
            )
        return error

    # --- reading -------------------------------------------------------------------------------------

    def items(
        self, collection: str, params: Mapping[str, Any] | None = None, *, page_size: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every item matching `params` (filter, sort, fields …), page by page (`limit` + `page`) until a
        short page. Give a `sort` ending in the primary key, or rows may move between pages."""
        size = page_size or self.page_size
        page = 1
        while True:
            query = {**(params or {}), "limit": size, "page": page}
            rows = self._list(f"/items/{collection}", collection, "the engine reads its items", query)
            yield from rows
            if len(rows) < size:
                return
            page += 1

    def changed_since(
        self, collection: str, since: str, *, inclusive: bool = True, page_size: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """The sweep's read: created or updated after `since` (ISO 8601). `date_updated` is null until
        the first update, hence the `_or` with `date_created`. Inclusive by default: a batch update stamps
        many rows with one instant; the inbox collapses the repeats.

        Paged by id (`id > last`, sorted by id; root filter keys are ANDed): an item edited during the
        listing keeps its place. Sorted by the stamps with `page`, an edit moves its item to the end and
        shifts every later item back by one, so one item at each page boundary was never listed (the first
        sync edits items while it lists them). The sweep's cursor waits for the listing's end and never
        passes its start (tasks.reconcile.sweep), so an edit made meanwhile is listed next time."""
        op = "_gte" if inclusive else "_gt"
        size = page_size or self.page_size

        def page(after: int) -> list[dict[str, Any]]:
            query = {
                f"filter[_or][0][date_updated][{op}]": since,
                f"filter[_or][1][date_created][{op}]": since,
                "filter[id][_gt]": after, "sort": "id", "limit": size,
            }  # fmt: skip
            return self._list(f"/items/{collection}", collection, "the engine reads its items", query)

        return pages_by_id(page, size)

    def deleted_since(
        self, collections: list[str], since: str, *, page_size: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Items deleted since `since`, read from `directus_activity` (the items API keeps no trace of a
        delete): one row per deleted item, oldest first, paged by the activity id so no page shifts while
        new activity is written. Collections whose accountability is switched off log nothing here; a
        DELETE of an item already gone logs a delete too."""
        size = page_size or self.page_size

        def page(after: int) -> list[dict[str, Any]]:
            query = {
                "filter[action][_eq]": "delete",
                "filter[collection][_in]": ",".join(collections),
                "filter[timestamp][_gte]": since,
                "filter[id][_gt]": after,
                "fields": "id,action,collection,item,timestamp",
                "sort": "id",
                "limit": size,
            }  # fmt: skip
            return self._list("/activity", "directus_activity", "the delete sweep lists deletes", query)

        return pages_by_id(page, size)

    def revisions(self, collection: str, key: Any, limit: int = REVISIONS) -> list[dict[str, Any]]:
        """The item's last writes, newest first: each revision's `delta` (the fields that write sent, with
        the `date_updated` it set) and `data` (the item after it). Empty, with one warning, when the token
        may not read `directus_revisions`: the caller then dates a change by the item's stamp alone."""
        query = {"filter[collection][_eq]": collection, "filter[item][_eq]": str(key), "sort": "-id",
                 "fields": "id,delta,data", "limit": limit}  # fmt: skip
        try:
            return self._list("/revisions", "directus_revisions", REVISIONS_WHY, query)
        except Refused as exc:
            self.warn_once("revisions", "%s", exc)
            return []

    def get_item(self, collection: str, key: Any) -> dict[str, Any] | None:
        """One item, or None when it is not there."""
        path = f"/items/{collection}/{item_key(key)}"
        return self._one(path, f"/items/{collection}", collection, "items are read")

    def file(self, key: str) -> dict[str, Any] | None:
        """A `directus_files` row (type, filesize, filename_download, folder …), or None when it is gone."""
        return self._one(f"/files/{file_key(key)}", "/files", "directus_files", FILES_WHY)

    def download_asset(self, key: str, limit: int | None = None) -> bytes:
        """The file's original bytes: `/assets/{id}` with no transformation parameters, streamed and cut off
        at `limit` (the document limit by default)."""
        limit = limit if limit is not None else get_settings().max_document_bytes
        try:
            return self.download(f"/assets/{file_key(key)}", limit=limit, what=f"file {key}")
        except Permanent as exc:
            if exc.status != 403:
                raise
            self._readable("/files", "directus_files", FILES_WHY)
            raise Permanent(f"directus file {key} is gone", 404) from exc

    def find_item(
        self, collection: str, field: str, value: Any, *, ignore_case: bool = False
    ) -> dict[str, Any] | None:
        """The item whose (unique) `field` equals `value`. `_eq` is case-sensitive on SQLite and Directus
        has no `_ieq`, so `ignore_case` (emails) asks for starts-with and ends-with, both ignoring case,
        and keeps the rows that are equal."""
        query = {f"filter[{field}][_eq]": value, "limit": 2}
        if ignore_case:
            query = {f"filter[{field}][_istarts_with]": value, f"filter[{field}][_iends_with]": value,
                     "limit": 10}  # fmt: skip
        rows = self._list(f"/items/{collection}", collection, f"items are looked up by {field}", query)
        if ignore_case:
            rows = [row for row in rows if str(row.get(field) or "").casefold() == str(value).casefold()]
        if len(rows) > 1:
            log.warning("directus %s: %s is not unique on %s", collection, field, _ident(value))
        return rows[0] if rows else None

    def find_items(
        self, collection: str, field: str, values: list[Any], *, ignore_case: bool = False
    ) -> dict[str, dict[str, Any]] | None:
        """`find_item` for many values in one request: value (casefolded with `ignore_case`) -> the first
        item holding it, by id. None when the answer may be cut short (a full page): ask each alone."""
        limit = 10 * len(values) + 10
        op = "_istarts_with" if ignore_case else "_eq"
        query = {f"filter[_or][{i}][{field}][{op}]": value for i, value in enumerate(values)}
        query |= {"sort": "id", "limit": limit}
        rows = self._list(f"/items/{collection}", collection, f"items are looked up by {field}", query)
        if len(rows) >= limit:
            return None
        wanted = {str(v).casefold() if ignore_case else str(v) for v in values}
        found: dict[str, dict[str, Any]] = {}
        for row in rows:
            held = str(row.get(field) or "")
            key = held.casefold() if ignore_case else held
            if key in wanted:
                found.setdefault(key, row)
        return found

    def field_unique(self, collection: str, field: str) -> bool:
        """Whether `field` has a unique constraint (`schema.is_unique`: `syncengine setup` adds the declared
        ones, but a deployment may not have run it since), asked once per process (Connector.unique_on)
        with `GET /fields/{collection}/{field}`."""

        def learn() -> bool:
            row = self.get_json(f"/fields/{collection}/{field}")["data"]
            return bool((row.get("schema") or {}).get("is_unique"))

        return self.unique_on(f"{collection}.{field}", learn)

    # --- writing -------------------------------------------------------------------------------------

    def create_item(
        self, effect: Effect, collection: str, item: Mapping[str, Any], *, unique_field: str = MARKER_FIELD
    ) -> dict[str, Any]:
        """Create `item` once, identified by its `unique_field` (which must hold our marker)."""
        value = item.get(unique_field)
        if value in (None, ""):
            raise ValueError(f"a {collection} item needs {unique_field!r} to be created once")
        return self.create_once(
            effect,
            marker=f"{collection}:{unique_field}:{value}",
            find=lambda: self.find_item(collection, unique_field, value),
            create=lambda _attempt: self.insert_item(collection, item, unique_field),
        )

    def create_review(self, effect: Effect, review: Mapping[str, Any]) -> dict[str, Any]:
        """A review item for a human (unmatched transaction, low-confidence OCR): `{"ext_id": <ours>,
        "kind", "title", "details", …}` in the `reviews` collection."""
        return self.create_item(effect, REVIEWS, review)

    def update_item(self, collection: str, key: Any, changes: Mapping[str, Any]) -> dict[str, Any]:
        """PATCH the given fields and answer the item as Directus now holds it. Setting fields to values
        is repeatable, so a lost answer is retried. Directus answers a missing item with 204 and no body
        (the admin) or 403 (a least-privilege token): that is an error here, never an update."""
        path = f"/items/{collection}/{item_key(key)}"
        try:
            response = self.request("PATCH", path, json=dict(changes), idempotent=True)
        except Permanent as exc:
            if exc.status != 403:
                raise
            if self.get_item(collection, key) is None:
                raise _gone(collection, key) from exc
            raise refused("update", collection, "the engine updates items", error_message(exc)) from exc
        if response.status_code == 204 or not response.content:
            raise _gone(collection, key)
        return held(collection, changes, response.json()["data"])

    def delete_item(self, collection: str, key: Any) -> bool:
        """True if deleted now, False if it was already gone. Directus answers 204 either way (and logs a
        delete, and fires the Flow, each time), so an item not there is not deleted again."""
        if self.get_item(collection, key) is None:
            return False
        try:
            self.request("DELETE", f"/items/{collection}/{item_key(key)}")
        except Permanent as exc:
            if exc.status == 403:
                raise refused("delete", collection, "items are deleted", error_message(exc)) from exc
            raise
        return True

    def insert_item(
        self, collection: str, item: Mapping[str, Any], unique_field: str = MARKER_FIELD
    ) -> dict[str, Any]:
        """One POST, for use inside create_once (as create_item does). A conflict on our unique field
        means the item exists (made by another writer, or a lost answer): read it back rather than fail."""
        try:
            created = self.request("POST", f"/items/{collection}", json=dict(item)).json()["data"]
        except Permanent as exc:
            if exc.status == 403:
                self._readable(f"/items/{collection}", collection, "the engine creates items")
                raise refused("create", collection, "the engine creates items", error_message(exc)) from exc
            if _conflict_field(exc) != unique_field:
                raise
        else:
            return held(collection, item, created)
        found = self.find_item(collection, unique_field, item[unique_field])
        if found is None:
            raise Permanent(f"directus {collection}: {unique_field} conflicts but no item has it", 400)
        return found

    # --- 403: gone or refused ---------------------------------------------------------------------------

    def _list(self, path: str, collection: str, why: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """A listing; a 403 is a permission (or a missing collection or field), named."""
        try:
            return self.get_json(path, params=params)["data"]
        except Permanent as exc:
            if exc.status == 403:
                raise refused("read", collection, why, error_message(exc)) from exc
            raise

    def _one(self, path: str, listing: str, collection: str, why: str) -> dict[str, Any] | None:
        try:
            return self.get_json(path)["data"]
        except Permanent as exc:
            if exc.status != 403:
                raise
        self._readable(listing, collection, why)
        return None

    def _readable(self, listing: str, collection: str, why: str) -> None:
        """Raise Refused unless the token may list the collection (then a 403 on one item means gone)."""
        self._list(listing, collection, why, {"limit": 1, "fields": "*"})


FILES_WHY = "uploads are read for OCR"


def _gone(collection: str, key: Any) -> Permanent:
    return Permanent(f"directus {collection} {key}: no such item to update (deleted in Directus?)", 404)


def held(collection: str, sent: Mapping[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    """The answer, if it holds every field we sent: Directus drops a field the collection does not have
    (or the token may not write) without a word, and the write would be a silent no-op."""
    dropped = sorted(name for name in sent if name not in answer)
    if dropped:
        raise Permanent(
            f"directus {collection} has no field {', '.join(dropped)} (or DIRECTUS_TOKEN may not write it): "
            f"{SETUP}",
            422,
        )
    return answer


def _body(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def error_message(exc: Permanent) -> str:
    errors = exc.body.get("errors") if isinstance(exc.body, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return str(errors[0].get("message") or "")[:200]
    return ""


def _conflict_field(exc: Permanent) -> str | None:
    """The field of a 400 RECORD_NOT_UNIQUE, if that is what `exc` is."""
    errors = exc.body.get("errors") if exc.status == 400 and isinstance(exc.body, dict) else None
    if not isinstance(errors, list) or not errors or not isinstance(errors[0], dict):
        return None
    extensions = errors[0].get("extensions") or {}
    return extensions.get("field") if extensions.get("code") == "RECORD_NOT_UNIQUE" else None


def _ident(value: Any) -> str:
    """A marker in a log line, shortened (markers are ids, but keep lines bounded)."""
    return str(value)[:64]


def item_key(key: Any) -> str:
    """An item's primary key from a Flow or an answer: our collections have integer keys (uuid allowed)."""
    return segment(key, "integer", "uuid", what="directus item key")


def file_key(key: Any) -> str:
    """A `directus_files` id is a uuid."""
    return segment(key, "uuid", what="directus file id")
