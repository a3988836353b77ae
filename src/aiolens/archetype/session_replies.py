"""The types of a lens session's replies: what its request methods return.

Re-exported by :mod:`aiolens.archetype.session`.
"""

from __future__ import annotations

from typing import TypedDict

import msgspec

from aiolens._core.model import Model

__all__ = [
    "DestroyResult",
    "QueryResult",
    "StreamSetResult",
    "UpdateResult",
    "Validation",
]


class Validation(Model):
    """The answer of ``session.validate``."""

    is_valid: bool
    error_messages: list[str] = msgspec.field(default_factory=list)


class QueryResult(TypedDict, total=False):
    """What ``model.query`` answers (``session.query``); keys the server omits are absent."""

    response: list[str]
    """The model's answer (usually one string)."""
    query_id: str
    query_time_sec: float
    focus: str
    num_inputs: int


class StreamSetResult(TypedDict, total=False):
    """What ``input_stream.set`` / ``output_stream.set`` answer."""

    is_valid: bool


class UpdateResult(TypedDict, total=False):
    """What ``session.update`` answers."""

    is_valid: bool
    num_inputs: int


class DestroyResult(TypedDict, total=False):
    """What ``session.destroy`` answers over the socket."""

    session_status: str
