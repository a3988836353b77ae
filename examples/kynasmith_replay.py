"""Replay generated squats to a Kynasmith detection session and count the repetitions."""

import asyncio

from aiolens.emulator import Emulator
from aiolens.kynasmith import AsyncKynasmithClient
from aiolens.kynasmith.models import EventCompleted
from aiolens.kynasmith.synthetic import generate_squats


async def main() -> None:
    frames = generate_squats(5)
    async with (
        Emulator() as emu,
        AsyncKynasmithClient(emu.kynasmith_api_key, base_url=emu.kynasmith_url) as client,
    ):
        specs = await client.movespecs.list(visibility="public")
        squat = next(s.movespec_id for s in specs if s.name == "squat")
        async with client.detection_session(movespec_id=squat, mode="replay") as det:
            batches = [frames[i : i + 15] for i in range(0, len(frames), 15)]
            await asyncio.gather(*(det.send(batch) for batch in batches))  # pipelined
            summary = await det.finalize()
            reps = [e async for e in det.events() if isinstance(e, EventCompleted)]
        print(f"{summary.status}: {summary.accepted_frames_total} frames, {len(reps)} squats")


if __name__ == "__main__":
    asyncio.run(main())
