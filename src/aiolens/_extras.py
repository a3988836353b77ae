"""Optional parts of aiolens and the one-line hint shown when one is not installed.

The core install is the client (aiohttp, websockets, msgspec, anyio). The emulator,
the command line and the pytest fixtures need more; each lives behind an extra
(``pip install 'aiolens[emulator]'``, ``[cli]``, ``[testing]``) and checks for what
it needs when it is imported, so a missing package is one clear line, not a
traceback from deep inside an import.
"""

from __future__ import annotations

import importlib.util

from aiolens.errors import MissingExtraError

__all__ = ["require_extra"]


def require_extra(extra: str, feature: str, *modules: str) -> None:
    """Raise :class:`MissingExtraError` unless every module in ``modules`` can be imported.

    Args:
        extra: the extra that installs them (``"emulator"``).
        feature: what needs them, for the message (``"the emulator"``).
        modules: top-level module names (``"yaml"``).
    """
    missing = [name for name in modules if _absent(name)]
    if missing:
        raise MissingExtraError(
            f"{feature} needs {', '.join(missing)}, which is not installed: "
            f"pip install 'aiolens[{extra}]'"
        )


def _absent(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is None
    except ValueError:  # a module set to None in sys.modules (blocked on purpose)
        return True
