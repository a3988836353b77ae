"""Direct-to-cloud multipart uploads of the emulated Lens API, and the storage behind them.

The flow (docs/protocol-notes.md, "Direct uploads"):

* ``POST /v0.5/files/uploads/initiate`` ``{filename, file_type, num_bytes,
  resume_if_started?}`` answers ``{upload_id, file_uid, file_name, total_bytes,
  num_parts, part_size, is_resume, integrity_algorithm, parts: [{part_number,
  url, offset, length, expires_at}]}``. Part numbers start at 0. With
  ``resume_if_started`` an upload still in progress for the same filename, type
  and size is reused, and ``parts`` lists only the parts not checkpointed.
* ``PUT <url>`` (no auth header: the URL is signed and expires) stores the
  part's bytes; the ``ETag`` response header (quoted MD5 of the part) is its
  ``part_token``. An expired or tampered URL answers 403 with an S3-style XML
  error (``AccessDenied``, "Request has expired"); a body of the wrong length
  400 ``IncompleteBody``.
* ``POST .../{upload_id}/parts/urls`` ``{part_numbers}`` gives fresh URLs, in
  the request's order. ``POST .../parts/checkpoint`` ``{parts: [{part_number,
  part_token}]}`` records finished parts (``{num_checkpointed}``).
* ``POST .../complete`` ``{parts, integrity_checksum?}``: every part must be
  stored, its token given here or checkpointed; the optional checksum is the
  base64 whole-file digest in ``integrity_algorithm`` (a mismatch stores the
  file as ``FILE_STATUS_CORRUPT`` and answers 400 ``integrity_check_failed``).
  Answers ``{file_uid, file_name, num_bytes, file_status: "Registered",
  file_attributes}``; completing a finished upload answers 409.
* ``POST .../abort`` ``{}`` drops the parts; the upload is gone (409 after).

Emulator choices: parts live in memory (one buffer per upload, at most
``max_direct_upload_bytes``); the integrity algorithm is ``sha256`` unless the
store says otherwise (the docs name ``crc32c``, which the standard library
lacks). Faults: ``faults.part_urls_expired`` (the next N PUTs answer 403
expired), ``faults.part_drop_after`` (the next PUT's connection is cut after
that many bytes), and any ``faults.fail_next(..., path="/_storage/")``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import math
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Final

from aiohttp import web

from aiolens.emulator._web import (
    ErrorBody,
    ServiceError,
    fault_middleware,
    json_response,
    read_json,
)
from aiolens.emulator.faults import Faults
from aiolens.emulator.lens_files import ACCEPTED_FILE_TYPES, base_type
from aiolens.emulator.lens_store import LensStore

__all__ = ["STORAGE_PREFIX", "Upload", "add_upload_routes", "storage_app"]

log: logging.Logger = logging.getLogger("aiolens.emulator")

STORAGE_PREFIX: Final = "/_storage"
"""Where the emulated object storage answers presigned part PUTs."""

MAX_PARTS: Final = 10_000
DIRECT_TYPES: Final = ACCEPTED_FILE_TYPES | {"application/x-ndjson", "application/jsonl"}
_ALGORITHMS: Final = {"sha256": hashlib.sha256, "md5": hashlib.md5}


@dataclass(slots=True)
class Upload:
    """One direct upload in progress (or finished)."""

    upload_id: str
    file_uid: str
    filename: str
    file_type: str
    num_bytes: int
    part_size: int
    buffer: bytearray
    state: str = "uploading"
    """``uploading``, ``completing``, ``completed``, ``corrupt`` or ``aborted``."""
    tokens: dict[int, str] = field(default_factory=dict)
    """The ETag of each stored part."""
    checkpointed: dict[int, str] = field(default_factory=dict)
    created: float = field(default_factory=time.time)
    parts_received: int = 0
    """Part PUTs stored (a part sent twice counts twice), for inspection."""

    @property
    def num_parts(self) -> int:
        return max(1, math.ceil(self.num_bytes / self.part_size))

    def span(self, part: int) -> tuple[int, int]:
        """``(offset, length)`` of a part."""
        offset = part * self.part_size
        return offset, min(self.part_size, self.num_bytes - offset)


def _sign(secret: bytes, upload_id: str, part: int, expires: int) -> str:
    message = f"{upload_id}:{part}:{expires}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


class _Uploads:
    """The upload routes' state and helpers."""

    def __init__(self, store: LensStore) -> None:
        self.store = store
        self.secret = store.upload_secret

    def get(self, upload_id: str) -> Upload:
        upload = self.store.uploads.get(upload_id)
        if not isinstance(upload, Upload):
            raise ServiceError(404, "upload_not_found", f"Upload not found: {upload_id}")
        return upload

    def in_progress(self, upload_id: str) -> Upload:
        upload = self.get(upload_id)
        if upload.state != "uploading":
            raise ServiceError(
                409, "upload_not_in_progress", f"Upload {upload_id} is {upload.state}"
            )
        return upload

    def part_info(self, request: web.Request, upload: Upload, part: int) -> dict[str, Any]:
        expires = math.ceil(time.time() + self.store.upload_url_ttl)
        signature = _sign(self.secret, upload.upload_id, part, expires)
        scheme = "https" if request.secure else "http"
        url = (
            f"{scheme}://{request.host}{STORAGE_PREFIX}/{upload.upload_id}/{part}"
            f"?expires={expires}&signature={signature}"
        )
        offset, length = upload.span(part)
        return {
            "part_number": part,
            "url": url,
            "offset": offset,
            "length": length,
            "expires_at": float(expires),
        }

    def part_numbers(self, upload: Upload, raw: Any) -> list[int]:
        if not isinstance(raw, list) or not raw:
            raise ServiceError(400, "missing_parameter", "Failed to find key: part_numbers")
        for n in raw:
            if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n < upload.num_parts:
                raise ServiceError(
                    400,
                    "invalid_parameter",
                    f"part_number {n!r} is not a part of this upload (0..{upload.num_parts - 1})",
                )
        return list(raw)

    def tokens(self, upload: Upload, raw: Any) -> dict[int, str]:
        """``{part_number: part_token}`` from a ``parts`` list, each token checked."""
        if raw is None:
            raw = []
        if not isinstance(raw, list):
            raise ServiceError(400, "invalid_parameter", "parts must be a list")
        given: dict[int, str] = {}
        for item in raw:
            part = item.get("part_number") if isinstance(item, dict) else None
            token = item.get("part_token") if isinstance(item, dict) else None
            if isinstance(part, bool) or not isinstance(part, int) or not isinstance(token, str):
                raise ServiceError(
                    400, "invalid_parameter", "each part must be {part_number, part_token}"
                )
            if upload.tokens.get(part) != token:
                raise ServiceError(
                    400,
                    "invalid_part_token",
                    f"part {part}: the token does not match the stored part (re-upload it)",
                )
            given[part] = token
        return given


def add_upload_routes(app: web.Application, store: LensStore) -> None:
    """Add the ``/files/uploads/*`` routes (behind the Lens auth) to the Lens sub-app."""
    uploads = _Uploads(store)

    async def initiate(request: web.Request) -> web.Response:
        body = await read_json(request)
        filename = body.get("filename")
        file_type = body.get("file_type")
        num_bytes = body.get("num_bytes")
        resume = body.get("resume_if_started", False)
        if not isinstance(filename, str) or not filename.strip("/"):
            raise ServiceError(400, "missing_parameter", "Failed to find key: filename")
        if not isinstance(file_type, str) or not file_type:
            raise ServiceError(400, "missing_parameter", "Failed to find key: file_type")
        if base_type(file_type) not in DIRECT_TYPES:
            raise ServiceError(400, "invalid_file_type", f"Unsupported file type: {file_type}")
        if isinstance(num_bytes, bool) or not isinstance(num_bytes, int) or num_bytes <= 0:
            raise ServiceError(400, "invalid_file_size", "num_bytes must be a positive integer")
        if num_bytes > store.max_direct_upload_bytes:
            raise ServiceError(
                413,
                "invalid_file_size",
                f"File exceeds the direct upload limit of {store.max_direct_upload_bytes} bytes",
            )
        if not isinstance(resume, bool):
            raise ServiceError(400, "invalid_parameter", "resume_if_started must be a boolean")
        name = filename.rsplit("/", 1)[-1]
        existing = next(
            (
                u
                for u in store.uploads.values()
                if isinstance(u, Upload)
                and u.state == "uploading"
                and (u.filename, u.file_type, u.num_bytes) == (name, file_type, num_bytes)
            ),
            None,
        )
        if resume and existing is not None:
            upload, is_resume = existing, True
            todo = [n for n in range(upload.num_parts) if n not in upload.checkpointed]
        else:
            part_size = max(store.upload_part_size, math.ceil(num_bytes / MAX_PARTS))
            upload = Upload(
                upload_id=f"upl-{secrets.token_hex(12)}",
                file_uid=secrets.token_hex(11),
                filename=name,
                file_type=file_type,
                num_bytes=num_bytes,
                part_size=part_size,
                buffer=bytearray(num_bytes),
            )
            store.uploads[upload.upload_id] = upload
            is_resume = False
            todo = list(range(upload.num_parts))
        return json_response(
            {
                "upload_id": upload.upload_id,
                "file_uid": upload.file_uid,
                "file_name": upload.filename,
                "total_bytes": upload.num_bytes,
                "num_parts": upload.num_parts,
                "part_size": upload.part_size,
                "is_resume": is_resume,
                "integrity_algorithm": store.upload_integrity_algorithm,
                "parts": [uploads.part_info(request, upload, n) for n in todo],
            }
        )

    async def part_urls(request: web.Request) -> web.Response:
        upload = uploads.in_progress(request.match_info["upload_id"])
        numbers = uploads.part_numbers(upload, (await read_json(request)).get("part_numbers"))
        return json_response({"parts": [uploads.part_info(request, upload, n) for n in numbers]})

    async def checkpoint(request: web.Request) -> web.Response:
        # The SDK checkpoints fire-and-forget, so some arrive after complete: on a
        # finished upload a valid checkpoint is a no-op, not an error.
        upload = uploads.get(request.match_info["upload_id"])
        if upload.state == "aborted":
            raise ServiceError(
                409, "upload_not_in_progress", f"Upload {upload.upload_id} is aborted"
            )
        tokens = uploads.tokens(upload, (await read_json(request)).get("parts"))
        if upload.state == "uploading":
            upload.checkpointed.update(tokens)
        return json_response({"num_checkpointed": len(upload.checkpointed)})

    async def complete(request: web.Request) -> web.Response:
        upload = uploads.get(request.match_info["upload_id"])
        if upload.state != "uploading":
            raise ServiceError(
                409,
                "upload_already_completed" if upload.state != "aborted" else "upload_aborted",
                f"Upload {upload.upload_id} is already {upload.state}",
            )
        body = await read_json(request)
        given = {**upload.checkpointed, **uploads.tokens(upload, body.get("parts"))}
        missing = [n for n in range(upload.num_parts) if n not in given]
        if missing:
            raise ServiceError(
                400,
                "missing_parts",
                f"{len(missing)} part(s) not uploaded or not listed: {missing[:20]}",
            )
        checksum = body.get("integrity_checksum")
        algorithm = _ALGORITHMS.get(store.upload_integrity_algorithm)
        if checksum is not None and algorithm is None:
            raise ServiceError(
                400,
                "invalid_parameter",
                f"integrity_checksum given, but the integrity algorithm is "
                f"{store.upload_integrity_algorithm!r}",
            )
        # Hashing and copying a large file take seconds: off the event loop, with the
        # upload closed to part PUTs and to a second complete meanwhile.
        upload.state = "completing"
        expected = None
        if checksum is not None and algorithm is not None:
            digest = await asyncio.to_thread(algorithm, upload.buffer)
            expected = base64.b64encode(digest.digest()).decode()
        ok = expected is None or (
            isinstance(checksum, str) and hmac.compare_digest(checksum, expected)
        )
        status = "FILE_STATUS_INGESTED" if ok else "FILE_STATUS_CORRUPT"
        data = await asyncio.to_thread(bytes, upload.buffer)
        upload.buffer = bytearray()
        upload.state = "completed" if ok else "corrupt"
        store.add_file(
            upload.filename, data, upload.file_type, file_uid=upload.file_uid, file_status=status
        )
        if status == "FILE_STATUS_CORRUPT":
            raise ServiceError(
                400,
                "integrity_check_failed",
                f"The {store.upload_integrity_algorithm} checksum does not match the parts: "
                f"{upload.filename} is stored as corrupt",
            )
        return json_response(
            {
                "file_uid": upload.file_uid,
                "file_name": upload.filename,
                "num_bytes": upload.num_bytes,
                "file_status": "Registered",
                "file_attributes": {"metadata_status": "pending"},
            }
        )

    async def abort(request: web.Request) -> web.Response:
        upload = uploads.in_progress(request.match_info["upload_id"])
        upload.state = "aborted"
        upload.buffer = bytearray()
        return json_response({"is_valid": True, "upload_id": upload.upload_id})

    base = "/files/uploads"
    app.router.add_post(f"{base}/initiate", initiate)
    app.router.add_post(f"{base}/{{upload_id}}/parts/urls", part_urls)
    app.router.add_post(f"{base}/{{upload_id}}/parts/checkpoint", checkpoint)
    app.router.add_post(f"{base}/{{upload_id}}/complete", complete)
    app.router.add_post(f"{base}/{{upload_id}}/abort", abort)


def _storage_error(status: int, code: str, message: str) -> web.Response:
    body = (
        "<?xml version='1.0' encoding='UTF-8'?>"
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    )
    return web.Response(status=status, body=body.encode(), content_type="application/xml")


def storage_app(store: LensStore, faults: Faults, error_body: ErrorBody) -> web.Application:
    """The emulated object storage: ``PUT /_storage/{upload_id}/{part}?expires&signature``.

    Mount at :data:`STORAGE_PREFIX` on the root app. No auth header: the
    signature (made by the Lens app's initiate / refresh) is the credential.
    """
    app = web.Application(middlewares=[fault_middleware(faults, error_body)])

    async def put_part(request: web.Request) -> web.Response:
        upload_id = request.match_info["upload_id"]
        try:
            part = int(request.match_info["part"])
            expires = int(request.query.get("expires", ""))
        except ValueError:
            return _storage_error(400, "InvalidArgument", "Malformed part URL")
        good = _sign(store.upload_secret, upload_id, part, expires)
        if not hmac.compare_digest(good, request.query.get("signature", "")):
            return _storage_error(403, "SignatureDoesNotMatch", "The signature does not match")
        if faults.part_urls_expired > 0:
            faults.part_urls_expired -= 1
            return _storage_error(403, "AccessDenied", "Request has expired")
        if time.time() > expires:
            return _storage_error(403, "AccessDenied", "Request has expired")
        upload = store.uploads.get(upload_id)
        if not isinstance(upload, Upload) or upload.state != "uploading":
            return _storage_error(404, "NoSuchUpload", "The upload does not exist or is finished")
        if not 0 <= part < upload.num_parts:
            return _storage_error(400, "InvalidArgument", f"No part {part} in this upload")
        offset, length = upload.span(part)
        if request.content_length is not None and request.content_length != length:
            got = request.content_length
            message = f"Part {part} is {length} bytes, got {got}"
            return _storage_error(400, "IncompleteBody", message)
        drop, faults.part_drop_after = faults.part_drop_after, None
        digest = hashlib.md5()
        received = 0
        async for chunk in request.content.iter_chunked(1 << 20):
            if received + len(chunk) > length:
                return _storage_error(400, "IncompleteBody", f"Part {part} is over {length} bytes")
            if drop is not None and received + len(chunk) >= drop:
                if request.transport is not None:
                    request.transport.abort()  # the connection drops mid-part
                log.info("fault: dropped part %d of %s after %d bytes", part, upload_id, drop)
                raise web.HTTPInternalServerError()  # never reaches the closed socket
            upload.buffer[offset + received : offset + received + len(chunk)] = chunk
            digest.update(chunk)
            received += len(chunk)
        if received != length:
            return _storage_error(
                400, "IncompleteBody", f"Part {part} is {length} bytes, got {received}"
            )
        token = f'"{digest.hexdigest()}"'
        upload.tokens[part] = token
        upload.parts_received += 1
        return web.Response(status=200, headers={"ETag": token})

    app.router.add_put("/{upload_id}/{part}", put_part)
    return app
