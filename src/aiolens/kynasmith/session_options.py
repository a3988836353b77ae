"""A detection session's options: the keyword arguments and the checked values.

:class:`DetectionSessionKwargs` types the keyword arguments of
``client.open_detection_session`` / ``detection_session``;
:class:`DetectionSessionOptions` checks their values before anything is created.
Both are re-exported by :mod:`aiolens.kynasmith.session`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, TypedDict

from aiolens._core.options import (
    check_bool,
    check_count,
    check_optional_seconds,
    check_seconds,
)
from aiolens._transport.ws import DEFAULT_MAX_MESSAGE_SIZE

__all__ = ["DEFAULT_CANCEL_TIMEOUT", "DetectionSessionKwargs", "DetectionSessionOptions"]

DEFAULT_CANCEL_TIMEOUT: Final = 10.0
"""Seconds the cleanup cancel of a detection session may take."""


class DetectionSessionKwargs(TypedDict, total=False):
    """The options of ``client.open_detection_session`` / ``detection_session``.

    A misspelt option fails type checking (``**options: Unpack[DetectionSessionKwargs]``);
    at run time it is a ``TypeError`` before anything is created. The values
    are checked by :class:`DetectionSessionOptions`.
    """

    window: int
    ack_timeout: float
    event_queue_size: int
    validate: bool
    reconnect: bool
    ping_interval: float | None
    cancel_timeout: float
    max_message_size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DetectionSessionOptions:
    """A :class:`DetectionSession`'s options, checked when made (see there).

    ``client.open_detection_session(...)`` builds one before the create call,
    so a bad or unknown option fails before anything exists server-side.

    Raises:
        ConfigurationError: a bad value; the message names the option.
        TypeError: an unknown option.
    """

    window: int = 16
    ack_timeout: float = 30.0
    event_queue_size: int = 10_000
    validate: bool = True
    reconnect: bool = True
    ping_interval: float | None = 20.0
    cancel_timeout: float = DEFAULT_CANCEL_TIMEOUT
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE

    def __post_init__(self) -> None:
        check_count("window", self.window)
        check_seconds("ack_timeout", self.ack_timeout)
        check_count("event_queue_size", self.event_queue_size)
        check_bool("validate", self.validate)
        check_bool("reconnect", self.reconnect)
        check_optional_seconds("ping_interval", self.ping_interval)
        check_seconds("cancel_timeout", self.cancel_timeout)
        check_count("max_message_size", self.max_message_size)
