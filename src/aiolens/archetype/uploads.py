"""Direct-to-cloud multipart uploads (``files.upload(..., direct=True)``).

The flow (docs/protocol-notes.md, "Direct uploads"): initiate → ``PUT`` each
part to its presigned URL (no auth header; the ``ETag`` is the part token) →
checkpoint each finished part → complete (with the whole-file checksum) →
or abort.

* **Concurrency**: at most ``part_concurrency`` parts are in flight.
* **Memory**: parts are streamed from disk in 1 MiB chunks; what is held at
  once is about ``part_concurrency`` chunks, never a whole part.
* **Retries**: a part answered 408, 429 or 5xx, or whose connection failed,
  is sent again after the client's backoff (``Retry-After`` honoured), up to
  ``max_attempts`` times. An expired URL (403, or 400 ``TokenExpired``) is
  refreshed and the part resent; the first refresh is free.
* **Give up**: when a part fails for good (or anything else fails), the
  upload is aborted on the server and the error raised.
* **Resume**: with ``resume=True`` the initiate asks the server to reuse an
  unfinished upload of the same name, type and size; only the parts it did not
  checkpoint are sent. A *cancelled* resumable upload is left on the server
  (checkpointed parts kept) so that a later call resumes it; without
  ``resume`` a cancelled upload is aborted.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import hashlib
import logging
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import aiohttp
import msgspec

from aiolens._core.backoff import parse_retry_after
from aiolens._core.redact import get_logger
from aiolens._transport.http import HTTPTransport, Timeout
from aiolens._transport.shielded import run_to_completion
from aiolens.archetype.models import UploadedFile
from aiolens.errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    ProtocolError,
)

# direct_upload takes the client's transport: the resources' helper, not for users
# (they call files.upload(..., direct=True)).
__all__ = ["DIRECT_UPLOAD_THRESHOLD", "ProgressCallback", "UploadProgress"]

log: logging.Logger = get_logger("archetype")

DIRECT_UPLOAD_THRESHOLD: Final = 100 * 1024 * 1024
"""``files.upload()`` goes direct above this many bytes (the proxy takes ≤ 512 MB)."""

CHUNK: Final = 1 << 20
_RETRYABLE: Final = frozenset({408, 429, 500, 502, 503, 504})
_DIGESTS: Final = {"sha256": hashlib.sha256, "md5": hashlib.md5}


@dataclass(frozen=True, slots=True)
class UploadProgress:
    """Where an upload stands; given to the ``progress`` callback.

    ``bytes_done`` counts bytes handed to the connection (a part that is
    resent counts again from zero); ``parts_done`` counts finished parts.
    Resumed uploads start with the parts a previous run finished.
    """

    parts_done: int
    total_parts: int
    bytes_done: int
    total_bytes: int


ProgressCallback = Callable[[UploadProgress], object]


class _Part(msgspec.Struct, kw_only=True):
    part_number: int
    url: str
    offset: int = 0
    length: int = 0


class _Initiated(msgspec.Struct, kw_only=True):
    upload_id: str
    parts: list[_Part]
    total_bytes: int | None = None
    num_parts: int | None = None
    is_resume: bool = False
    integrity_algorithm: str | None = None


class _Urls(msgspec.Struct, kw_only=True):
    parts: list[_Part]


class _Completed(msgspec.Struct, kw_only=True):
    file_uid: str | None = None
    file_name: str


class _Source:
    """The bytes to upload: a file read by range, or bytes in memory."""

    def __init__(self, source: str | os.PathLike[str] | bytes, name: str) -> None:
        self.name = name
        if isinstance(source, bytes | bytearray | memoryview):
            self.path: Path | None = None
            self.data = memoryview(bytes(source))
            self.size = len(self.data)
        else:
            self.path = Path(source)
            self.data = memoryview(b"")
            self.size = self.path.stat().st_size

    async def chunks(self, offset: int, length: int) -> AsyncIterator[bytes]:
        """The part's bytes, ``CHUNK`` at a time.

        Each chunk of a file is read in a thread with a file handle opened and
        closed for it, so an iterator abandoned half-way (a dropped connection)
        holds no open file.
        """
        end = offset + length
        for start in range(offset, end, CHUNK):
            size = min(CHUNK, end - start)
            if self.path is None:
                yield bytes(self.data[start : start + size])
                continue
            chunk = await asyncio.to_thread(self._read, start, size)
            if len(chunk) != size:
                raise APIError(f"{self.path} shrank while it was being uploaded")
            yield chunk

    def _read(self, offset: int, size: int) -> bytes:
        assert self.path is not None
        with self.path.open("rb") as f:
            f.seek(offset)
            return f.read(size)

    def digest(self, algorithm: str) -> str:
        """The base64 whole-file digest (blocking: run it in a thread)."""
        hasher = _DIGESTS[algorithm]()
        if self.path is None:
            hasher.update(self.data)
        else:
            with self.path.open("rb") as f:
                while block := f.read(CHUNK * 4):
                    hasher.update(block)
        return base64.b64encode(hasher.digest()).decode()


async def direct_upload(
    http: HTTPTransport,
    source: str | os.PathLike[str] | bytes,
    *,
    filename: str,
    content_type: str,
    part_concurrency: int = 8,
    max_attempts: int = 5,
    progress: ProgressCallback | None = None,
    resume: bool = False,
    checkpoint: bool = True,
    checksum: bool = True,
    timeout: Timeout | None = None,
) -> UploadedFile:
    """Upload ``source`` through the direct multipart flow; see the module docs.

    Args:
        http: the client's transport (the API calls carry its auth; the part
            PUTs do not).
        source: a path (streamed from disk) or bytes.
        filename: the stored name (the ``file_id``).
        content_type: the MIME type.
        part_concurrency: parts in flight at once.
        max_attempts: tries per part before giving up.
        progress: called with an :class:`UploadProgress` after every chunk and
            part; an exception it raises fails (and aborts) the upload.
        resume: reuse an unfinished upload of the same file; keep a cancelled
            one for a later resume.
        checkpoint: record each finished part on the server (what ``resume``
            relies on); a failed checkpoint is logged, not raised.
        checksum: send the whole-file checksum with ``complete`` when the
            server names an algorithm aiolens knows (``sha256``, ``md5``).
        timeout: seconds for each API call and each idle period of a part PUT.

    Returns:
        The stored file (``file_id`` is the file's name).

    Raises:
        APIStatusError: a part failed for good, or an API call failed; the
            upload was aborted.
        APIConnectionError: a part's connection kept failing; the upload was aborted.
        ValueError: an option is out of range.
    """
    if part_concurrency < 1:
        raise ValueError("part_concurrency must be at least 1")
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    runner = _DirectUpload(
        http,
        _Source(source, filename),
        content_type=content_type,
        part_concurrency=part_concurrency,
        max_attempts=max_attempts,
        progress=progress,
        resume=resume,
        checkpoint=checkpoint,
        checksum=checksum,
        timeout=timeout,
    )
    return await runner.run()


class _DirectUpload:
    def __init__(
        self,
        http: HTTPTransport,
        source: _Source,
        *,
        content_type: str,
        part_concurrency: int,
        max_attempts: int,
        progress: ProgressCallback | None,
        resume: bool,
        checkpoint: bool,
        checksum: bool,
        timeout: Timeout | None,
    ) -> None:
        self.http = http
        self.source = source
        self.content_type = content_type
        self.concurrency = part_concurrency
        self.max_attempts = max_attempts
        self.progress = progress
        self.resume = resume
        self.checkpoint = checkpoint
        self.checksum = checksum
        self.timeout = timeout
        self.upload_id = ""
        self.parts_done = 0
        self.total_parts = 0
        self.bytes_done = 0
        self.total_bytes = source.size

    def _report(self) -> None:
        if self.progress is not None:
            self.progress(
                UploadProgress(self.parts_done, self.total_parts, self.bytes_done, self.total_bytes)
            )

    async def run(self) -> UploadedFile:
        body: dict[str, Any] = {
            "filename": self.source.name,
            "file_type": self.content_type,
            "num_bytes": self.source.size,
        }
        if self.resume:
            body["resume_if_started"] = True
        init: _Initiated = await self.http.request(
            "POST",
            "/files/uploads/initiate",
            json=body,
            response_type=_Initiated,
            idempotent=False,
            timeout=self.timeout,
        )
        self.upload_id = init.upload_id
        self.total_parts = init.num_parts or len(init.parts)
        self.total_bytes = init.total_bytes or self.source.size
        if init.is_resume:
            self.parts_done = self.total_parts - len(init.parts)
            self.bytes_done = self.total_bytes - sum(p.length for p in init.parts)
            log.info(
                "resuming upload %s of %s: %d of %d parts to send",
                init.upload_id,
                self.source.name,
                len(init.parts),
                self.total_parts,
            )
        self._report()
        algorithm = init.integrity_algorithm if self.checksum else None
        digest: asyncio.Task[str] | None = None
        if algorithm in _DIGESTS:
            digest = asyncio.create_task(asyncio.to_thread(self.source.digest, algorithm))
        elif algorithm not in (None, "none"):
            log.debug("no checksum sent: aiolens does not compute %s", algorithm)
        try:
            tokens = await self._upload_parts(init.parts)
            complete: dict[str, Any] = {
                "parts": [{"part_number": n, "part_token": t} for n, t in sorted(tokens.items())]
            }
            if digest is not None:
                complete["integrity_checksum"] = await digest
            done: _Completed = await self.http.request(
                "POST",
                f"/files/uploads/{self.upload_id}/complete",
                json=complete,
                response_type=_Completed,
                idempotent=False,
                timeout=self.timeout,
            )
        except asyncio.CancelledError:
            if not self.resume:
                await run_to_completion(self._abort())
            else:
                log.info("upload %s cancelled; resume=True resumes it", self.upload_id)
            raise
        except BaseException:
            await run_to_completion(self._abort())
            raise
        finally:
            if digest is not None and not digest.done():
                digest.cancel()
        return UploadedFile(file_id=done.file_name, file_uid=done.file_uid)

    async def _abort(self) -> None:
        """Abort on the server; a failure is logged (the original error matters more)."""
        try:
            async with asyncio.timeout(10.0):
                await self.http.request(
                    "POST",
                    f"/files/uploads/{self.upload_id}/abort",
                    json={},
                    idempotent=True,
                    max_retries=1,
                )
        except (APIError, TimeoutError) as exc:
            log.warning("could not abort upload %s: %s", self.upload_id, exc)
        else:
            log.info("upload %s of %s aborted", self.upload_id, self.source.name)

    async def _upload_parts(self, parts: list[_Part]) -> dict[int, str]:
        queue = collections.deque(parts)
        tokens: dict[int, str] = {}

        async def worker() -> None:
            while queue:
                part = queue.popleft()
                token = await self._put_part(part)
                tokens[part.part_number] = token
                self.parts_done += 1
                self._report()
                if self.checkpoint:
                    await self._checkpoint(part.part_number, token)

        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(min(self.concurrency, len(queue))):
                    group.create_task(worker())
        except BaseExceptionGroup as failed:
            raise _first_error(failed) from None
        return tokens

    async def _checkpoint(self, part_number: int, token: str) -> None:
        try:
            await self.http.request(
                "POST",
                f"/files/uploads/{self.upload_id}/parts/checkpoint",
                json={"parts": [{"part_number": part_number, "part_token": token}]},
                idempotent=True,
                timeout=self.timeout,
            )
        except APIError as exc:
            log.warning("checkpoint of part %d failed (resume resends it): %s", part_number, exc)

    async def _refresh(self, part_number: int) -> str:
        urls: _Urls = await self.http.request(
            "POST",
            f"/files/uploads/{self.upload_id}/parts/urls",
            json={"part_numbers": [part_number]},
            response_type=_Urls,
            idempotent=True,
            timeout=self.timeout,
        )
        for part in urls.parts:
            if part.part_number == part_number:
                return part.url
        raise ProtocolError(f"The server gave no new URL for part {part_number}")

    async def _body(self, part: _Part, state: _Attempt) -> AsyncIterator[bytes]:
        """One attempt's body; it counts towards the progress while the attempt lasts."""
        async for chunk in self.source.chunks(part.offset, part.length):
            if not state.live:  # the attempt is over; aiohttp has not noticed yet
                return
            state.sent += len(chunk)
            self.bytes_done += len(chunk)
            self._report()
            yield chunk

    def _end_attempt(self, state: _Attempt) -> None:
        """A failed attempt: its bytes no longer count as done."""
        state.live = False
        self.bytes_done -= state.sent
        state.sent = 0

    async def _put_part(self, part: _Part) -> str:
        """PUT one part until it is stored; its ETag (the part token)."""
        session = await self.http.client_session()
        timeout = self.http.idle_timeout(self.timeout)
        url = part.url
        refreshed = False
        attempt = 0
        while True:
            attempt_state = _Attempt()
            body = self._body(part, attempt_state)
            error: APIError
            retry_after: float | None = None
            try:
                async with session.put(
                    url,
                    data=body,
                    headers={"Content-Length": str(part.length)},
                    timeout=timeout,
                ) as resp:
                    if resp.status in (200, 201):
                        etag = resp.headers.get("ETag")
                        if not etag:
                            raise ProtocolError(f"Part {part.part_number}: no ETag in the answer")
                        return etag
                    text = await resp.text(errors="replace")
                    status = resp.status
                    retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            except (aiohttp.ClientError, TimeoutError) as exc:
                kind = APITimeoutError if isinstance(exc, TimeoutError) else APIConnectionError
                error = kind(f"Part {part.part_number}: {type(exc).__name__}: {exc}")
            else:
                self._end_attempt(attempt_state)
                if status == 403 or (status == 400 and "TokenExpired" in text):
                    url = await self._refresh(part.part_number)
                    if not refreshed:
                        refreshed = True
                        log.debug("part %d: presigned URL expired, refreshed", part.part_number)
                        continue
                    error = self.http.rules.status_error(status, text.encode())
                elif status in _RETRYABLE:
                    error = self.http.rules.status_error(
                        status, text.encode(), retry_after=retry_after
                    )
                else:
                    raise self.http.rules.status_error(status, text.encode())
            self._end_attempt(attempt_state)
            attempt += 1
            if attempt >= self.max_attempts:
                raise error
            delay = self.http.backoff.delay(attempt - 1, retry_after)
            log.info(
                "part %d of upload %s failed (%s); attempt %d/%d in %.2fs",
                part.part_number,
                self.upload_id,
                error,
                attempt + 1,
                self.max_attempts,
                delay,
            )
            await asyncio.sleep(delay)


@dataclass(slots=True)
class _Attempt:
    sent: int = 0
    live: bool = True


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error that failed a group of part workers (not the cancellations it caused)."""
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return _first_error(exc)
        if not isinstance(exc, asyncio.CancelledError):
            return exc
    return group.exceptions[0]
