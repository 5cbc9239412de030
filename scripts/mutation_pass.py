#!/usr/bin/env python3
"""A bounded mutation pass over the modules that carry the regulations' rules (issue 17).

Why our own and not mutmut or cosmic-ray: each rule here is guarded by a few named test
files (they start real recorders, brokers and browsers), so a mutant must run exactly
those, in a copy of the tree, with a time limit, and the whole pass must stay within a
budget a session can afford. Both tools want to own the test run and its discovery;
this is 250 lines of ast.

For each module in TARGETS it lists the places a one-line slip would break a rule (a
comparison turned, ``and``/``or`` swapped, a ``not`` dropped, a guard that raises made
never to fire, a returned True/False flipped, a call statement removed), takes a fixed
sample of them (seeded, so two runs try the same mutants), and for each writes the
mutated module into a scratch copy of the tree and runs the module's tests there with
``-x``. A mutant the tests do not fail is a *survivor*: either a test is missing or the
mutated code does not matter; docs/CONFORMANCE.md records what was done about each.

    .venv/bin/python scripts/mutation_pass.py [--per-module 12] [--budget-s 1800]
        [--only dock/evidence/holds.py] [--out /tmp/mutation.md]
"""

from __future__ import annotations

import argparse
import ast
import copy
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Rule-bearing module -> the test files that guard its rules (REQUIREMENTS section).
TARGETS: dict[str, tuple[str, ...]] = {
    # 1. pre-shift checks; 2. custody, no lending, the ratio
    "dock/domain/checks.py": ("tests/test_checks.py",),
    "dock/daemon/checkout.py": (
        "tests/test_checkout.py",
        "tests/test_grants.py",
        "tests/test_capabilities.py",
    ),
    "dock/domain/fleet.py": ("tests/test_fleet_ratio.py",),
    # 3. clock
    "dock/devices/clock.py": ("tests/test_clock.py",),
    "dock/daemon/clock_setting.py": ("tests/test_conformance_dock.py",),
    # 4. offload: deadlines, handover, verified copy before erase, continuity
    "dock/evidence/deadlines.py": ("tests/test_deadlines.py", "tests/test_away_deadlines.py"),
    "dock/evidence/handovers.py": ("tests/test_handover.py",),
    "dock/evidence/verified_copy.py": ("tests/test_verified_copy.py",),
    "dock/evidence/continuity.py": ("tests/test_continuity.py",),
    # 5. gaps and explanations
    "dock/evidence/gap_detection.py": ("tests/test_gaps.py", "tests/test_explanations.py"),
    "dock/domain/explanations.py": ("tests/test_explanations.py",),
    # 6. retention, holds, purge
    "dock/evidence/holds.py": ("tests/test_holds.py", "tests/test_retention_conformance.py"),
    "dock/evidence/retention.py": ("tests/test_retention.py", "tests/test_case_files.py"),
    "dock/evidence/appraisals.py": ("tests/test_retention_conformance.py",),
    "dock/evidence/yearly.py": ("tests/test_retention_conformance.py",),
    "dock/domain/hold_kinds.py": ("tests/test_retention_conformance.py",),
    # 8. devices
    "dock/services/device_care.py": ("tests/test_device_conformance.py",),
    # 7. access and export
    "dock/evidence/access.py": ("tests/test_access.py", "tests/test_access_rules.py"),
}

_FLIP = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
_QUIET_CALLS = {"debug", "info", "warning", "error", "exception", "log", "print"}


@dataclass(frozen=True)
class Mutant:
    module: str
    index: int  # the index-th candidate in the module, in ast.walk order
    line: int
    what: str


def _is_docstring(node: ast.AST, parent: ast.AST | None) -> bool:
    return isinstance(node, ast.Expr) and isinstance(getattr(node, "value", None), ast.Constant)


def _candidates(tree: ast.AST) -> list[tuple[ast.AST, str]]:
    """Every place a mutation applies, with a short description; only inside functions."""
    found: list[tuple[ast.AST, str]] = []
    for fn in ast.walk(tree):
        if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.Compare) and type(node.ops[0]) in _FLIP:
                a, b = type(node.ops[0]).__name__, _FLIP[type(node.ops[0])].__name__
                found.append((node, f"{a} -> {b}"))
            elif isinstance(node, ast.BoolOp):
                found.append((node, "and -> or" if isinstance(node.op, ast.And) else "or -> and"))
            elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
                found.append((node, "not x -> x"))
            elif isinstance(node, ast.If) and any(isinstance(s, ast.Raise) for s in node.body):
                found.append((node, "guard that raises never fires"))
            elif (
                isinstance(node, ast.Return)
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, bool)
            ):
                found.append((node, f"return {node.value.value} -> {not node.value.value}"))
            elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
                func = node.value.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name not in _QUIET_CALLS:
                    found.append((node, f"call {name}() removed"))
    # one entry per node (a node may be reached from nested functions twice)
    seen: set[int] = set()
    unique = []
    for node, what in found:
        if id(node) not in seen:
            seen.add(id(node))
            unique.append((node, what))
    return unique


class _Apply(ast.NodeTransformer):
    def __init__(self, target: ast.AST) -> None:
        self.target = target

    def visit(self, node: ast.AST) -> ast.AST:
        if node is not self.target:
            return super().visit(node)
        if isinstance(node, ast.Compare):
            node.ops = [_FLIP[type(node.ops[0])](), *node.ops[1:]]
        elif isinstance(node, ast.BoolOp):
            node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        elif isinstance(node, ast.UnaryOp):
            return node.operand
        elif isinstance(node, ast.If):
            node.test = ast.Constant(False)
        elif isinstance(node, ast.Return):
            node.value = ast.Constant(not node.value.value)  # type: ignore[union-attr]
        elif isinstance(node, ast.Expr):
            return ast.Pass()
        return node


def mutants_of(module: str, per_module: int, seed: int) -> list[Mutant]:
    tree = ast.parse((ROOT / module).read_text())
    cands = _candidates(tree)
    picked = sorted(
        random.Random(f"{seed}:{module}").sample(range(len(cands)), min(per_module, len(cands)))
    )
    return [Mutant(module, i, getattr(cands[i][0], "lineno", 0), cands[i][1]) for i in picked]


def mutated_source(module_source: str, index: int) -> str:
    tree = ast.parse(module_source)
    target = _candidates(tree)[index][0]
    tree = _Apply(target).visit(copy.copy(tree))
    return ast.unparse(ast.fix_missing_locations(tree))


def _scratch_copy() -> Path:
    where = Path(tempfile.mkdtemp(prefix="mutation-"))
    ignore = shutil.ignore_patterns(
        ".git", ".venv", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"
    )
    shutil.copytree(ROOT, where / "tree", ignore=ignore)
    return where / "tree"


def _run_tests(tree: Path, tests: tuple[str, ...], timeout_s: float) -> str:
    """'pass', 'fail' or 'timeout' for the tests, run in the scratch tree."""
    env = dict(os.environ, PYTHONPATH=str(tree), PYTHONDONTWRITEBYTECODE="1")
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    try:
        done = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return "timeout"
    return "pass" if done.returncode == 0 else "fail"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-module", type=int, default=12)
    ap.add_argument(
        "--budget-s", type=float, default=1800.0, help="stop starting mutants after this"
    )
    ap.add_argument("--timeout-s", type=float, default=300.0, help="per mutant's test run")
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--only", action="append", help="a module of TARGETS (repeatable)")
    ap.add_argument("--out", type=Path, help="write the markdown report here too")
    args = ap.parse_args(argv)
    modules = args.only or list(TARGETS)
    unknown = [m for m in modules if m not in TARGETS]
    if unknown:
        print(f"mutation_pass: not a target: {', '.join(unknown)}", file=sys.stderr)
        return 2
    tree = _scratch_copy()
    started = time.monotonic()
    lines = ["| module | line | mutation | result |", "| --- | --- | --- | --- |"]
    totals: dict[str, list[int]] = {}
    try:
        for module in modules:
            tests = tuple(t for t in TARGETS[module] if (ROOT / t).exists())
            original = (tree / module).read_text()
            if not tests or _run_tests(tree, tests, args.timeout_s) != "pass":
                print(f"{module}: its tests do not pass unmutated; skipped", flush=True)
                named = ", ".join(tests) or "missing"
                lines.append(f"| {module} | - | (tests {named} not green) | skipped |")
                continue
            killed = survived = 0
            for m in mutants_of(module, args.per_module, args.seed):
                if time.monotonic() - started > args.budget_s:
                    print("budget spent; stopping", flush=True)
                    break
                (tree / module).write_text(mutated_source(original, m.index))
                try:
                    result = _run_tests(tree, tests, args.timeout_s)
                finally:
                    (tree / module).write_text(original)
                verdict = "survived" if result == "pass" else f"killed ({result})"
                killed += result != "pass"
                survived += result == "pass"
                print(f"{module}:{m.line} {m.what}: {verdict}", flush=True)
                lines.append(f"| {module} | {m.line} | {m.what} | {verdict} |")
            totals[module] = [killed, survived]
    finally:
        shutil.rmtree(tree.parent, ignore_errors=True)
    summary = ["", "| module | killed | survived |", "| --- | --- | --- |"]
    summary += [f"| {m} | {k} | {s} |" for m, (k, s) in totals.items()]
    report = "\n".join(lines + summary) + "\n"
    print(report)
    if args.out:
        args.out.write_text(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
