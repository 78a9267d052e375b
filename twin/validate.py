"""`twin validate`: does the twin reproduce what theory and the real system say it should?

Cases are data, in `validation/*.yaml`. A file declares `sources` (something to run once: a
scenario, or a micro-model registered by `validation/*.py` with `@model("name")`) and `cases`,
each naming what it checks, where its expected value comes from (`reference`), the expected
value, how to read the twin's value from a source's output, and the tolerance:

    sources:
      mm4: {model: mmc, args: {c: 4, rho: 0.8, customers: 600000, seed: 7}}
    cases:
      - name: mmc-wait-erlang-c
        checks: ServerPool mean wait of an M/M/4 queue at rho 0.8
        reference: "Erlang C (Kleinrock 1975, eq. 3.40)"
        of: mm4
        twin: wq                      # a key path into the output ('transformations[p/s].tasks.Done')
        expected: {path: erlang_c_wq} # or a literal, or {expr: "lam * wq"} over the output's keys
        tolerance: {rel: 0.05}        # or {abs: x}; compare: approx (default) | eq | ">=" | "<="

`for_each: {path: transformations, where: {type: MCSimulation}}` repeats a case for every item
of a list (or every key/value of a mapping, as {key, value}) whose fields match `where` (strings
are globs); `twin`, `expected` and the case name then refer to the item. A source whose model
raises `SkipCase` (e.g. the genuine DIRAC plugins without the [dirac] extra) makes its cases
"skipped", not failed. Exit code: 1 when a case fails or errors, else 0.
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import importlib.util
import json
import math
import operator
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable


from twin.errors import TwinError
from twin.scenario.paths import get_path

PASS, FAIL, SKIPPED, ERROR = "pass", "FAIL", "skipped", "error"
COMPARES = ("approx", "eq", ">=", "<=")
ModelFn = Callable[..., dict[str, Any]]
MODELS: dict[str, ModelFn] = {}


class SkipCase(Exception):
    """Raised by a model whose prerequisites are absent: its cases are reported as skipped."""


def model(name: str) -> Callable[[ModelFn], ModelFn]:
    """Register a micro-model: a function(**args, base=Path) returning a dict of named outputs."""
    def register(fn: ModelFn) -> ModelFn:
        MODELS[name] = fn
        return fn
    return register


@model("scenario")
def scenario_model(path: str, overrides: dict[str, Any] | None = None, base: Path = Path(".")) -> dict[str, Any]:
    """Run a scenario (path relative to the validation file) and return its summary dict."""
    from twin.runner import simulate
    from twin.scenario.loader import load_scenario

    with tempfile.TemporaryDirectory() as tmp:  # streamed to disk, so the conservation recount can read it back
        return simulate(load_scenario(base / path, overrides or {}), events_path=Path(tmp) / "events.parquet").summary


# ---------------------------------------------------------------- cases as data
@dataclass
class Source:
    name: str
    model: str
    args: dict[str, Any]
    base: Path
    where: str


@dataclass
class Case:
    name: str
    checks: str
    reference: str
    of: str
    twin: Any
    expected: Any
    compare: str = "approx"
    tolerance: dict[str, float] = field(default_factory=dict)
    for_each: dict[str, Any] | None = None
    where: str = ""


@dataclass
class CaseResult:
    name: str
    checks: str
    reference: str
    expected: Any
    twin: Any
    tolerance: str
    status: str
    message: str = ""
    file: str = ""


CASE_KEYS = {"name", "checks", "reference", "of", "twin", "expected", "compare", "tolerance", "for_each"}


def load_suite(folder: Path) -> tuple[dict[str, Source], list[Case]]:
    """Import the folder's model modules, then read every YAML file's sources and cases."""
    if not folder.is_dir():
        raise TwinError(f"{folder}: validation folder not found (use --dir)")
    for py in sorted(folder.glob("*.py")):
        _import_models(py)
    sources: dict[str, Source] = {}
    cases: list[Case] = []
    for path in sorted(folder.glob("*.yaml")):
        file_sources, file_cases = _read_file(path)
        for name, src in file_sources.items():
            if name in sources:
                raise TwinError(f"{path}: sources.{name}: already defined in {sources[name].where}")
            sources[name] = src
        cases += file_cases
    _check_suite(sources, cases)
    return sources, cases


def _import_models(path: Path) -> None:
    name = f"twin_validation_{path.stem}_{abs(hash(str(path.resolve()))):x}"
    if name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise TwinError(f"{path}: cannot import the validation models")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)


def _read_file(path: Path) -> tuple[dict[str, Source], list[Case]]:
    from twin.scenario.yamlfile import read_yaml

    data = read_yaml(path.read_text(encoding="utf-8"), str(path))[0] or {}
    if not isinstance(data, dict) or set(data) - {"sources", "cases"}:
        raise TwinError(f"{path}: expected a mapping with 'sources' and 'cases'")
    sources = {}
    for name, spec in (data.get("sources") or {}).items():
        if not isinstance(spec, dict) or "model" not in spec or set(spec) - {"model", "args"}:
            raise TwinError(f"{path}: sources.{name}: expected {{model: NAME, args: {{...}}}}")
        sources[name] = Source(name, spec["model"], dict(spec.get("args") or {}), path.parent, str(path))
    cases = []
    for i, spec in enumerate(data.get("cases") or []):
        where = f"{path}: cases[{i}]"
        if not isinstance(spec, dict):
            raise TwinError(f"{where}: expected a mapping")
        missing = {"name", "checks", "reference", "of", "twin", "expected"} - set(spec)
        unknown = set(spec) - CASE_KEYS
        if missing or unknown:
            raise TwinError(f"{where}: " + (f"missing {sorted(missing)}" if missing else f"unknown keys {sorted(unknown)}"))
        cases.append(Case(**spec, where=where))
    return sources, cases


def _check_suite(sources: dict[str, Source], cases: list[Case]) -> None:
    names: set[str] = set()
    for case in cases:
        if case.name in names:
            raise TwinError(f"{case.where}.name: case {case.name!r} defined twice")
        names.add(case.name)
        if case.of not in sources:
            raise TwinError(f"{case.where}.of: unknown source {case.of!r} (expected one of {sorted(sources)})")
        if case.compare not in COMPARES:
            raise TwinError(f"{case.where}.compare: expected one of {list(COMPARES)}, got {case.compare!r}")
        if case.compare == "approx" and set(case.tolerance) not in ({"rel"}, {"abs"}):
            raise TwinError(f"{case.where}.tolerance: compare approx needs {{rel: x}} or {{abs: x}}")
    for src in sources.values():
        if src.model not in MODELS:
            raise TwinError(f"{src.where}: sources.{src.name}.model: unknown model {src.model!r} (expected one of {sorted(MODELS)})")


# ---------------------------------------------------------------- evaluation
_OPS: dict[type, Callable[..., Any]] = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
                                        ast.Div: operator.truediv, ast.Pow: operator.pow, ast.USub: operator.neg}
_FUNCS: dict[str, Callable[..., Any]] = {"min": min, "max": max, "sqrt": math.sqrt, "abs": abs, "ceil": math.ceil}


def value_of(spec: Any, context: Any) -> Any:
    """A case's `twin`/`expected`: key path string, {path: ...}, {expr: ...} or a literal."""
    if isinstance(spec, dict) and set(spec) == {"path"}:
        return _read(context, spec["path"])
    if isinstance(spec, dict) and set(spec) == {"expr"}:
        return _eval(ast.parse(str(spec["expr"]), mode="eval").body, context)
    return spec


def twin_value(spec: Any, context: Any) -> Any:
    return value_of({"path": spec} if isinstance(spec, str) else spec, context)


def _read(context: Any, path: str) -> Any:
    try:
        return get_path(context, str(path))
    except (KeyError, ValueError, TypeError) as exc:
        raise LookupError(f"no value at {path!r}: {str(exc).strip(chr(39))}") from None


def _eval(node: ast.AST, context: Any) -> Any:
    """Arithmetic over the output's values: numbers, names, + - * / **, min/max/sqrt/abs/ceil."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return node.value
    if isinstance(node, ast.Name):
        return _read(context, node.id)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_eval(node.left, context), _eval(node.right, context))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_eval(node.operand, context))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS and not node.keywords:
        return _FUNCS[node.func.id](*(_eval(a, context) for a in node.args))
    raise ValueError(f"unsupported expression element {ast.dump(node)[:60]}")


def compare(case: Case, expected: Any, got: Any) -> bool:
    if got is None or expected is None:
        return False
    if case.compare == "eq":
        return got == expected
    if case.compare == ">=":
        return got >= expected - case.tolerance.get("abs", 0.0)
    if case.compare == "<=":
        return got <= expected + case.tolerance.get("abs", 0.0)
    allowed = case.tolerance.get("abs", case.tolerance.get("rel", 0.0) * abs(expected))
    return abs(got - expected) <= allowed


def tolerance_text(case: Case) -> str:
    if case.compare == "eq":
        return "exact"
    if "rel" in case.tolerance:
        return f"±{case.tolerance['rel']:.1%}".replace(".0%", "%")
    if "abs" in case.tolerance:
        return f"±{case.tolerance['abs']:g}"
    return ""


def expand(case: Case, output: Any) -> list[tuple[str, Any]]:
    """(case name, context) pairs: one for a plain case, one per matching item with for_each."""
    if not case.for_each:
        return [(case.name, output)]
    items = _read(output, case.for_each["path"])
    if isinstance(items, dict):
        items = [{"key": k, "value": v} for k, v in items.items()]
    where = case.for_each.get("where", {})
    label = case.for_each.get("label", "name" if items and isinstance(items[0], dict) and "name" in items[0] else "key")
    chosen = [item for item in items if all(_matches(item.get(k), v) for k, v in where.items())]
    if not chosen:
        raise LookupError(f"for_each: no item of {case.for_each['path']!r} matches {where}")
    return [(f"{case.name}[{item.get(label)}]", item) for item in chosen]


def _matches(value: Any, wanted: Any) -> bool:
    if isinstance(wanted, str) and isinstance(value, str):
        return fnmatch.fnmatchcase(value, wanted)
    return value == wanted


# ---------------------------------------------------------------- running
def run_suite(sources: dict[str, Source], cases: list[Case], only: Iterable[str] = (),
              progress: Callable[[str], None] | None = None) -> list[CaseResult]:
    """Compute each needed source once (in the order cases use them), then judge every case."""
    patterns = list(only)
    chosen = [c for c in cases if not patterns or any(fnmatch.fnmatchcase(c.name, p) for p in patterns)]
    if patterns and not chosen:
        raise TwinError(f"--only {' '.join(patterns)}: no case matches (cases: {', '.join(c.name for c in cases)})")
    outputs: dict[str, tuple[str, Any]] = {}
    results: list[CaseResult] = []
    for case in chosen:
        if case.of not in outputs:
            if progress:
                progress(case.of)
            outputs[case.of] = _compute(sources[case.of])
        results += judge(case, *outputs[case.of])
    return results


def _compute(src: Source) -> tuple[str, Any]:
    """(status, output or message): ok, skipped (SkipCase) or error (any exception)."""
    try:
        return "ok", MODELS[src.model](**src.args, base=src.base)
    except SkipCase as exc:
        return SKIPPED, str(exc)
    except TwinError:
        raise
    except Exception as exc:  # noqa: BLE001 - a crashing model is a failed validation, reported per case
        return ERROR, f"{src.name}: {type(exc).__name__}: {exc}"


def judge(case: Case, status: str, output: Any) -> list[CaseResult]:
    tol = tolerance_text(case)
    base = dict(checks=case.checks, reference=case.reference, tolerance=tol, file=case.where.split(":")[0])
    if status != "ok":
        return [CaseResult(case.name, expected=None, twin=None, status=status, message=str(output), **base)]
    try:
        pairs = expand(case, output)
    except (LookupError, ValueError, TypeError) as exc:
        return [CaseResult(case.name, expected=None, twin=None, status=ERROR, message=str(exc), **base)]
    results = []
    for name, context in pairs:
        try:
            expected, got = value_of(case.expected, context), twin_value(case.twin, context)
            ok = compare(case, expected, got)
            results.append(CaseResult(name, expected=_expected_text(case, expected), twin=got, status=PASS if ok else FAIL, **base))
        except (LookupError, ValueError, TypeError, ArithmeticError) as exc:
            results.append(CaseResult(name, expected=None, twin=None, status=ERROR, message=str(exc), **base))
    return results


def _expected_text(case: Case, expected: Any) -> Any:
    return f"{case.compare} {fmt(expected)}" if case.compare in (">=", "<=") else expected


# ---------------------------------------------------------------- output
def fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:,.0f}"
    return str(value)


def render_table(results: list[CaseResult]) -> str:
    rows = [("case", "expected", "twin", "tolerance", "status")]
    rows += [(r.name, fmt(r.expected), fmt(r.twin), r.tolerance, r.status + (f" ({r.message})" if r.message else ""))
             for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(row[:4], widths)) + "  " + row[4] for row in rows)


def counts_line(results: list[CaseResult]) -> str:
    n = {s: sum(r.status == s for r in results) for s in (PASS, FAIL, ERROR, SKIPPED)}
    return f"validation: {n[PASS]} passed, {n[FAIL] + n[ERROR]} failed, {n[SKIPPED]} skipped"


def write_results(results: list[CaseResult], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rows = [asdict(r) for r in results]
    (out / "validation.json").write_text(json.dumps(rows, indent=2, default=str), encoding="utf-8")
    import pandas as pd

    pd.DataFrame(rows).to_csv(out / "validation.csv", index=False)


def default_folder() -> Path:
    """./validation when run from a checkout's root, else the one beside the installed package."""
    here = Path("validation")
    return here if here.is_dir() else Path(__file__).resolve().parent.parent / "validation"


# ---------------------------------------------------------------- CLI
def add_validate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true", help="print only failed cases and the counts")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="run only the cases whose name matches NAME (a glob; repeatable)")
    from twin import options as opt

    opt.add_out(parser, "none: write nothing; with DIR, validation.json and validation.csv")
    parser.add_argument("--dir", type=Path, help="folder of validation cases (default: ./validation)")


def cmd_validate(args: argparse.Namespace) -> int:
    """`twin validate`: 0 when no case failed or errored (skipped is fine), else 1."""
    from twin.outputs import check_out

    sources, cases = load_suite(args.dir or default_folder())
    if args.out:
        check_out(args.out, args.force)
    started = time.perf_counter()
    say = None if args.quiet else (lambda name: print(f"running {name} ...", file=sys.stderr, flush=True))
    results = run_suite(sources, cases, args.only, progress=say)
    bad = [r for r in results if r.status in (FAIL, ERROR)]
    shown = bad if args.quiet else results
    if shown:
        print(render_table(shown))
    print(f"{counts_line(results)} ({time.perf_counter() - started:.0f} s)")
    if args.out:
        from twin.outputs import Staging

        with Staging(args.out, "validate", args.force, {"cases": len(results), "failed": len(bad)}) as staging:
            write_results(results, staging.path)
            staging.commit()
    return 1 if bad else 0
