"""Ask a question about an image with ``model.query`` over a session's WebSocket."""

import asyncio
import base64

from aiolens import AsyncArchetypeClient
from aiolens.emulator import Emulator

IMAGE_QA_LENS = "lns-fd669361822b07e2-237ab3ffd79199b0"
TINY_PNG = base64.b64encode(bytes.fromhex("89504e470d0a1a0a")).decode()


async def main() -> None:
    async with (
        Emulator() as emu,
        AsyncArchetypeClient(api_key=emu.api_key, base_url=emu.lens_url) as client,
        client.session(IMAGE_QA_LENS) as session,
    ):
        reply = await session.query(
            focus="What is in this picture?",
            data=[{"type": "base64_img", "base64_img": TINY_PNG}],
            template_name="image_qa_template_task",
        )
        print("answer:", reply["response"][0])


if __name__ == "__main__":
    asyncio.run(main())
