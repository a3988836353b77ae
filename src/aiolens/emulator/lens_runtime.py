"""A running emulated lens session: its input pump, SSE event log and mailbox.

One :class:`SessionRuntime` per session (``session.extra["runtime"]``). The
input pump runs a :class:`~aiolens.emulator.lens_engine.LensRun` at the
store's ``event_interval`` and routes every event either to the SSE log (when
an SSE writer is bound) or to the mailbox, never both (PROTOCOL §A.6.2).

The SSE log keeps every frame of the session in memory, pre-encoded once
(``id: N`` lines, N from 1), so any number of consumers and any
``Last-Event-ID`` resume are served from it. Emulator simplification: a
consumer without ``Last-Event-ID`` receives the log from its start, so tests
do not race the producer; the real service is live-only.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Final

import msgspec

from aiolens.emulator.lens_engine import LensEngineError, LensRun
from aiolens.emulator.lens_store import LensStore, SessionRecord

__all__ = ["SSE_WRITERS", "SessionRuntime", "runtime_for"]

SSE_WRITERS: Final = frozenset({"server_sent_events_writer", "server_side_events_writer"})
_encoder: Final = msgspec.json.Encoder()


class SessionRuntime:
    """Realtime state of one session."""

    def __init__(self, store: LensStore, session: SessionRecord) -> None:
        self.store = store
        self.session = session
        self.frames: list[bytes] = []
        """Encoded SSE frames; frame ``i`` has id ``i + 1``."""
        self.ended = False
        self.mailbox: list[Any] = []
        self.cursors: dict[str, int] = {}
        self.sse_bound = any(
            isinstance(s, dict) and s.get("stream_type") in SSE_WRITERS
            for s in session.lens_config.get("output_streams") or []
        )
        self._changed = asyncio.Event()
        self._pump: asyncio.Task[None] | None = None

    # ---- producers ----------------------------------------------------------------------

    def notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def changed(self) -> asyncio.Event:
        """The event set at the next change (grab it before checking state)."""
        return self._changed

    def emit(self, event: dict[str, Any]) -> None:
        """Route one lens event to the SSE log or the mailbox."""
        self.session.num_outputs += 1
        if self.sse_bound:
            self._append(event)
        else:
            self.mailbox.append(event)
        self.notify()

    def _append(self, event: dict[str, Any]) -> None:
        ident = len(self.frames) + 1
        self.frames.append(
            b"event: message\nid: %d\ndata: %s\n\n" % (ident, _encoder.encode(event))
        )

    def end(self) -> None:
        """Close the SSE stream (input exhausted or session destroyed). Idempotent."""
        if not self.ended:
            self.ended = True
            self._append({"type": "sse.stream.end"})
            self.notify()

    def bind_output(self, stream_type: str) -> None:
        self.sse_bound = stream_type in SSE_WRITERS

    def start_input(self, stream_type: str, stream_config: dict[str, Any]) -> None:
        """Start the input pump.

        Raises:
            LensEngineError: the stream cannot run (unknown file, bad params ...).
        """
        files = {fid: rec.data for fid, rec in self.store.files.items()}
        run = LensRun(self.session.lens_config, stream_type, stream_config, files)
        if self._pump is not None and not self._pump.done():
            self._pump.cancel()
        self.ended = False
        self._pump = asyncio.get_running_loop().create_task(self._run(run))

    async def _run(self, run: LensRun) -> None:
        interval = self.store.event_interval
        try:
            for n, event in enumerate(run):
                if not self.session.active:
                    return
                self.session.num_inputs += event.get("type") == "inference.result"
                self.emit(event)
                if interval > 0:
                    await asyncio.sleep(interval)
                elif n % 256 == 255:
                    await asyncio.sleep(0)
        except LensEngineError as exc:
            self.emit({"type": "error", "message": exc.message, "event_data": {"code": exc.code}})
        if self.sse_bound:
            self.end()

    def update(self, event_data: dict[str, Any]) -> None:
        """``session.update`` with inline data: emit a result describing it."""
        data = event_data.get("event_data")
        fields = sorted(data) if isinstance(data, dict) else []
        self.emit(
            {
                "type": "inference.result",
                "event_data": {
                    "response": [f"received {event_data.get('type')} with fields {fields}"],
                    "query_id": f"qry-update-{self.session.num_updates}",
                },
            }
        )

    # ---- consumers ----------------------------------------------------------------------

    def read(self, client_id: str) -> list[Any] | None:
        """New mailbox messages for ``client_id`` (a new id starts at the beginning)."""
        start = self.cursors.get(client_id, 0)
        if start >= len(self.mailbox):
            return None
        self.cursors[client_id] = len(self.mailbox)
        return self.mailbox[start:]

    def close(self) -> None:
        """Stop the pump and end the SSE stream (the session was destroyed)."""
        if self._pump is not None:
            self._pump.cancel()
        self.end()

    async def aclose(self) -> None:
        self.close()
        if self._pump is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump


def runtime_for(store: LensStore, session: SessionRecord) -> SessionRuntime:
    """The session's runtime, created on first use."""
    runtime = session.extra.get("runtime")
    if runtime is None:
        runtime = session.extra["runtime"] = SessionRuntime(store, session)
    assert isinstance(runtime, SessionRuntime)
    return runtime
