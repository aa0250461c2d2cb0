"""The package's shape: imports point one way, the reference core stays plain, and the math needs numpy only.

Read from the source with `ast`, so function-level imports count as much as module-level ones.
Layers, each allowed to import only those before it (and itself):
    errors, backend -> config -> core -> runtime -> weights, text -> the face (modeling, inputs, outputs,
    generation) -> pipelines -> embeddings -> integrations, audit -> cli
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "xlmr_np"

# top-level unit of xlmr_np -> the units it may import (besides itself)
ALLOWED = {
    "errors": set(),
    "backend": set(),
    "config": {"errors", "core"},
    "core": {"backend"},
    "runtime": {"backend", "core"},
    "weights": {"errors"},
    "text": {"errors", "weights"},
    "inputs": {"errors", "backend"},
    "outputs": set(),
    "modeling": {"errors", "backend", "config", "core", "runtime", "weights", "inputs", "outputs", "generation"},
    "generation": {"errors", "backend", "inputs"},
    "pipelines": {"errors", "backend", "config", "core", "runtime", "weights", "text", "inputs", "modeling"},
    "embeddings": {"errors", "backend", "config", "core", "runtime", "weights", "text", "inputs", "modeling",
                   "pipelines"},
    "integrations": {"errors", "backend", "config", "core", "runtime", "weights", "text", "inputs", "modeling",
                     "pipelines", "embeddings"},
    "audit": {"errors", "backend", "config", "core", "runtime", "weights", "text", "inputs", "outputs",
              "modeling", "pipelines"},
    "cli": {"errors", "backend", "config", "core", "runtime", "weights", "text", "inputs", "outputs", "modeling",
            "pipelines", "embeddings", "integrations", "audit"},
    "__init__": {"config", "modeling", "text", "pipelines", "core", "embeddings"},  # lazily, by name (PEP 562)
    "__main__": {"cli"},
}
# what the reference core may import from outside the package: no files, threads, memory maps or C calls
CORE_STDLIB = {"__future__", "math", "dataclasses", "typing", "numpy"}


def modules():
    return sorted(p for p in PACKAGE.rglob("*.py"))


def unit_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["xlmr_np"] + parts)


def imports_of(path: Path):
    """Every module an import statement in `path` names, at any depth, as absolute names."""
    tree = ast.parse(path.read_text(), str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rsplit(".", 1)[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            found.append(target)
            found += [f"{target}.{alias.name}" for alias in node.names]  # `from . import model` names a module
    return found


def internal_graph():
    """module name -> the xlmr_np modules it imports (names that are modules, not attributes)."""
    names = {module_name(p): p for p in modules()}
    graph = {}
    for name, path in names.items():
        targets = {t for t in imports_of(path) if t in names and t != name}
        graph[name] = targets
    return graph


def test_no_import_cycles():
    graph = internal_graph()
    # packages import their own __init__ implicitly; a cycle through a package __init__ counts too
    state, stack, cycles = {}, [], []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                cycles.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_one_way(path):
    unit = unit_of(path)
    allowed = ALLOWED.get(unit)
    assert allowed is not None, f"{unit} is not in this test's table of layers: add it where it belongs"
    wrong = sorted({t for t in imports_of(path) if t.startswith("xlmr_np.")
                    and t.split(".")[1] not in allowed | {unit} and t.split(".")[1] in ALLOWED})
    assert not wrong, f"{path.relative_to(PACKAGE)} imports {wrong}; {unit} may import only {sorted(allowed)}"


@pytest.mark.parametrize("path", sorted((PACKAGE / "core").glob("*.py")), ids=lambda p: p.name)
def test_the_reference_core_is_plain_array_code(path):
    external = {t.split(".")[0] for t in imports_of(path) if not t.startswith("xlmr_np")}
    assert external <= CORE_STDLIB, f"core/{path.name} imports {sorted(external - CORE_STDLIB)}"


def test_the_math_needs_numpy_only():
    """`import xlmr_np.core.model` and the model classes work without sentencepiece (only text needs it)."""
    code = ("import sys; sys.modules['sentencepiece'] = None\n"
            "import xlmr_np.core.model, xlmr_np\n"
            "assert xlmr_np.XLMRobertaModel.__name__ == 'XLMRobertaModel'\n"
            "assert 'xlmr_np.text' not in sys.modules and 'xlmr_np.pipelines' not in sys.modules\n"
            "try:\n    xlmr_np.XLMRobertaTokenizer\nexcept ImportError:\n    print('tokenizer needs sentencepiece')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PACKAGE.parent)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "tokenizer needs sentencepiece"


def test_the_old_core_addresses_still_work_with_a_warning():
    import xlmr_np
    import xlmr_np.core.model

    with pytest.warns(DeprecationWarning, match="xlmr_np.model is now xlmr_np.core.model"):
        assert xlmr_np.__getattr__("model") is xlmr_np.core.model
