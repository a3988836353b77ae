"""The layer rules of ``DESIGN.md``, read from the source's imports (``ast``).

* ``aiolens._core``: pure logic — imports nothing from aiolens outside itself but the
  exception tree (``aiolens.errors``, itself pure), and no I/O or event-loop library;
* ``aiolens._transport``: no vendor package, nor anything built on top of it;
* the vendor packages (``archetype``, ``kynasmith``): not each other, not the emulator,
  not the programs and integrations built on them, and not the network libraries
  (``aiohttp``, ``websockets``): they speak through ``_transport``;
* ``aiolens.emulator``: no client code at all — it reads the protocol on its own (its
  own wire models), so a field misspelt on one side fails a test instead of passing
  both.

Every import counts: module level, inside functions and under ``TYPE_CHECKING``.
``KNOWN`` lists the breaches not mended yet, each with the work that removes it; an
entry that no longer matches fails too, so the list only shrinks.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "aiolens"

_IO = ("asyncio", "aiohttp", "websockets", "anyio", "trio", "socket", "ssl", "selectors")
_ON_TOP = ("aiolens.emulator", "aiolens.cli", "aiolens.demo", "aiolens.testing")
_ON_TOP += ("aiolens.integrations", "aiolens.fleet")
_VENDORS = ("aiolens.archetype", "aiolens.kynasmith")
_NETWORK = ("aiohttp", "websockets")

# (importing module, imported module) pairs that break a rule today.
KNOWN: dict[tuple[str, str], str] = {
    # session= takes the user's own aiohttp.ClientSession: public API, stays.
    ("aiolens.archetype.client", "aiohttp"): "session: aiohttp.ClientSession (public API)",
    ("aiolens.kynasmith.client", "aiohttp"): "session: aiohttp.ClientSession (public API)",
    ("aiolens.archetype.uploads", "aiohttp"): (
        "direct upload PUTs parts to presigned storage URLs with the pool's session; "
        "goes when the transport gets an unauthenticated streaming PUT"
    ),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, *, lazy_getattr: bool = True) -> set[str]:
    """The modules ``path`` imports, wherever the import statement is.

    Without ``lazy_getattr``, imports inside a module-level ``__getattr__`` (PEP 562: a
    name resolved on first use, after both modules have loaded) are left out.
    """
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()
    tree = ast.parse(path.read_text(), str(path))
    if not lazy_getattr:
        tree.body = [
            n for n in tree.body if not (isinstance(n, ast.FunctionDef) and n.name == "__getattr__")
        ]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.add(name)
    return found


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _rule_broken(module: str, imported: str) -> str | None:
    """Which rule ``module`` importing ``imported`` breaks, or ``None``."""
    if _under(module, ("aiolens._core",)):
        if _under(imported, _IO):
            return "_core does no I/O"
        if _under(imported, ("aiolens",)) and not _under(
            imported, ("aiolens._core", "aiolens.errors")
        ):
            return "_core imports only itself and the exception tree"
    if _under(module, ("aiolens._transport",)) and _under(imported, (*_VENDORS, *_ON_TOP)):
        return "_transport knows no vendor"
    for vendor in _VENDORS:
        if _under(module, (vendor,)):
            others = tuple(v for v in _VENDORS if v != vendor)
            if _under(imported, (*others, *_ON_TOP)):
                return f"{vendor} stands alone"
            if _under(imported, _NETWORK):
                return f"{vendor} leaves the network libraries to _transport"
    if _under(module, ("aiolens.emulator",)) and _under(imported, ("aiolens",)):
        allowed = ("aiolens.emulator", "aiolens._extras", "aiolens.data")
        if not _under(imported, allowed):
            return "the emulator uses no client code"
    return None


def _breaches() -> dict[tuple[str, str], str]:
    breaches = {}
    for path in sorted(SRC.rglob("*.py")):
        module = _module_name(path)
        for imported in _imports(path):
            rule = _rule_broken(module, imported)
            if rule:
                breaches[(module, imported)] = rule
    return breaches


BREACHES = _breaches()


def test_no_new_layer_breach() -> None:
    new = {pair: rule for pair, rule in BREACHES.items() if pair not in KNOWN}
    assert not new, "\n".join(f"{m} imports {i}: {rule}" for (m, i), rule in sorted(new.items()))


def test_known_breaches_are_still_there() -> None:
    mended = sorted(pair for pair in KNOWN if pair not in BREACHES)
    assert not mended, f"mended (remove from KNOWN in {__file__}): {mended}"


@pytest.mark.parametrize(
    ("module", "imported", "broken"),
    [
        ("aiolens._core.sse", "asyncio", True),
        ("aiolens._core.sse", "aiolens.errors", False),
        ("aiolens._core.sse", "aiolens._transport.http", True),
        ("aiolens._core.sse", "aiolens._core.backoff", False),
        ("aiolens._transport.http", "aiolens.archetype.models", True),
        ("aiolens._transport.http", "aiolens.errors", False),
        ("aiolens.archetype.client", "aiolens.kynasmith.models", True),
        ("aiolens.archetype.resources", "aiohttp", True),
        ("aiolens.kynasmith.session", "websockets.exceptions", True),
        ("aiolens.kynasmith.session", "aiolens._transport.ws", False),
        ("aiolens.kynasmith.session", "aiolens.emulator", True),
        ("aiolens.emulator.lens_rest", "aiolens._core.sse", True),
        ("aiolens.emulator.lens_rest", "aiolens.emulator.faults", False),
        ("aiolens.emulator.lens_rest", "aiohttp", False),
    ],
)
def test_the_rules_themselves(module: str, imported: str, broken: bool) -> None:
    assert (_rule_broken(module, imported) is not None) is broken
