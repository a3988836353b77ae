"""Run many lens sessions at once, each with pipelined requests over its socket."""

import asyncio
import time

from aiolens import AsyncArchetypeClient
from aiolens.emulator import Emulator

IMAGE_QA_LENS = "lns-fd669361822b07e2-237ab3ffd79199b0"
SESSIONS = 20
REQUESTS = 50


async def worker(client: AsyncArchetypeClient, n: int) -> int:
    async with client.session(IMAGE_QA_LENS, max_in_flight=16) as session:
        replies = await asyncio.gather(
            *(session.query(focus=f"session {n} question {i}") for i in range(REQUESTS))
        )
        return len(replies)


async def main() -> None:
    async with (
        Emulator() as emu,
        AsyncArchetypeClient(api_key=emu.api_key, base_url=emu.lens_url) as client,
    ):
        started = time.perf_counter()
        # A TaskGroup, not gather: after an error or Ctrl-C it waits until every
        # session has been destroyed, before the client closes.
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(worker(client, n)) for n in range(SESSIONS)]
        elapsed = time.perf_counter() - started
        print(f"{SESSIONS} sessions, {sum(t.result() for t in tasks)} requests in {elapsed:.2f}s")
        print("sessions left running:", len(await client.sessions.metadata()))


if __name__ == "__main__":
    asyncio.run(main())
