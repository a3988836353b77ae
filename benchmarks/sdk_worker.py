"""Measure the official ``archetypeai`` SDK against the stand-in server.

Run as a script by an interpreter that has ``archetypeai`` installed (it
needs nothing else: no aiolens, no benchmarks package)::

    .venv-sdk/bin/python benchmarks/sdk_worker.py rtt --base http://127.0.0.1:P/v0.5 --n 20
    .venv-sdk/bin/python benchmarks/sdk_worker.py sse --base http://127.0.0.1:P/v0.5 --n 100000

It prints one JSON object: ``ops``, ``wall``, ``cpu`` (this process, all
threads), ``lost``. The SDK is synchronous and threaded; these are its own
calls, used as its README shows:

* ``rtt``: ``sessions.connect(session_id, session_endpoint)`` then
  ``sessions.write(session_id, {"type": "session.validate", ...})`` ``n`` times.
* ``sse``: ``sessions.create_sse_consumer(session_id)`` then
  ``reader.read(block=True)`` until ``sse.stream.end``.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
import warnings


def _sessions(base: str, api_key: str):  # type: ignore[no-untyped-def]
    from archetypeai.api_client import ArchetypeAI

    client = ArchetypeAI(api_key, api_endpoint=base)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "the lens API is deprecated": it is what we measure
        return client.lens.sessions


def rtt(base: str, api_key: str, n: int) -> dict[str, float]:
    sessions = _sessions(base, api_key)
    session_id = "lsn-sdk-rtt"
    endpoint = base.replace("http", "ws", 1) + f"/lens/sessions/{session_id}"
    if not sessions.connect(session_id, endpoint):
        raise SystemExit(f"the SDK could not connect to {endpoint}")
    try:
        event = {"type": "session.validate", "event_data": {}}
        sessions.write(session_id, event)  # warm-up
        wall0, cpu0 = time.perf_counter(), time.process_time()
        lost = 0
        for _ in range(n):
            reply = sessions.write(session_id, event)
            if reply.get("type") != "session.validate.response":
                lost += 1
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    finally:
        sessions.close()
    return {"ops": n - lost, "wall": wall, "cpu": cpu, "lost": lost}


def sse(base: str, api_key: str, n: int) -> dict[str, float]:
    sessions = _sessions(base, api_key)
    session_id = f"lsn-sse-n{n}"
    results = 0
    ended = False
    wall0, cpu0 = time.perf_counter(), time.process_time()
    reader = sessions.create_sse_consumer(session_id)
    try:
        # read() stops after one more event once the reader thread has seen the end
        # event, even if more are queued, so it is called until the end event comes.
        while not ended:
            for event in reader.read(block=True):
                kind = event.get("type")
                if kind == "inference.result":
                    results += 1
                elif kind == "sse.stream.end":
                    ended = True
                    break
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    finally:
        reader.close()
    return {"ops": results, "wall": wall, "cpu": cpu, "lost": n - results}


def main() -> None:
    parser = argparse.ArgumentParser(prog="sdk_worker.py")
    parser.add_argument("case", choices=["rtt", "sse", "version"])
    parser.add_argument("--base", default="")
    parser.add_argument("--api-key", default="atai-bench-" + "0" * 16)
    parser.add_argument("--n", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.CRITICAL)
    if args.case == "version":
        from importlib.metadata import version

        print(json.dumps({"version": version("archetypeai")}))
        return
    result = (rtt if args.case == "rtt" else sse)(args.base, args.api_key, args.n)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
