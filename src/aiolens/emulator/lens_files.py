"""The Files API of the emulated Lens API (PROTOCOL A.9), and its file types.

Routes (under ``/v0.5``, behind the Lens auth): ``POST /files`` (multipart,
the file under form field ``file``), ``POST /files/base64`` (the same with
base64 contents), ``GET /files/info``, ``GET /files/metadata`` (the docs' shard
array or the SDK's cursor page), ``GET /files/metadata/{file_id}``,
``GET /files/download/{file_id}`` and ``DELETE /files/delete/{file_id}``. The
direct-to-cloud flow is :mod:`aiolens.emulator.lens_uploads`.

File types are the emulator's own reading of the protocol, not the client's:
:data:`ACCEPTED_FILE_TYPES` is the service's list for ``POST /files`` (JSONL is
refused there and accepted by direct uploads), :data:`MIME_BY_EXTENSION` the
official SDK's extension mapping, which ``/files/base64`` applies to the
part's filename.
"""

from __future__ import annotations

import base64
import binascii
import logging
import mimetypes
import os
import time
from typing import Final

from aiohttp import web

from aiolens.emulator._web import ServiceError, json_response, query_int, shard
from aiolens.emulator.lens_store import STORE_KEY, FileRecord

__all__ = ["ACCEPTED_FILE_TYPES", "MIME_BY_EXTENSION", "base_type", "file_routes", "mime_type_for"]

log: logging.Logger = logging.getLogger("aiolens.emulator")

ACCEPTED_FILE_TYPES: Final = frozenset(
    {"image/jpeg", "image/png", "video/mp4", "text/plain", "text/csv", "application/json"}
)
"""The MIME types ``POST /files`` accepts (PROTOCOL A.9.1)."""

MIME_BY_EXTENSION: Final = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".mp4": "video/mp4",
    ".csv": "text/csv",
    ".json": "text/plain",
    ".jsonl": "text/plain",
    ".txt": "text/plain",
    ".text": "text/plain",
}
"""The official SDK's extension → MIME mapping (PROTOCOL A.9.1, [SDK])."""

file_routes: web.RouteTableDef = web.RouteTableDef()


def mime_type_for(filename: str) -> str:
    """The MIME type of ``filename``: :data:`MIME_BY_EXTENSION`, else the standard guess."""
    ext = os.path.splitext(filename)[1].lower()
    if ext in MIME_BY_EXTENSION:
        return MIME_BY_EXTENSION[ext]
    guessed, _ = mimetypes.guess_type(filename)
    return guessed or "application/octet-stream"


def base_type(mime: str) -> str:
    """``mime`` without its parameters (``text/csv; charset=utf-8`` → ``text/csv``)."""
    return mime.split(";")[0].strip()


def _too_large(limit: int) -> str:
    return f"File exceeds the upload limit of {limit} bytes"


async def _read_upload(request: web.Request) -> tuple[str, bytes, str]:
    store = request.app[STORE_KEY]
    length = request.content_length
    if length is not None and length > store.max_upload_bytes + 64 * 1024:
        raise ServiceError(413, "invalid_file_size", _too_large(store.max_upload_bytes))
    if not request.content_type.startswith("multipart/"):
        raise ServiceError(400, "malformed_body", "Expected multipart/form-data with a file field")
    reader = await request.multipart()
    while True:
        part = await reader.next()
        if part is None:
            raise ServiceError(400, "missing_parameter", "Failed to find key: file")
        if getattr(part, "name", None) != "file":
            continue
        filename = getattr(part, "filename", None) or ""
        if not filename:
            raise ServiceError(400, "missing_parameter", "The file part needs a filename")
        chunks = []
        size = 0
        try:
            while chunk := await part.read_chunk(256 * 1024):  # type: ignore[union-attr]
                size += len(chunk)
                if size > store.max_upload_bytes:
                    raise ServiceError(413, "invalid_file_size", _too_large(store.max_upload_bytes))
                chunks.append(chunk)
        except ConnectionResetError:  # the client went away (or cancelled) mid-upload
            log.info("upload of %r abandoned by the client after %d bytes", filename, size)
            raise ServiceError(
                400, "malformed_body", "The upload ended before the file did"
            ) from None
        mime = part.headers.get("Content-Type", "application/octet-stream")
        return filename, b"".join(chunks), mime


def _file_answer(record: FileRecord) -> web.Response:
    return json_response({"is_valid": True, "file_id": record.file_id, "file_uid": record.file_uid})


def _store_upload(request: web.Request, filename: str, data: bytes, mime: str) -> web.Response:
    """Store an uploaded file under its basename; 400 for a type the service refuses."""
    if base_type(mime) not in ACCEPTED_FILE_TYPES:
        raise ServiceError(
            400,
            "invalid_file_type",
            f"Unsupported file type: {mime}. Upload a jpeg, png, mp4, csv, txt or json file.",
        )
    file_id = filename.rsplit("/", 1)[-1]
    return _file_answer(request.app[STORE_KEY].add_file(file_id, data, base_type(mime)))


@file_routes.post("/files")
async def files_upload(request: web.Request) -> web.Response:
    filename, data, mime = await _read_upload(request)
    return _store_upload(request, filename, data, mime)


@file_routes.post("/files/base64")
async def files_upload_base64(request: web.Request) -> web.Response:
    filename, encoded, _ = await _read_upload(request)
    try:
        data = base64.b64decode(encoded, validate=False)
    except (binascii.Error, ValueError):
        raise ServiceError(400, "invalid_file_type", "Contents are not valid base64") from None
    return _store_upload(request, filename, data, mime_type_for(filename))


@file_routes.get("/files/info")
async def files_info(request: web.Request) -> web.Response:
    files = request.app[STORE_KEY].files.values()
    return json_response(
        {
            "num_files": len(files),
            "num_bytes": sum(len(f.data) for f in files),
            "num_ingested": len(files),
            "last_updated": max((f.uploaded_at for f in files), default=time.time()),
        }
    )


@file_routes.get("/files/metadata")
async def files_metadata_list(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    file_type = request.query.get("file_type")
    files = [f for f in store.files.values() if not file_type or f.file_type == file_type]
    if {"shard_index", "max_items_per_shard"}.intersection(request.query):
        # The documented shape: a plain array, shard paging (docs/protocol-notes.md).
        return json_response([f.metadata() for f in shard(files, request)[:1000]])
    # Otherwise the official SDK's cursor page: newest first, cursor = file_id.
    if "after" in request.query and "before" in request.query:
        raise ServiceError(400, "invalid_parameter", "Give either after or before, not both")
    limit = min(max(query_int(request, "limit", 100), 1), 1000)
    ordered = sorted(files, key=lambda f: f.file_index, reverse=True)
    ids = [f.file_id for f in ordered]
    start = 0
    if "after" in request.query:
        cursor = request.query["after"]
        start = ids.index(cursor) + 1 if cursor in ids else len(ids)
    elif "before" in request.query:
        cursor = request.query["before"]
        end = ids.index(cursor) if cursor in ids else 0
        start = max(0, end - limit)
    page = ordered[start : start + limit]
    has_more = start + limit < len(ordered)
    return json_response(
        {
            "data": [f.metadata() for f in page],
            "has_more": has_more,
            "next_cursor": page[-1].file_id if page and has_more else None,
            "prev_cursor": page[0].file_id if page and start > 0 else None,
        }
    )


@file_routes.get("/files/metadata/{file_id}")
async def files_metadata(request: web.Request) -> web.Response:
    return json_response(request.app[STORE_KEY].file(request.match_info["file_id"]).metadata())


@file_routes.get("/files/download/{file_id}")
async def files_download(request: web.Request) -> web.StreamResponse:
    record = request.app[STORE_KEY].file(request.match_info["file_id"])
    if record.file_status == "FILE_STATUS_CORRUPT":
        raise ServiceError(400, "file_corrupt", f"{record.file_id} is corrupt")
    response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    response.content_length = len(record.data)
    await response.prepare(request)
    view = memoryview(record.data)
    for offset in range(0, len(view), 256 * 1024):
        await response.write(view[offset : offset + 256 * 1024])
    await response.write_eof()
    return response


@file_routes.delete("/files/delete/{file_id}")
async def files_delete(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    record = store.file(request.match_info["file_id"])
    del store.files[record.file_id]
    return _file_answer(record)
