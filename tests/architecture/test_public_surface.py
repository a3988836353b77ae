"""Every type in a public signature can be imported from a public module.

Public modules are the ones whose dotted path has no ``_``-prefixed part (the
emulator's public surface is its package, ``aiolens.emulator``; the CLI and the
demo are programs, not API). A type used by a public class, method, property,
field or function — ``Backoff`` in ``AsyncArchetypeClient(backoff=...)``,
``EventStream`` returned by ``LensSession.events()`` — must be exported (in
``__all__``) by one of them, so users can annotate their own code without
importing private modules. Parameters whose name starts with ``_`` are private.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import types
import typing
from typing import Any

import aiolens

_PROGRAMS = ("aiolens.cli", "aiolens.demo", "aiolens.data")
# Classes users get from a client and never build: their constructors take the
# client's private parts.
_BUILT_BY_THE_CLIENT = {
    "aiolens.kynasmith.tokens.TokenManager",  # client.tokens
    "aiolens._transport.sse.EventStream",  # session.events()
    "aiolens.archetype.agents.Agents",  # client.agents
    "aiolens.archetype.agents.serving.AgentConnection",  # client.agents.connect()
}


def _public_module_names() -> list[str]:
    names = ["aiolens"]
    for info in pkgutil.walk_packages(aiolens.__path__, "aiolens."):
        parts = info.name.split(".")
        if any(p.startswith("_") for p in parts[1:]):
            continue
        if info.name.startswith(_PROGRAMS):
            continue
        if info.name.startswith("aiolens.emulator."):
            continue
        names.append(info.name)
    return names


PUBLIC_MODULES = {name: importlib.import_module(name) for name in _public_module_names()}
EXPORTS: dict[str, Any] = {
    f"{mod_name}.{name}": getattr(module, name)
    for mod_name, module in PUBLIC_MODULES.items()
    for name in getattr(module, "__all__", ())
}
_EXPORTED_IDS = {id(obj) for obj in EXPORTS.values()}
# Names visible to forward references (``if TYPE_CHECKING:`` imports).
_NAMESPACE = {name.rsplit(".", 1)[1]: obj for name, obj in EXPORTS.items()}


def _hints(obj: Any) -> dict[str, Any]:
    module = importlib.import_module(getattr(obj, "__module__", "aiolens"))
    namespace = dict(_NAMESPACE)
    if inspect.isclass(obj):  # annotations inherited from bases defined elsewhere
        for base in reversed(obj.__mro__[1:]):
            namespace.update(vars(importlib.import_module(base.__module__)))
    return typing.get_type_hints(obj, globalns={**namespace, **vars(module)})


def _classes_in(tp: Any, found: set[type]) -> None:
    if isinstance(tp, type) and not isinstance(tp, types.GenericAlias):
        found.add(tp)
    origin = typing.get_origin(tp)
    if isinstance(origin, type):
        found.add(origin)
    for arg in typing.get_args(tp):
        _classes_in(arg, found)


def _signature_owners() -> list[tuple[str, Any]]:
    """(where, object) for every public function, method, property and class."""
    owners: list[tuple[str, Any]] = []
    for where, obj in EXPORTS.items():
        if inspect.isclass(obj):
            owners.append((where, obj))
            built_by_client = f"{obj.__module__}.{obj.__qualname__}" in _BUILT_BY_THE_CLIENT
            for attr, value in vars(obj).items():
                if attr.startswith("_") and attr not in ("__init__", "__aenter__", "__call__"):
                    continue
                if attr == "__init__" and built_by_client:
                    continue
                func = value.fget if isinstance(value, property) else value
                func = getattr(func, "__func__", func)
                if inspect.isfunction(func):
                    owners.append((f"{where}.{attr}", func))
        elif inspect.isfunction(obj):
            owners.append((where, obj))
    return owners


def test_every_type_in_a_public_signature_is_exported() -> None:
    unexported: dict[str, set[str]] = {}
    for where, owner in _signature_owners():
        hints = _hints(owner)
        found: set[type] = set()
        for param, tp in hints.items():
            if not param.startswith("_"):
                _classes_in(tp, found)
        for cls in found:
            if cls.__module__.startswith("aiolens") and id(cls) not in _EXPORTED_IDS:
                unexported.setdefault(f"{cls.__module__}.{cls.__qualname__}", set()).add(where)
    assert not unexported, (
        "types used in public signatures but not exported publicly: "
        + "; ".join(
            f"{name} (used by {', '.join(sorted(users)[:3])})"
            for name, users in sorted(unexported.items())
        )
    )


def test_public_modules_name_only_what_they_have() -> None:
    for mod_name, module in PUBLIC_MODULES.items():
        for name in getattr(module, "__all__", ()):
            assert hasattr(module, name), f"{mod_name}.__all__ names {name}, which it lacks"


def test_the_top_level_exports_are_pinned() -> None:
    # Adding a name is a decision: add it here too. Removing one breaks users.
    assert set(aiolens.__all__) == {
        "APIConnectionError",
        "APIError",
        "APIResponseValidationError",
        "APIStatusError",
        "APITimeoutError",
        "AgentQueryError",
        "AgentRunError",
        "AiolensError",
        "AsyncArchetypeClient",
        "AsyncKynasmithClient",
        "AuthenticationError",
        "BadRequestError",
        "ConfigurationError",
        "ConflictError",
        "ConnectionLostError",
        "DetectionError",
        "DetectionSession",
        "EventError",
        "InternalServerError",
        "LensSession",
        "MessageTooLargeError",
        "MissingExtraError",
        "NotFoundError",
        "PayloadTooLargeError",
        "PermissionDeniedError",
        "PoseFrameError",
        "ProtocolError",
        "QueryTimeoutError",
        "RateLimit",
        "RateLimitError",
        "RejectedRequestError",
        "SessionStatus",
        "StreamResumeError",
        "Timeouts",
        "UnprocessableEntityError",
        "WaitTimeoutError",
        "__version__",
        "to_builtins",
    }


def test_every_error_in_the_tree_is_exported_at_the_top() -> None:
    # ``except aiolens.XError`` must work for every class of the one error tree.
    import aiolens.errors

    tree = {
        name
        for name, obj in vars(aiolens.errors).items()
        if isinstance(obj, type)
        and issubclass(obj, BaseException)
        and obj.__module__ == "aiolens.errors"
        and not name.startswith("_")
    }
    assert tree - set(aiolens.__all__) == set()
