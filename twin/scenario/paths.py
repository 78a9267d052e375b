"""Key paths into nested scenario data: 'topology.sites[LCG.CNAF.it].ces[0].slots'.

One syntax serves error messages, `overrides:` in what-if scenarios and
`twin sweep --param`. A bracket holds a list index or the `name` of a list item.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

import yaml

from twin.errors import TwinError

_TOKEN = re.compile(r"\[([^\]]+)\]|([^.\[\]]+)")


def split_path(path: str) -> list[str | int]:
    """'a.b[0].c[X.y]' -> ['a', 'b', 0, 'c', 'X.y']; a bracketed integer is an index."""
    if not path or path.startswith(".") or ".." in path:
        raise ValueError(f"malformed key path {path!r}")
    parts: list[str | int] = []
    pos = 0
    for match in _TOKEN.finditer(path):
        if match.start() != pos and path[pos:match.start()] != ".":
            raise ValueError(f"malformed key path {path!r}")
        bracket, key = match.groups()
        parts.append(int(bracket) if bracket is not None and bracket.lstrip("-").isdigit() else (bracket if bracket is not None else key))
        pos = match.end()
    if pos != len(path):
        raise ValueError(f"malformed key path {path!r}")
    return parts


def join_path(parts: list[str | int] | tuple[str | int, ...]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _child_index(node: list[Any], key: str | int, path: str) -> int:
    if isinstance(key, int):
        if -len(node) <= key < len(node):
            return key
        raise KeyError(f"{path}: index {key} out of range (the list has {len(node)} items)")
    for i, item in enumerate(node):
        if isinstance(item, dict) and item.get("name") == key:
            return i
    names = [item.get("name") for item in node if isinstance(item, dict)]
    raise KeyError(f"{path}: no item named {key!r} (expected one of {names})")


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Set `value` at `path` in place, creating missing mapping keys on the way."""
    parts = split_path(path)
    node: Any = data
    here = ""
    for key in parts[:-1]:
        here = f"{here}[{key}]" if isinstance(node, list) or isinstance(key, int) else (f"{here}.{key}" if here else str(key))
        if isinstance(node, list):
            node = node[_child_index(node, key, here)]
        elif isinstance(node, dict):
            if isinstance(key, int):
                raise KeyError(f"{here}: expected a list here, found a mapping")
            node = node.setdefault(key, {})
        else:
            raise KeyError(f"{here}: expected a mapping or a list, found {type(node).__name__}")
    last = parts[-1]
    if isinstance(node, list):
        node[_child_index(node, last, path)] = value
    elif isinstance(node, dict) and not isinstance(last, int):
        node[last] = value
    else:
        raise KeyError(f"{path}: cannot set a value here")


def get_path(data: Any, path: str) -> Any:
    """The value at `path`; KeyError naming the first part that does not exist."""
    node = data
    here = ""
    for key in split_path(path):
        here = f"{here}[{key}]" if isinstance(node, list) or isinstance(key, int) else (f"{here}.{key}" if here else str(key))
        if isinstance(node, list):
            node = node[_child_index(node, key, here)]
        elif isinstance(node, dict) and key in node:
            node = node[key]
        else:
            raise KeyError(f"{here}: no such key")
    return node


def parse_params(values: Sequence[str]) -> dict[str, Any]:
    """'--param a.b=3' -> {'a.b': 3}; values are parsed as YAML scalars (3, 0.5, true, "x").

    Shared by every command that takes --param (run, check, regress...), below all of them."""
    out: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise TwinError(f"--param {item!r}: expected KEY.PATH=VALUE")
        try:
            split_path(key.strip())
            out[key.strip()] = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise TwinError(f"--param {item!r}: the value is not valid YAML") from None
        except ValueError as exc:
            raise TwinError(f"--param {item!r}: {exc}") from None
    return out
