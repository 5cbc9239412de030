"""The dock database has one way in: nothing outside dock/storage reaches into the
Store's private connection or transaction, and its schema is written in one module.

A module that ran its own SQL on ``store._db()`` could write a table behind its owner's
back, or commit a change without the audit entry that must go with it.
"""

from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
STORAGE = ROOT / "dock" / "storage"
PACKAGES = ("dock", "hq", "hardware", "web_status", "mqtt_contract", "firmware_protocol", "common")
#: Besides the Store's own private names: the other connection attributes the issue names.
ALWAYS = {"_db", "_write", "_conn", "_local", "_clock"}


def _store_private_names() -> set[str]:
    """Every ``_name`` the Store class defines: its methods and ``self._x`` attributes."""
    tree = ast.parse((STORAGE / "store.py").read_text(encoding="utf-8"))
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Store"]
    names = set(ALWAYS)
    for node in ast.walk(cls):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            name = node.name
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            name = node.attr if node.value.id == "self" else ""
        else:
            continue
        if name.startswith("_") and not name.startswith("__"):
            names.add(name)
    return names


def _sources() -> list[pathlib.Path]:
    files = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if STORAGE not in path.parents:
                files.append(path)
    return files


def _reaches_in(tree: ast.AST, private: set[str]) -> list[tuple[int, str]]:
    """(line, what) for each ``x._name`` (x not self/cls) and ``getattr(x, "_name")``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in private:
            own = isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")
            if not own:
                found.append((node.lineno, f"{ast.unparse(node.value)}.{node.attr}"))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and node.args[1].value in private
        ):
            found.append((node.lineno, f"{node.func.id}(..., {node.args[1].value!r})"))
    return found


def test_no_module_outside_storage_touches_the_stores_private_attributes() -> None:
    private = _store_private_names()
    assert {"_db", "_write", "_clock", "_local"} <= private
    offenders = []
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for line, what in _reaches_in(tree, private):
            offenders.append(f"{path.relative_to(ROOT)}:{line}: {what}")
    assert offenders == [], "\n".join(offenders)


def test_the_scan_sees_private_access() -> None:
    """The scan itself: it catches what it must, and lets a class use its own."""
    code = (
        "store._db().execute('x')\n"
        "with self.store._write() as db: pass\n"
        "getattr(store, '_clock', None)\n"
        "self._clock()\n"
    )
    found = [what for _line, what in _reaches_in(ast.parse(code), _store_private_names())]
    assert sorted(found) == ["getattr(..., '_clock')", "self.store._write", "store._db"]


def test_the_dock_database_schema_is_written_in_one_module() -> None:
    """CREATE TABLE / ALTER TABLE for dock.db only in dock/storage/schema.py; the audit
    log's and the outbox's own databases keep theirs with their owners."""
    owners = {
        STORAGE / "schema.py",
        ROOT / "dock" / "reporting" / "outbox.py",
    }
    audit = STORAGE / "audit"
    offenders = []
    for path in sorted((ROOT / "dock").rglob("*.py")):
        if path in owners or audit in path.parents or path == STORAGE / "audit.py":
            continue
        text = path.read_text(encoding="utf-8").upper()
        for statement in ("CREATE TABLE", "CREATE INDEX", "CREATE UNIQUE INDEX", "ALTER TABLE"):
            if statement in text:
                offenders.append(f"{path.relative_to(ROOT)}: {statement}")
    assert offenders == [], "\n".join(offenders)
