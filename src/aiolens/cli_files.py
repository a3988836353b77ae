"""``aiolens files``: upload a file (with a progress bar) and list the org's files."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import msgspec
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from aiolens.archetype.uploads import UploadProgress

__all__ = ["add_parser"]


async def _files(args: argparse.Namespace) -> int:
    """Run one ``files`` action; the client closes on exit or cancel (a direct upload
    that is cancelled is aborted, unless ``--resume`` keeps it for a later run)."""
    from aiolens.cli_shared import _client, _print_json, console, err_console

    async with _client(args) as client:
        if args.action == "list":
            files = [m async for m in client.files.iter_metadata(limit=args.page_size)]
            if args.json:
                _print_json([msgspec.to_builtins(m) for m in files])
            elif not files:
                console.print("no files")
            else:
                table = Table("file_id", "type", "bytes", "status", "file_uid")
                for m in files:
                    table.add_row(
                        m.file_id,
                        m.file_type or "",
                        f"{m.num_bytes or 0:,}",
                        (m.file_status or "").removeprefix("FILE_STATUS_"),
                        m.file_uid or "",
                    )
                console.print(table)
            return 0
        path = Path(args.path)
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=err_console, transient=True) as bar:
            task = bar.add_task(args.name or path.name, total=None)

            def progress(p: UploadProgress) -> None:
                bar.update(task, completed=p.bytes_done, total=p.total_bytes)

            uploaded = await client.files.upload(
                path,
                filename=args.name,
                direct=args.direct,
                progress=progress,
                part_concurrency=args.parts_in_flight,
                resume=args.resume,
            )
        console.print(f"uploaded {uploaded.file_id} ({uploaded.file_uid})")
        return 0


def add_parser(sub: Any) -> None:
    """Add ``aiolens files upload|list`` to the command's subparsers."""
    from aiolens.cli_shared import _connection_options, _json_option, positive_int

    files = sub.add_parser("files", help="upload a file or list the org's files")
    _connection_options(files)
    actions = files.add_subparsers(dest="action", required=True, metavar="ACTION")
    after = argparse.ArgumentParser(add_help=False)
    _connection_options(after, suppress=True)
    upload = actions.add_parser(
        "upload",
        help="upload a file (large ones go direct to storage, in parts, with a progress bar)",
        parents=[after],
    )
    upload.add_argument("path")
    upload.add_argument("--name", default=None, help="the file_id to store (the file's name)")
    mode = upload.add_mutually_exclusive_group()
    mode.add_argument(
        "--direct",
        action="store_true",
        default=None,
        help="multipart, straight to storage (default above 100 MiB)",
    )
    mode.add_argument(
        "--proxy", dest="direct", action="store_false", help="one POST through the API"
    )
    upload.add_argument(
        "--parts-in-flight", type=positive_int, default=8, help="direct: parts sent at once (8)"
    )
    upload.add_argument(
        "--resume",
        action="store_true",
        help="direct: continue an interrupted upload of this file; keep this one if interrupted",
    )
    listing = actions.add_parser("list", help="every file, newest first", parents=[after])
    listing.add_argument("--page-size", type=positive_int, default=100, help=argparse.SUPPRESS)
    _json_option(listing)
    files.set_defaults(run=_files)
