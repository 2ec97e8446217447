"""`POST /documents`: a receipt or supplier invoice uploaded for OCR (flow F6, docs/architecture.md, Flows).

multipart/form-data with the file in the field `file` (the first file part is taken if it is named otherwise),
`Authorization: Bearer <SYNCENGINE_DOCUMENTS_TOKEN>`. The type is sniffed from the bytes (JPEG, PNG, WebP,
PDF, HEIC when pillow-heif is installed), never taken from the declared content type or the file name; a
picture that would decode to more pixels than a reader decodes is refused at once (422), from its header. The
bytes are kept in the `documents` row (syncengine.ocr.documents), keyed by their sha256: the same file
twice answers 200 with the first id and is not read again; a new file answers 202 and
`tasks.ocr.read_document` is published on the "ocr" queue once the answer is sent.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

from flask import Blueprint, Response, jsonify, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import RequestEntityTooLarge

from syncengine.celery_app import app as celery_app
from syncengine.db import session_scope, with_reconnect
from syncengine.ocr.documents import store
from syncengine.ocr.prepare import Unreadable, accepted, check_size, sniff
from syncengine.publish import TaskPublisher
from syncengine.settings import get_settings

from .receive import error

log = logging.getLogger(__name__)

blueprint = Blueprint("documents", __name__)
_publisher = TaskPublisher(celery_app, "tasks.ocr.read_document", queue="ocr")
# Room for the multipart envelope (boundaries, part headers) around a file of the maximum size.
ENVELOPE = 64 * 1024


def _authorised(header: str, token: str) -> bool:
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


@blueprint.post("/documents")
def upload() -> Response:
    settings = get_settings()
    if not settings.documents_token:
        return error(503, "document intake is not configured (SYNCENGINE_DOCUMENTS_TOKEN)")
    if not _authorised(request.headers.get("Authorization", ""), settings.documents_token.reveal()):
        return error(401, "missing or wrong bearer token", **{"WWW-Authenticate": "Bearer"})
    limit = settings.max_document_bytes
    too_large = error(413, f"document larger than {limit} bytes")
    if request.content_length is not None and request.content_length > limit + ENVELOPE:
        return too_large  # refused before reading the body
    request.max_content_length = limit + ENVELOPE  # this request only; webhooks keep their 1 MiB
    try:
        upload = request.files.get("file") or next(iter(request.files.values()), None)
    except RequestEntityTooLarge:
        return too_large
    if upload is None:
        return error(400, "no file: send multipart/form-data with the document in the field 'file'")
    data = upload.stream.read(limit + 1)
    if len(data) > limit:
        return too_large
    if not data:
        return error(400, "the file is empty")
    content_type = sniff(data)
    refusal = _refusal(data, content_type, settings.ocr_max_side)
    if refusal is not None:
        return refusal
    assert content_type is not None
    digest = hashlib.sha256(data).hexdigest()
    filename = upload.filename or None
    try:
        document_id, new = with_reconnect(lambda: _store(content_type, filename, data))
    except SQLAlchemyError as exc:
        log.error("store unavailable for document upload: %s", type(exc).__name__)
        return error(503, "store unavailable, retry later", **{"Retry-After": "30"})
    body: dict[str, Any] = {"id": document_id, "sha256": digest, "content_type": content_type}
    if not new:
        log.info("document %s uploaded again (sha256 %s…), not read again", document_id, digest[:12])
        return jsonify({**body, "duplicate": True})
    log.info("document %s received: %s, %s bytes", document_id, content_type, len(data))
    response = jsonify({**body, "status": "received"})
    response.status_code = 202
    response.call_on_close(lambda: publish(document_id))
    return response


def _refusal(data: bytes, content_type: str | None, max_side: int) -> Response | None:
    """Why the file is refused at once (its type, or a picture too large to decode), or None."""
    if content_type == "image/heic" and not accepted(content_type):
        return error(415, "HEIC photos need the optional pillow-heif package on this server")
    if content_type is None:
        return error(415, "not a JPEG, PNG, WebP, HEIC or PDF document (judged by its content)")
    try:
        check_size(data, max_side)  # from the header: nothing is decoded here
    except Unreadable as exc:
        return error(422, str(exc))
    return None


def _store(content_type: str, filename: str | None, data: bytes) -> tuple[int, bool]:
    with session_scope() as session:
        return store(session, data, content_type, filename)


def publish(document_id: int) -> None:
    """Hand the document to the OCR queue; if the broker is down, the row stays 'received'."""
    try:
        _publisher.publish(document_id)
    except Exception as exc:
        log.warning("broker unavailable, document %s left as received: %s", document_id, type(exc).__name__)
