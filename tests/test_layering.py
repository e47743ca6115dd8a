"""The package's layering contract, checked on the source (see ARCHITECTURE.md).

core (errors, registry, config, outputs, provenance, runtime, families) -> download ->
data_prep -> models -> analysis -> figures -> workflow -> cli (and the ``nbdid``
facade).  No module imports a layer above its own, function-level imports included;
imports of nbdid modules sit at module level except in the command-line modules,
whose handlers import the workflow lazily so that ``nbdid --help`` stays fast.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "registry", "config", "outputs", "provenance", "runtime", "version", "families"),
    ("download",),
    ("data_prep",),
    ("models",),
    ("analysis",),
    ("figures",),
    ("workflow",),
    ("cli", "__init__"),
)
"""Layers from the bottom up; a module may import its own layer and those below."""

LEVEL = {name: i for i, names in enumerate(LAYERS) for name in names}

LAZY_ALLOWED = ("cli",)
"""Top-level packages whose functions may import nbdid modules (start-up time)."""

NO_DRAWING = ("errors", "registry", "config", "outputs", "provenance", "runtime", "version", "families",
              "download", "data_prep", "models", "analysis")
"""Layers that must not import matplotlib (analysis never draws)."""


def package_files() -> list[Path]:
    skip = {"tests", "bench", "docs", ".venv", ".git", "build", "dist"}
    out = []
    for p in sorted(REPO.rglob("*.py")):
        rel = p.relative_to(REPO)
        if rel.parts[0] in skip or any(part.startswith(".") for part in rel.parts):
            continue
        out.append(p)
    return out


def top(rel: Path) -> str:
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def imports(tree: ast.AST, *, runtime_only: bool = False) -> list[tuple[str, int, bool]]:
    """``(module, line, at_module_level)`` of every import in a file; with
    ``runtime_only``, imports under ``if TYPE_CHECKING:`` are left out."""
    found: list[tuple[str, int, bool]] = []
    body = getattr(tree, "body", [])
    module_level = {id(n) for n in body}
    typing_only: set[int] = set()
    for n in body:
        if isinstance(n, ast.If):
            module_level |= {id(m) for m in n.body}
            if _type_checking(n):
                typing_only |= {id(m) for m in n.body}
        if isinstance(n, ast.Try):
            module_level |= {id(m) for m in n.body} | {id(m) for h in n.handlers for m in h.body}
    for node in ast.walk(tree):
        if runtime_only and id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            for a in node.names:
                found.append((a.name, node.lineno, id(node) in module_level))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, node.lineno, id(node) in module_level))
    return found


def nbdid_target(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "nbdid":
        return None
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_package_module_has_a_layer():
    missing = sorted({top(p.relative_to(REPO)) for p in package_files()} - set(LEVEL))
    assert not missing, f"add these modules to a layer in tests/test_layering.py and ARCHITECTURE.md: {missing}"


def test_no_module_imports_upwards():
    bad = []
    for p in package_files():
        rel = p.relative_to(REPO)
        src = top(rel)
        tree = ast.parse(p.read_text(encoding="utf-8"))
        for module, line, _ in imports(tree):
            tgt = nbdid_target(module)
            if tgt is None or tgt not in LEVEL:
                continue
            if LEVEL[tgt] > LEVEL[src]:
                bad.append(f"{rel}:{line} ({src}) imports {module} ({tgt})")
    assert not bad, "upward imports:\n" + "\n".join(bad)


def test_nbdid_imports_are_at_module_level_outside_the_cli():
    bad = []
    for p in package_files():
        rel = p.relative_to(REPO)
        if top(rel) in LAZY_ALLOWED:
            continue
        tree = ast.parse(p.read_text(encoding="utf-8"))
        for module, line, at_top in imports(tree):
            if nbdid_target(module) is not None and not at_top:
                bad.append(f"{rel}:{line} imports {module} inside a function")
    assert not bad, "move these imports to module level:\n" + "\n".join(bad)


def test_every_import_inside_a_function_says_why():
    """Outside the CLI, an import inside a function (kept for start-up time or an optional
    dependency) carries an ``# imported here: <why>`` comment just above it or its block."""
    bad = []
    for p in package_files():
        rel = p.relative_to(REPO)
        if top(rel) in LAZY_ALLOWED:
            continue
        lines = p.read_text(encoding="utf-8").splitlines()
        tree = ast.parse("\n".join(lines))
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    above = lines[max(0, node.lineno - 4):node.lineno - 1]
                    if not any("#" in ln for ln in above) and "#" not in lines[node.lineno - 1]:
                        bad.append(f"{rel}:{node.lineno} in {fn.name}()")
    assert not bad, ("say why these imports are inside functions (or move them to module "
                     "level):\n" + "\n".join(sorted(set(bad))))


@pytest.mark.parametrize("layer", NO_DRAWING)
def test_lower_layers_never_draw(layer):
    bad = []
    for p in package_files():
        rel = p.relative_to(REPO)
        if top(rel) != layer:
            continue
        tree = ast.parse(p.read_text(encoding="utf-8"))
        for module, line, _ in imports(tree, runtime_only=True):
            if module.split(".")[0] == "matplotlib":
                bad.append(f"{rel}:{line} imports {module}")
    assert not bad, "\n".join(bad)


def test_figures_compute_no_verdicts():
    """Figures read verdict columns; they do not compare intervals with zero themselves."""
    import re

    pattern = re.compile(r"\b(lower|lo|ci_low|q2\.5)\w*\s*>\s*0\b|\b(upper|hi|q97\.5)\w*\s*<\s*0\b")
    bad = []
    for p in sorted((REPO / "figures").glob("*.py")):
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line):
                bad.append(f"{p.name}:{i}: {line.strip()}")
    assert not bad, "figures compute a verdict:\n" + "\n".join(bad)


def test_architecture_md_names_every_layer():
    """ARCHITECTURE.md's layer table stays true: it names every module of every layer."""
    text = (REPO / "ARCHITECTURE.md").read_text(encoding="utf-8")
    table = text[text.index("| layer |"):text.index("## The data's path")]
    for names in LAYERS:
        for name in names:
            shown = "nbdid/__init__.py" if name == "__init__" else name
            assert f"`{shown}" in table, f"ARCHITECTURE.md's layer table does not name {shown}"


CORE_TYPED = ("models", "families", "analysis", "workflow")
"""Packages whose functions type the model core's objects."""


def test_the_model_core_is_typed():
    """``cfg``/``model_cfg``/``sampler_cfg``, ``idata`` and ``posterior`` parameters carry
    their types (ModelConfig, SamplerConfig, InferenceData, xarray Dataset), not ``Any``."""
    names = ("cfg", "model_cfg", "sampler_cfg", "idata", "posterior")
    bad = []
    for p in package_files():
        rel = p.relative_to(REPO)
        if top(rel) not in CORE_TYPED:
            continue
        for fn in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for a in fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs:
                if a.arg in names and (a.annotation is None or ast.unparse(a.annotation) == "Any"):
                    bad.append(f"{rel}:{a.lineno} {fn.name}({a.arg})")
    assert not bad, "annotate these parameters:\n" + "\n".join(bad)
