"""Read YAML the way the twin needs it: no shared mappings, no duplicate keys, errors with a line.

PyYAML turns every alias (`*evndisp_job`, `<<: *mc_job`) into a reference to the SAME Python
object, so setting one key path (an `overrides:` entry, `--param`, a sweep value) would change
every place that shares the anchor. `read_yaml` returns a tree in which every mapping and list
appears once: an anchor is a copy-paste shorthand, as its users expect.

YAML itself lets a key repeat in one mapping (the last one wins), which silently drops a
setting; here a repeated key is an error naming both lines.
"""

from __future__ import annotations

from typing import Any

import yaml

from twin.errors import ScenarioError

MERGE_KEY = "<<"
_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built in: same nodes, ~10x faster


class _Loader(_Base):  # type: ignore[misc,valid-type]
    """The safe loader, with a date-like value that is no date (2026-13-01) an error on its line, not a traceback."""

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError as exc:
            raise yaml.constructor.ConstructorError(None, None, f"{node.value!r} is not a valid date ({exc})",
                                                    node.start_mark) from None


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)


def read_yaml(text: str, file: str) -> tuple[Any, yaml.Node | None]:
    """(data, composed node) of one YAML document; ScenarioError on syntax errors and repeated keys."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        _check_unique_keys(node, file, set())
        data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ScenarioError(file, "", f"invalid YAML: {problem}", line=mark.line + 1 if mark else None) from None
    finally:
        loader.dispose()
    return unshared(data, file), node


def _check_unique_keys(node: yaml.Node, file: str, seen: set[int]) -> None:
    if id(node) in seen:  # an alias: its own keys were checked where the anchor is defined
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first: dict[Any, int] = {}
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value != MERGE_KEY:
                line = key.start_mark.line + 1
                if key.value in first:
                    raise ScenarioError(file, "", f"duplicate key {key.value!r} (also on line {first[key.value]}): "
                                                  "expected each key once per mapping", line=line)
                first[key.value] = line
            _check_unique_keys(value, file, seen)
    elif isinstance(node, yaml.SequenceNode):
        for value in node.value:
            _check_unique_keys(value, file, seen)


def unshared(value: Any, file: str = "", _ancestors: tuple[int, ...] = ()) -> Any:
    """A copy of a YAML tree in which no mapping or list is reachable by two paths."""
    if not isinstance(value, (dict, list)):
        return value
    if id(value) in _ancestors:
        raise ScenarioError(file, "", "expected no recursive anchor (an alias inside its own anchor)")
    inner = _ancestors + (id(value),)
    if isinstance(value, dict):
        return {key: unshared(item, file, inner) for key, item in value.items()}
    return [unshared(item, file, inner) for item in value]
