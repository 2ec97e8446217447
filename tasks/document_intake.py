"""A file uploaded to Directus becomes a document for OCR (flow F6), like an upload to `POST /documents`.

The Directus Flow sends `files.upload` (`{event, payload, key, collection: "directus_files"}`; the payload
is the file row without its id). The file is read back by its key, size-checked before downloading,
sniffed from its bytes, and stored by sha256 in the same transaction as the inbox event, so the same
receipt uploaded here and through `POST /documents` is read once. Files of other types (logos, CSVs) and,
when DIRECTUS_DOCUMENTS_FOLDER is set, files in other folders are left alone. Directus answers a file that
is gone and one the token may not read alike (403); the connector tells them apart, so a file we may not
read fails the event with the permission to grant (read on `directus_files`) instead of being skipped.
"""

from __future__ import annotations

import logging

from connectors import connector_for
from syncengine.errors import Permanent
from syncengine.ocr.documents import store
from syncengine.ocr.prepare import accepted, sniff
from syncengine.settings import get_settings

from .dispatch import HandlerContext, handles
from .ocr import read_document

log = logging.getLogger(__name__)


@handles("directus", "files.upload")
def file_uploaded(ctx: HandlerContext) -> None:
    key = str(ctx.event.payload.get("key") or "")
    if not key:
        log.warning("directus files.upload without a key: ignored")
        return
    settings = get_settings()
    directus = connector_for("directus")
    meta = directus.file(key)
    if meta is None:
        log.info("directus file %s is gone: nothing to read", key)
        return
    folder = settings.services["directus"].options.get("documents_folder")
    if folder and str(meta.get("folder") or "") != folder:
        log.info("directus file %s is not in the documents folder: ignored", key)
        return
    limit = settings.max_document_bytes
    if int(meta.get("filesize") or 0) > limit:
        log.warning("directus file %s is over %s bytes: not read", key, limit)
        return
    try:
        data = directus.download_asset(key, limit)
    except Permanent as exc:
        if exc.status != 413:
            raise
        log.warning("directus file %s is larger than its record said, over %s bytes: not read", key, limit)
        return
    content_type = sniff(data)
    if len(data) > limit or not accepted(content_type):
        log.info("directus file %s (%s, %s bytes) is not a document we read", key, content_type, len(data))
        return
    document_id, new = store(ctx.session, data, content_type or "", meta.get("filename_download"))
    if not new:
        log.info("directus file %s is document %s already: not read again", key, document_id)
        return
    log.info("directus file %s stored as document %s", key, document_id)
    ctx.defer(read_document.si(document_id))
