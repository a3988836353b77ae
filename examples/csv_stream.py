"""Stream a sensor CSV through a time-series lens and read the results over SSE."""

import asyncio
from collections import Counter
from importlib import resources

from aiolens import AsyncArchetypeClient
from aiolens.archetype.events import InferenceResult
from aiolens.emulator import Emulator

DATA = resources.files("aiolens.data")
EXAMPLES = {
    "IDLE": "sensor_idle.csv",
    "NORMAL": "sensor_normal.csv",
    "WARNING": "sensor_warning.csv",
}


async def main() -> None:
    async with (
        Emulator() as emu,
        AsyncArchetypeClient(api_key=emu.api_key, base_url=emu.lens_url) as client,
    ):
        for name in ["sensor_demo.csv", *EXAMPLES.values()]:
            await client.files.upload(DATA.joinpath(name).read_bytes(), filename=name)
        lens = await client.lenses.register(
            {
                "model_pipeline": [
                    {
                        "processor_name": "lens_timeseries_state_processor",
                        "processor_config": {"input_n_shot": EXAMPLES},
                    }
                ],
            },
            lens_name="machine state",
        )
        async with client.session(lens.lens_id) as session:
            events = session.events()  # open the SSE consumer before the input starts
            events.start()
            await session.set_output_stream("server_sent_events_writer")
            await session.set_input_stream(
                "csv_file_reader", file_id="sensor_demo.csv", window_size=100, step_size=100
            )
            states = Counter()
            async for event in events:
                if isinstance(event, InferenceResult):
                    states[event.text] += 1
        print("states:", dict(states))


if __name__ == "__main__":
    asyncio.run(main())
