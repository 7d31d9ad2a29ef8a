"""The package's layers, read from its import graph: no module imports a layer above it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import calendar_connections

PACKAGE = Path(calendar_connections.__file__).parent
NAME = "calendar_connections"

# What each layer must never import (arrows point down: api -> operations -> sync ->
# providers -> ical/models).
FORBIDDEN = {
    "api": (),
    "operations": ("api",),
    "sync": ("operations", "api"),
    "providers": ("sync", "operations", "api"),
    "ical": ("providers", "sync", "operations", "api"),
    "models": ("providers", "sync", "operations", "api"),
}
# Development tools the service never imports: the provider sandbox and the HTTP mock.
NEVER_IMPORTED = ("provider_sandbox", f"{NAME}.sandbox", "responses")
# What the engine must not know: the providers by name, their packages and their clients.
PROVIDER_NAMES = {"GOOGLE", "OUTLOOK", "GoogleCalendarClient", "GraphCalendarClient"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in it, as absolute names."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            found.add(prefix)
            found.update(f"{prefix}.{alias.name}" for alias in node.names)
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


def layer(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else None


def is_in(name: str, target: str) -> bool:
    return name == target or name.startswith(f"{target}.")


@pytest.mark.parametrize("path", MODULES, ids=lambda path: module_name(path))
def test_no_module_imports_a_layer_above_it(path: Path) -> None:
    """providers/ and ical/ never import sync/, operations/ or api/; sync/ never imports
    operations/ or api/; operations/ never imports api/."""
    own = layer(module_name(path))
    above = [f"{NAME}.{upper}" for upper in FORBIDDEN.get(own or "", ())]
    wrong = sorted(name for name in imports(path) for upper in above if is_in(name, upper))
    assert wrong == [], f"{module_name(path)} imports a layer above it: {wrong}"


@pytest.mark.parametrize("path", MODULES, ids=lambda path: module_name(path))
def test_the_service_never_imports_the_sandbox_or_responses(path: Path) -> None:
    wrong = sorted(name for name in imports(path) for tool in NEVER_IMPORTED if is_in(name, tool))
    assert wrong == [], f"{module_name(path)} imports a development tool: {wrong}"


@pytest.mark.parametrize(
    "path", sorted((PACKAGE / "sync").rglob("*.py")), ids=lambda path: module_name(path)
)
def test_the_engine_names_no_provider(path: Path) -> None:
    """The engine asks the registry's capability flags, never which provider it syncs."""
    tree = ast.parse(path.read_text(), str(path))
    named = {
        node.value if isinstance(node, ast.Constant) else getattr(node, "id", None)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant | ast.Name)
    } | {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    assert not named & PROVIDER_NAMES
    packages = [f"{NAME}.providers.google", f"{NAME}.providers.outlook"]
    wrong = sorted(name for name in imports(path) for pkg in packages if is_in(name, pkg))
    assert wrong == []


def test_the_checks_see_the_imports() -> None:
    """The graph is read right: a known upward import would be caught."""
    engine = imports(PACKAGE / "sync" / "engine.py")
    assert f"{NAME}.providers.registry" in engine
    assert f"{NAME}.sync.lease" in engine or f"{NAME}.sync" in engine
