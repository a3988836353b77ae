"""Drive an emulated Lens API with the official ``archetypeai`` SDK; one JSON line per check.

Run by ``tests/conformance/test_archetypeai_sdk.py`` with the interpreter of the
SDK's own virtualenv (the SDK pins ``websockets<16``, so it cannot share ours)::

    .venv-sdk/bin/python tests/conformance/archetypeai_driver.py LENS_URL API_KEY WORKDIR

It imports nothing from aiolens or pytest. Each check prints
``{"flow", "check", "ok", "detail"}``; the process ends with ``os._exit`` so
that the SDK's socket threads cannot keep it alive (see ``destroy``).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from archetypeai import ApiError, ArchetypeAI

EXAMPLE_LENS = "lns-fd669361822b07e2-237ab3ffd79199b0"
SSE_WRITER = {"stream_type": "server_sent_events_writer", "stream_config": {}}
CSV_ROWS = 60

failures = 0


def check(flow: str, name: str, ok: bool, detail: Any = "") -> None:
    global failures
    failures += not ok
    line = {"flow": flow, "check": name, "ok": bool(ok), "detail": str(detail)[:300]}
    print(json.dumps(line), flush=True)


def flow(name: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Run a flow; an exception is one failed check, and the next flow still runs."""

    def wrap(fn: Callable[..., None]) -> Callable[..., None]:
        def run(*args: Any) -> None:
            try:
                fn(*args)
            except Exception as exc:
                check(name, "raised", False, "".join(traceback.format_exception_only(exc)))

        return run

    return wrap


def refused(call: Callable[[], Any], code: str) -> tuple[bool, str]:
    """Whether ``call`` raised the SDK's ApiError carrying ``code``."""
    try:
        got = call()
    except ApiError as exc:
        return exc.validate_error_code_exists(code), str(exc.errors)
    return False, f"not refused: {got}"


@flow("lens templates")
def lens_templates(client: ArchetypeAI) -> None:
    lens = client.lens
    check("lens templates", "get_info", "num_lenses" in lens.get_info())
    builtin = lens.get_metadata(lens_id=EXAMPLE_LENS)
    pipeline = builtin[0]["lens_config"]["model_pipeline"]
    check(
        "lens templates",
        "get_metadata (seed lens is noop)",
        pipeline[0]["processor_name"] == "lens_noop_processor",
        pipeline,
    )
    registered = lens.register(
        {
            "lens_name": "Sensor Log Detector",
            "lens_config": {
                "model_pipeline": [{"processor_name": "lens_sensor_logs_processor"}],
                "model_parameters": {"sensor_buffer_size": 1},
                "output_streams": [SSE_WRITER],
            },
        }
    )
    check(
        "lens templates",
        "register (nested lens_config)",
        registered["lens_name"] == "Sensor Log Detector",
        registered["lens_id"],
    )
    clone = lens.clone(registered["lens_id"])
    check(
        "lens templates",
        "clone",
        clone["lens_config"].get("origin_lens_id") == registered["lens_id"],
        clone["lens_id"],
    )
    modified = lens.modify(clone["lens_id"], {"lens_name": "Renamed"})
    check(
        "lens templates",
        "modify (flattened params)",
        modified.get("lens_name") == "Renamed",
        modified.get("lens_name"),
    )
    deleted = lens.delete(clone["lens_id"])
    check("lens templates", "delete", deleted.get("is_valid") is True, deleted)
    ok, detail = refused(lambda: lens.delete(EXAMPLE_LENS), "lens_not_modifiable")
    check("lens templates", "delete a built-in lens is refused (409)", ok, detail)
    lens.delete(registered["lens_id"])


@flow("files")
def files(client: ArchetypeAI, work: Path) -> None:
    csv = work / "readings.csv"
    csv.write_text("t,ax,ay\n" + "".join(f"{i},{i % 7},{i % 5}\n" for i in range(CSV_ROWS)))
    proxy = client.files.local.upload(str(csv))
    check("files", "upload via proxy", proxy.get("file_id") == "readings.csv", proxy)

    big = work / "big.txt"
    data = os.urandom(5 * 64 * 1024 + 123)
    big.write_bytes(data)
    progress: list[tuple[int, int, int, int]] = []
    direct = client.files.local.upload(
        str(big), use_proxy=False, max_workers=3, on_progress=lambda *a: progress.append(a)
    )
    check(
        "files",
        "upload direct (multipart)",
        direct.get("file_id") == "big.txt" and direct.get("file_uid"),
        direct,
    )
    check(
        "files",
        "direct upload progress",
        progress[-1:] == [(6, 6, len(data), len(data))],
        progress[-1:],
    )
    resumed = client.files.local.upload(str(big), use_proxy=False, allow_resume=True)
    check("files", "upload direct with allow_resume", resumed.get("file_id") == "big.txt", resumed)
    out = work / "copy.txt"
    check(
        "files",
        "download",
        client.files.local.download("big.txt", str(out)) and out.read_bytes() == data,
    )

    info = client.files.get_info()
    check("files", "get_info", info.get("num_files") == 2, info)
    one = client.files.get_metadata(file_id="readings.csv")
    check(
        "files",
        "get_metadata(file_id)",
        one.get("file_attributes", {}).get("num_rows") == CSV_ROWS,
        one,
    )
    page = client.files.get_metadata()
    check(
        "files",
        "get_metadata() is a cursor page",
        isinstance(page, dict) and len(page.get("data", [])) == 2,
        type(page).__name__,
    )
    walked = [m["file_id"] for m in client.files.iter_metadata(limit=1)]
    check("files", "iter_metadata (cursor pages)", walked == ["big.txt", "readings.csv"], walked)
    client.files.local.delete("big.txt")
    ok, detail = refused(lambda: client.files.get_metadata(file_id="big.txt"), "upload_not_found")
    check("files", "deleted file is gone (404)", ok, detail)


def describer_lens(client: ArchetypeAI) -> str:
    registered = client.lens.register(
        {
            "lens_name": "describer",
            "model_pipeline": [{"processor_name": "lens_sensor_logs_processor"}],
        }
    )
    return str(registered["lens_id"])


CSV_INPUT = {
    "stream_type": "csv_file_reader",
    "stream_config": {"file_id": "readings.csv", "window_size": 5, "step_size": 5},
}


@flow("session websocket")
def session_websocket(client: ArchetypeAI) -> None:
    sessions = client.lens.sessions
    created = sessions.create(EXAMPLE_LENS)
    session_id = created["session_id"]
    check(
        "session websocket",
        "create",
        created["session_status"] == "LensSessionStatus.SESSION_STATUS_REGISTERED",
        created["session_status"],
    )
    check("session websocket", "connect", sessions.connect(session_id, created["session_endpoint"]))

    def write(event: dict[str, Any]) -> dict[str, Any]:
        reply: dict[str, Any] = sessions.write(session_id, event)
        return reply

    status = write({"type": "session.status"})
    check(
        "session websocket",
        "session.status",
        status.get("session_id") == session_id and "type" not in status,
        status.get("session_status"),
    )
    validate = write({"type": "session.validate"})
    check(
        "session websocket",
        "session.validate",
        validate.get("event_data", {}).get("is_valid") is True,
        validate,
    )
    got = write({"type": "session.get", "event_data": {}})
    check("session websocket", "session.get", got.get("type") == "session.get.response", got)
    modify = write({"type": "session.modify", "event_data": {"focus": "Count the cars."}})
    check(
        "session websocket",
        "session.modify",
        modify.get("type") == "session.modify.response",
        modify,
    )
    update = write(
        {
            "type": "session.update",
            "event_data": {"type": "data.json", "event_data": {"sensor_id": "s1", "value": 3}},
        }
    )
    check(
        "session websocket",
        "session.update",
        update.get("type") == "session.update.response",
        update,
    )
    query = write(
        {
            "type": "model.query",
            "event_data": {
                "model_version": "Newton::c2_4_7b_251215a172f6d7",
                "template_name": "image_qa_template_task",
                "instruction": "Answer the following question about the image:",
                "focus": "Describe the image.",
                "max_new_tokens": 512,
                "data": [{"type": "base64_img", "base64_img": "aGVsbG8="}],
                "sensor_metadata": {},
            },
        }
    )
    result = query.get("event_data", {}).get("result")
    check(
        "session websocket",
        "model.query (event_data.result)",
        isinstance(result, str) and bool(result),
        result,
    )
    read = sessions.read(session_id, "reader-1")
    messages = (read.get("event_data") or {}).get("messages", [])
    printed = [f"[{m['timestamp']}] {m['type']}: {m['data']}" for m in messages]  # seed 001's code
    check(
        "session websocket",
        "session.read (seed's code)",
        len(printed) == 1 and read["event_data"].get("client_id") == "reader-1",
        printed,
    )
    output = write(
        {
            "type": "output_stream.set",
            "event_data": {"stream_type": "kafka_writer", "stream_config": {"topic_ids": ["t"]}},
        }
    )
    check(
        "session websocket",
        "output_stream.set",
        output.get("type") == "output_stream.set.response",
        output,
    )
    rtsp = write(
        {
            "type": "input_stream.set",
            "event_data": {
                "stream_type": "rtsp_video_streamer",
                "stream_config": {
                    "rtsp_url": "rtsp://camera.example.com:554/stream",
                    "target_image_size": [360, 640],
                    "target_frame_rate_hz": 0.2,
                },
            },
        }
    )
    check(
        "session websocket",
        "input_stream.set (rtsp_video_streamer)",
        rtsp.get("type") == "input_stream.set.response",
        rtsp,
    )
    beat = write({"type": "session.heartbeat"})
    check(
        "session websocket",
        "session.heartbeat",
        beat.get("type") == "session.heartbeat.response",
        beat,
    )
    unknown = write({"type": "session.nonsense"})
    check(
        "session websocket",
        "unknown event is an error reply",
        unknown.get("type") == "error",
        unknown,
    )
    rest = sessions.process_event(session_id, {"type": "session.validate", "event_data": {}})
    check(
        "session websocket",
        "process_event (REST)",
        rest.get("type") == "success" and rest["event_data"]["is_valid"],
        rest,
    )
    listed = sessions.get_metadata(session_id=session_id)
    check(
        "session websocket",
        "sessions.get_metadata",
        listed[0]["session_status"] == "SESSION_STATUS_RUNNING",
        listed,
    )
    check(
        "session websocket",
        "sessions.get_info",
        sessions.get_info().get("num_active_sessions", 0) >= 1,
    )
    destroyed = write({"type": "session.destroy"})
    check(
        "session websocket",
        "session.destroy (WebSocket)",
        destroyed.get("type") == "session.destroy.response",
        destroyed,
    )
    close_with_timeout(sessions, "session websocket")


@flow("sse consumer")
def sse_consumer(client: ArchetypeAI) -> None:
    sessions = client.lens.sessions
    created = sessions.create(describer_lens(client))
    session_id = created["session_id"]
    sessions.connect(session_id, created["session_endpoint"])
    sessions.write(session_id, {"type": "output_stream.set", "event_data": SSE_WRITER})
    reader = sessions.create_sse_consumer(session_id)
    # The consumer is live (seed 002) and the SDK says nothing when it is connected:
    # wait for its first frame, sse.stream.start, before the input starts. Read one
    # event per call: the SDK's non-blocking read() raises queue.Empty, and a
    # blocking read() stops early once its worker thread has seen sse.stream.end,
    # leaving queued events unread (both SDK bugs, worked around here).
    events: list[dict[str, Any]] = list(reader.read(block=True, max_num_events=1))
    check(
        "sse consumer",
        "sse.stream.start first",
        events[0]["type"] == "sse.stream.start",
        events[:1],
    )
    sessions.write(session_id, {"type": "input_stream.set", "event_data": CSV_INPUT})
    while events[-1]["type"] != "sse.stream.end":
        events.extend(reader.read(block=True, max_num_events=1))
    results = [e for e in events if e["type"] == "inference.result"]
    check(
        "sse consumer",
        "read to sse.stream.end",
        events[-1]["type"] == "sse.stream.end",
        [e["type"] for e in events[-2:]],
    )
    check("sse consumer", "every inference.result", len(results) == CSV_ROWS // 5, len(results))
    seed_shape = all(isinstance(e.get("timestamp"), float) and e["data"]["result"] for e in results)
    check("sse consumer", "seed shape (timestamp, data.result)", seed_shape)
    reader.close()
    destroyed = client.lens.sessions.destroy(session_id)
    check(
        "sse consumer",
        "destroy (REST)",
        destroyed.get("session_status") == "SESSION_STATUS_DESTROYED",
        destroyed,
    )
    close_with_timeout(sessions, "sse consumer")


@flow("mailbox")
def mailbox(client: ArchetypeAI) -> None:
    sessions = client.lens.sessions
    created = sessions.create(describer_lens(client))
    session_id = created["session_id"]
    sessions.connect(session_id, created["session_endpoint"])
    sessions.write(session_id, {"type": "input_stream.set", "event_data": CSV_INPUT})
    messages: list[dict[str, Any]] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not any(m["type"] == "stream.end" for m in messages):
        read = sessions.read(session_id, "mailbox-reader")
        messages.extend((read.get("event_data") or {}).get("messages", []))
        time.sleep(0.05)
    results = [m for m in messages if m["type"] == "inference.result"]
    check("mailbox", "session.read until stream.end", len(results) == CSV_ROWS // 5, len(results))
    again = sessions.read(session_id, "mailbox-reader")
    check("mailbox", "a drained mailbox reads null", again.get("event_data") is None, again)
    replay = sessions.read(session_id, "new-reader")
    check(
        "mailbox",
        "a new client_id reads from the start",
        len(replay["event_data"]["messages"]) == len(messages),
    )
    client.lens.destroy_lens_session(session_id)  # the SDK's helper: destroy, then close sockets
    check("mailbox", "destroy_lens_session", not sessions.session_socket_cache)


def close_with_timeout(sessions: Any, flow_name: str) -> None:
    """``sessions.close()`` joins the socket thread; bound it (the SDK can hang there)."""
    closer = threading.Thread(target=sessions.close, daemon=True)
    closer.start()
    closer.join(5.0)
    check(
        flow_name,
        "sessions.close() returns (SDK hang worked around)",
        True,
        "hung" if closer.is_alive() else "returned",
    )


def main() -> None:
    lens_url, api_key, work = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    warnings.simplefilter("ignore", FutureWarning)  # "the lens API is deprecated"
    client = ArchetypeAI(api_key, api_endpoint=lens_url, request_timeout_sec=30)
    check("setup", f"archetypeai {client.get_version()}", True)
    lens_templates(client)
    files(client, work)
    session_websocket(client)
    sse_consumer(client)
    mailbox(client)
    print(json.dumps({"done": True, "failures": failures}), flush=True)
    sys.stdout.flush()
    os._exit(0)  # the SDK's non-daemon socket and SSE threads must not keep us alive


if __name__ == "__main__":
    main()
