"""Check a run folder before reading it: its manifest (run.json) and the shape of its tables.

`twin report` and `twin compare` read folders that a person may have copied, edited or half
deleted; a nearly empty summary.json or a Parquet file with other columns must be refused with
one line, not rendered into a confident report. Folders written before manifests existed are
checked on their shape only.
"""

from __future__ import annotations

from pathlib import Path

from twin.errors import TwinError
from twin.outputs import COMPLETE, read_manifest, verify

EVENT_COLUMNS = ("time", "kind", "entity", "state", "detail", "value")
SUMMARY_KEYS = ("scenario_name", "seed", "simulated_time", "jobs", "transformations", "plan")


def check_run(folder: Path) -> list[str]:
    """Raise TwinError when `folder` is not an intact run folder; return warnings (e.g. incomplete)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise TwinError(f"{folder}: run folder not found (expected the --out folder of `twin run`)")
    manifest = read_manifest(folder)
    warnings = []
    if manifest is not None:
        if manifest.get("kind", "run") != "run":
            raise TwinError(f"{folder}: run.json: expected a run folder, this one was written by `twin {manifest.get('kind')}`")
        problems = verify(folder, manifest)
        if problems:
            raise TwinError(f"{folder}: {problems[0]}" + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
                            + "; the folder no longer matches its run.json")
        if manifest.get("status") != COMPLETE:
            warnings.append(f"{folder}: the run is {manifest.get('status')} (interrupted at simulated "
                            f"{_days(manifest.get('simulated_time'))}); its numbers stop there")
    _check_summary(folder)
    _check_columns(folder / "events.parquet", EVENT_COLUMNS)
    _check_columns(folder / "metrics.parquet", ("time",))
    return warnings


def _days(seconds: object) -> str:
    return f"day {float(seconds) / 86400:.1f}" if isinstance(seconds, (int, float)) else "an unknown time"


def _check_summary(folder: Path) -> None:
    import json

    path = folder / "summary.json"
    if not path.is_file():
        raise TwinError(f"{path}: missing (is this the --out folder of `twin run`?)")
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TwinError(f"{path}: not a readable JSON summary ({exc})") from None
    missing = [key for key in SUMMARY_KEYS if not isinstance(summary, dict) or key not in summary]
    if missing and not (isinstance(summary, dict) and "interrupted_at" in summary):
        raise TwinError(f"{path}: expected a twin run summary with {', '.join(SUMMARY_KEYS)}; missing {', '.join(missing)}")


def _check_columns(path: Path, needed: tuple[str, ...]) -> None:
    import pyarrow.parquet as pq

    if not path.is_file():
        raise TwinError(f"{path}: missing (is this the --out folder of `twin run`?)")
    try:
        names = pq.read_schema(path).names
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several unrelated types for a damaged file
        raise TwinError(f"{path}: not a readable Parquet table ({str(exc).splitlines()[0]})") from None
    missing = [c for c in needed if c not in names]
    if missing:
        raise TwinError(f"{path}: expected the columns {', '.join(needed)}; missing {', '.join(missing)}")


def check_pair(baseline: Path, whatif: Path) -> list[str]:
    """Both folders checked; warnings when the comparison mixes more than the what-if's change."""
    import json

    warnings = check_run(baseline) + check_run(whatif)
    a, b = (json.loads((Path(f) / "summary.json").read_text(encoding="utf-8")) for f in (baseline, whatif))
    sa, sb = a.get("scenario") or {}, b.get("scenario") or {}
    prods = [{p.get("name") for p in (s.get("workload") or {}).get("productions", [])} for s in (sa, sb)]
    if prods[0] != prods[1]:
        warnings.append(f"the runs are of different workloads ({a.get('scenario_name')}: {sorted(prods[0])}; "
                        f"{b.get('scenario_name')}: {sorted(prods[1])}): the deltas compare different productions")
    if a.get("seed") != b.get("seed"):
        warnings.append(f"the runs use different seeds ({a.get('seed')} and {b.get('seed')}): "
                        "the deltas include seed noise, not only the what-if's change")
    return warnings
