"""The import graph of ``rag/`` (every import, the lazy ones inside functions too): no cycle, query
time never reaches into training or evaluation, and nothing below the surfaces imports them."""

import ast
from pathlib import Path

import rag

ROOT = Path(rag.__file__).parent
# The surfaces: thin layers over rag.api. Only they (and what trains or evaluates) may import it.
SURFACES = ("rag.api", "rag.surface", "rag.cli", "rag.server", "rag.mcp_server", "rag.repl")
ABOVE_QUERY_TIME = ("rag.training", "rag.evaluation")


def modules() -> dict[str, Path]:
    out = {}
    for f in ROOT.rglob("*.py"):
        parts = list(f.relative_to(ROOT.parent).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    graph = {}
    for name, path in mods.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                for alias in node.names:
                    full = f"{target}.{alias.name}"
                    deps.add(full if full in mods else target)
            elif isinstance(node, ast.Import):
                deps.update(alias.name for alias in node.names)
        graph[name] = {d for d in deps if d in mods and d != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_graph_is_read_whole():
    graph = import_graph()
    assert {"rag.api", "rag.retrieval", "rag.adapters", "rag.training.lora", "rag.stores.files"} <= set(graph)
    assert "rag.adapters" in graph["rag.embedding"]          # a lazy import inside a function counts
    assert "rag.api" in graph["rag.training.answering"]


def test_no_import_cycle():
    assert cycles(import_graph()) == []
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]   # the check works


def test_query_time_imports_nothing_of_training_or_evaluation():
    graph = import_graph()
    wrong = {m: sorted(d for d in deps if d.startswith(ABOVE_QUERY_TIME))
             for m, deps in graph.items() if not m.startswith(ABOVE_QUERY_TIME) and m != "rag.cli"}
    assert {m: d for m, d in wrong.items() if d} == {}
    # The command line registers `rag train` and `rag questions` from their stdlib-only parsers.
    assert {d for d in graph["rag.cli"] if d.startswith(ABOVE_QUERY_TIME)} <= {"rag.training.cli", "rag.training.questions"}


def test_nothing_below_the_surfaces_imports_them():
    graph = import_graph()
    below = [m for m in graph if m != "rag" and not m.startswith(SURFACES + ABOVE_QUERY_TIME)]
    wrong = {m: sorted(d for d in graph[m] if d.startswith(SURFACES)) for m in below}
    assert {m: d for m, d in wrong.items() if d} == {}


def test_no_function_is_longer_than_a_hundred_lines():
    import ast

    long = []
    for path in sorted(ROOT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 100:
                long.append(f"{path.relative_to(ROOT.parent)}:{node.lineno} {node.name} "
                            f"({node.end_lineno - node.lineno + 1} lines)")
    assert not long, "split these: " + "; ".join(long)
