"""Serving instances of the emulated Agents API (docs/protocol-notes.md, "Agents API").

A bundle run with ``mode: "serving"`` is created ``running`` and answers
windows of sensor data until it is cancelled:

* ``POST agents/instances/{id}/query`` with one window answers
  ``{status: "completed", query_response_time_ms, response}``;
* ``GET agents/instances/{id}/connect`` upgrades to a WebSocket: its first
  frame is ``{status: "connected"}``, then every JSON message is answered by
  one frame, in order: the same ``completed`` answer, or ``{status: "failed",
  error: {code, message}}`` for a window the agent cannot read (the socket
  stays open). Cancelling the instance closes its sockets (1000).

A window is columnar ``{columns, rows}`` (other fields such as
``window_index`` or ``sample_rate_hz`` are echoed back) or ``{data: [records]}``.
The agent is fitted once, on the first query. Fault knobs: ``reply_delay``,
``malformed_after`` and ``ws_drop_after`` act on the socket as on the Lens one.
"""

from __future__ import annotations

import time
from typing import Any, Final

import msgspec
from aiohttp import WSMsgType, web

from aiolens.emulator._web import ReplyFaults, ServiceError, abort_connection
from aiolens.emulator.agents_engine import AgentError, table_from_window
from aiolens.emulator.agents_jobs import agent_for
from aiolens.emulator.agents_store import AgentsStore, Instance, now_iso
from aiolens.emulator.faults import Faults
from aiolens.emulator.lens_engine import Window

__all__ = ["AgentSockets", "answer_query"]

_encoder: Final = msgspec.json.Encoder()
_decoder: Final = msgspec.json.Decoder()
_MALFORMED: Final = '{"status": "completed", "response": '
_ECHOED: Final = ("window_index", "start_timestamp", "finish_timestamp", "sample_rate_hz")


def serving_instance(instance: Instance) -> None:
    """Check that an instance can answer queries.

    Raises:
        ServiceError: 409 ``not_serving`` for a batch instance or one that is
            not running.
    """
    if instance.mode != "serving":
        raise ServiceError(409, "not_serving", f"Instance {instance.id} is not a serving instance")
    if instance.status != "running":
        raise ServiceError(409, "not_serving", f"Instance {instance.id} is {instance.status}")


def answer_query(store: AgentsStore, instance: Instance, window: Any) -> dict[str, Any]:
    """Run the instance's agent on one window.

    Raises:
        AgentError: the window cannot be read, or the agent cannot be fitted.
    """
    started = time.perf_counter()
    if not isinstance(window, dict):
        raise AgentError("invalid_input", "A query is a JSON object (one window)")
    if instance.agent is None:
        instance.agent = agent_for(store, instance)
    agent = instance.agent
    table = table_from_window(window)
    whole = Window(0, table.total_rows, table.columns, table.values, table.total_rows)
    prediction = agent.predict([whole])[0]
    for name in ("window_index", "read_index", "rows", "sensor_timestamp"):
        prediction.pop(name, None)
    prediction["rows"] = table.total_rows
    prediction.update({k: window[k] for k in _ECHOED if k in window})
    instance.queries += 1
    return {
        "status": "completed",
        "query_response_time_ms": round((time.perf_counter() - started) * 1000, 3),
        "response": prediction,
    }


def failed(exc: AgentError) -> dict[str, Any]:
    """The answer to a window the agent could not process."""
    return {"status": "failed", "error": {"code": exc.code, "message": exc.message}}


class AgentSockets:
    """The open connect sockets, per instance (closed on cancel and on shutdown)."""

    def __init__(self, store: AgentsStore, faults: Faults) -> None:
        self.store = store
        self.faults = faults
        self.sockets: dict[str, set[web.WebSocketResponse]] = {}

    async def connect(self, request: web.Request) -> web.WebSocketResponse:
        instance = self.store.instance(request.match_info["instance_id"])
        serving_instance(instance)  # refused before the upgrade: 404 / 409
        ws = web.WebSocketResponse(compress=False, max_msg_size=16 * 1024 * 1024)
        await ws.prepare(request)
        group = self.sockets.setdefault(instance.id, set())
        group.add(ws)
        instance.log("info", "serving.connected", "Client connected")
        try:
            await ws.send_str('{"status":"connected"}')
            await self._serve(request, ws, instance)
        except ConnectionResetError:
            pass
        finally:
            group.discard(ws)
            instance.log("info", "serving.disconnected", "Client disconnected")
        return ws

    async def _serve(
        self, request: web.Request, ws: web.WebSocketResponse, instance: Instance
    ) -> None:
        replies = ReplyFaults(self.faults)
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT and msg.type is not WSMsgType.BINARY:
                continue
            try:
                if instance.status != "running":
                    raise AgentError("not_serving", f"Instance {instance.id} is {instance.status}")
                reply = answer_query(self.store, instance, _decoder.decode(msg.data))
            except msgspec.DecodeError as exc:
                reply = failed(AgentError("malformed_json", str(exc)))
            except AgentError as exc:
                reply = failed(exc)
            if await replies.before_reply():
                await ws.send_str(_MALFORMED)
            await ws.send_str(_encoder.encode(reply).decode())
            if replies.replied():
                await abort_connection(request)
                return

    async def close_instance(self, instance_id: str) -> None:
        """Close the sockets of a cancelled or deleted instance (1000)."""
        for ws in list(self.sockets.pop(instance_id, ())):
            await ws.close(code=1000, message=b"instance stopped")

    async def shutdown(self, app: web.Application) -> None:
        for instance_id in list(self.sockets):
            for ws in list(self.sockets.pop(instance_id, ())):
                await ws.close(code=1001, message=b"emulator shutting down")


def start_serving(instance: Instance) -> None:
    """Mark a serving instance running (it has no background job)."""
    instance.status = "running"
    instance.started_at = now_iso()
    instance.event("instance.started", "Serving instance started")
