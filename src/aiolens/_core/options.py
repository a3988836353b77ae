"""Checks for option values, run where the option is given (before anything is created).

Every numeric or enum option of the library goes through one of these functions, so a
bad value fails the same way everywhere: a :class:`~aiolens.errors.ConfigurationError`
(a :class:`ValueError`) whose message names the option and says what it accepts.

Seconds are finite numbers greater than 0. Zero, negative numbers, NaN and infinity are
refused: a timeout never silently means "wait forever" (aiohttp reads ``<= 0`` as no
limit; NaN never expires) and an interval of 0 would spin the event loop. Where an
option can be turned off, ``None`` says so explicitly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from typing import Any, TypeVar

from aiolens.errors import ConfigurationError

__all__ = [
    "check_bool",
    "check_callable",
    "check_choice",
    "check_count",
    "check_optional_seconds",
    "check_seconds",
    "check_text",
]

T = TypeVar("T")


def check_seconds(name: str, value: object, *, allow_zero: bool = False) -> float:
    """``value`` as seconds: a finite number > 0 (``>= 0`` with ``allow_zero``).

    Raises:
        ConfigurationError: anything else; the message names ``name``.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value) if abs(value) < 1e300 else math.inf  # a huge int: no OverflowError
        if math.isfinite(seconds) and (seconds > 0 or (allow_zero and seconds == 0)):
            return seconds
    bound = ">= 0" if allow_zero else "> 0"
    raise ConfigurationError(f"{name} must be a finite number of seconds {bound}, not {value!r}")


def check_optional_seconds(name: str, value: object) -> float | None:
    """``value`` as seconds (see :func:`check_seconds`), or ``None`` (turned off).

    Raises:
        ConfigurationError: anything else; the message names ``name``.
    """
    if value is None:
        return None
    try:
        return check_seconds(name, value)
    except ConfigurationError:
        raise ConfigurationError(
            f"{name} must be a finite number of seconds > 0 or None, not {value!r}"
        ) from None


def check_count(name: str, value: object, *, minimum: int = 1) -> int:
    """``value`` as a whole number ``>= minimum``.

    Raises:
        ConfigurationError: anything else (floats and bools too); names ``name``.
    """
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigurationError(f"{name} must be a whole number >= {minimum}, not {value!r}")
    return value


def check_choice(name: str, value: T, choices: Collection[T]) -> T:
    """``value`` if it is one of ``choices``.

    Raises:
        ConfigurationError: it is not; the message lists the choices.
    """
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ConfigurationError(f"{name} must be one of {listed}, not {value!r}")
    return value


def check_text(name: str, value: object) -> str | None:
    """``value`` if it is a string or ``None``; the message shows only its type
    (the value may be a secret).

    Raises:
        ConfigurationError: anything else.
    """
    if value is not None and not isinstance(value, str):
        raise ConfigurationError(f"{name} must be a str, not {type(value).__name__}")
    return value


def check_bool(name: str, value: object) -> bool:
    """``value`` if it is ``True`` or ``False``.

    Raises:
        ConfigurationError: anything else (``"no"`` is truthy: refused).
    """
    if not isinstance(value, bool):
        raise ConfigurationError(f"{name} must be True or False, not {value!r}")
    return value


def check_callable(name: str, value: Callable[..., Any] | None) -> Callable[..., Any] | None:
    """``value`` if it is callable or ``None``.

    Raises:
        ConfigurationError: anything else.
    """
    if value is not None and not callable(value):
        raise ConfigurationError(f"{name} must be callable or None, not {value!r}")
    return value
