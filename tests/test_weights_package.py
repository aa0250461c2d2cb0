"""The shape of xlmr_np/weights/: what its modules may import, no import cycles, the old flat modules gone."""

import ast
import sys
from pathlib import Path

import pytest

WEIGHTS = Path(__file__).resolve().parent.parent / "xlmr_np" / "weights"
MODULES = sorted(p.stem for p in WEIGHTS.glob("*.py"))
OPTIONAL = {"h5py", "msgpack", "huggingface_hub"}  # only inside the function that needs them


def _imports(name):
    """(relative module names within weights/, [(top-level external name, inside a function?)])."""
    tree = ast.parse((WEIGHTS / f"{name}.py").read_text(encoding="utf-8"))
    in_function = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                   for n in ast.walk(f) if n is not f}
    siblings, external = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            siblings.add(node.module)
        elif isinstance(node, ast.ImportFrom) and node.level == 2:
            assert node.module == "errors", f"weights/{name}.py imports xlmr_np.{node.module}"
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            external += [(m.split(".")[0], id(node) in in_function) for m in modules]
    return siblings, external


@pytest.mark.parametrize("name", MODULES)
def test_imports_only_numpy_stdlib_errors_and_itself(name):
    _, external = _imports(name)
    for top, in_function in external:
        if top in OPTIONAL:
            assert in_function, f"weights/{name}.py imports the optional {top} at module level"
        else:
            assert top == "numpy" or top in sys.stdlib_module_names, f"weights/{name}.py imports {top}"


def test_no_import_cycles():
    graph = {name: _imports(name)[0] for name in MODULES if name != "__init__"}

    def visit(name, path):
        assert name not in path, "import cycle: " + " -> ".join(path + [name])
        for dep in graph[name]:
            visit(dep, path + [name])

    for name in graph:
        visit(name, [])


def test_old_flat_modules_are_gone():
    package = WEIGHTS.parent
    for old in ("safetensors", "torch_pickle", "weight_files", "checkpoint", "convert"):
        assert not (package / f"{old}.py").exists(), f"xlmr_np/{old}.py is back"
