"""Structure figures of the modelport package: what issue 16 measured, measured the same way.

    .venv/bin/python bench/structure.py [PACKAGE_DIR]

Prints: import cycles between modules (function-level imports included), lines per package,
the longest functions, the worst cyclomatic complexity (radon), and mypy and ruff finding
counts with the configuration in pyproject.toml. grimp and radon are needed (pip install grimp
radon); mypy and ruff are the test extra's.
"""

from __future__ import annotations

import ast
import collections
import subprocess
import sys
from pathlib import Path


def module_cycles(root: Path) -> list[list[str]]:
    """Strongly connected groups of modules (more than one) in the import graph."""
    import grimp

    sys.path.insert(0, str(root.parent))
    graph = grimp.build_graph(root.name, include_external_packages=False)
    edges = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    sys.setrecursionlimit(10000)
    for module in sorted(edges):
        if module not in index:
            visit(module)
    return groups


def lines_per_package(root: Path) -> dict[str, int]:
    """Lines of Python per top-level part of the package."""
    counts: collections.Counter[str] = collections.Counter()
    for path in root.rglob("*.py"):
        rel = path.relative_to(root)
        part = rel.parts[0] if len(rel.parts) > 1 else "(top-level modules)"
        counts[part] += len(path.read_text().splitlines())
    return dict(counts.most_common())


def longest_functions(root: Path, n: int = 5) -> list[tuple[int, str]]:
    """The ``n`` longest functions, as (lines, module:function)."""
    found = []
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                found.append((size, f"{path.relative_to(root.parent)}:{node.name}"))
    return sorted(found, reverse=True)[:n]


def worst_complexity(root: Path, n: int = 5) -> list[tuple[int, str]]:
    """The ``n`` functions of highest cyclomatic complexity (radon)."""
    from radon.complexity import cc_visit

    found = []
    for path in root.rglob("*.py"):
        for block in cc_visit(path.read_text()):
            found.append((block.complexity, f"{path.relative_to(root.parent)}:{block.name}"))
    return sorted(found, reverse=True)[:n]


def tool_count(command: list[str], cwd: Path) -> str:
    """The summary line of a linter run."""
    out = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    lines = [line for line in (out.stdout + out.stderr).splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "modelport").resolve()
    cycles = module_cycles(root)
    print(f"import cycles: {len(cycles)}" + "".join(
        f"\n  {len(c)} modules: {', '.join(c[:6])}{' ...' if len(c) > 6 else ''}" for c in cycles))
    print("lines per package:", lines_per_package(root))
    print("longest functions:", longest_functions(root))
    print("worst complexity:", worst_complexity(root))
    bin_dir = Path(sys.executable).parent
    print("mypy:", tool_count([str(bin_dir / "mypy"), str(root)], root.parent))
    print("ruff:", tool_count([str(bin_dir / "ruff"), "check", "--statistics", str(root)],
                              root.parent))


if __name__ == "__main__":
    main()
