"""The layering of docs/architecture.md holds: no module of probekit imports a layer above its own.

The table is read from the document (its "## Layers" section), so the document and the check cannot drift
apart; every `import` is checked, at module level, inside functions and under TYPE_CHECKING alike."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "probekit"
ARCHITECTURE = REPO / "docs" / "architecture.md"


def layer_table(text: str) -> dict[str, int]:
    """`probekit.x` → layer, from the rows `| N | `probekit.a`, `probekit.b` | ... |` of the Layers section."""
    section = text.split("## Layers", 1)[1].split("\n## ", 1)[0]
    layers: dict[str, int] = {}
    for line in section.splitlines():
        row = re.match(r"^\|\s*(\d+)\s*\|([^|]*)\|", line)
        if row:
            for name in re.findall(r"`(probekit(?:\.\w+)*)`", row.group(2)):
                assert name not in layers, f"{name} is in two layers of {ARCHITECTURE}"
                layers[name] = int(row.group(1))
    return layers


def module_name(path: Path, repo: Path) -> str:
    parts = list(path.relative_to(repo).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every probekit module `path` imports (`from a import b` counts as `a.b` and `a`)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: relative import (probekit imports absolutely)"
            module = node.module or ""
            found.append((node.lineno, module))
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return [(line, name) for line, name in found if name == "probekit" or name.startswith("probekit.")]


def layer_of(module: str, layers: dict[str, int]) -> int | None:
    """The layer of the longest table entry that is `module` or a package above it."""
    while module:
        if module in layers:
            return layers[module]
        module = module.rpartition(".")[0]
    return None


def violations(layers: dict[str, int], repo: Path = REPO) -> tuple[list[str], list[str]]:
    """(modules of `repo`/probekit the table does not place, imports of a layer above the importer's)."""
    unplaced, upward = [], []
    for path in sorted((repo / "probekit").rglob("*.py")):
        name = module_name(path, repo)
        if name == "probekit":
            continue  # the package's API functions: above every layer, their imports are lazy (see the document)
        mine = layer_of(name, layers)
        if mine is None:
            unplaced.append(name)
            continue
        worst: dict[int, tuple[int, str]] = {}  # per import statement, its highest layer
        for line, target in imported(path):
            if target == "probekit" or target == "probekit.__version__":
                continue  # the package's version, allowed everywhere
            theirs = layer_of(target, layers)
            if theirs is None:
                continue  # `from probekit.x import name`: the name itself is not a module (x is checked)
            if theirs > mine and theirs > worst.get(line, (-1, ""))[0]:
                worst[line] = (theirs, target)
        upward += [f"{path.relative_to(repo)}:{line}: {name} (layer {mine}) imports {target} (layer {theirs})"
                   for line, (theirs, target) in sorted(worst.items())]
    return unplaced, upward


def test_every_module_keeps_to_its_layer() -> None:
    layers = layer_table(ARCHITECTURE.read_text(encoding="utf-8"))
    unplaced, upward = violations(layers)
    assert not unplaced, f"modules missing from the layer table of {ARCHITECTURE}: {unplaced}"
    assert not upward, "imports of a layer above:\n" + "\n".join(upward)


def test_the_table_places_what_exists() -> None:
    layers = layer_table(ARCHITECTURE.read_text(encoding="utf-8"))
    assert len(layers) >= 20 and min(layers.values()) == 0
    for name in layers:
        parts = name.split(".")
        target = PACKAGE.parent.joinpath(*parts)
        assert target.is_dir() or target.with_suffix(".py").is_file(), f"{name} in the table is not a module of probekit"


@pytest.mark.parametrize(("source", "expected"), [
    ("from probekit.analysis.pride import source_priors\n", "imports probekit.analysis"),
    ("def f():\n    from probekit.scoring import score_trials\n", "imports probekit.scoring"),
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import probekit.pipeline\n", "imports probekit.pipeline"),
])
def test_an_upward_import_fails(tmp_path: Path, source: str, expected: str) -> None:
    """The check is not vacuous: a runtime module (layer 4) importing scoring, analysis or the pipeline, at module
    level, in a function or only for types, is reported."""
    layers = layer_table(ARCHITECTURE.read_text(encoding="utf-8"))
    fake_repo = tmp_path / "repo"
    (fake_repo / "probekit").mkdir(parents=True)
    (fake_repo / "probekit" / "runtime.py").write_text(source, encoding="utf-8")
    unplaced, upward = violations(layers, fake_repo)
    assert unplaced == [] and len(upward) == 1 and expected in upward[0], upward


ENGINE_WORDS = ("fake", "hf", "vllm", "transformers", "litellm")


def engine_name_tests(path: Path) -> list[str]:
    """Places in `path` that decide something from an engine's name: `key.startswith("fake")`-like calls and
    comparisons (`==`, `in`) with an engine name or key prefix."""
    def names_engine(node: ast.AST) -> bool:
        values = [node] if isinstance(node, ast.Constant) else list(getattr(node, "elts", []))
        return any(isinstance(v, ast.Constant) and isinstance(v.value, str)
                   and v.value.rstrip(":").split(":")[0] in ENGINE_WORDS for v in values)

    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in (
                "startswith", "removeprefix", "partition") and any(names_engine(a) for a in node.args):
            found.append(f"{path.relative_to(REPO)}:{node.lineno}")
        elif isinstance(node, ast.Compare) and any(names_engine(c) for c in [node.left, *node.comparators]):
            found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    return found


def test_engines_are_known_only_through_the_registry() -> None:
    """No module outside probekit.backends tells engines apart by name (the fake test engine included): it asks
    the registry (`engine_for(key).local_weights`, `.accepts(option)`, `stored_model_name(key)`)."""
    found = [hit for path in sorted(PACKAGE.rglob("*.py")) if "backends" not in path.relative_to(PACKAGE).parts[:1]
             for hit in engine_name_tests(path)]
    assert not found, "engine names tested outside probekit.backends:\n" + "\n".join(found)
