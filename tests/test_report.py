"""HTML reports: a real small run and a what-if, read back the way a reader (or a mail client) would.

Two runs of the minimal scenario are shared by the module (about 10 s together): the
baseline, and a what-if with half the MC tasks and a site_down fault, so the compare
report has a known direction (fewer jobs Done) and the run report has a fault to show.
"""

from __future__ import annotations

import html
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from conftest import minimal
from twin.errors import TwinError
from twin.report import figures as F
from twin.report.html import Run, load_run, run_from_result, run_report_html, write_compare_report
from twin.report.render import esc, figure_uri, table, verdict_kind
from twin.results import RunResult
from twin.runner import run_scenario

RUN_SECTIONS = ["summary", "bottleneck", "jobs", "transformations", "data", "services", "failures", "faults",
                "invariants", "scenario"]
COMPARE_SECTIONS = ["summary", "jobs", "transformations", "services", "data", "scenario"]
IMG = '<img src="data:image/png;base64,'
FAULT = {"kind": "site_down", "target": "LCG.PIC.es", "start": "30m", "end": "90m"}


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    return run_scenario(minimal(**{"run.sample_interval": "10m"}), tmp_path_factory.mktemp("baseline"), progress=False)


@pytest.fixture(scope="module")
def whatif(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    scenario = minimal(**{"run.sample_interval": "10m", "name": "minimal-whatif", "faults": [FAULT],
                          "workload.productions[test].steps[MCSimulation].max_tasks": 30})
    return run_scenario(scenario, tmp_path_factory.mktemp("whatif"), progress=False)


@pytest.fixture(scope="module")
def compare_html(baseline: RunResult, whatif: RunResult, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = write_compare_report(baseline.out, whatif.out, tmp_path_factory.mktemp("cmp") / "compare.html")
    return path.read_text(encoding="utf-8")


class _Tables(HTMLParser):
    """Rows of every table, as lists of cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def rows(text: str) -> list[list[str]]:
    parser = _Tables()
    parser.feed(text)
    return parser.rows


def section(text: str, id_: str) -> str:
    match = re.search(rf'<section id="{id_}">(.*?)</section>', text, re.S)
    assert match, f"no section {id_}"
    return match.group(1)


def report_text(result: RunResult) -> str:
    return result.files["report"].read_text(encoding="utf-8")


def assert_self_contained(text: str) -> None:
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text, re.I), "external reference"
    assert "<script" not in text.lower() and "<link" not in text.lower() and "@import" not in text


# ---------------------------------------------------------------- run report
def test_run_report_is_written_where_the_runner_expects(baseline: RunResult) -> None:
    assert baseline.files["report"] == baseline.out / "report.html"
    assert baseline.files["report"].stat().st_size > 50_000


def test_run_report_has_every_section_and_embedded_figures(baseline: RunResult) -> None:
    text = report_text(baseline)
    for id_ in RUN_SECTIONS:
        assert f'<section id="{id_}">' in text and f'href="#{id_}"' in text
    assert text.count(IMG) >= 7
    for name in ("jobs", "transformations", "data", "services"):
        assert IMG in section(text, name), f"no figure in section {name}"
    assert_self_contained(text)


def test_run_report_opens_with_the_plan_verdict(baseline: RunResult) -> None:
    text = report_text(baseline)
    plan = baseline.summary["plan"]
    summary = section(text, "summary")
    assert html.escape(plan["verdict"]) in summary
    assert summary.index(html.escape(plan["verdict"])) < summary.index('class="cards"')
    assert ("No deadline set." if plan["deadline_met"] is None else "Deadline") in summary
    assert html.escape(baseline.summary["bottleneck"]["verdict"]) in section(text, "bottleneck")


def test_run_report_tables_match_the_summary(baseline: RunResult) -> None:
    text = report_text(baseline)
    site_rows = {r[0]: r for r in rows(section(text, "jobs"))}
    for site, counts in baseline.summary["jobs"]["by_site"].items():
        assert site_rows[site][1] == f"{counts.get('Done', 0):,}"
    trans_rows = {r[1]: r for r in rows(section(text, "transformations"))}
    assert set(trans_rows) >= {t["name"] for t in baseline.summary["transformations"]}
    assert "No faults in this scenario." in section(text, "faults")
    assert 'class="box ok"' in section(text, "invariants")


def test_run_report_shows_the_fault(whatif: RunResult) -> None:
    faults = section(report_text(whatif), "faults")
    fault_rows = [r for r in rows(faults) if r and r[0] == "F1"]
    assert fault_rows and fault_rows[0][1:3] == ["site_down", "LCG.PIC.es"]
    assert fault_rows[0][3:5] == ["30.0 min", "1.5 h"]
    assert IMG in faults


def test_resources_are_sorted_by_first_saturation(baseline: RunResult) -> None:
    body = [r for r in rows(section(report_text(baseline), "bottleneck")) if r[0] != "resource"]
    assert len(body) == len(baseline.summary["resources"])
    seen_unsaturated = False
    for row in body:
        if row[-1] == "–":
            seen_unsaturated = True
        else:
            assert not seen_unsaturated, "a saturated resource listed after an unsaturated one"


def test_text_is_escaped_broken_invariants_are_red_and_provenance_shown(baseline: RunResult) -> None:
    run = run_from_result(baseline)
    run.summary = json.loads(json.dumps(run.summary))
    run.summary["jobs"]["failures_by_reason"] = {"<script>alert('x')</script>": 3}
    run.summary["invariants"]["jobs_conserved"] = False
    run.scenario = dict(run.scenario, provenance={"topology.sites[A].ces[0].slots": "assumption: CTA's <share>"})
    text = run_report_html(run)
    scenario = section(text, "scenario")
    assert "Provenance of 1 values (1 assumption)" in scenario and "CTA&#x27;s &lt;share&gt;" in scenario
    assert "<script>alert" not in text and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in text
    inv = section(text, "invariants")
    assert 'class="box bad"' in inv and '<tr class="bad"><td>jobs conserved</td>' in inv


def test_report_of_an_empty_run_does_not_crash() -> None:
    """A run with no gauges, no events and a bare summary still yields every section, without figures."""
    metrics = pd.DataFrame({"time": [0.0, 3600.0]})
    events = pd.DataFrame({"time": [], "kind": [], "entity": [], "state": [], "detail": [], "value": []})
    text = run_report_html(Run("empty", {"plan": {}, "jobs": {}}, metrics, events, {}))
    for id_ in RUN_SECTIONS:
        assert f'<section id="{id_}">' in text
    assert IMG not in text


def test_figures_skip_what_the_run_does_not_have(baseline: RunResult) -> None:
    """No tape.* columns -> no tape figure; no columns at all -> no time figure, and no crash."""
    bare = pd.DataFrame({"time": [0.0, 60.0]})
    assert F.tape(baseline.metrics, baseline.summary, {}, [], 1.0) is None
    for make in (lambda m: F.jobs_by_site(m, {}, [], 60.0), lambda m: F.pilots(m, {}, [], 60.0),
                 lambda m: F.transfers(m, [], 60.0), lambda m: F.databases(m, [], 60.0),
                 lambda m: F.storage_fill(m, {}, {}, [], 60.0), lambda m: F.server_cpu(m, {}, [], 60.0),
                 lambda m: F.requests(m, [], 60.0), lambda m: F.tape(m, {}, {}, [], 60.0)):
        assert make(bare) is None
    assert F.transformation_bars({}) is None and F.agents({}) is None and F.failures({}, bare, [], 1.0) is None


def test_fault_spans_pair_start_and_end(whatif: RunResult) -> None:
    spans = F.fault_spans(whatif.events)
    assert [(s.kind, s.target, s.start, s.end) for s in spans] == [("site_down", "LCG.PIC.es", 1800.0, 5400.0)]
    unended = pd.DataFrame({"time": [10.0], "kind": ["fault.start"], "entity": ["db_slow:JobDB"], "state": ["db_slow"],
                            "detail": [""], "value": [float("nan")]})
    assert F.fault_spans(unended)[0].end is None


def test_site_colours_are_stable() -> None:
    assert F.palette(["b", "a"]) == F.palette(["a", "b", "a"])
    assert len(set(F.palette([f"s{i}" for i in range(15)]).values())) == 15


def test_figures_are_released_after_encoding() -> None:
    fig, axes = F.new_figure(1, 1)
    axes[0].plot([0, 1], [0, 1])
    assert figure_uri(fig).startswith("data:image/png;base64,")
    assert fig.axes == [] and plt.get_fignums() == []


def test_table_escapes_and_aligns_numbers() -> None:
    text = table(["name", "n"], [["<b>", "1,234"], ["x & y", "5.0%"]])
    assert "&lt;b&gt;" in text and "x &amp; y" in text
    assert '<td class="num">1,234</td>' in text and '<th class="num">n</th>' in text
    assert esc(esc("<")) == "&lt;"


# ---------------------------------------------------------------- compare report
def test_compare_report_names_both_runs_and_has_every_section(compare_html: str) -> None:
    assert "minimal" in compare_html and "minimal-whatif" in compare_html
    for id_ in COMPARE_SECTIONS:
        assert f'<section id="{id_}">' in compare_html
    assert compare_html.count(IMG) >= 4
    assert_self_contained(compare_html)


def test_compare_report_deltas_have_the_right_sign(compare_html: str, baseline: RunResult, whatif: RunResult) -> None:
    table_rows = {r[0]: r for r in rows(section(compare_html, "summary"))}
    done_a = baseline.summary["jobs"]["by_status"]["Done"]
    done_b = whatif.summary["jobs"]["by_status"]["Done"]
    assert done_b < done_a  # half the MC tasks
    label, a, b, delta, rel = table_rows["jobs Done"]
    assert (a, b) == (f"{done_a:,}", f"{done_b:,}")
    assert delta == f"−{done_a - done_b:,}"
    assert rel == f"−{(done_a - done_b) / done_a:.1%}"
    assert 'class="worse"' in section(compare_html, "summary")  # fewer jobs Done is worse
    for site, counts in baseline.summary["jobs"]["by_site"].items():
        row = {r[0]: r for r in rows(section(compare_html, "jobs"))}[f"Done at {site}"]
        d = whatif.summary["jobs"]["by_site"].get(site, {}).get("Done", 0) - counts.get("Done", 0)
        assert row[3] == ("+" if d > 0 else "−" if d < 0 else "") + f"{abs(d):,}"


def test_compare_report_lists_changed_scenario_values(compare_html: str) -> None:
    changed = {r[0] for r in rows(section(compare_html, "scenario"))}
    assert {"name", "workload.productions[test].steps[MCSimulation].max_tasks", "faults"} <= changed


def test_compare_report_rejects_missing_or_broken_folders(baseline: RunResult, tmp_path: Path) -> None:
    with pytest.raises(TwinError, match=re.escape(str(tmp_path / "nope"))):
        write_compare_report(tmp_path / "nope", baseline.out, tmp_path / "c.html")
    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(baseline.out / "summary.json", partial / "summary.json")
    with pytest.raises(TwinError, match=r"partial: metrics\.parquet is missing"):
        write_compare_report(baseline.out, partial, tmp_path / "c.html")
    broken = tmp_path / "broken"
    shutil.copytree(baseline.out, broken)
    (broken / "summary.json").write_text("{not json")
    with pytest.raises(TwinError, match=r"broken.summary\.json"):
        load_run(broken)
    (broken / "summary.json").write_text(json.dumps({"jobs": {}, "plan": {}}))
    (broken / "events.parquet").write_bytes(b"garbage")
    with pytest.raises(TwinError, match=r"events\.parquet: not a readable parquet"):
        load_run(broken)
    assert not (tmp_path / "c.html").exists()


@pytest.mark.parametrize("plan, kind, title", [
    ({"deadline_met": True, "complete": True}, "ok", "Deadline met."),
    ({"deadline_met": False, "complete": False}, "bad", "Deadline MISSED."),
    ({"deadline_met": None, "complete": True}, "info", "No deadline set."),
    ({"deadline_met": None, "complete": False}, "warn", "No deadline set."),
])
def test_verdict_box_colour(plan: dict, kind: str, title: str) -> None:
    assert verdict_kind(plan) == (kind, title)


def test_an_earlier_finish_is_not_called_better_when_the_run_stopped_short():
    import pandas as pd

    from twin.report.html import Run, key_deltas

    def run(finished: float, complete: bool) -> Run:
        summary = {"plan": {"finished_at": finished, "complete": complete}, "jobs": {}}
        return Run("x", summary, pd.DataFrame({"time": [0.0]}), pd.DataFrame(), {})

    finish = lambda a, b: next(d for d in key_deltas(a, b) if d.label == "finished after")  # noqa: E731
    assert finish(run(100.0, True), run(50.0, True)).better == -1
    assert finish(run(100.0, True), run(50.0, False)).better == 0


# ---------------------------------------------------------------- sweep page
def synthetic_sweep(tmp_path: Path):
    """Two parameters (slots numeric 100/600/1000, a label), 4 seeds; finish time falls with slots."""
    from twin.sweep import SweepResult, aggregate

    slots, mode = "topology.sites[LCG.PIC.es].ces[0].slots", "workload.productions[test].steps[Sim].job.failure_prob"
    rows, run = [], 0
    for s in (100, 600, 1000):
        for m in (0.0, 0.2):
            for seed in range(4):
                finish = 2000.0 / s + m * 3 + 0.1 * seed
                rows.append({"run": run, slots: s, mode: m, "seed": seed, "status": "ok", "error": "",
                             "finished_at_d": finish, "deadline_d": 8.0, "deadline_met": finish <= 8.0,
                             "complete": True, "jobs_done": 10, "jobs_failed": int(m * 10),
                             "bottleneck_kind": "site slots", "bottleneck_name": "B", "run_report": f"runs/{run}/report.html"})
                run += 1
    runs = pd.DataFrame(rows)
    return SweepResult(runs, aggregate(runs.drop(columns=["run_report"]), [slots, mode]), [slots, mode], tmp_path, 1.0, "in-process")


def test_sweep_page_counts_labels_links_and_deadline(tmp_path: Path) -> None:
    from twin.report.sweep import numeric_axis, sweep_report_html

    page = sweep_report_html(synthetic_sweep(tmp_path), "demo")
    assert "6 combinations × 4 seeds = 24 runs" in page
    assert "slots (LCG.PIC.es)" in page and "failure_prob (Sim)" in page
    table_rows = rows(section(page, "summary"))
    col = table_rows[0].index("P(deadline met)")
    summary = table_rows
    # slots=100, failure 0: finish 20..20.3 d, never within 8 d; slots=1000: always within
    assert summary[1][col].startswith("0% (0%–") and summary[-1][col].startswith("100% (")
    assert page.count('href="runs/') == 24
    assert page.count(IMG) == 4  # finish time, P(deadline met), failed jobs, heatmap (no wasted-CPU column here)
    assert numeric_axis([100, 600, 1000]) and not numeric_axis([True, False]) and not numeric_axis(["2d", 3])


def test_wilson_interval_is_not_degenerate_at_the_edges() -> None:
    from twin.report.stats import wilson

    lo, hi = wilson(4, 4)
    assert hi == 1.0 and 0.45 < lo < 0.55  # 4/4 is not "certainly 100%"
    lo, hi = wilson(0, 10)
    assert lo == 0.0 and 0.25 < hi < 0.35
