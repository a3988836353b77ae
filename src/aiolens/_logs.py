"""``AIOLENS_LOG``: turn on aiolens's own log output from the environment.

``AIOLENS_LOG=debug`` (or ``info``, ``warning``, ``error``) gives the
``aiolens`` logger that level and a handler writing to stderr, as
openai-python's ``OPENAI_LOG`` does, without touching the application's
logging setup. Every record still passes the redaction filter, so the API key
never shows. Unset or empty: aiolens configures nothing (the library default).
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Final, TextIO

from aiolens._core.redact import get_logger
from aiolens.errors import ConfigurationError

__all__ = ["ENV_VAR", "configure_from_env"]

ENV_VAR: Final = "AIOLENS_LOG"
_LEVELS: Final = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


class _EnvHandler(logging.StreamHandler[TextIO]):
    """The handler added for ``AIOLENS_LOG`` (one at most, found again by its type)."""


def configure_from_env() -> None:
    """Apply ``AIOLENS_LOG`` once; a value that is not a level is a :class:`ConfigurationError`."""
    value = os.environ.get(ENV_VAR, "").strip().lower()
    if not value:
        return
    level = _LEVELS.get(value)
    if level is None:
        raise ConfigurationError(
            f"{ENV_VAR}={value!r} is not a log level; use one of {', '.join(_LEVELS)}"
        )
    logger = get_logger()
    logger.setLevel(level)
    if not any(isinstance(h, _EnvHandler) for h in logger.handlers):
        handler = _EnvHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
