"""A minimal, fast stand-in for the Lens realtime endpoints, for the transport figures.

Run it in its own process: ``python -m benchmarks.standin --port 0`` prints
``PORT <n>`` on stdout once it listens, then serves until killed.

It speaks just enough of the Lens API over one raw asyncio protocol (no
framework), so that the server costs little next to the client being
measured, and costs the same whichever client is measured:

* ``GET /v0.5/lens/sessions/<id>`` with ``Upgrade: websocket``: a WebSocket
  (RFC 6455, no extensions, so no compression) that answers every text or
  binary frame ``{"type": "X", ...}`` with one text frame
  ``{"type": "X.response", "event_data": ...}``, in order. All the replies to
  the frames of one read are written with one ``write``. Pings get pongs, a
  close frame gets a close frame.
* ``GET /v0.5/lens/sessions/consumer/<id>``: a ``text/event-stream`` with
  chunked transfer encoding, framed as the emulator frames it:
  ``sse.stream.start`` (no id), then ``N`` ``inference.result`` events of the
  documented shape (``event: message``, ``id: 1..N``), then
  ``sse.stream.end``, then EOF. ``N`` is read from the session id
  (``...-n<N>``, e.g. ``lsn-bench-n100000``). The body is encoded once per
  ``N`` and written in 64 KiB chunks, honouring TCP flow control.

Nothing is checked (no auth): it is a benchmark fixture, not an emulator.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import re
import resource
import sys
from typing import Final

import msgspec

try:  # websockets' C helper; the pure-Python fallback below is only slower
    from websockets.speedups import apply_mask as _apply_mask
except ImportError:  # pragma: no cover

    def _apply_mask(data: bytes, mask: bytes) -> bytes:
        n = len(data)
        key = (mask * (n // 4 + 1))[:n]
        return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


__all__ = ["main", "sse_body", "sse_event"]

_GUID: Final = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_CHUNK: Final = 64 * 1024
_COUNT = re.compile(rb"-n(\d+)$")


class _Type(msgspec.Struct):
    type: str = ""


_type_decoder: Final = msgspec.json.Decoder(_Type)
_encoder: Final = msgspec.json.Encoder()


def sse_event(i: int, total: int) -> dict[str, object]:
    """The ``i``-th ``inference.result`` of a stream, in the examples' shape.

    See docs/protocol-notes.md, "Lens events".
    """
    return {
        "type": "inference.result",
        "timestamp": 1741843200.0 + i * 0.01,
        "event_data": {
            "response": [f"Window {i}: the sensor readings are steady."],
            "query_id": f"qry-{i:08d}",
            "query_time_sec": 0.012,
            "sensor_timestamp": f"00:{i // 6000 % 60:02d}:{i // 100 % 60:02d}",
            "query_metadata": {
                "query_metadata": {
                    "file_id": "sensor.csv",
                    "read_index": i,
                    "window_size": 1,
                    "total_rows": total,
                }
            },
        },
    }


def sse_body(session_id: str, total: int) -> bytes:
    """The whole event stream (unchunked) for ``total`` events."""
    start = {
        "type": "sse.stream.start",
        "event_data": {"session_id": session_id, "reader_id": "bench"},
    }
    parts = [b"event: message\ndata: %s\n\n" % _encoder.encode(start)]
    for i in range(1, total + 1):
        data = _encoder.encode(sse_event(i, total))
        parts.append(b"event: message\nid: %d\ndata: %s\n\n" % (i, data))
    parts.append(b'event: message\ndata: {"type": "sse.stream.end"}\n\n')
    return b"".join(parts)


def _chunked(body: bytes) -> list[bytes]:
    out = []
    for i in range(0, len(body), _CHUNK):
        part = body[i : i + _CHUNK]
        out.append(b"%x\r\n%s\r\n" % (len(part), part))
    out.append(b"0\r\n\r\n")
    return out


_bodies: dict[int, list[bytes]] = {}


def _reply_for(kind: str) -> bytes:
    if kind == "session.validate":
        data: object = {"is_valid": True, "error_messages": []}
    else:
        data = None
    return _text_frame(_encoder.encode({"type": f"{kind}.response", "event_data": data}))


def _text_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 127)) + n.to_bytes(8, "big")
    return head + payload


_replies: dict[bytes, bytes] = {}
_ERROR_FRAME: Final = _text_frame(b'{"type": "error", "message": "not a JSON object with a type"}')


class _Connection(asyncio.Protocol):
    """One TCP connection: an HTTP request, then a WebSocket or an event stream."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._mode = "http"
        self._fragments: list[bytes] = []
        self._writable = asyncio.Event()
        self._writable.set()
        self._closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._writable.set()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if self._mode == "http":
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self._buf[:end])
            del self._buf[: end + 4]
            self._request(head)
        if self._mode == "ws":
            self._frames()

    # ---- HTTP ---------------------------------------------------------------------------

    def _request(self, head: bytes) -> None:
        assert self._transport is not None
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ")
        path = parts[1] if len(parts) > 1 else b"/"
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if headers.get(b"upgrade", b"").lower() == b"websocket":
            key = headers.get(b"sec-websocket-key", b"")
            accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
            self._transport.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n" % accept
            )
            self._mode = "ws"
            return
        path = path.split(b"?")[0]
        if b"/lens/sessions/consumer/" in path:
            session_id = path.rsplit(b"/", 1)[1]
            match = _COUNT.search(session_id)
            total = int(match.group(1)) if match else 0
            body = _bodies.get(total)
            if body is None:
                body = _bodies[total] = _chunked(sse_body(session_id.decode(), total))
            self._transport.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n"
                b"Connection: close\r\n\r\n"
            )
            self._mode = "sse"
            asyncio.get_running_loop().create_task(self._stream(body))
            return
        self._transport.write(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        self._transport.close()

    async def _stream(self, chunks: list[bytes]) -> None:
        transport = self._transport
        assert transport is not None
        for chunk in chunks:
            if not self._writable.is_set():
                await self._writable.wait()
            if self._closed:
                return
            transport.write(chunk)
        transport.close()

    # ---- WebSocket ----------------------------------------------------------------------

    def _frames(self) -> None:
        transport = self._transport
        assert transport is not None
        buf = self._buf
        out: list[bytes] = []
        pos = 0
        size = len(buf)
        while size - pos >= 2:
            b0 = buf[pos]
            b1 = buf[pos + 1]
            length = b1 & 0x7F
            offset = pos + 2
            if length == 126:
                if size - offset < 2:
                    break
                length = int.from_bytes(buf[offset : offset + 2], "big")
                offset += 2
            elif length == 127:
                if size - offset < 8:
                    break
                length = int.from_bytes(buf[offset : offset + 8], "big")
                offset += 8
            mask = b""
            if b1 & 0x80:
                if size - offset < 4:
                    break
                mask = bytes(buf[offset : offset + 4])
                offset += 4
            if size - offset < length:
                break
            payload = bytes(buf[offset : offset + length])
            pos = offset + length
            if mask:
                payload = _apply_mask(payload, mask)
            opcode = b0 & 0x0F
            if opcode == 0x0:  # continuation
                self._fragments.append(payload)
                if b0 & 0x80:
                    out.append(self._answer(b"".join(self._fragments)))
                    self._fragments.clear()
            elif opcode in (0x1, 0x2):
                if b0 & 0x80:
                    out.append(self._answer(payload))
                else:
                    self._fragments = [payload]
            elif opcode == 0x9:  # ping
                out.append(_text_frame(payload, 0xA))
            elif opcode == 0x8:  # close
                out.append(_text_frame(payload[:2], 0x8))
                transport.write(b"".join(out))
                transport.close()
                del buf[:pos]
                return
        if pos:
            del buf[:pos]
        if out:
            transport.write(b"".join(out))

    @staticmethod
    def _answer(payload: bytes) -> bytes:
        try:
            kind = _type_decoder.decode(payload).type
        except msgspec.DecodeError:
            return _ERROR_FRAME
        if not kind:
            return _ERROR_FRAME
        key = kind.encode()
        reply = _replies.get(key)
        if reply is None:
            reply = _replies[key] = _reply_for(kind)
        return reply


def raise_fd_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


async def _serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Connection, host, port, backlog=4096, reuse_address=True)
    bound = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"PORT {bound}\n")
    sys.stdout.flush()
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    """Serve until killed."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.standin")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    raise_fd_limit()
    asyncio.run(_serve(args.host, args.port))


if __name__ == "__main__":
    main()
