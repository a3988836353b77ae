"""The base of every public aiolens model, and turning models into JSON-ready values.

Every model is a :class:`msgspec.Struct` deriving from :class:`Model`, so one
value serialises the same way through every JSON path a user may take:

* ``msgspec.json.encode(model)`` — natively (models hold only JSON types; an
  API key the server echoes back is stored as the mask ``"**********"``);
* the standard library's :mod:`json` — ``json.dumps(to_builtins(model))``
  or ``json.dumps(model.to_dict())``;
* FastAPI's ``jsonable_encoder`` (what FastAPI runs on an endpoint's return
  value) — a model iterates as its ``(field, value)`` pairs, so ``dict(model)``
  is its JSON object, as for a pydantic model.

A :class:`~aiolens._core.redact.SecretStr` met anywhere on the way encodes as
its mask, never as its value.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec

from aiolens._core.redact import MASK, SecretStr

__all__ = ["Model", "enc_hook", "to_builtins"]


def enc_hook(obj: Any) -> Any:
    """msgspec encode hook for values msgspec does not know: a ``SecretStr`` is its mask.

    Pass it as ``msgspec.json.encode(value, enc_hook=enc_hook)`` when ``value``
    holds your own ``SecretStr`` objects; aiolens models never need it.

    Raises:
        NotImplementedError: any other unsupported type (msgspec then raises
            its usual ``TypeError``).
    """
    if isinstance(obj, SecretStr):
        return MASK
    raise NotImplementedError(f"Objects of type {type(obj).__name__} are not JSON-encodable")


def to_builtins(value: Any) -> Any:
    """``value`` as plain ``dict`` / ``list`` / ``str`` / numbers, ready for any JSON encoder.

    Works on any aiolens model, event or error item, and on lists and dicts of
    them: ``json.dumps(to_builtins(await client.sessions.metadata()))``. A
    tagged event keeps its ``type``; enums become their values; a ``SecretStr``
    becomes its mask.
    """
    return msgspec.to_builtins(value, enc_hook=enc_hook)


class Model(msgspec.Struct):
    """Base class of aiolens's msgspec models: JSON-ready by every route (module docs)."""

    def to_dict(self) -> dict[str, Any]:
        """The model as a JSON-ready ``dict`` (see :func:`to_builtins`)."""
        result: dict[str, Any] = to_builtins(self)
        return result

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        """``(field, value)`` pairs of :meth:`to_dict`, so that ``dict(model)`` works."""
        return iter(self.to_dict().items())

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        """Let pydantic (FastAPI's ``-> Lens`` return annotations) validate and serialise it.

        Validation converts a dict with msgspec; serialisation is :meth:`to_dict`.
        Called by pydantic only; aiolens does not depend on it.
        """
        from pydantic_core import core_schema

        def validate(value: Any) -> Any:
            return value if isinstance(value, cls) else msgspec.convert(value, cls)

        return core_schema.no_info_plain_validator_function(
            validate,
            serialization=core_schema.plain_serializer_function_ser_schema(to_builtins),
        )

    @classmethod
    def __get_pydantic_json_schema__(cls, core: Any, handler: Any) -> dict[str, Any]:
        """The OpenAPI schema FastAPI shows for it: an object named after the model."""
        return {"type": "object", "title": cls.__name__}
