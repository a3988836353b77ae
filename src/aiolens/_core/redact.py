"""Masking secrets in logs, reprs and exception texts.

Every client registers its credentials with :func:`register_secret`; from then
on :func:`redact` replaces them anywhere in a text, and the
:class:`RedactingFilter` installed on the ``aiolens`` loggers and on
``websockets.client`` (whose DEBUG log prints handshake headers) rewrites log
records before any handler sees them. Patterns that look like credentials
(``Authorization: Bearer ...``, ``"api_key": "..."``, ``runtime_token=...``)
are masked even when the secret was never registered.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Final

__all__ = [
    "MASK",
    "RedactingFilter",
    "SecretStr",
    "get_logger",
    "install_log_redaction",
    "redact",
    "register_secret",
]

MASK: Final = "**********"

_lock = threading.Lock()
_secrets: set[str] = set()
_secret_re: re.Pattern[str] | None = None

_PATTERNS: Final = (
    # Authorization: Bearer xyz / ('Authorization', 'Bearer xyz')
    re.compile(r"(?i)(bearer[\s:]+)[^\s'\",;)\]}]+"),
    # "api_key": "xyz" / 'api_key': 'xyz' / api_key=xyz ; same for secrets and tokens
    re.compile(
        r"(?i)((?:api_key|api_key_secret|key_secret|service_account_secret|access_token|"
        r"runtime_token|secret)['\"]?\s*[:=]\s*['\"]?)[^'\"\s,&}]+"
    ),
    # websocket subprotocol carrying a key: authenticationauthorization.bearer.<key>
    re.compile(r"(?i)(bearer\.)[^\s'\",]+"),
)


def register_secret(secret: str | None) -> None:
    """Remember a secret so that :func:`redact` masks it from now on.

    Secrets shorter than 4 characters are ignored: masking them would garble
    ordinary text.
    """
    global _secret_re
    if not secret or len(secret) < 4:
        return
    with _lock:
        if secret in _secrets:
            return
        _secrets.add(secret)
        ordered = sorted(_secrets, key=len, reverse=True)
        _secret_re = re.compile("|".join(re.escape(s) for s in ordered))


def redact(text: str) -> str:
    """Return ``text`` with registered secrets and credential patterns masked."""
    pattern = _secret_re
    if pattern is not None:
        text = pattern.sub(MASK, text)
    for p in _PATTERNS:
        text = p.sub(lambda m: m.group(1) + MASK, text)
    return text


class SecretStr:
    """A string that does not show itself.

    ``str()``, ``repr()``, f-strings and logging all print a mask; the value is
    read only through :meth:`get_secret_value`.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        register_secret(value)

    def get_secret_value(self) -> str:
        """The real value. Keep it out of logs."""
        return self._value

    def __repr__(self) -> str:
        return f"SecretStr('{MASK}')"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SecretStr):
            return self._value == other._value
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._value)

    def __len__(self) -> int:
        return len(self._value)


class RedactingFilter(logging.Filter):
    """A logging filter that masks secrets in a record's final message.

    It formats the message once (``msg % args``), redacts it, and stores the
    result back so every handler sees the masked text. Exception texts
    attached to the record are masked too.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave the record to logging
            return True
        masked = redact(message)
        if masked != message or record.args:
            record.msg = masked
            record.args = None
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


_FILTER: Final = RedactingFilter()
_installed: set[str] = set()


def _ensure_filter(logger: logging.Logger) -> None:
    if logger.name not in _installed:
        logger.addFilter(_FILTER)
        _installed.add(logger.name)


def get_logger(name: str = "") -> logging.Logger:
    """The ``aiolens`` logger (or ``aiolens.<name>``), with redaction installed.

    Filters on a logger only see records logged to that very logger, so every
    logger aiolens writes to gets the filter itself.
    """
    logger = logging.getLogger(f"aiolens.{name}" if name else "aiolens")
    _ensure_filter(logger)
    return logger


def install_log_redaction(*extra: str) -> None:
    """Install redaction on ``aiolens``, ``websockets.client``/``server`` and ``extra``."""
    for name in ("aiolens", "websockets.client", "websockets.server", *extra):
        _ensure_filter(logging.getLogger(name))
