"""Load a scenario: YAML -> `extends` chain -> `overrides` -> validated `Scenario`.

A what-if scenario names its baseline with `extends:` and changes only what differs.
Mappings merge key by key; lists of named items (sites, storage, productions...)
merge item by item on `name`; other values replace. `overrides:` then sets values by
key path ('topology.sites[LCG.CNAF.it].ces[0].slots': 0), as `twin sweep --param`
does. Every error names the file (and line, where one is known) and the key path.
"""

from __future__ import annotations

import copy
import os
import re
import difflib
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from twin.errors import ScenarioError, ScenarioErrors
from twin.scenario.paths import join_path, set_path
from twin.scenario.references import check_references
from twin.scenario.schema import Scenario
from twin.scenario.yamlfile import read_yaml

LineMap = dict[tuple[str | int, ...], int]
MAX_EXTENDS_DEPTH = 16


class _Source:
    """One YAML file's data and the line of every key path in it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ScenarioError(self.name, "", "file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ScenarioError(self.name, "", f"cannot read the file ({exc})") from None
        data, node = read_yaml(text, self.name)
        if not isinstance(data, dict):
            raise ScenarioError(self.name, "", f"expected a mapping at the top level, got {type(data).__name__}")
        self.data: dict[str, Any] = data
        self.lines: LineMap = {}
        if node is not None:
            _record_lines(node, (), self.lines)


def _record_lines(node: yaml.Node, path: tuple[str | int, ...], lines: LineMap) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = path + (key.value,)
            lines[child] = key.start_mark.line + 1
            _record_lines(value, child, lines)
            lines[child] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, value in enumerate(node.value):
            _record_lines(value, path + (i,), lines)


def merge(base: Any, change: Any) -> Any:
    """Deep merge of `change` onto `base` (see the module docstring for the rules)."""
    if isinstance(base, dict) and isinstance(change, dict):
        out = dict(base)
        for key, value in change.items():
            out[key] = merge(base[key], value) if key in base else copy.deepcopy(value)
        return out
    if _named_list(base) and _named_list(change):
        out = [copy.deepcopy(item) for item in base]
        index = {item["name"]: i for i, item in enumerate(out)}
        seen: set[str] = set()
        for item in change:
            # A name repeated inside one file is kept twice so validation can report it.
            if item["name"] in index and item["name"] not in seen:
                seen.add(item["name"])
                out[index[item["name"]]] = merge(out[index[item["name"]]], item)
            else:
                out.append(copy.deepcopy(item))
        return out
    return copy.deepcopy(change)


def _named_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) and "name" in v for v in value)


def _resolve(path: Path, chain: tuple[Path, ...]) -> tuple[dict[str, Any], list[_Source]]:
    """Data of `path` with its `extends` chain merged in, and the sources, most specific first."""
    source = _Source(path)
    if path.resolve() in chain:
        raise ScenarioError(source.name, "extends", f"expected no cycle, but {path} extends itself through {[str(p) for p in chain]}")
    if len(chain) > MAX_EXTENDS_DEPTH:
        raise ScenarioError(source.name, "extends", f"expected at most {MAX_EXTENDS_DEPTH} levels of extends")
    # Top-level "x-..." keys only hold YAML anchors shared by the file (as in docker compose).
    data = {key: value for key, value in source.data.items() if not str(key).startswith("x-")}
    _absolute_workflow_paths(data, path.parent)
    parents = data.pop("extends", [])
    if isinstance(parents, str):
        parents = [parents]
    if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents):
        raise ScenarioError(source.name, "extends", "expected a file name or a list of file names", source.lines.get(("extends",)))
    merged: dict[str, Any] = {}
    sources: list[_Source] = []
    for parent in parents:
        parent_data, parent_sources = _resolve(Path(os.path.normpath(path.parent / parent)), chain + (path.resolve(),))
        merged = merge(merged, parent_data)
        sources = parent_sources + sources
    overrides = data.pop("overrides", {})
    merged = merge(merged, data)
    if not isinstance(overrides, dict):
        raise ScenarioError(source.name, "overrides", "expected a mapping of key paths to values", source.lines.get(("overrides",)))
    _apply_overrides(merged, overrides, source.name, source.lines)
    return merged, [source] + sources


def _absolute_workflow_paths(data: dict[str, Any], base: Path) -> None:
    """Workflow files (and the observed table) are relative to the scenario file that names them, whatever extends it."""
    workload = data.get("workload")
    if isinstance(workload, dict) and isinstance(workload.get("workflow_files"), list):
        workload["workflow_files"] = [str((base / p).resolve()) if isinstance(p, str) else p for p in workload["workflow_files"]]
    observed = data.get("observed_names")
    if isinstance(observed, dict) and isinstance(observed.get("file"), str):
        observed["file"] = str((base / observed["file"]).resolve())


def _apply_overrides(data: dict[str, Any], overrides: dict[str, Any], origin: str, lines: LineMap | None = None) -> None:
    for key_path, value in overrides.items():
        try:
            set_path(data, str(key_path), copy.deepcopy(value))
        except (KeyError, ValueError) as exc:
            line = (lines or {}).get(("overrides", key_path))
            where = f"overrides.{key_path}" if lines is not None else str(key_path)  # --param names its own path
            raise ScenarioError(origin, where, str(exc).strip("'\""), line) from None


def load_scenario(path: str | Path, overrides: dict[str, Any] | None = None) -> Scenario:
    """Read, merge, override and validate a scenario file; raise ScenarioError(s) on bad input.

    Errors in a value that `overrides` set name the command-line argument (--param), not a file."""
    data, sources = _resolve_with(Path(path), overrides)
    return validate(data, sources, list(overrides or {}))


def resolve(path: str | Path, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The scenario's data after `extends`, `overrides:` and `overrides` (key path -> value), unvalidated."""
    return _resolve_with(Path(path), overrides)[0]


def _resolve_with(path: Path, overrides: dict[str, Any] | None) -> tuple[dict[str, Any], list[_Source]]:
    data, sources = _resolve(path, ())
    if "name" not in sources[0].data and isinstance(data.get("name"), str):
        # A what-if without its own name is not its baseline: never reuse the baseline's name (and folder).
        data["name"] = re.sub(r"[^A-Za-z0-9._+-]", "-", path.stem) or "scenario"
    if overrides:
        _apply_overrides(data, overrides, "--param")
    return data, sources


def validate(data: dict[str, Any], sources: list[_Source], cli_paths: list[str] = ()) -> Scenario:
    cli = [tuple(_parts(str(p))) for p in cli_paths]
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioErrors([_to_error(err, data, sources, cli) for err in exc.errors()[:20]]) from None
    _import_workflows(scenario)
    problems = check_references(scenario)
    if problems:
        raise ScenarioErrors([_located(sources, _parts(path), msg, cli, data) for path, msg in problems])
    return scenario


class _Item(str):
    """A list item named in a key path: written in brackets (steps[NSB1x])."""


def _join(parts: tuple[str | int, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, (int, _Item)) else (f".{p}" if i else str(p)) for i, p in enumerate(parts))


def _named_parts(data: Any, loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """Indices of named list items become their names, as --param writes them."""
    out: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
            out.append(_Item(node["name"]) if isinstance(node, dict) and isinstance(node.get("name"), str) else part)
        elif isinstance(node, dict) and part in node:
            node = node[part]
            out.append(part)
        else:
            out.append(part)
    return tuple(out)


def _import_workflows(scenario: Scenario) -> None:
    """Append the productions of cta-prod-submit workflow files (errors name the workflow file)."""
    from twin.scenario.workflow import load_workflow

    workload = scenario.workload
    for path in workload.workflow_files:
        for production in load_workflow(path, workload.job_models, datasets=workload.datasets):
            if any(p.name == production.name for p in workload.productions):
                raise ScenarioError(path, "", f"expected a production name not used yet, got {production.name!r}")
            workload.productions.append(production)


def _parts(path: str) -> tuple[str | int, ...]:
    from twin.scenario.paths import split_path

    return tuple(split_path(path))


def _located(sources: list[_Source], loc: tuple[str | int, ...], message: str,
             cli: list[tuple[str | int, ...]] = (), data: Any = None) -> ScenarioError:
    """Attach the command-line argument that set `loc` (or a parent of it), else the most specific
    file (and line) that defines `loc` or its nearest parent."""
    named = _named_parts(data, loc)
    for path in cli:
        if any(_under(p, path) or (p and _under(path, p)) for p in (loc, named)):
            return ScenarioError("--param", _join(named), message)
    for source in sources:  # a file's `overrides:` beat its own keys and those of the files it extends
        for path, line in _override_paths(source):
            if _overlaps(loc, named, path):
                return ScenarioError(source.name, join_path(loc), message, line)
        if source.lines.get(loc) is not None:
            break
    for depth in range(len(loc), -1, -1):
        for source in sources:
            line = source.lines.get(loc[:depth])
            if line is not None and (depth > 0 or source is sources[0]):
                return ScenarioError(source.name, join_path(loc), message, line)
    return ScenarioError(sources[0].name, join_path(loc), message)


def _override_paths(source: _Source) -> list[tuple[tuple[str | int, ...], int | None]]:
    """The key paths a file's `overrides:` set, each with its line in that file."""
    overrides = source.data.get("overrides")
    if not isinstance(overrides, dict):
        return []
    return [(_parts(str(key)), source.lines.get(("overrides", key))) for key in overrides]


def _overlaps(loc: tuple[str | int, ...], named: tuple[str | int, ...], path: tuple[str | int, ...]) -> bool:
    """`path` is `loc`, inside it or around it; each list item may be written by index or by name."""
    n = min(len(loc), len(path))
    return bool(loc) and all(str(p) in (str(a), str(b)) for p, a, b in zip(path[:n], loc[:n], named[:n]))


def _under(loc: tuple[str | int, ...], path: tuple[str | int, ...]) -> bool:
    """`loc` is `path` or inside it (a named item may appear by name or by index)."""
    return len(loc) >= len(path) and all(a == b or str(a) == str(b) for a, b in zip(loc, path))


def _to_error(err: dict[str, Any], data: Any, sources: list[_Source], cli: list[tuple[str | int, ...]] = ()) -> ScenarioError:
    loc = _data_loc(err["loc"], data)
    named = _named_parts(data, loc)
    for path in cli:
        if _under(named, path) or _under(loc, path) or (loc and (_under(path, named) or _under(path, loc))):
            return ScenarioError("--param", _join(named), _describe(err, loc))
    return _located(sources, loc, _describe(err, loc), data=data)


def _data_loc(loc: tuple[Any, ...], data: Any) -> tuple[str | int, ...]:
    """Drop pydantic's union/validator tags from `loc`, keeping the path into the data."""
    out: list[str | int] = []
    node = data
    for i, part in enumerate(loc):
        if isinstance(node, list) and isinstance(part, int) and part < len(node):
            out.append(part)
            node = node[part]
        elif isinstance(node, dict) and part in node:
            out.append(part)
            node = node[part]
        elif i == len(loc) - 1 and isinstance(node, dict) and isinstance(part, str):
            out.append(part)
    return tuple(out)


def _describe(err: dict[str, Any], loc: tuple[str | int, ...]) -> str:
    kind = err["type"]
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        hint = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
        return f"unknown key{suggestion}; expected one of: {', '.join(allowed)}"
    message = err["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    message = re.sub(r"^String should match pattern", "expected a string matching the pattern", message)
    message = re.sub(r"^\w+ should (be )?", "expected ", message)
    if message.startswith("Field required"):
        message = "required key is missing"
    got = err.get("input")
    if kind not in ("model_type",) and not isinstance(got, (dict, list)):
        message += f", got {got!r}"[:120]
    why = _field_description(loc) if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal") else ""
    return f"{message} ({why})" if why else message


def _field_description(loc: tuple[str | int, ...]) -> str:
    """The schema's reason for a bound (a Field description), if it gives one."""
    model: Any = Scenario
    field = None
    for part in loc:
        if isinstance(part, int) or not _is_model(model):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return ""
        model = _model_in(field.annotation)
    return (field.description or "") if field is not None else ""


def _allowed_keys(loc: tuple[str | int, ...]) -> list[str]:
    model: Any = Scenario
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if _is_model(model) else None
        if field is None:
            return []
        model = _model_in(field.annotation)
        if model is None:
            return []
    return sorted(model.model_fields) if _is_model(model) else []


def _is_model(obj: Any) -> bool:
    return isinstance(obj, type) and issubclass(obj, BaseModel)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The BaseModel class inside list[...] / X | None / Annotated[...], if any."""
    if _is_model(annotation):
        return annotation
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _model_in(typing.get_args(annotation)[0])
    if origin in (list, typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None
