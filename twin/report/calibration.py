"""Run-report sections of issue 15: observed vs twin per Transformation Monitor row, and what the
verdict depends on (from a `twin sensitivity` result stored next to the scenario, if any).

The observed table is the scenario's `observed_names.file`; rows its `transformations` patterns name
are compared with this run (rows calibrated on and rows withheld alike: the latter are predictions).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

from twin.errors import TwinError
from twin.report.render import Html, join, note, table

COLUMN_LABELS = {"tasks_per_file": "Total Created / Files", "processed_pct": "Processed %",
                 "created_per_max": "Total Created / MaxNumberOfTasks", "MaxReset_pct": "MaxReset %",
                 "Problematic_pct": "Problematic %", "inputs_per_parent_task": "Files / parent Total Created"}


def calibration_section(scenario: Mapping[str, Any], summary: Mapping[str, Any]) -> tuple[str, str, Html] | None:
    """("calibration", title, html) when the scenario names an observed table; else None."""
    observed = (scenario or {}).get("observed_names") or {}
    path = observed.get("file")
    if not path:
        return None
    if not Path(path).is_file():
        return ("calibration", "Observed vs twin", note(f"The observed table {path} is not available here."))
    from twin.calibration.observed import read_observed, twin_values
    from twin.scenario.schema import Scenario

    try:
        model = Scenario.model_validate(scenario)
        found = read_observed([Path(path)], model)
    except TwinError as exc:
        return ("calibration", "Observed vs twin", note(f"Cannot compare with the observed table: {exc}"))
    values = twin_values(dict(summary), scenario=model)
    rows, classes = [], []
    for t in found.targets:
        twin = values.get((t.key, t.column), math.nan)
        err = t.error(twin)
        rows.append([t.row, t.key, COLUMN_LABELS.get(t.column, t.column), f"{t.observed:.4g}", f"{twin:.4g}",
                     f"{err:+.1f}" if math.isfinite(err) else "–"])
        classes.append("bad" if not math.isfinite(err) or abs(err) > 3 else None)
    text = note(f"Observed: {Path(path).name}. Error in tolerances (Total Created ratios: 5 % relative; Processed %: "
                f"0.25 points); rows with |error| > 3 are marked. Rows the calibration did not use are predictions. "
                f"Ignored rows: {', '.join(found.ignored) or 'none'}.")
    headers = ["observed transformation", "twin step", "column", "observed", "twin", "error"]
    return ("calibration", "Observed vs twin", join([text, table(headers, rows, classes)]))


def sensitivity_section(folder: Path | None) -> tuple[str, str, Html] | None:
    """"What this verdict depends on", from the folder's sensitivity.json (written by `twin sensitivity --out`)."""
    import json

    path = Path(folder) / "sensitivity.json" if folder else None
    if path is None or not path.is_file():
        return None
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
        params = result["parameters"]
    except (OSError, ValueError, KeyError) as exc:
        return ("sensitivity", "What this verdict depends on", note(f"{path}: not readable ({exc})"))
    rows = [[i, p["key"], f"{p['nominal']:.4g}", f"{p['low']:.4g}..{p['high']:.4g}", f"{p['score']:.3g}",
             p.get("flip_note", "not scanned")] for i, p in enumerate(params[:10], 1)]
    nominal = result.get("nominal", {})
    text = note(f"Morris screening of {len(params)} 'assumption:' values over {result.get('runs')} runs (scale "
                f"{result.get('scale')}): score = sum over finish time, deadline met, wasted CPU and bottleneck of "
                f"mu* / output range. Nominal: deadline met {nominal.get('deadline_met')}, bottleneck {nominal.get('bottleneck')}. "
                "The last column is the nearest scanned value at which the verdict changes.")
    return ("sensitivity", "What this verdict depends on",
            join([text, table(["rank", "assumption", "value", "range", "score", "verdict flips"], rows)]))
