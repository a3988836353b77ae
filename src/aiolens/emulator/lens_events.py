"""Session events of the emulated Lens API (docs/protocol-notes.md, "WebSocket events").

One function, :func:`handle_event`, answers a session event; the WebSocket
route and ``POST /lens/sessions/events/process`` both use it, so a session
behaves the same over either channel.

* Replies: ``{"type": "<type>.response", "event_data": ...}`` (``null`` when
  there is nothing to say); ``session.status`` answers the bare session
  record, in the create record's shape (``LensSessionStatus.`` prefix
  included, the asking socket not counted in ``num_active_connections``);
  failures answer ``{"type": "error", "message": ...}``.
* The first event of a session (like its first WebSocket or SSE connection,
  see :func:`start_session`) marks it RUNNING and starts the input streams its
  ``lens_config`` already names.
* ``session.modify`` merges into ``model_parameters``, which the lens engine
  reads over the pipeline's ``processor_config``: the next ``input_stream.set``
  runs with the new ``input_n_shot``, ``csv_configs``, window sizes ...; a
  stream already running keeps the settings it started with.
* ``session.destroy`` answers, then the session is DESTROYED: its input
  stops, its SSE streams get ``sse.stream.end`` and its WebSockets close.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from aiolens.emulator.lens_engine import LensEngineError
from aiolens.emulator.lens_runtime import runtime_for
from aiolens.emulator.lens_store import LensStore, SessionRecord

__all__ = ["EventContext", "destroy", "handle_event", "start_session"]

MODEL_QUERY_PROCESSORS = frozenset({"lens_model_query_processor", "lens_noop_processor"})


class EventContext:
    """What an event handler needs besides the session: the store and URLs."""

    __slots__ = ("api_key", "own_connections", "store", "ws_base")

    def __init__(self, store: LensStore, ws_base: str, *, own_connections: int = 0) -> None:
        self.store: LensStore = store
        self.ws_base: str = ws_base
        self.api_key: str = store.api_key
        self.own_connections: int = own_connections
        """Connections of the asker counted in the session (its WebSocket: 1; REST: 0)."""


def _reply(event_type: str, data: Any = None) -> dict[str, Any]:
    return {"type": f"{event_type}.response", "event_data": data}


def _error(message: str) -> dict[str, Any]:
    return {"type": "error", "message": message}


def _processors(session: SessionRecord) -> list[str]:
    pipeline = session.lens_config.get("model_pipeline") or []
    return [p.get("processor_name", "") for p in pipeline if isinstance(p, dict)]


def _parameters(session: SessionRecord) -> dict[str, Any]:
    params = session.lens_config.setdefault("model_parameters", {})
    assert isinstance(params, dict)
    return params


def handle_event(
    ctx: EventContext, session: SessionRecord, event_type: str, event_data: Any
) -> dict[str, Any]:
    """Answer one session event with exactly one reply.

    Unknown event types and events on a destroyed session answer
    ``{"type": "error", "message": ...}``.
    """
    if not session.active and event_type != "session.status":
        return _error(f"Unknown session id: {session.session_id}")
    if event_data is not None and not isinstance(event_data, dict):  # [DOC] "obj (optional)"
        return _error(
            f"event_data of {event_type} must be an object, not {type(event_data).__name__}"
        )
    if session.active:
        start_session(ctx.store, session)
    session.num_events += 1
    session.touch()
    data = event_data if isinstance(event_data, dict) else {}
    if event_type == "session.status":
        # The create record's shape, prefix included (seed 001); the asking socket is
        # not one of the num_active_connections it reports (seed 001 shows 0).
        record = session.record(ctx.ws_base, ctx.api_key, enum_prefix=True)
        record["num_active_connections"] -= ctx.own_connections
        return record
    if event_type == "session.heartbeat":
        return _reply(event_type)
    if event_type == "session.validate":
        return _reply(event_type, {"is_valid": True, "error_messages": []})
    if event_type == "session.get":
        return _reply(event_type, dict(_parameters(session)))
    if event_type == "session.modify":
        _modify(session, data)
        session.num_updates += 1
        return _reply(event_type, {"is_valid": True, **_parameters(session)})
    if event_type == "session.update":
        session.num_updates += 1
        session.num_inputs += 1
        runtime_for(ctx.store, session).update(data)
        return _reply(event_type, {"is_valid": True, "num_inputs": session.num_inputs})
    if event_type == "session.destroy":
        destroy(session)
        return _reply(event_type, {"session_status": session.status})
    if event_type == "session.read":
        client_id = data.get("client_id")
        if not isinstance(client_id, str) or not client_id:
            return _error("session.read needs event_data.client_id")
        messages = runtime_for(ctx.store, session).read(client_id)
        if messages is None:
            return _reply(event_type)
        return _reply(event_type, {"messages": messages, "client_id": client_id})
    if event_type in ("input_stream.set", "output_stream.set"):
        stream_type = data.get("stream_type")
        config = data.get("stream_config") or {}
        if not isinstance(stream_type, str) or not isinstance(config, dict):
            return _error(f"{event_type} needs event_data.stream_type and stream_config")
        runtime = runtime_for(ctx.store, session)
        if event_type == "output_stream.set":
            runtime.bind_output(stream_type)
            session.output_data_stream_id = stream_type
        else:
            try:
                runtime.start_input(stream_type, config)
            except LensEngineError as exc:
                return _error(f"{exc.code}: {exc.message}")
            session.input_data_stream_id = stream_type
        key = "input_streams" if event_type.startswith("input") else "output_streams"
        session.lens_config[key] = [{"stream_type": stream_type, "stream_config": config}]
        return _reply(event_type, {"is_valid": True})
    if event_type == "model.query":
        return _model_query(session, data)
    return _error(f"Unknown event type: {event_type}")


def start_session(store: LensStore, session: SessionRecord) -> None:
    """Mark the session RUNNING and start the input streams its lens names."""
    session.start()
    if session.active and session.lens_config.get("input_streams"):
        runtime_for(store, session).autostart()


def _modify(session: SessionRecord, data: dict[str, Any]) -> None:
    # The lens engine reads model_parameters (and model_parameters["csv_configs"])
    # over the pipeline's processor_config, so this is where changes take effect.
    _parameters(session).update(data)


def destroy(session: SessionRecord) -> None:
    """Move a session to DESTROYED (idempotent); its streams end, its sockets close."""
    if session.active:
        session.status = "SESSION_STATUS_DESTROYED"
        session.session_destroyed_timestamp = time.time()
        session.touch()
    runtime = session.extra.get("runtime")
    if runtime is not None:
        runtime.close()


def _model_query(session: SessionRecord, data: dict[str, Any]) -> dict[str, Any]:
    if not MODEL_QUERY_PROCESSORS.intersection(_processors(session)):
        return {"type": "model.query.response", "message": "Response timed out for query"}
    focus = str(data.get("focus") or _parameters(session).get("focus") or "Describe the image.")
    items = data.get("data") or []
    digest = hashlib.sha256(repr((focus, items)).encode()).hexdigest()
    answers = (
        "A person standing in a well-lit room.",
        "A machine on a factory floor.",
        "A street with parked cars.",
        "A desk with a laptop and a cup.",
    )
    answer = answers[int(digest[:8], 16) % len(answers)]
    session.num_outputs += 1
    text = f"[emulated] {answer}"
    return _reply(
        "model.query",
        {
            "result": text,  # the seed's field (seed 001); the rest mirrors /query
            "response": [text],
            "query_id": f"qry-{digest[:16]}",
            "query_time_sec": 0.0,
            "focus": focus,
            "num_inputs": len(items) if isinstance(items, list) else 0,
        },
    )
