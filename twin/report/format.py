"""Plain-text formatting shared by reports and the command line (no plotting imports, so the CLI stays light)."""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any, Sequence

import yaml


def format_ci(mean: float, ci: float) -> str:
    """'12.30 ± 0.40' (two decimals below 100, none above); '–' for a missing mean."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    digits = 0 if abs(mean) >= 100 else 2
    return f"{mean:,.{digits}f}" if ci is None or math.isnan(ci) else f"{mean:,.{digits}f} ± {ci:,.{digits}f}"


def param_text(value: Any) -> str:
    """A parameter value as typed on the command line."""
    if isinstance(value, (list, dict)):
        return yaml.safe_dump(value, default_flow_style=True).strip()
    return str(value)


def short_label(path: str, paths: Sequence[str]) -> str:
    """'topology.sites[LCG.PIC.es].ces[0].slots' -> 'slots (LCG.PIC.es)'; the full path if not unique."""
    from twin.scenario.paths import split_path

    def label(p: str) -> str:
        parts = split_path(p)
        names = [x for x in parts if isinstance(x, str) and f"[{x}]" in p]  # list items chosen by name
        return f"{parts[-1]} ({names[-1]})" if names else str(parts[-1])

    labels = [label(p) for p in paths]
    mine = label(path)
    return mine if labels.count(mine) == 1 else path


@lru_cache(maxsize=1)
def duration_keys() -> frozenset[str]:
    """Names of the scenario fields typed Duration (twin/scenario/schema.py): their values are seconds, shown
    as '1 d 2 h' rather than 93600.0."""
    import typing

    import pydantic

    from twin.engine.clock import parse_duration
    from twin.scenario.schema import Scenario

    def is_duration(annotation: Any) -> bool:
        return any(getattr(m, "func", None) is parse_duration for m in getattr(annotation, "__metadata__", ()))

    found: set[str] = set()
    seen: set[type] = set()

    def walk(model: type[pydantic.BaseModel]) -> None:
        if model in seen:
            return
        seen.add(model)
        for name, info in model.model_fields.items():
            if any(getattr(m, "func", None) is parse_duration for m in info.metadata):
                found.add(name)
            stack = [info.annotation]
            while stack:
                annotation = stack.pop()
                if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
                    walk(annotation)
                for arg in typing.get_args(annotation):
                    if is_duration(arg):
                        found.add(name)
                    stack.append(arg)

    walk(Scenario)
    return frozenset(found)
