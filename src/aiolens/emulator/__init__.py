"""A local emulator of the Archetype AI Lens API and the Kynasmith Detection API.

Start it in-process with ``async with Emulator() as emu:`` or from a shell
with ``aiolens emulate``.
"""

from aiolens._extras import require_extra

require_extra("emulator", "the aiolens emulator", "yaml")

from aiolens.emulator.faults import Faults, HTTPFault  # noqa: E402
from aiolens.emulator.server import Emulator  # noqa: E402
from aiolens.emulator.thread import EmulatorThread  # noqa: E402

__all__ = ["Emulator", "EmulatorThread", "Faults", "HTTPFault"]
