"""Read a lens's results from its mailbox (``session.read``) when it has no SSE writer."""

import asyncio

from aiolens import AsyncArchetypeClient
from aiolens.archetype.events import InferenceResult
from aiolens.emulator import Emulator

CSV = "t,value\n" + "".join(f"{i},{i % 10}\n" for i in range(200))


async def main() -> None:
    async with (
        Emulator() as emu,
        AsyncArchetypeClient(api_key=emu.api_key, base_url=emu.lens_url) as client,
    ):
        await client.files.upload(CSV.encode(), filename="values.csv")
        lens = await client.lenses.register(
            {"model_pipeline": [{"processor_name": "lens_sensor_logs_processor"}]},
            lens_name="mailbox lens",
        )
        async with client.session(lens.lens_id) as session:
            await session.set_input_stream(
                "csv_file_reader", file_id="values.csv", window_size=50, step_size=50
            )
            async for event in session.mailbox("my-reader"):
                if isinstance(event, InferenceResult):
                    print("result:", event.text)


if __name__ == "__main__":
    asyncio.run(main())
