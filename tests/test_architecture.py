"""The layers' import rules (docs/architecture.md), read from the source without importing
it: every `import` and `from … import` anywhere in a module counts, inside functions and
`if TYPE_CHECKING:` blocks too."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = SRC / "stockyard"


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules_under(*names: str) -> Iterator[Path]:
    """The files of the modules and packages `names` (paths under src/stockyard)."""
    for name in names:
        target = PACKAGE / name
        if target.is_dir():
            yield from sorted(target.rglob("*.py"))
        elif target.with_suffix(".py").exists():
            yield target.with_suffix(".py")
        else:  # a rule about a module that moved away would check nothing
            raise AssertionError(f"no module or package {name} under {PACKAGE}")


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) for each module the file imports; `from a import b` counts as `a` and
    `a.b`, since b may be a submodule."""
    this = module_name(path)
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against this module's package
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            yield node.lineno, base
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"


def within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


# ------------------------------------------------------------------------------------ web


def test_the_api_and_the_console_never_import_each_other() -> None:
    """Siblings under stockyard.web: what both need lives in stockyard.web itself."""
    found = []
    for own, other in (("web/api", "stockyard.web.console"), ("web/console", "stockyard.web.api")):
        for path in modules_under(own):
            found += [
                f"{path.relative_to(SRC)}:{line} imports {module}"
                for line, module in imports(path)
                if within(module, other)
            ]
    assert not found, "\n".join(found)


# Shells see the service layer and the view types it hands out (the names of
# `stockyard.engine` itself, such as ItemFilter, Request and ItemDetail), never the
# engine's modules, its Queue, or the database. Each exception says why it stands.
SHELLS = ("web", "cli")
EXCEPTIONS: dict[str, set[str]] = {
    # The database drivers' own error types, answered with a 503 by the API and the console.
    "stockyard/web/problems.py": {"stockyard.db", "stockyard.db.DATABASE_ERRORS"},
    # `init` and `serve` check that a SQLite URL's folder exists before a migration would
    # fail deep inside; `stockyard worker` hands its options to Application.worker.
    "stockyard/cli/run.py": {
        "stockyard.db.sqlite",
        "stockyard.db.sqlite.SqliteDatabase",
        "stockyard.engine.worker",
        "stockyard.engine.worker.WorkerSettings",
    },
}


def _below_the_service(module: str) -> bool:
    if within(module, "stockyard.db"):
        return True
    if module == "stockyard.engine.Queue":
        return True
    # stockyard.engine.<name>: a view type re-exported by the package is fine, a module is not.
    if within(module, "stockyard.engine") and module != "stockyard.engine":
        name = module.split(".")[2]
        return (PACKAGE / "engine" / name).is_dir() or (PACKAGE / "engine" / f"{name}.py").exists()
    return False


def test_shells_import_the_service_not_the_engine_or_the_database() -> None:
    found = []
    for path in modules_under(*SHELLS):
        allowed = EXCEPTIONS.get(str(path.relative_to(SRC)), set())
        found += [
            f"{path.relative_to(SRC)}:{line} imports {module}"
            for line, module in imports(path)
            if _below_the_service(module) and module not in allowed
        ]
    assert not found, "\n".join(found)


# --------------------------------------------------------------------------------- engine

# The closed kernel: the engine's modules import, of Stockyard, only each other, the
# database layer and the error types. Instructions, handlers and the worker are its own;
# the commerce catalog, tenants and their connections, notifications and shells sit above.
ENGINE_MAY_IMPORT = ("stockyard.engine", "stockyard.db", "stockyard.errors")


def test_the_engine_imports_only_the_database_and_the_errors() -> None:
    found = [
        f"{path.relative_to(SRC)}:{line} imports {module}"
        for path in modules_under("engine")
        for line, module in imports(path)
        if within(module, "stockyard")
        and not any(within(module, allowed) for allowed in ENGINE_MAY_IMPORT)
    ]
    assert not found, "\n".join(found)


def test_the_engine_rule_can_fail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reader of imports sees what the rule must catch: plain, from, relative, and
    imports inside functions."""
    engine = tmp_path / "stockyard" / "engine"
    engine.mkdir(parents=True)
    (engine / "bad.py").write_text(
        "import stockyard.flows\n"
        "from stockyard.tenancy import Connections\n"
        "from .. import notify\n"
        "def f():\n"
        "    from stockyard.service import Stockyard\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "SRC", tmp_path)
    seen = {module for _, module in imports(engine / "bad.py")}
    for module in ("stockyard.flows", "stockyard.tenancy", "stockyard.notify", "stockyard.service"):
        assert module in seen
        assert not any(within(module, allowed) for allowed in ENGINE_MAY_IMPORT)
