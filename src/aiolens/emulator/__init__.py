"""A local emulator of the Archetype AI Lens API and the Kynasmith Detection API.

Start it in-process with ``async with Emulator() as emu:`` or from a shell
with ``aiolens emulate``.
"""

from aiolens.emulator.faults import Faults, HTTPFault
from aiolens.emulator.server import Emulator

__all__ = ["Emulator", "Faults", "HTTPFault"]
