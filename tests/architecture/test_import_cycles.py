"""No import cycles among aiolens' modules, type-only ones included.

A cycle ties two modules into one unit: neither can be read, tested or moved
alone, and a type-only cycle (``if TYPE_CHECKING:``) is the same coupling put off
until the annotations are read. The graph is read from the source (``ast``) with
every import: module level, inside functions and under ``TYPE_CHECKING``. Left
out: a module-level ``__getattr__`` (PEP 562), which resolves a deprecated name
only on first use, after both modules have loaded (``aiolens.errors`` keeps
``parse_error_body`` that way).

``from package import name`` counts as importing ``package`` (its ``__init__``),
or ``package.name`` when that is a module.
"""

from __future__ import annotations

from tests.architecture.test_layers import SRC, _imports, _module_name


def _graph() -> dict[str, set[str]]:
    paths = {_module_name(p): p for p in sorted(SRC.rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for module, path in paths.items():
        edges: set[str] = set()
        for imported in _imports(path, lazy_getattr=False):
            target = imported
            while target and target not in paths:  # "pkg.mod.Name" -> "pkg.mod"
                target = target.rpartition(".")[0]
            if target and target != module:
                edges.add(target)
        graph[module] = edges
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _path(graph: dict[str, set[str]], component: list[str]) -> str:
    """One loop through ``component``, for the failure message (a -> b -> a)."""
    members = set(component)
    start = component[0]
    trail, node = [start], start
    while True:
        node = min(n for n in graph[node] if n in members)
        if node in trail:
            return " -> ".join([*trail[trail.index(node) :], node])
        trail.append(node)


def test_no_import_cycles() -> None:
    graph = _graph()
    cycles = _cycles(graph)
    assert not cycles, "import cycles: " + "; ".join(_path(graph, c) for c in cycles)


def test_the_cycle_finder_itself() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}, "f": set()}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _path(graph, ["a", "b", "c"]) == "a -> b -> c -> a"
    assert _cycles({"x": {"y"}, "y": set()}) == []
