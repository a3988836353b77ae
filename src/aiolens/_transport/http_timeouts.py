"""Timeouts as aiohttp needs them: a :data:`~aiolens._core.timeouts.Timeout` (seconds or
:class:`~aiolens._core.timeouts.Timeouts`) made into an :class:`aiohttp.ClientTimeout`.

An :class:`aiohttp.ClientTimeout` given by a user still works (checked the same way)
with a :class:`DeprecationWarning`; aiolens's own code may pass one without it.
"""

from __future__ import annotations

import warnings
from typing import Final

import aiohttp

from aiolens._core.options import check_seconds
from aiolens._core.timeouts import Timeout, Timeouts

__all__ = ["AnyTimeout", "as_timeout", "idle_timeout"]

AnyTimeout = Timeout | aiohttp.ClientTimeout
"""What the transport accepts: a :data:`~aiolens._core.timeouts.Timeout`, or (deprecated
for users; :class:`~aiolens._transport.sse.EventStream` builds one) an
:class:`aiohttp.ClientTimeout`."""

_DEFAULT_CONNECT: Final = 10.0


_TIMEOUT_FIELDS: Final = ("total", "connect", "sock_read", "sock_connect")


def as_timeout(
    value: AnyTimeout, name: str = "timeout", *, user_given: bool = True
) -> aiohttp.ClientTimeout:
    """Normalise a timeout into an :class:`aiohttp.ClientTimeout`.

    Seconds must be a finite number > 0: aiohttp reads 0 or less as "no limit"
    and a NaN limit never fires, so neither may reach it; ``connect`` is then
    at most 10 s. A :class:`~aiolens._core.timeouts.Timeouts` (checked when it
    was made) maps field by field (``read`` is aiohttp's ``sock_read``). In an
    :class:`aiohttp.ClientTimeout` each number is checked the same way and its
    ``None`` fields keep aiohttp's meaning (no limit on that phase); one
    ``user_given`` is deprecated (a :class:`DeprecationWarning`, after the check).

    Raises:
        ConfigurationError: a bad value, named ``name`` (``timeout.total`` ...).
    """
    if isinstance(value, Timeouts):
        return aiohttp.ClientTimeout(total=value.total, connect=value.connect, sock_read=value.read)
    if isinstance(value, aiohttp.ClientTimeout):
        for field_name in _TIMEOUT_FIELDS:
            seconds = getattr(value, field_name)
            if seconds is not None:
                check_seconds(f"{name}.{field_name}", seconds)
        if user_given:
            warnings.warn(
                f"{name}=aiohttp.ClientTimeout(...) is deprecated: pass seconds or "
                "aiolens.Timeouts(total=..., connect=..., read=...)",
                DeprecationWarning,
                stacklevel=3,
            )
        return value
    seconds = check_seconds(name, value)
    return aiohttp.ClientTimeout(total=seconds, connect=min(seconds, _DEFAULT_CONNECT))


def idle_timeout(value: AnyTimeout, *, user_given: bool = True) -> aiohttp.ClientTimeout:
    """A timeout for long transfers: ``value`` seconds without receiving data.

    Unlike :func:`as_timeout` it sets no limit on the whole transfer, so a large
    download that keeps making progress never times out. A
    :class:`~aiolens._core.timeouts.Timeouts` (or a deprecated
    :class:`aiohttp.ClientTimeout`) is used as given.

    Raises:
        ConfigurationError: a bad value.
    """
    if not isinstance(value, int | float):
        return as_timeout(value, user_given=user_given)
    seconds = check_seconds("timeout", value)
    return aiohttp.ClientTimeout(
        total=None, connect=min(seconds, _DEFAULT_CONNECT), sock_read=seconds
    )
