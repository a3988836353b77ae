"""``aiolens fleet`` as a user runs it: submit, status, results, cancel."""

from __future__ import annotations

import asyncio
import json
import sys

from aiolens.fleet import encode_spec
from tests.fleet.conftest import Feeds, RedisServer, Workers


async def _cli(redis_url: str, *args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aiolens",
        "fleet",
        *args,
        "--redis",
        redis_url,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(120):
        out, err = await process.communicate(stdin)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_submit_status_results_cancel(
    redis_server: RedisServer, feeds: Feeds, workers: Workers
) -> None:
    url = redis_server.url
    specs = b"[%s, %s]" % (
        encode_spec(feeds.spec("short", 20)),
        encode_spec(feeds.spec("long", 10**6)),
    )
    rc, out, _ = await _cli(url, "submit", "-", stdin=specs)
    assert rc == 0 and "submitted short" in out and "submitted long" in out
    rc, _, err = await _cli(url, "submit", "-", stdin=specs)
    assert rc == 1 and "already in the fleet" in err
    rc, out, _ = await _cli(url, "status", "--json")
    assert [(s["feed_id"], s["status"]) for s in json.loads(out)] == [
        ("long", "pending"),
        ("short", "pending"),
    ]
    await workers.start("w1")
    rc, out, _ = await _cli(url, "results", "short", "--follow")
    lines = [json.loads(line) for line in out.splitlines()]
    assert rc == 0
    assert [int(r["event_id"]) for r in lines] == list(range(1, len(lines) + 1))
    assert lines[-1]["event"]["type"] == "sse.stream.end"
    assert sum(r["event"]["type"] == "inference.result" for r in lines) == 20
    rc, out, _ = await _cli(url, "cancel", "long", "--wait", "60")
    assert rc == 0 and "long: cancelled" in out
    rc, out, _ = await _cli(url, "status")
    assert rc == 0 and "cancelled" in out and "ended" in out


async def test_bad_spec_and_unreachable_redis_are_one_line_errors(
    redis_server: RedisServer,
) -> None:
    rc, _, err = await _cli(redis_server.url, "submit", "-", stdin=b'{"feed_id": "x"}')
    assert rc == 1 and "exactly one of lens_id and lens_config" in err
    rc, _, err = await _cli("redis://127.0.0.1:1/0", "status")
    assert rc == 1 and "cannot reach Redis at redis://127.0.0.1:1/0" in err
    assert "Traceback" not in err
