"""Direct multipart upload of a large file: client RSS and throughput vs one plain PUT.

``python -m benchmarks.direct_upload`` writes a file of random bytes to /tmp
(1 GiB by default; deleted at the end) and uploads it to the emulator, each
variant ``--repeat`` times, alternating:

* **direct**: ``client.files.upload(path, direct=True)``: 8 MiB parts (the
  docs' size), ``--concurrency`` in flight, streamed from disk, checkpointed,
  completed with a sha256 checksum (computed by the client, checked by the
  emulator).
* **direct, no checksum**: the same without the whole-file sha256 (which the
  client hashes in a thread and the emulator checks), to show its cost.
* **one PUT** (the baseline): the same bytes as a single part, one aiohttp
  ``PUT`` of the whole file object (aiohttp streams it), then complete.

Each upload runs in a fresh client process, so its peak RSS (``ru_maxrss``)
is that upload's alone; the emulator runs in a process of its own per
variant (its part size differs). Printed: the median seconds and MiB/s per
variant, the spread, the ratio of the medians (one PUT's time / the variant's,
so higher is faster), and each variant's peak client RSS next to the bound
(a client without an upload + parts in flight × part size). Options:
``--size-mib``, ``--part-mib``, ``--repeat``, ``--concurrency``, ``--json PATH``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

if __package__ in (None, ""):  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiolens import AsyncArchetypeClient
from aiolens.archetype.uploads import CHUNK, direct_upload
from aiolens.emulator import Emulator

ROOT: Final = Path(__file__).resolve().parent.parent
MIB: Final = 1024 * 1024


# ---- the emulator, in its own process -------------------------------------------------------


async def _serve(part_bytes: int) -> None:
    async with Emulator(port=0) as emulator:
        emulator.lens.upload_part_size = part_bytes
        emulator.lens.max_direct_upload_bytes = 1 << 40
        sys.stdout.write(json.dumps({"url": emulator.lens_url, "key": emulator.api_key}) + "\n")
        sys.stdout.flush()
        await asyncio.Event().wait()


@contextlib.contextmanager
def emulator(part_bytes: int) -> Iterator[dict[str, str]]:
    """An emulator process with ``part_bytes`` parts; yields its url and key."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.direct_upload", "--serve", str(part_bytes)],
        stdout=subprocess.PIPE,
        cwd=ROOT,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        if not line:
            raise RuntimeError(f"the emulator did not start (status {proc.wait(10)})")
        yield json.loads(line)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


# ---- one upload, in its own process ---------------------------------------------------------


async def _direct(url: str, key: str, path: Path, concurrency: int, checksum: bool) -> None:
    async with AsyncArchetypeClient(key, url, timeout=120) as client:
        await direct_upload(
            client._http,
            path,
            filename=path.name,
            content_type="text/plain",
            part_concurrency=concurrency,
            checksum=checksum,
        )


async def _one_put(url: str, key: str, path: Path) -> None:
    async with AsyncArchetypeClient(key, url, timeout=120) as client:
        http = client._http
        size = path.stat().st_size
        init = await http.request(
            "POST",
            "/files/uploads/initiate",
            json={"filename": path.name, "file_type": "text/plain", "num_bytes": size},
        )
        (part,) = init["parts"]
        session = await http.client_session()
        with path.open("rb") as f:
            async with session.put(
                part["url"], data=f, headers={"Content-Length": str(size)}
            ) as resp:
                assert resp.status == 200, await resp.text()
                token = resp.headers["ETag"]
        await http.request(
            "POST",
            f"/files/uploads/{init['upload_id']}/complete",
            json={"parts": [{"part_number": 0, "part_token": token}]},
        )


def _worker(mode: str, url: str, key: str, path: Path, concurrency: int) -> None:
    start = time.perf_counter()
    if mode.startswith("direct"):
        asyncio.run(_direct(url, key, path, concurrency, checksum=mode == "direct"))
    else:
        asyncio.run(_one_put(url, key, path))
    seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "peak_rss_mib": peak_kib / 1024}))


def _run_worker(mode: str, server: dict[str, str], path: Path, concurrency: int) -> dict[str, Any]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.direct_upload",
            "--worker",
            mode,
            "--url",
            server["url"],
            "--key",
            server["key"],
            "--file",
            str(path),
            "--concurrency",
            str(concurrency),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _baseline_rss() -> float:
    """Peak RSS of a client process that imports aiolens and opens a client, in MiB."""
    code = (
        "import asyncio, resource\n"
        "from aiolens import AsyncArchetypeClient\n"
        "async def main():\n"
        "    async with AsyncArchetypeClient('k', 'http://127.0.0.1:9'):\n"
        "        pass\n"
        "asyncio.run(main())\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def write_file(path: Path, size: int) -> None:
    """``size`` random bytes (incompressible, like media), written 16 MiB at a time."""
    with path.open("wb") as f:
        left = size
        while left:
            block = os.urandom(min(16 * MIB, left))
            f.write(block)
            left -= len(block)


def main(argv: list[str] | None = None) -> int:
    """Measure and print; see the module docs."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.direct_upload")
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--part-mib", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument(
        "--worker", choices=["direct", "direct-nocheck", "put"], help=argparse.SUPPRESS
    )
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is not None:
        asyncio.run(_serve(args.serve))
        return 0
    if args.worker:
        _worker(args.worker, args.url, args.key, args.file, args.concurrency)
        return 0

    size = args.size_mib * MIB
    results: dict[str, list[dict[str, Any]]] = {"direct": [], "direct-nocheck": [], "put": []}
    with tempfile.TemporaryDirectory(prefix="aiolens-upload-", dir="/tmp") as tmp:
        path = Path(tmp) / "upload.txt"
        write_file(path, size)
        with emulator(args.part_mib * MIB) as parts, emulator(max(size, MIB)) as whole:
            for i in range(args.repeat):
                order = list(results)
                order = order[i % 3 :] + order[: i % 3]  # rotate: drift hits all alike
                for mode in order:
                    server = whole if mode == "put" else parts
                    results[mode].append(_run_worker(mode, server, path, args.concurrency))
                    print(f"  {mode:6} run {i + 1}: {results[mode][-1]}", file=sys.stderr)
    base_rss = _baseline_rss()
    bound = base_rss + args.concurrency * args.part_mib  # parts in flight x part size
    report: dict[str, Any] = {
        "size_mib": args.size_mib,
        "part_mib": args.part_mib,
        "concurrency": args.concurrency,
        "client_rss_without_upload_mib": round(base_rss, 1),
        "rss_bound_mib": round(bound, 1),
        "variants": {},
    }
    for mode, label in (
        ("direct", "direct, multipart"),
        ("direct-nocheck", "direct, no checksum"),
        ("put", "one plain PUT"),
    ):
        seconds = [r["seconds"] for r in results[mode]]
        rss = [r["peak_rss_mib"] for r in results[mode]]
        median = statistics.median(seconds)
        report["variants"][mode] = {
            "label": label,
            "median_s": round(median, 2),
            "spread_s": [round(min(seconds), 2), round(max(seconds), 2)],
            "median_mib_per_s": round(args.size_mib / median, 1),
            "peak_rss_mib": round(max(rss), 1),
        }
    put_s = report["variants"]["put"]["median_s"]
    for mode in ("direct", "direct-nocheck"):
        ratio = put_s / report["variants"][mode]["median_s"]
        report["variants"][mode]["throughput_ratio_vs_put"] = round(ratio, 2)
    print(f"{args.size_mib} MiB, parts of {args.part_mib} MiB, {args.concurrency} in flight:")
    for v in report["variants"].values():
        print(
            f"  {v['label']:18} {v['median_s']:7.2f} s (min-max {v['spread_s'][0]}-"
            f"{v['spread_s'][1]})  {v['median_mib_per_s']:7.1f} MiB/s  "
            f"peak client RSS {v['peak_rss_mib']:.0f} MiB"
        )
    for mode in ("direct", "direct-nocheck"):
        v = report["variants"][mode]
        print(f"  throughput ratio, {v['label']} / one PUT: {v['throughput_ratio_vs_put']}x")
    print(
        f"  client RSS without an upload: {base_rss:.0f} MiB; the bound (+ {args.concurrency} "
        f"parts in flight x {args.part_mib} MiB): {bound:.0f} MiB; what a direct upload holds "
        f"is {CHUNK // MIB} MiB chunks, not parts"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
