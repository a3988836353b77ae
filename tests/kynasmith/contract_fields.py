"""Field-by-field comparison of msgspec structs with the vendor's pydantic models.

Each field becomes ``(required, type)`` on both sides, normalised to a short
string: ``str``, ``int``, ``float``, ``bool``, ``null``, ``list[...]``,
``dict``, ``literal(a|b)``, a nested model by its counterpart's name, and
``A|B`` for unions. A msgspec tag (``type``) is compared with the pydantic
``Literal`` discriminator. Constraints (``ge``/``le``, lengths) are listed
as their own aspect, since msgspec structs here carry none (the checks live in
code, e.g. :func:`aiolens.kynasmith.models.validate_frame`).
"""

from __future__ import annotations

import types
import typing
from typing import Any

import msgspec

Difference = tuple[str, str, str]
"""(model pair, field, aspect): aspect is ``missing``, ``extra``, ``required``,
``type`` or ``constraints``."""


def _struct_type(tp: Any, names: dict[type, str]) -> str:
    origin = typing.get_origin(tp)
    if tp is type(None) or tp is None:
        return "null"
    if origin in (typing.Union, types.UnionType):
        return "|".join(sorted(_struct_type(t, names) for t in typing.get_args(tp)))
    if origin is typing.Literal:
        return "literal(" + "|".join(sorted(map(str, typing.get_args(tp)))) + ")"
    if origin is list:
        return f"list[{_struct_type(typing.get_args(tp)[0], names)}]"
    if origin is dict or tp is dict:
        return "dict"
    if tp is msgspec.Raw:
        return "raw"
    if isinstance(tp, type) and tp in names:
        return names[tp]
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return f"model:{tp.__name__}"
    if tp is typing.Any:
        return "any"
    return getattr(tp, "__name__", str(tp))


def _pydantic_type(tp: Any, names: dict[type, str]) -> str:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _pydantic_type(typing.get_args(tp)[0], names)
    if tp is type(None) or tp is None:
        return "null"
    if origin in (typing.Union, types.UnionType):
        return "|".join(sorted(_pydantic_type(t, names) for t in typing.get_args(tp)))
    if origin is typing.Literal:
        return "literal(" + "|".join(sorted(map(str, typing.get_args(tp)))) + ")"
    if origin is list:
        return f"list[{_pydantic_type(typing.get_args(tp)[0], names)}]"
    if origin is dict or tp is dict:
        return "dict"
    if isinstance(tp, type) and tp in names:
        return names[tp]
    if getattr(tp, "__name__", "") == "datetime":
        return "datetime"
    if hasattr(tp, "model_fields"):
        return f"model:{tp.__name__}"
    return getattr(tp, "__name__", str(tp))


def describe_struct(
    cls: type[msgspec.Struct], names: dict[type, str]
) -> dict[str, tuple[bool, str]]:
    """``{field: (required, type)}`` of a struct; its tag becomes a ``type`` literal."""
    hints = typing.get_type_hints(cls)
    out = {
        f.name: (f.required, _struct_type(hints[f.name], names))
        for f in msgspec.structs.fields(cls)
    }
    info = msgspec.inspect.type_info(cls)
    if isinstance(info, msgspec.inspect.StructType) and info.tag_field:
        out[info.tag_field] = (True, f"literal({info.tag})")
    return out


def describe_model(model: Any, names: dict[type, str]) -> dict[str, tuple[bool, str]]:
    """``{field: (required, type)}`` of a pydantic model (forward references resolved)."""
    hints = typing.get_type_hints(model, include_extras=True)
    return {
        name: (info.is_required(), _pydantic_type(hints.get(name, info.annotation), names))
        for name, info in model.model_fields.items()
    }


def constrained(model: Any) -> set[str]:
    """The pydantic model's fields that carry constraints (ge, le, lengths …)."""
    return {name for name, info in model.model_fields.items() if info.metadata}


def compare(
    pairs: dict[str, tuple[type[msgspec.Struct], Any]],
) -> dict[Difference, tuple[Any, Any]]:
    """Every difference of each struct from its model: ``{(pair, field, aspect): (ours, theirs)}``.

    Nested models count as equal when they are each other's counterpart (both
    sides are named by the pair's key).
    """
    ours_names = {struct: key for key, (struct, _) in pairs.items()}
    theirs_names = {model: key for key, (_, model) in pairs.items()}
    found: dict[Difference, tuple[Any, Any]] = {}
    for key, (struct, model) in pairs.items():
        ours = describe_struct(struct, ours_names)
        theirs = describe_model(model, theirs_names)
        for field in sorted(set(ours) | set(theirs)):
            if field not in ours:
                found[(key, field, "missing")] = (None, theirs[field])
                continue
            if field not in theirs:
                found[(key, field, "extra")] = (ours[field], None)
                continue
            if ours[field][0] != theirs[field][0]:
                found[(key, field, "required")] = (ours[field][0], theirs[field][0])
            if ours[field][1] != theirs[field][1]:
                found[(key, field, "type")] = (ours[field][1], theirs[field][1])
        for field in sorted(constrained(model)):
            found[(key, field, "constraints")] = (
                None,
                repr(model.model_fields[field].metadata),
            )
    return found
