"""The protocol package stays pure: nothing in it can do I/O or read a clock."""

from __future__ import annotations

import ast
import pathlib

ALLOWED = {
    "__future__",
    "binascii",
    "collections",
    "dataclasses",
    "enum",
    "functools",
    "hashlib",
    "hmac",
    "struct",
    "typing",
    "zlib",
    "zlib_ng",  # a faster CRC-32 (pure computation, same results as zlib)
}
PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "firmware_protocol"


def test_protocol_imports_only_pure_stdlib() -> None:
    offenders = []
    for path in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] not in ALLOWED]
    assert offenders == []


def test_protocol_never_calls_open_or_print() -> None:
    calls = []
    for path in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in {"open", "print", "input"}
            ):
                calls.append(f"{path.name}:{node.lineno} {node.func.id}")
    assert calls == []
