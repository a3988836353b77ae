"""``aiolens agents``: ``list``, ``run``, ``wait``, ``results``.

Every subcommand takes ``--api-key``, ``--base-url`` (the Lens base URL the
Agents API is found from; README "Base URL") and ``--timeout``. ``run`` takes
file ids or local files (uploaded first, stored under their name); with
``--wait`` it, like ``wait``, shows the run's progress until it ends and exits
1 when it failed. Ctrl-C stops waiting; the run goes on server-side.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import anyio
import msgspec
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from aiolens.archetype.agents import Instance
from aiolens.cli_shared import (
    _client,
    _connection_options,
    _json_option,
    _print_json,
    _seconds,
    console,
    positive_int,
)
from aiolens.errors import AgentRunError

__all__ = ["add_parser"]

_KINDS = ("instances", "bundles", "blueprints", "evals", "optimizations")


def add_parser(sub: Any) -> None:
    """Add ``agents`` and its subcommands to the ``aiolens`` parser."""
    agents = sub.add_parser("agents", help="list agents, run a bundle, wait, fetch results")
    _connection_options(agents)
    actions = agents.add_subparsers(dest="action", required=True, metavar="ACTION")
    after = argparse.ArgumentParser(add_help=False)
    _connection_options(after, suppress=True)

    listing = actions.add_parser("list", help="instances, bundles, blueprints ...", parents=[after])
    listing.add_argument("kind", nargs="?", choices=_KINDS, default="instances")
    listing.add_argument("--limit", type=positive_int, default=20, help="rows (20)")
    _json_option(listing)

    run = actions.add_parser("run", help="run a bundle on files", parents=[after])
    run.add_argument("bundle_id")
    run.add_argument("sources", nargs="+", metavar="FILE", help="file ids or local files")
    run.add_argument("--sink", default=None, help="write all output to this file id")
    run.add_argument("--wait", action="store_true", help="show progress until it ends")
    run.add_argument("--wait-timeout", type=_seconds, default=900.0, help="seconds (900)")

    wait = actions.add_parser(
        "wait", help="show an instance's progress until it ends", parents=[after]
    )
    wait.add_argument("instance_id")
    wait.add_argument("--wait-timeout", type=_seconds, default=900.0, help="seconds (900)")

    results = actions.add_parser("results", help="an instance's result files", parents=[after])
    results.add_argument("instance_id")
    results.add_argument("--download", metavar="DIR", default=None, help="save them here")
    _json_option(results)
    agents.set_defaults(run=_agents)


async def _agents(args: argparse.Namespace) -> int:
    """Run one ``agents`` action; the client closes on exit or cancel."""
    async with _client(args) as client:
        agents = client.agents
        if args.action == "list":
            resource = getattr(agents, args.kind)
            page = await resource.list(limit=args.limit)
            if args.json:
                _print_json(page.data)
            elif not page.data:
                console.print(f"no {args.kind}")
            else:
                console.print(_table(args.kind, page.data, page.has_more))
            return 0
        if args.action == "run":
            sources = [await _source(client, source) for source in args.sources]
            instance = await agents.bundles.run(args.bundle_id, sources, sink=args.sink)
            console.print(f"started {instance.id} ({instance.status})", highlight=False)
            if not args.wait:
                return 0
            return await _wait(client, instance.id, args.wait_timeout)
        if args.action == "wait":
            return await _wait(client, args.instance_id, args.wait_timeout)
        refs = [ref async for ref in agents.instances.results(args.instance_id)]
        if args.json:
            _print_json(refs)
        elif not refs:
            console.print(f"{args.instance_id} wrote no results")
        else:
            for ref in refs:
                source = (ref.source or {}).get("id", "")
                console.print(
                    f"{ref.id}" + (f"  (from {source})" if source else ""), highlight=False
                )
        if args.download:
            folder = anyio.Path(args.download)
            await folder.mkdir(parents=True, exist_ok=True)
            for ref in refs:
                await client.files.download(ref.id, Path(folder / ref.id))
            console.print(f"saved {len(refs)} file(s) in {folder}", highlight=False)
        return 0


async def _source(client: Any, source: str) -> str:
    """A file id: a local file is uploaded first (stored under its name)."""
    if await anyio.Path(source).is_file():
        uploaded = await client.files.upload(source)
        console.print(f"uploaded {source} as {uploaded.file_id}", highlight=False)
        return str(uploaded.file_id)
    return source


async def _wait(client: Any, instance_id: str, timeout: float) -> int:
    """Poll with a progress bar (inputs done of total) until the instance ends."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} inputs · {task.fields[windows]} windows"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(instance_id, total=None, windows=0)

        def show(record: Instance) -> None:
            done = record.progress or {}
            progress.update(
                task,
                description=f"{instance_id} {record.status}",
                total=done.get("inputs_total"),
                completed=done.get("inputs_completed", 0),
                windows=done.get("windows_processed", 0),
            )

        try:
            final = await client.agents.instances.wait(instance_id, timeout=timeout, on_update=show)
        except AgentRunError as exc:
            final = exc.record
    progress_info = final.progress or {}
    line = f"{final.id} {final.status}: {progress_info.get('windows_processed', 0)} windows"
    if final.error:
        line += f" — {final.error.get('message', '')}"
    console.print(line, highlight=False)
    return 1 if final.status == "failed" else 0


def _table(kind: str, rows: list[Any], more: bool) -> Table:
    table = Table(title=f"{len(rows)} {kind}" + (" (more: --limit)" if more else ""))
    table.add_column("id", no_wrap=True)
    columns = {
        "instances": ("name", "mode", "status"),
        "bundles": ("name", "blueprint_key", "owner"),
        "blueprints": ("blueprint_key", "version", "name"),
        "evals": ("name", "status", "primary"),
        "optimizations": ("name", "status", "objective"),
    }[kind]
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        data = msgspec.to_builtins(row)
        table.add_row(
            row.id, *(str(data.get(c) if data.get(c) is not None else "") for c in columns)
        )
    return table
