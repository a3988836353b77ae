"""Register a lens, open a session and destroy it, against the embedded emulator."""

import asyncio

from aiolens import AsyncArchetypeClient
from aiolens.emulator import Emulator


async def main() -> None:
    async with (
        Emulator() as emu,  # a local Lens API on 127.0.0.1
        AsyncArchetypeClient(api_key=emu.api_key, base_url=emu.lens_url) as client,
    ):
        lens = await client.lenses.register({"lens_name": "My Test Lens"})
        session = await client.sessions.create(lens.lens_id)
        print("session", session.session_id, session.status)
        await client.sessions.destroy(session.session_id)


if __name__ == "__main__":
    asyncio.run(main())
