"""The package layers, read from the source: every import runs down a layer, no import cycle, and no library
module needs an entry point (train.py, eval.py, inference.py, train_task_head.py).

    utils (generic helpers) <- datasets <- models <- evaluation <- engine <- runs
    datasets <- pose_extraction <- curation
"""
import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENTRY_POINTS = {"train", "eval", "inference", "train_task_head"}
# What each layer may import (itself included).
ALLOWED = {
    "utils": {"utils"},
    "datasets": {"datasets", "utils"},
    "models": {"models", "datasets", "utils"},
    "evaluation": {"evaluation", "models", "datasets", "utils"},
    "engine": {"engine", "evaluation", "models", "datasets", "utils"},
    "runs": {"runs", "engine", "evaluation", "models", "datasets", "utils"},
    "pose_extraction": {"pose_extraction", "datasets", "utils"},
    "curation": {"curation", "pose_extraction", "datasets", "utils"},
}
# `python -m utils.<old name>` aliases of moved commands: they only run another module.
COMMAND_ALIASES = {f"utils.{name}" for name in ("pose_extraction", "visualize", "bleurt", "collect_results",
                                                "export_checkpoint")}


def library_modules() -> dict:
    """Dotted module name -> file, for every module of the library layers."""
    modules = {"engine": REPO / "engine.py"}
    for package in ALLOWED.keys() - {"engine"}:
        for path in sorted((REPO / package).rglob("*.py")):
            name = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
            if name not in COMMAND_ALIASES:
                modules[name] = path
    return modules


def project_imports(path, known) -> set:
    """The project modules (or entry points) that `path` imports anywhere in its body."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            while name not in known and "." in name:
                name = name.rsplit(".", 1)[0]
            if name in known or name in ENTRY_POINTS:
                found.add(name)
    return found


def import_graph() -> dict:
    modules = library_modules()
    return {name: project_imports(path, modules) - {name} for name, path in modules.items()}


def test_every_import_runs_down_a_layer_and_never_into_an_entry_point():
    wrong = [f"{module} imports {target}" for module, targets in import_graph().items() for target in targets
             if target in ENTRY_POINTS or target.split(".")[0] not in ALLOWED[module.split(".")[0]]]
    assert wrong == []


def test_no_import_cycle():
    graph, state, cycles = import_graph(), {}, []

    def visit(module, path):
        state[module] = "open"
        for target in sorted(graph[module] - ENTRY_POINTS):
            if state.get(target) == "open":
                cycles.append(" -> ".join(path[path.index(target):] + [target]))
            elif target not in state:
                visit(target, path + [target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_every_library_module_imports_without_an_entry_point():
    names = sorted(library_modules())
    code = ("import importlib, sys\n"
            f"for name in {names!r}:\n    importlib.import_module(name)\n"
            f"print(sorted(set({sorted(ENTRY_POINTS)!r}) & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_nothing_but_the_tests_imports_train_py():
    """train.py is only a command: entry points, the demo, benchmarks and scripts build runs from runs/."""
    files = [path for folder in ("bench", "script", "demo") for path in (REPO / folder).rglob("*.py")]
    files += [REPO / f"{name}.py" for name in ENTRY_POINTS - {"train"}] + list(library_modules().values())
    importers = [str(path.relative_to(REPO)) for path in files if "train" in project_imports(path, {})]
    assert importers == []


def test_only_one_conftest():
    """A second tests/**/conftest.py would shadow tests/conftest.py for every module that imports from it."""
    assert sorted(str(path.relative_to(REPO)) for path in (REPO / "tests").rglob("conftest.py")) == ["tests/conftest.py"]
