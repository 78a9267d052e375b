"""The what-if report: one baseline against one or more what-ifs, each side one run or several seeds.

A side is a run folder (`twin run`) or a replicas folder (`twin run --seeds N`, with replicas.json).
Every compared number is shown per side (mean ± 95% CI over seeds when there are several), with its
difference to the baseline and a significance test: a paired t-test on per-seed differences when both
sides ran the same seeds (common random numbers), Welch's t-test otherwise, Fisher's exact test for
P(deadline met); significant at p < 0.05. Only a significant difference is coloured better or worse;
with one seed per side the difference is shown muted and marked "untested", since it may be seed noise.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import yaml

from twin.errors import TwinError
from twin.report import dates as D
from twin.report import figures as F
from twin.report import timeline as TL
from twin.report.format import duration_keys
from twin.report.html import Run, _plan_box, _wasted_fraction, events_of, load_run, report_colors
from twin.report.render import Html, details, duration, figure_html, join, note, num, page, pct, pre, table, tag
from twin.report.stats import Test, difference_test, share_test, wilson

REPLICAS_MANIFEST = "replicas.json"
BOTTLENECK_TIE_PT = 5.0  # a bottleneck "changes" only when the new one is this much busier (mean utilisation, pt)
DAY = 86400.0


# ---------------------------------------------------------------- sides
@dataclass
class Side:
    """One compared scenario: its runs (one per seed) and where they came from."""

    label: str
    runs: list[Run]
    folder: Path | None = None

    @property
    def seeds(self) -> list[Any]:
        return [r.summary.get("seed") for r in self.runs]

    @property
    def first(self) -> Run:
        return self.runs[0]

    def values(self, metric: Callable[[Run], Any]) -> list[Any]:
        return [metric(r) for r in self.runs]


def load_side(folder: Path) -> Side:
    """A run folder, or a replicas folder whose replicas.json lists one run folder per seed."""
    folder = Path(folder)
    runs = [load_run(f) for f in run_folders(folder)]
    if not runs:
        raise TwinError(f"{folder / REPLICAS_MANIFEST}: 'runs' is empty (expected one run folder per seed)")
    return Side(runs[0].label, runs, folder)


def run_folders(folder: Path) -> list[Path]:
    """The run folders behind a compared side: the folder itself, or each seed of a replicas folder."""
    manifest = Path(folder) / REPLICAS_MANIFEST
    if manifest.is_file():
        try:
            return [Path(folder) / str(name) for name in json.loads(manifest.read_text(encoding="utf-8"))["runs"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise TwinError(f"{manifest}: not a readable replicas manifest (expected a JSON object with 'runs': {exc})") from None
    return [Path(folder)]


def check_sides(baseline: Path, whatifs: Sequence[Path]) -> list[str]:
    """Every run folder checked (twin.runfolder); warnings when a single-run pair mixes more than the change."""
    from twin.runfolder import check_pair, check_run

    warnings: list[str] = []
    base = run_folders(baseline)
    for whatif in whatifs:
        runs = run_folders(whatif)
        if len(base) == 1 and len(runs) == 1:
            warnings += check_pair(base[0], runs[0])
        else:
            warnings += [w for folder in runs for w in check_run(folder)]
    return warnings + ([w for folder in base for w in check_run(folder)] if len(base) > 1 else [])


def side_labels(sides: Sequence[Side]) -> list[str]:
    """Scenario names; folder names are added where names repeat."""
    names = [s.label for s in sides]
    return [f"{s.label} ({s.folder.name if s.folder else i})" if names.count(s.label) > 1 else s.label
            for i, s in enumerate(sides)]


# ---------------------------------------------------------------- compared quantities
@dataclass
class Row:
    """One compared quantity over every side; `better` +1 when higher is better, -1 when lower, 0 neither."""

    label: str
    values: list[list[float]]  # per side, per seed (NaN = not applicable in that run)
    fmt: Callable[[Any], str] = num
    better: int = 0
    fraction: bool = False
    share: bool = False  # values are 0/1 outcomes: shown as P(...) with a Wilson interval, tested with Fisher

    def show(self, i: int) -> str:
        x = _finite(self.values[i])
        if not x:
            return "–"
        if self.share:
            lo, hi = wilson(int(sum(x)), len(x))
            return f"{np.mean(x):.0%}" + (f" ({lo:.0%}–{hi:.0%})" if len(x) > 1 else "")
        one = (lambda v: pct(v, 1)) if self.fraction else self.fmt
        if len(x) == 1:
            return one(x[0])
        from twin.sweep import mean_ci

        mean, _, half, _ = mean_ci(x)
        return f"{one(mean)} ± {one(half) if not self.fraction else f'{half * 100:.1f} pt'}"

    def test(self, i: int, paired: bool) -> Test | None:
        a, b = _finite(self.values[0]), _finite(self.values[i])
        if self.share:
            return share_test([bool(v) for v in a], [bool(v) for v in b])
        return difference_test(a, b, paired and len(a) == len(self.values[0]) and len(b) == len(self.values[i]))

    def delta_cells(self, i: int, paired: bool) -> list[Any]:
        """Δ, Δ %, and the test verdict of side i against the baseline (side 0)."""
        a, b = _finite(self.values[0]), _finite(self.values[i])
        if not a or not b:
            return ["–", "", ""]
        d = float(np.mean(b) - np.mean(a))
        if self.share or self.fraction:
            magnitude = f"{abs(d) * 100:.1f} pt"
        else:
            magnitude = self.fmt(abs(d))
        zero = magnitude in ("0", "0.0 pt", "0.00", "0 s", "0.0 s", self.fmt(0.0))
        sign = "" if zero or d == 0 else "+" if d > 0 else "−"
        base = float(np.mean(a))
        rel = "" if zero or self.share or self.fraction else "n/a" if not base else f"{sign}{abs(d / base):.1%}"
        test = self.test(i, paired)
        verdict = _verdict(test, zero, len(a), len(b))
        direction = d * self.better
        cls = None
        if direction and not zero:
            tone = "better" if direction > 0 else "worse"
            cls = tone if test is not None and test.significant else f"{tone} untested" if test is None else None
        text = sign + magnitude if not zero else "0"
        return [tag("span", text, class_=cls) if cls else text, rel, verdict]


def _verdict(test: Test | None, zero: bool, na: int, nb: int) -> str:
    if test is None:
        return "untested (1 seed)" if min(na, nb) < 2 else "–"
    if zero and test.p >= 1.0:
        return "no change"
    word = "significant" if test.significant else "noise"
    return f"{word} (p={test.p:.2g}, {test.name})"


def _finite(values: Iterable[Any]) -> list[float]:
    out = []
    for v in values:
        if isinstance(v, bool):
            out.append(float(v))
        elif isinstance(v, (int, float)) and not math.isnan(float(v)):
            out.append(float(v))
    return out


def _nan(value: Any) -> float:
    return math.nan if value is None else float(value)


def rows_table(rows: Sequence[Row], labels: Sequence[str], paired: Sequence[bool]) -> Html:
    """Quantity | baseline | per what-if: value, Δ, Δ %, test."""
    headers: list[Any] = ["", labels[0]]
    for label in labels[1:]:
        headers += [label, "Δ", "Δ %", "test"]
    body = []
    for row in rows:
        cells: list[Any] = [row.label, row.show(0)]
        for i in range(1, len(labels)):
            cells += [row.show(i), *row.delta_cells(i, paired[i])]
        body.append(cells)
    return table(headers, body)


def _complete(run: Run) -> bool:
    return bool(run.summary.get("plan", {}).get("complete"))


def _jobs(run: Run, status: str) -> float:
    return float(run.summary.get("jobs", {}).get("by_status", {}).get(status, 0))


def _finish(run: Run) -> float:
    """Finish time [s]; NaN when the run did not complete (stopping short is not finishing sooner)."""
    plan = run.summary.get("plan", {})
    return float(plan["finished_at"]) if plan.get("finished_at") is not None and plan.get("complete") else math.nan


def headline_rows(sides: Sequence[Side]) -> list[Row]:
    all_complete = all(_complete(r) for s in sides for r in s.runs)
    has_deadline = any(r.summary.get("plan", {}).get("deadline_met") is not None for s in sides for r in s.runs)

    def row(label: str, metric: Callable[[Run], Any], **kw: Any) -> Row:
        return Row(label, [s.values(metric) for s in sides], **kw)

    rows = [row("finished after", _finish, fmt=duration, better=-1 if all_complete else 0)]
    if has_deadline:
        rows.append(row("P(deadline met)", lambda r: _nan(r.summary.get("plan", {}).get("deadline_met")), share=True, better=+1))
        rows.append(row("margin to deadline (+ early)", _margin, fmt=_signed_duration, better=+1))
    rows += [
        row("share of runs complete", lambda r: float(_complete(r)), share=True, better=+1),
        row("jobs Done", lambda r: _jobs(r, "Done"), better=+1),
        row("jobs Failed", lambda r: _jobs(r, "Failed"), better=-1),
        row("CPU used [HS06·h]", lambda r: _nan(r.summary.get("jobs", {}).get("cpu_used_hs06_hours"))),
        row("CPU wasted [HS06·h]", lambda r: _nan(r.summary.get("jobs", {}).get("cpu_wasted_hs06_hours")), better=-1),
        row("CPU wasted %", lambda r: _nan(_wasted_fraction(r.summary.get("jobs", {}))), better=-1, fraction=True),
    ]
    return rows


def _margin(run: Run) -> float:
    """Deadline − finish [s]: positive = early. NaN without a deadline or when the run did not complete."""
    deadline = run.summary.get("plan", {}).get("deadline")
    finish = _finish(run)
    return math.nan if deadline is None or math.isnan(finish) else float(deadline) - finish


def _signed_duration(seconds: float) -> str:
    return ("−" if seconds < 0 else "") + duration(abs(seconds))


def transformation_rows(sides: Sequence[Side]) -> list[Row]:
    """When each transformation finished (not its final progress: both often reach 100%)."""
    names = list(dict.fromkeys(str(t.get("name")) for s in sides for r in s.runs for t in r.summary.get("transformations", [])))

    def finish(name: str) -> Callable[[Run], float]:
        def value(run: Run) -> float:
            t = next((t for t in run.summary.get("transformations", []) if str(t.get("name")) == name), {})
            return float(t["finished_at"]) if t.get("finished_at") is not None else math.nan
        return value

    return [Row(f"{n} finished after", [s.values(finish(n)) for s in sides], fmt=duration, better=-1) for n in names]


def keyed_rows(sides: Sequence[Side], mapping: Callable[[Run], Mapping[str, Any]], value: Callable[[Any], Any],
               label: Callable[[str], str], **kw: Any) -> list[Row]:
    """One Row per key of any run's mapping (a site, a database, a tape...)."""
    keys = list(dict.fromkeys(k for s in sides for r in s.runs for k in mapping(r)))
    return [Row(label(k), [[_nan(value(mapping(r)[k])) if k in mapping(r) else math.nan for r in s.runs] for s in sides], **kw)
            for k in keys]


def peak_fill(run: Run) -> dict[str, float]:
    fill = F.fill_curves(run.metrics, run.summary)
    out = {k: float(v.get("fill") or 0.0) for k, v in run.summary.get("storage", {}).items()}
    for name, (_, y) in fill.items():
        if len(y):
            out[name] = max(out.get(name, 0.0), float(np.nanmax(y)) / 100.0)
    return out


# ---------------------------------------------------------------- bottleneck
def bottleneck_name(run: Run) -> str:
    neck = run.summary.get("bottleneck", {})
    return f"{neck['kind']} of {neck['name']}" if neck.get("name") else "none saturates"


def _utilisation(run: Run, name: str) -> float | None:
    for r in run.summary.get("resources", []):
        if f"{r.get('kind')} of {r.get('name')}" == name:
            return float(r.get("mean_utilization") or 0.0)
    return None


def bottleneck_rows(sides: Sequence[Side]) -> tuple[list[str], list[str]]:
    """Per side the most frequent bottleneck (share of seeds); per what-if whether it changed, with a threshold:
    changed only when the what-if's bottleneck is ≥ BOTTLENECK_TIE_PT busier (mean utilisation) than the
    baseline's bottleneck resource in the same what-if runs, so a 67% vs 68% flip is not a change."""
    modes = []
    shown = []
    for side in sides:
        counts = Counter(bottleneck_name(r) for r in side.runs)
        name, n = counts.most_common(1)[0]
        modes.append(name)
        shown.append(name + (f" ({n}/{len(side.runs)} seeds)" if len(side.runs) > 1 else ""))
    verdicts = []
    for side, name in zip(sides[1:], modes[1:]):
        if name == modes[0]:
            verdicts.append("same")
            continue
        gaps = [(_utilisation(r, name) or 0.0) - (_utilisation(r, modes[0]) or 0.0) for r in side.runs]
        gap = 100.0 * float(np.mean(gaps))
        verdicts.append(f"changed: {gap:.0f} pt busier than the baseline's" if gap >= BOTTLENECK_TIE_PT else
                        f"not a clear change ({gap:.1f} pt apart, threshold {BOTTLENECK_TIE_PT:.0f} pt)")
    return shown, verdicts


# ---------------------------------------------------------------- faults
def fault_text(fault: Mapping[str, Any]) -> str:
    """'site_down LCG.PIC.es from 1 d 2 h to 3 d (params)': a fault as a person reads it."""
    end = fault.get("end")
    params = readable(fault.get("params") or {})
    text = f"{fault.get('kind')} {fault.get('target')} from {D.when(fault.get('start'))} " + \
        (f"to {D.when(end)}" if end is not None else "to the end of the run")
    return text + (f" ({', '.join(f'{k}={v}' for k, v in params.items())})" if params else "")


def readable(value: Any, key: str = "") -> Any:
    """Scenario values for people: seconds of Duration fields as '1 d 2 h', faults as sentences."""
    if isinstance(value, dict):
        return {k: readable(v, k) for k, v in value.items()}
    if isinstance(value, list):
        if key == "faults":
            return [fault_text(f) if isinstance(f, dict) else f for f in value]
        return [readable(v, key) for v in value]
    if key in duration_keys() and isinstance(value, (int, float)) and not isinstance(value, bool):
        return duration(value)
    return value


def _shown(value: Any) -> str:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "; ".join(value) or "(none)"
    return value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)


def union_spans(sides: Sequence[Side]) -> list[F.FaultSpan]:
    """Fault windows of every side's first run, each window once, renumbered F1, F2..."""
    seen: dict[tuple[Any, ...], F.FaultSpan] = {}
    for side in sides:
        for span in side.first.spans:
            seen.setdefault((span.kind, span.target, span.start, span.end), span)
    ordered = sorted(seen.values(), key=lambda s: (s.start, s.kind, s.target))
    return [F.FaultSpan(i + 1, s.kind, s.target, s.start, s.end, s.params) for i, s in enumerate(ordered)]


def faults_section(sides: Sequence[Side], labels: Sequence[str]) -> Html:
    parts: list[Any] = []
    for side, label in zip(sides, labels):
        faults = side.first.scenario.get("faults") or side.first.summary.get("faults") or []
        parts.append(tag("h3", label))
        parts.append(tag("ul", join(tag("li", fault_text(f)) for f in faults)) if faults else note("No faults."))
    parts.append(note("Fault windows of every compared run are shaded on the time plots above."))
    return join(parts)


# ---------------------------------------------------------------- the page
def write_compare_report(baseline_dir: Path, whatif_dirs: Path | Sequence[Path], out_dir: Path) -> Path:
    """Write <out_dir>/compare.html (a path ending in .html is taken as the file itself); returns its path.
    TwinError when a folder is missing or broken (nothing is written then)."""
    whatifs = [whatif_dirs] if isinstance(whatif_dirs, (str, Path)) else list(whatif_dirs)
    sides = [load_side(Path(baseline_dir))] + [load_side(Path(w)) for w in whatifs]
    out = Path(out_dir)
    path = out if out.suffix == ".html" else out / "compare.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(compare_report_html(sides), encoding="utf-8")
    return path


def compare_report_html(sides: Sequence[Side]) -> str:
    """The compare page; times carry the baseline's calendar dates when its scenario gives run.start_date."""
    with D.campaign(D.start_of(sides[0].first.scenario)):
        return _compare_page(sides)


def _compare_page(sides: Sequence[Side]) -> str:
    labels = side_labels(sides)
    paired = [True] + [sorted(map(str, s.seeds)) == sorted(map(str, sides[0].seeds)) for s in sides[1:]]
    colors = report_colors(*(r for s in sides for r in s.runs))
    spans = union_spans(sides)
    t_end = max(s.first.t_end for s in sides)
    overlay = lambda panels, alt: figure_html(F.overlay(panels, labels, t_end, colors, spans), alt)  # noqa: E731
    firsts = [s.first for s in sides]
    necks, changes = bottleneck_rows(sides)
    progress = [[F.held_to(c, t_end) for c in F.progress_curves(r.status, r.summary)] for r in firsts]  # (Done, Processed)
    sections = [
        ("summary", "Summary", join([
            *[join([tag("h3", f"{'Baseline' if i == 0 else 'What-if'}: {label}"), _side_verdict(side)])
              for i, (side, label) in enumerate(zip(sides, labels))],
            rows_table(headline_rows(sides), labels, paired),
            table(["", *labels], [["bottleneck", *necks], ["bottleneck changed?", "", *changes]]),
            note(_method_note(sides, paired)),
        ])),
        ("transformations", "When each transformation finished", join([
            rows_table(transformation_rows(sides), labels, paired),
            figure_html(TL.gantt_overlay([TL.step_spans(r.summary, r.scenario, r.status, events_of(r, *TL.TIMELINE_EVENTS))
                                          for r in firsts], labels, colors, spans, t_end), "transformation Gantt per run"),
            overlay([F.Panel(title, ylabel, [curves[k] for curves in progress])
                     for k, (title, ylabel) in enumerate((("Done jobs per transformation (cumulative)", "jobs Done"),
                                                          ("Processed input files per transformation (cumulative)",
                                                           "files Processed")))], "transformation progress overlay"),
        ])),
        ("jobs", "Jobs by site", join([
            rows_table(keyed_rows(sides, lambda r: r.summary.get("jobs", {}).get("by_site", {}), lambda c: c.get("Done", 0),
                                  lambda k: f"Done at {k}"), labels, paired),
            note("Jobs Done per site have no better direction: work moved from one site to another is neither."),
            overlay([F.Panel("Running jobs per site", "running jobs", [F.running_curves(r.metrics) for r in firsts]),
                     F.Panel("Running jobs, all sites", "running jobs", [F.total(F.running_curves(r.metrics)) for r in firsts])],
                    "running jobs overlay"),
        ])),
        ("services", "Core services", join([
            rows_table(keyed_rows(sides, lambda r: r.summary.get("databases", {}), lambda d: d.get("p95_latency_ms"),
                                  lambda k: f"{k} p95 latency [ms]", fmt=lambda v: num(v, 2), better=-1), labels, paired),
            overlay([F.Panel("Database latency (gaps: no query in that interval)", "latency [ms]",
                             [F.db_latency_curves(r.metrics) for r in firsts])], "database latency overlay"),
        ])),
        ("data", "Data: tape and storage", join([
            rows_table(keyed_rows(sides, lambda r: r.summary.get("tape", {}), lambda t: t.get("archived_tb"),
                                  lambda k: f"{k} archived [TB]", fmt=lambda v: num(v, 2))
                       + keyed_rows(sides, peak_fill, lambda v: v, lambda k: f"{k} peak fill", better=-1, fraction=True),
                       labels, paired),
            overlay([F.Panel("Storage fill", "fill [% of capacity]", [F.fill_curves(r.metrics, r.summary) for r in firsts]),
                     F.Panel("Archived to tape (cumulative)", "TB", [F.archived_curves(r.metrics) for r in firsts])],
                    "storage and tape overlay"),
        ])),
        ("faults", "Faults", faults_section(sides, labels)),
        ("scenario", "Scenario differences", scenario_diff(sides, labels)),
    ]
    seeds = " · ".join(f"{label}: {len(s.runs)} seed{'s' if len(s.runs) != 1 else ''}" for label, s in zip(labels, sides))
    return page(f"twin what-if comparison: {labels[0]} vs {', '.join(labels[1:])}", seeds, sections)


def _side_verdict(side: Side) -> Html:
    if len(side.runs) == 1:
        return _plan_box(side.first.summary.get("plan", {}))
    from twin.report.uncertainty import plan_box

    return plan_box(side.runs)


def _method_note(sides: Sequence[Side], paired: Sequence[bool]) -> str:
    if all(len(s.runs) == 1 for s in sides):
        return ("Δ = what-if − baseline. One seed per side: a difference may be seed noise, so none is tested or "
                "coloured as a clear change (muted colour: the direction only). Run `twin run --seeds N` for each side "
                "and compare the folders for 95% intervals and significance tests.")
    test = "paired t-test on per-seed differences (same seeds on both sides)" if all(paired) else \
        "paired t-test where both sides ran the same seeds, Welch's t-test otherwise"
    return (f"Δ = what-if − baseline (means over seeds); ± is the 95% Student-t half-width, P(...) shows its 95% Wilson "
            f"interval. Test: {test}; Fisher's exact test for shares; significant at p < 0.05. Only significant "
            f"differences are coloured green (better) or red (worse); 'noise' means not significant. Curves show the "
            f"first seed of each side.")


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Key paths of a scenario dict, lists of named items keyed by name (as `--param` writes them)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(value, list) and value and all(isinstance(x, dict) and "name" in x for x in value):
        out = {}
        for x in value:
            out.update(flatten({k: v for k, v in x.items() if k != "name"}, f"{prefix}[{x['name']}]"))
        return out
    return {prefix: value}


def scenario_diff(sides: Sequence[Side], labels: Sequence[str]) -> Html:
    """Key paths whose value differs between any two sides, values in readable units."""
    flat = [flatten(readable(s.first.scenario)) for s in sides]
    keys = [k for k in dict.fromkeys(k for f in flat for k in f) if len({repr(f.get(k, "∅")) for f in flat}) > 1]
    body = table(["key path", *labels], [[k, *("(absent)" if k not in f else _shown(f[k]) for f in flat)] for k in keys]) \
        if keys else note("The scenarios are identical (a different seed or code version?).")
    return join([body, *[details(f"Scenario (YAML): {label}", pre(yaml.safe_dump(s.first.scenario, sort_keys=False)))
                         for s, label in zip(sides, labels)]])
