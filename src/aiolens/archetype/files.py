"""The Files API: ``client.files`` (upload, list, download, delete).

Each method is one HTTP call through the client's transport, with its retry
policy and timeout; ``timeout=`` overrides the timeout for that call. Uploads
above :data:`~aiolens.archetype.uploads.DIRECT_UPLOAD_THRESHOLD` go straight to
storage (:mod:`aiolens.archetype.uploads`); smaller ones through the API as one
multipart request, retried only when the server certainly did not act on it.
"""

from __future__ import annotations

import base64
import mimetypes
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import anyio

from aiolens._transport.http import FormFile, Timeout, multipart
from aiolens._transport.resource import Resource
from aiolens._transport.shielded import run_to_completion
from aiolens.archetype.models import FileDeleted, FileMetadata, FilePage, FilesInfo, UploadedFile
from aiolens.archetype.pages import get_page, iterate_pages
from aiolens.archetype.uploads import DIRECT_UPLOAD_THRESHOLD, ProgressCallback, direct_upload

__all__ = ["FileSource", "Files", "mime_type_for"]

_MIME_BY_EXT: Final = {
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

FileSource = str | os.PathLike[str] | bytes
"""What ``files.upload`` takes: a path (read in chunks) or the bytes themselves."""


def mime_type_for(filename: str) -> str:
    """The MIME type the Lens API expects for ``filename`` (the official SDK's mapping)."""
    ext = os.path.splitext(filename)[1].lower()
    if ext in _MIME_BY_EXT:
        return _MIME_BY_EXT[ext]
    guessed, _ = mimetypes.guess_type(filename)
    return guessed or "application/octet-stream"


class Files(Resource):
    """Files: ``/files*``."""

    __slots__ = ()

    async def upload(
        self,
        source: FileSource,
        *,
        filename: str | None = None,
        content_type: str | None = None,
        timeout: Timeout | None = None,
        direct: bool | None = None,
        progress: ProgressCallback | None = None,
        part_concurrency: int = 8,
        resume: bool = False,
    ) -> UploadedFile:
        """Upload a file, streamed from disk: as one multipart ``POST /files``, or direct.

        Files above :data:`~aiolens.archetype.uploads.DIRECT_UPLOAD_THRESHOLD`
        (100 MiB), or any file with ``direct=True``, go straight to storage in
        parts (:mod:`aiolens.archetype.uploads`): concurrent, retried, resumable,
        aborted on failure. Smaller ones go through the API as one request.

        Args:
            source: a path (read in chunks, never whole into memory) or bytes.
            filename: the name to store; defaults to the path's basename. It
                becomes the ``file_id`` and replaces any file of that name.
            content_type: MIME type; derived from the extension by default.
            timeout: seconds for the whole proxy upload and its answer (an
                attempt); for a direct upload, for each API call and each idle
                period of a part. A :class:`~aiolens.Timeouts` is used as given.
            direct: ``True``/``False`` force the direct or the proxy upload;
                ``None`` chooses by size.
            progress: direct uploads: called with an
                :class:`~aiolens.archetype.uploads.UploadProgress` as bytes go out.
            part_concurrency: direct uploads: parts in flight at once.
            resume: direct uploads: continue an unfinished upload of the same
                file (only missing parts are sent), and leave a cancelled one
                resumable.

        The proxy upload is retried only when the request never left or on
        429/503. After a timeout, a reset or a cancellation the file may or may
        not be stored (check with :meth:`metadata`); the local file is always closed.

        Raises:
            PayloadTooLargeError: over the server's limit (512 MB for the proxy).
            BadRequestError: unsupported type (``invalid_file_type``).
            ValueError: an option is out of range.
        """
        name, opener = _file_source(source, filename)
        mime = content_type or mime_type_for(name)
        if direct is None:
            size = len(source) if isinstance(source, bytes) else os.stat(source).st_size
            direct = size > DIRECT_UPLOAD_THRESHOLD
        if direct:
            return await direct_upload(
                self._http,
                source,
                filename=name,
                content_type=mime,
                part_concurrency=part_concurrency,
                progress=progress,
                resume=resume,
                timeout=timeout,
            )

        return await self._http.request(
            "POST",
            "/files",
            data=multipart({"file": FormFile(opener, name, mime)}),
            response_type=UploadedFile,
            idempotent=False,
            timeout=timeout,
        )

    async def upload_base64(
        self,
        data: bytes | str,
        filename: str,
        *,
        timeout: Timeout | None = None,
    ) -> UploadedFile:
        """Upload base64-encoded contents (``POST /files/base64``).

        Args:
            data: raw bytes (encoded here) or an already base64-encoded ``str``.
            filename: the name to store, which sets the type by its extension.
        """
        encoded = data.encode() if isinstance(data, str) else base64.b64encode(data)

        return await self._http.request(
            "POST",
            "/files/base64",
            data=multipart({"file": FormFile(lambda: encoded, filename, "text/plain")}),
            response_type=UploadedFile,
            idempotent=False,
            timeout=timeout,
        )

    async def info(self, *, timeout: Timeout | None = None) -> FilesInfo:
        """Counts and sizes of the org's files (``GET /files/info``)."""
        return await self._http.request(
            "GET", "/files/info", response_type=FilesInfo, timeout=timeout
        )

    async def metadata(self, file_id: str, *, timeout: Timeout | None = None) -> FileMetadata:
        """One file's metadata (``GET /files/metadata/{file_id}``)."""
        return await self._http.request(
            "GET",
            f"/files/metadata/{_quote(file_id)}",
            response_type=FileMetadata,
            timeout=timeout,
        )

    async def all_metadata(
        self,
        *,
        shard_index: int | None = None,
        max_items_per_shard: int | None = None,
        file_type: str | None = None,
        limit: int | None = None,
        after: str | None = None,
        before: str | None = None,
        timeout: Timeout | None = None,
    ) -> FilePage:
        """One page of file metadata (``GET /files/metadata``).

        Accepts both answer shapes: the documented plain array (shard paging:
        ``shard_index``, ``max_items_per_shard``; it becomes one page with
        ``has_more=False``) and the newer cursor page (``limit``, ``after`` /
        ``before``, newest first). :meth:`iter_metadata` walks every page.

        Raises:
            ValueError: both ``after`` and ``before`` were given.
        """
        if after is not None and before is not None:
            raise ValueError("Give either after or before, not both")
        return await get_page(
            self._http,
            "/files/metadata",
            FileMetadata,
            {
                "shard_index": shard_index,
                "max_items_per_shard": max_items_per_shard,
                "file_type": file_type,
                "limit": limit,
                "after": after,
                "before": before,
            },
            timeout=timeout,
        )

    def iter_metadata(
        self,
        *,
        limit: int = 100,
        file_type: str | None = None,
        after: str | None = None,
        timeout: Timeout | None = None,
    ) -> AsyncIterator[FileMetadata]:
        """Every file's metadata, newest first, ``limit`` per request.

        ``async for meta in client.files.iter_metadata(): ...`` fetches the next
        page only when the previous one is used up; a server that answers the
        plain array gives one page. ``timeout`` applies to each page request.

        Raises:
            ValueError: ``limit`` is not between 1 and 1000.
            ProtocolError: the server's cursors loop.
        """
        if not 1 <= limit <= 1000:
            raise ValueError("limit must be between 1 and 1000")

        async def fetch(cursor: str | None) -> FilePage:
            return await self.all_metadata(
                limit=limit, after=cursor, file_type=file_type, timeout=timeout
            )

        return iterate_pages(fetch, after=after)

    async def download(
        self,
        file_id: str,
        destination: str | os.PathLike[str],
        *,
        chunk_size: int = 1 << 20,
        timeout: Timeout | None = None,
    ) -> Path:
        """Stream a file to ``destination`` (``GET /files/download/{file_id}``).

        The body is written as it arrives into ``<destination>.part`` and moved
        to ``destination`` (replacing any file there) when complete, so a
        cancelled or failed download leaves no partial file behind.

        Args:
            file_id: the file.
            destination: where to write it.
            chunk_size: bytes read and written at a time.
            timeout: seconds without receiving data before the download fails
                (the whole transfer may take longer); defaults to the client's
                timeout. A :class:`~aiolens.Timeouts` is used as given.

        Returns:
            The destination path.

        Raises:
            NotFoundError: no such file.
            APIConnectionError: the connection broke mid-transfer
                (``APITimeoutError`` when it stalled).
        """
        dest = Path(destination)
        part = dest.with_name(dest.name + ".part")
        try:
            async with (
                self._http.stream(
                    "GET",
                    f"/files/download/{_quote(file_id)}",
                    timeout=self._http.idle_timeout(timeout),
                ) as resp,
                await anyio.open_file(part, "wb") as out,
            ):
                async for chunk in resp.content.iter_chunked(chunk_size):
                    await out.write(chunk)
            await anyio.Path(part).replace(dest)
        except BaseException:
            await run_to_completion(anyio.Path(part).unlink(missing_ok=True))
            raise
        return dest

    async def read(self, file_id: str, *, timeout: Timeout | None = None) -> bytes:
        """Download a (small) file into memory."""
        async with self._http.stream(
            "GET", f"/files/download/{_quote(file_id)}", timeout=timeout
        ) as resp:
            return await resp.read()

    async def delete(self, file_id: str, *, timeout: Timeout | None = None) -> FileDeleted:
        """Delete a file (``DELETE /files/delete/{file_id}``)."""
        return await self._http.request(
            "DELETE",
            f"/files/delete/{_quote(file_id)}",
            response_type=FileDeleted,
            timeout=timeout,
        )


def _quote(segment: str) -> str:
    return quote(segment, safe="")


def _file_source(source: FileSource, filename: str | None) -> tuple[str, Any]:
    """The stored name and a factory of fresh bodies (one per attempt)."""
    if isinstance(source, bytes | bytearray | memoryview):
        if not filename:
            raise ValueError("filename is required when uploading bytes")
        data = bytes(source)
        return filename, lambda: data
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"No such file: {path}")
    return filename or path.name, lambda: path.open("rb")
