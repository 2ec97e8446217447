"""Directus, the data hub (apis.md §5, §9): items of any collection, found by a unique field of ours.

Inputs and outputs are plain dicts as Directus stores the row (`data` of its answers). Directus has no
idempotency keys, so every create is looked up first by a unique field we own (`ext_id` by default) under a
lock (DESIGN.md §5 step 3), and a unique-field conflict on create is read back instead of failing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

import requests

from syncengine.errors import Permanent, SyncError
from syncengine.idempotency import Effect

from .base import TokenConnector, pages_by_id

log = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 100  # Directus' own default `limit`
MARKER_FIELD = "ext_id"  # the unique field our collections carry for our record id
REVIEWS = "reviews"


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
            rows = self.get_json(f"/items/{collection}", params=query)["data"]
            yield from rows
            if len(rows) < size:
                return
            page += 1

    def changed_since(
        self, collection: str, since: str, *, inclusive: bool = True, page_size: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """The sweep's read (apis.md §9): created or updated after `since` (ISO 8601). `date_updated` is
        null until the first update, hence the `_or` with `date_created`. Inclusive by default: a batch
        update stamps many rows with one instant, so a page boundary there must not lose any; the inbox
        collapses the repeats."""
        op = "_gte" if inclusive else "_gt"
        params = {
            f"filter[_or][0][date_updated][{op}]": since,
            f"filter[_or][1][date_created][{op}]": since,
            "sort": "date_updated,date_created,id",
        }
        return self.items(collection, params, page_size=page_size)

    def deleted_since(
        self, collections: list[str], since: str, *, page_size: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Items deleted since `since`, read from `directus_activity` (the items API keeps no trace of a
        delete): one row per deleted item, oldest first, paged by the activity id so no page shifts while
        new activity is written. Collections whose accountability is switched off log nothing here."""
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
            return self.get_json("/activity", params=query)["data"]

        return pages_by_id(page, size)

    def get_item(self, collection: str, key: Any) -> dict[str, Any] | None:
        """One item, or None: Directus answers a missing item with 403 FORBIDDEN, not 404."""
        try:
            return self.get_json(f"/items/{collection}/{key}")["data"]
        except Permanent as exc:
            if exc.status in (403, 404):
                return None
            raise

    def file(self, key: str) -> dict[str, Any] | None:
        """A `directus_files` row (type, filesize, filename_download, folder …), or None when it is gone."""
        try:
            return self.get_json(f"/files/{key}")["data"]
        except Permanent as exc:
            if exc.status in (403, 404):
                return None
            raise

    def download_asset(self, key: str) -> bytes:
        """The file's original bytes: `/assets/{id}` with no transformation parameters."""
        return self.request("GET", f"/assets/{key}", headers={"Accept": "*/*"}).content

    def find_item(self, collection: str, field: str, value: Any) -> dict[str, Any] | None:
        """The item whose (unique) `field` equals `value`."""
        query = {f"filter[{field}][_eq]": value, "limit": 2}
        rows = self.get_json(f"/items/{collection}", params=query)["data"]
        if len(rows) > 1:
            log.warning("directus %s: %s is not unique on %s", collection, field, _ident(value))
        return rows[0] if rows else None

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
        """PATCH the given fields; setting fields to values is repeatable, so a lost answer is retried."""
        response = self.request("PATCH", f"/items/{collection}/{key}", json=dict(changes), idempotent=True)
        return response.json()["data"]

    def delete_item(self, collection: str, key: Any) -> bool:
        """True if deleted now, False if it was already gone (403, as Directus says for a missing item)."""
        try:
            self.request("DELETE", f"/items/{collection}/{key}")
        except Permanent as exc:
            if exc.status in (403, 404):
                return False
            raise
        return True

    def insert_item(
        self, collection: str, item: Mapping[str, Any], unique_field: str = MARKER_FIELD
    ) -> dict[str, Any]:
        """One POST, for use inside create_once (as create_item does). A conflict on our unique field
        means the item exists (made by another writer, or a lost answer): read it back rather than fail."""
        try:
            return self.request("POST", f"/items/{collection}", json=dict(item)).json()["data"]
        except Permanent as exc:
            if _conflict_field(exc) != unique_field:
                raise
        found = self.find_item(collection, unique_field, item[unique_field])
        if found is None:
            raise Permanent(f"directus {collection}: {unique_field} conflicts but no item has it", 400)
        return found


def _body(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


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
