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
import numpy as np
import pandas as pd
import pytest

from conftest import minimal
from twin.errors import TwinError
from twin.report import figures as F
from twin.report.compare import write_compare_report
from twin.report.html import Run, load_run, run_from_result, run_report_html
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
    assert not re.search(r"<script[^>]*\bsrc\s*=", text, re.I), "script loaded from elsewhere"
    assert "<link" not in text.lower() and "@import" not in text and "fetch(" not in text


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
    text = section(report_text(baseline), "bottleneck")
    body = [r for r in rows(text.split("<details>")[1]) if r[0] != "resource"]
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
    from twin.report.digest import StatusDigest

    nothing = StatusDigest.build([], 60.0)
    assert F.transformation_bars({}) is None and F.agents({}) is None and F.failures({}, nothing, [], 1.0) is None


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
    label, a, b, delta, rel, test = table_rows["jobs Done"]
    assert (a, b) == (f"{done_a:,}", f"{done_b:,}")
    assert delta == f"−{done_a - done_b:,}"
    assert rel == f"−{(done_a - done_b) / done_a:.1%}"
    assert test == "untested (1 seed)"
    assert 'class="worse untested"' in section(compare_html, "summary")  # direction shown, muted: one seed per side
    assert 'class="worse"' not in section(compare_html, "summary")  # never called a clear change untested
    jobs = {r[0]: r for r in rows(section(compare_html, "jobs"))}
    for site, counts in baseline.summary["jobs"]["by_site"].items():
        d = whatif.summary["jobs"]["by_site"].get(site, {}).get("Done", 0) - counts.get("Done", 0)
        assert jobs[f"Done at {site}"][3] == ("+" if d > 0 else "−" if d < 0 else "") + f"{abs(d):,}" if d else "0"
    assert 'class="better' not in section(compare_html, "jobs")  # jobs moved between sites are neither better nor worse


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

    from twin.report.compare import Side, headline_rows

    def side(finished: float, complete: bool) -> Side:
        summary = {"plan": {"finished_at": finished, "complete": complete}, "jobs": {}}
        return Side("x", [Run("x", summary, pd.DataFrame({"time": [0.0]}), pd.DataFrame(), {})])

    finish = lambda a, b: next(r for r in headline_rows([a, b]) if r.label == "finished after")  # noqa: E731
    assert finish(side(100.0, True), side(50.0, True)).better == -1
    assert finish(side(100.0, True), side(50.0, False)).better == 0


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


# ---------------------------------------------------------------- verdicts and progress
def test_unfinished_verdict_names_where_jobs_wait() -> None:
    from twin.runner import simulate

    zero = {"topology.sites[LCG.IN2P3-CC.fr].ces[cc-ce].slots": 0, "topology.sites[LCG.PIC.es].ces[pic-ce].slots": 0,
            "run.duration": "6h"}
    verdict = simulate(minimal(**zero)).summary["plan"]["verdict"]
    assert re.search(r"Work still unfinished after 6\.0 h: \d+ jobs Waiting \(Site ANY; 0 slots at all sites\)", verdict)


def test_progress_bar_counts_to_the_expected_stop_not_the_horizon() -> None:
    from twin.runner import _progress_bar

    share = iter([0.0, 0.25, 0.5])
    bar = _progress_bar(42 * 86400.0)
    bar.work_done = lambda: next(share)
    try:
        bar.update_to(0.5 * 86400.0)
        assert bar.total == 42.0  # nothing done yet: no estimate
        bar.update_to(86400.0)
        assert bar.total == pytest.approx(4.0)  # a quarter done after 1 day: stops near day 4
        bar.update_to(3 * 86400.0)
        assert bar.total == pytest.approx(6.0) and bar.n == pytest.approx(3.0)
    finally:
        bar.close()


# ---------------------------------------------------------------- what set the finish date, monitors, colours
def test_time_lost_counts_saturation_only_while_jobs_wait() -> None:
    from twin.report.timeline import time_lost

    metrics = pd.DataFrame({"time": [0.0, 3600.0, 7200.0, 10800.0, 14400.0],
                            "site.running[A]": [10, 10, 10, 10, 0], "site.running[B]": [5, 5, 5, 5, 0],
                            "wms.jobs_waiting": [3, 3, 0, 0, 0]})
    scenario = {"topology": {"sites": [{"name": "A", "ces": [{"slots": 10}]}, {"name": "B", "ces": [{"slots": 5}, {"slots": 5}]}]}}
    ranked = time_lost(metrics, {}, scenario)
    assert [(k, n) for k, n, _, _ in ranked] == [("site slots", "A"), ("site slots", "B")]
    assert ranked[0][2] == pytest.approx(2.0) and ranked[1][2] == 0.0  # A full for 4 h, but jobs waited only 2 h


def test_critical_path_follows_the_latest_predecessor() -> None:
    from twin.report.timeline import StepSpan, critical_path

    spans = [StepSpan("p/MC", 0, 10, 90, 100), StepSpan("p/Train", 0, 5, 40, 50),
             StepSpan("p/Merge", 0, 20, 150, 160, predecessors=["p/MC"]),
             StepSpan("p/Apply", 0, 170, 300, 310, delay=43200, predecessors=["p/Merge", "p/Train"])]
    assert [s.name for s in critical_path(spans)] == ["p/MC", "p/Merge", "p/Apply"]


def test_monitor_counts_are_last_states_at_the_time_asked() -> None:
    from twin.report.digest import StatusDigest
    from twin.report.monitor import counts_at

    events = pd.DataFrame({"time": [1.0, 2.0, 3.0, 1.0, 2.0, 5.0], "kind": ["job.status"] * 3 + ["file.status"] * 3,
                           "entity": ["job:1", "job:1", "job:2", "trans:2//a", "trans:2//a", "trans:2//a"],
                           "state": ["Waiting", "Running", "Waiting", "Unused", "Assigned", "Processed"],
                           "detail": ["", "", "", "", "Unused", "Assigned"], "value": [1.0, 1.0, 1.0, None, None, None]})
    events = events.sort_values("time", kind="stable")
    status = StatusDigest.build([events], 10.0, [2.5, 9.0])
    assert counts_at(status, 2.5) == {1: {"jobs Running": 1}, 2: {"files Assigned": 1}}
    assert counts_at(status, 9.0) == {1: {"jobs Running": 1, "jobs Waiting": 1}, 2: {"files Processed": 1}}
    with pytest.raises(KeyError):
        counts_at(status, 3.0)  # not a snapshot asked for


def test_status_digest_equals_the_rows_it_summed(whatif: RunResult) -> None:
    """Chunk by chunk (10 rows at a time: a job's statuses span chunks) the digest gives what the whole
    frame gives: entries per status, jobs Running over time, busy spans, and the monitor at the end equals
    the TransformationDB's file counts in the summary."""
    from twin.report import monitor as M
    from twin.report.digest import STATUS_EVENTS, StatusDigest

    frame = whatif.log.frame(STATUS_EVENTS)
    t_end = F.end_time(whatif.metrics, whatif.summary)
    whole = StatusDigest.build([frame], t_end, M.snapshot_times(t_end))
    status = StatusDigest.build((frame.iloc[i:i + 10] for i in range(0, len(frame), 10)), t_end, M.snapshot_times(t_end))
    for key, counts in whole.entered.items():
        assert np.array_equal(status.entered[key], counts) and np.array_equal(status.left.get(key, 0), whole.left.get(key, 0))
    jobs = frame[frame["kind"] == "job.status"]
    names = F.trans_names(whatif.summary)
    done = status.cumulative("job.status", "Done", names)
    for tid, name in names.items():
        mine = jobs[jobs["value"] == tid]
        if (mine["state"] == "Done").any():
            assert done[name][1][-1] == (mine["state"] == "Done").sum()
            assert status.last_done[tid] == mine.loc[mine["state"] == "Done", "time"].max()
            assert status.first_running[tid] == mine.loc[mine["state"] == "Running", "time"].min()
    prev = jobs.groupby("entity")["state"].shift()  # the row-by-row count of jobs Running, at each interval's end
    delta = (jobs["state"] == "Running").astype(int) - (prev == "Running").astype(int)
    for tid, name in names.items():
        mine = delta[jobs["value"] == tid]
        times = jobs.loc[mine.index, "time"].to_numpy()
        expected = [mine[times <= edge].sum() for edge in status.edges[1:]]
        assert status.level("job.status", "Running", names)[name][1][1:].tolist() == expected
    end = M.counts_at(status, t_end)
    for t in whatif.summary["transformations"]:
        files = {k.removeprefix("files "): v for k, v in end.get(t["id"], {}).items() if k.startswith("files ")}
        assert files == {k: v for k, v in t["files"].items() if v}, t["name"]


def test_db_latency_is_a_gap_where_nothing_was_queried() -> None:
    metrics = pd.DataFrame({"time": [0.0, 600.0, 1200.0], "db.latency_ms[JobDB]": [0.0, 2.0, 2.0],
                            "db.qps[JobDB]": [0.0, 1.5, 0.0]})
    _, y = F.db_latency_curves(metrics)["JobDB"]
    assert np.isnan(y[0]) and y[1] == 2.0 and np.isnan(y[2])


def test_one_colour_per_name_in_run_and_compare_reports(baseline: RunResult, whatif: RunResult) -> None:
    from twin.report.html import report_colors

    a, b = run_from_result(baseline), run_from_result(whatif)
    alone, together = report_colors(a), report_colors(a, b)
    shared = set(alone) & set(together)
    assert {"test/MCSimulation", "test/Processing", "LCG.PIC.es", "PIC-Disk"} <= shared
    assert all(alone[n] == together[n] for n in shared)
    assert together["PIC-Disk"] == together["LCG.PIC.es"]  # an SE in its site's colour


def test_difference_tests_call_noise_noise() -> None:
    from twin.report.stats import difference_test, share_test

    rng = np.random.default_rng(1)
    base = rng.normal(10.0, 1.0, 8)
    assert not difference_test(base, base + rng.normal(0.0, 0.01, 8) + 0.001, paired=False).significant
    shifted = difference_test(base, base + 2.0 + rng.normal(0.0, 0.1, 8), paired=True)
    assert shifted.significant and shifted.name == "paired t"
    assert difference_test(base, base, paired=True).p == 1.0
    assert difference_test([1.0], [2.0, 3.0], paired=False) is None
    assert not share_test([True] * 4, [True, True, True, False]).significant


def test_bottleneck_flip_within_the_threshold_is_not_a_change() -> None:
    from twin.report.compare import Side, bottleneck_rows

    def side(neck: str, utils: dict[str, float]) -> Side:
        summary = {"bottleneck": {"kind": "site slots", "name": neck},
                   "resources": [{"kind": "site slots", "name": n, "mean_utilization": u} for n, u in utils.items()]}
        return Side("x", [Run("x", summary, pd.DataFrame({"time": [0.0]}), pd.DataFrame(), {})])

    _, verdicts = bottleneck_rows([side("A", {"A": 0.68, "B": 0.67}), side("B", {"A": 0.67, "B": 0.68}),
                                   side("B", {"A": 0.50, "B": 0.90})])
    assert verdicts[0].startswith("not a clear change") and verdicts[1].startswith("changed: 40 pt")


def test_faults_read_as_sentences() -> None:
    from twin.report.compare import fault_text, readable

    fault = {"kind": "site_down", "target": "LCG.PIC.es", "start": 172800.0, "end": 432000.0, "params": {}}
    assert fault_text(fault) == "site_down LCG.PIC.es from 2.0 d to 5.0 d"
    assert readable({"run": {"deadline": 5400.0, "seed": 3}}) == {"run": {"deadline": "1.5 h", "seed": 3}}


def test_time_series_are_exported_as_csv_next_to_parquet(baseline: RunResult) -> None:
    csv = pd.read_csv(baseline.out / "metrics.csv")
    parquet = pd.read_parquet(baseline.out / "metrics.parquet")
    assert list(csv.columns) == list(parquet.columns) and len(csv) == len(parquet)
    assert np.allclose(csv["time"], parquet["time"])


def test_compare_out_is_a_folder(baseline: RunResult, whatif: RunResult, tmp_path: Path) -> None:
    path = write_compare_report(baseline.out, [whatif.out], tmp_path / "cmp")
    assert path == tmp_path / "cmp" / "compare.html" and path.is_file()


# ---------------------------------------------------------------- seeds
@pytest.mark.slow
def test_seed_replications_and_a_multi_seed_compare(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """3 seeds of the baseline and of a what-if with half-speed CPUs at CC: intervals, P(deadline met), tested deltas."""
    from conftest import MINIMAL
    from twin.cli import main
    from twin.replicas import run_replicas

    slow = minimal(**{"run.deadline": "4h", "name": "minimal-slow", "topology.sites[LCG.IN2P3-CC.fr].ces[cc-ce].hs06_per_core": 6})
    assert main(["run", str(MINIMAL), "--param", "run.deadline=4h", "--seeds", "3", "--workers", "0", "--no-progress",
                 "--out", str(tmp_path / "a")]) == 0
    assert "Deadline met in 3/3 seeds" in capsys.readouterr().out
    table_b = run_replicas(slow, 3, tmp_path / "b", workers=0, progress=False)
    assert list(table_b["seed"]) == [7, 8, 9] and set(table_b["status"]) == {"ok"}
    manifest = json.loads((tmp_path / "a" / "replicas.json").read_text())
    assert manifest["runs"] == ["seed-7", "seed-8", "seed-9"] and (tmp_path / "a" / "seed-8" / "report.html").is_file()
    page = (tmp_path / "a" / "report.html").read_text()
    assert "P(deadline met) = 100%" in page and "Margin" in page and page.count('href="seed-') == 3
    compare = write_compare_report(tmp_path / "a", tmp_path / "b", tmp_path / "cmp").read_text()
    summary = {r[0]: r for r in rows(section(compare, "summary"))}
    finished = summary["finished after"]
    assert " ± " in finished[1] and " ± " in finished[2]
    assert finished[5].startswith("significant (p=") and "paired t" in finished[5]  # half-speed CPUs at CC: a real delay
    assert "3 seeds" in compare and "Fisher" in compare


def test_a_legend_cut_off_or_over_the_plot_is_flagged() -> None:
    from matplotlib.figure import Figure

    from twin.report.render import figure_html

    fig = Figure(figsize=(4, 3))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], label="a long series name that does not fit")
    ax.legend(loc="upper left", bbox_to_anchor=(1.3, 1.0))
    assert "data-clipped=" in figure_html(fig, "x")
    fig = Figure(figsize=(4, 3))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], label="a")
    fig.legend(loc="center")
    assert 'data-clipped="figure legend over an axes"' in figure_html(fig, "x")
    fig = Figure(figsize=(4, 3), layout="constrained")
    fig.subplots().plot([0, 1], [0, 1])
    assert "data-clipped" not in figure_html(fig, "x")


# ---------------------------------------------------------------- calendar dates (run.start_date)
def test_time_axes_show_dates_from_the_start_date_and_days_without() -> None:
    import datetime as dt

    from twin.report import dates as D

    spans = [F.FaultSpan(1, "site_down", "X", 86400.0, 2 * 86400.0)]
    with D.campaign(dt.date(2026, 3, 1)):
        ax = F.faults_timeline(spans, 10 * 86400.0).axes[0]
        assert ax.get_xlabel() == "date (day 0 = 2026-03-01)"
        assert ax.xaxis.get_major_formatter()(2.0, 0) == "03 Mar"
        assert ax.xaxis.get_major_formatter()(31.0, 0) == "01 Apr"
        assert D.tick_text(1.5, span_days=2.0) == "12:00" and D.tick_text(1.0, span_days=2.0) == "02 Mar 00:00"
        assert D.tick_text(1.5, span_days=2.0, first=True) == "02 Mar 12:00" and D.tick_step(2.0) == 6 / 24  # <= 8 ticks
        assert D.tick_step(10.0) == 2.0 and D.tick_step(365.0) == 56.0
        assert D.when(1.5 * 86400.0) == f"{D.format_duration(1.5 * 86400.0)} (2026-03-02 12:00)"
    ax = F.faults_timeline(spans, 10 * 86400.0).axes[0]
    assert ax.get_xlabel() == "simulated time [days]" and D.when(86400.0) == D.format_duration(86400.0)


def test_run_report_gives_dates_when_the_scenario_has_a_start_date(baseline: RunResult) -> None:
    import datetime as dt

    run = load_run(baseline.out)
    plan = dict(run.summary["plan"], deadline=6 * 3600.0)
    run.summary = dict(run.summary, plan=plan)
    run.scenario = dict(run.scenario, run=dict(run.scenario["run"], start_date="2026-03-01"))
    text = run_report_html(run)
    cards = dict((k, v) for v, k in re.findall(r'<div class="v">([^<]*)</div><div class="k">([^<]*)</div>', text))
    assert cards["deadline on"] == "2026-03-01 06:00"
    finished = plan.get("finished_at")
    on = dt.datetime(2026, 3, 1) + dt.timedelta(seconds=finished if finished is not None else run.summary["simulated_time"])
    assert (cards.get("finished on") or cards["stopped on"]) == on.strftime("%Y-%m-%d %H:%M" if on.time() else "%Y-%m-%d")
    assert "deadline 2026-03-01 06:00 (day 0 = 2026-03-01)." in section(text, "summary")
    assert re.search(r"started at [^;]+ \(2026-03-01[ 0-9:]*\)", section(text, "finish")), "critical path without dates"
    plain = run_report_html(load_run(baseline.out))
    assert "day 0 =" not in plain and "deadline on" not in plain


# ---------------------------------------------------------------- throughput per link (transfer events)
def test_link_throughput_equals_the_bytes_moved() -> None:
    from test_grid import run_gen, world
    from twin.grid.units import GB, TB
    from twin.report import links as L

    sim, grid = world(faults=[{"kind": "link_cut", "target": "B->A", "start": 5000, "end": 6000}])
    net = grid.network
    for _ in range(3):
        assert run_gen(sim, net.copy("A-Disk", "B-Disk", 2 * GB)) is True  # declared link A->B
    assert run_gen(sim, net.transfer("B", "A", 5 * GB)) is True  # default link, no SE: the channel is the site pair
    assert run_gen(sim, net.transfer("A", "A", 7 * GB)) is True  # within a site: no link, no record
    rate = net.link("B", "A").rate  # bytes/s per stream
    sim.env.run(until=4900)
    proc = sim.env.process(net.transfer("B", "A", 200 * rate))  # cut while it runs: Failed, not counted as moved
    sim.env.run(until=proc)
    acc = L.account(sim.log.chunks(L.LINK_EVENTS), t_end=sim.env.now, bins=10)
    assert {k: v["Done bytes"] for k, v in acc.links.items()} == {"A->B": 6 * GB, "B->A": 5 * GB}
    assert acc.links["B->A"]["Failed"] == 1 and acc.links["A->B"]["Failed"] == 0
    assert {k: v["Done"] for k, v in acc.channels.items()} == {("A->B", "A-Disk->B-Disk"): 3, ("B->A", "B->A"): 1}
    for link, moved in (("A->B", 6 * GB), ("B->A", 5 * GB)):  # TB/day integrated over the bins = TB moved
        assert acc.tb_per_day()[link].sum() * acc.days_per_bin == pytest.approx(moved / TB)
    assert sum(link.bytes for link in net.links.values()) == 11 * GB


def test_run_report_shows_throughput_per_link() -> None:
    """A move to tape (tests/data/with_tape.yaml): the report's TB per link equals what the links counted."""
    from twin.build import build_world
    from twin.report.html import REPORT_EVENTS
    from twin.scenario.loader import load_scenario
    from twin.summary import summarize

    scenario = load_scenario(Path(__file__).parent / "data" / "with_tape.yaml")
    world = build_world(scenario)
    world.run()
    log = world.sim.log
    run = Run("t", summarize(world), world.sim.metrics.to_frame(), log.frame(REPORT_EVENTS),
              scenario.model_dump(mode="json"), None, log.chunks)
    counted = {link.name: link.bytes for link in world.grid.network.links.values() if link.bytes}
    assert counted and {k: v["Done bytes"] for k, v in run.links.links.items()} == counted
    table_rows = {r[0]: r for r in rows(section(run_report_html(run), "accounting")) if len(r) == 6 and r[0] in counted}
    assert {k: r[3] for k, r in table_rows.items()} == {k: f"{v / 1e12:,.3f}" for k, v in counted.items()}


# ---------------------------------------------------------------- interactive charts (zoom, hover)
def charts(text: str) -> dict[str, dict]:
    """The interactive charts of a page by title: their data as the page's chart builder reads it."""
    return {c["title"]: c for c in (json.loads(html.unescape(m)) for m in re.findall(r'<div class="ichart" data-chart="([^"]*)"', text))}


def test_interactive_charts_hold_every_series_of_their_figure(baseline: RunResult) -> None:
    from twin.report import timeline as TL

    run = load_run(baseline.out)
    text = run_report_html(run)
    assert text.count("var uPlot=") == 1 and "window.twinCharts" in text  # the library inline, once
    found = charts(text)
    assert {"Progress against target", "Running jobs by site", "Storage fill"} <= set(found)
    target = TL.target_curves(run.status, run.summary)
    progress = found["Progress against target"]
    assert [s["label"] for s in progress["series"]] == list(target)
    for label, (x, y) in target.items():  # hover shows these values: the last point is the curve's end
        values = next(s["values"] for s in progress["series"] if s["label"] == label)
        assert len(values) == len(progress["x"]) and values[-1] == pytest.approx(y[-1], rel=1e-3)
    running = found["Running jobs by site"]
    assert {s["label"] for s in running["series"]} == set(F.running_curves(run.metrics))
    assert all(len(s["values"]) == len(running["x"]) and any(v for v in s["values"]) for s in running["series"])
    assert progress["start"] is None and progress["xlabel"] == "simulated time [days]"


def test_interactive_chart_counts_dates_from_the_start_date(baseline: RunResult) -> None:
    run = load_run(baseline.out)
    run.scenario = dict(run.scenario, run=dict(run.scenario["run"], start_date="2026-03-01"))
    progress = charts(run_report_html(run))["Progress against target"]
    assert progress["start"] == 1772323200.0 and progress["xlabel"] == "date (day 0 = 2026-03-01)"  # 00:00 UTC


def test_series_on_different_grids_share_one_in_a_chart() -> None:
    from twin.report.interactive import common_grid

    x, ys = common_grid({"a": (np.array([0.0, 2.0]), np.array([1.0, 3.0])), "b": (np.array([1.0, 3.0]), np.array([5.0, 6.0]))})
    assert x.tolist() == [0.0, 1.0, 2.0, 3.0]
    assert ys["a"].tolist() == [1.0, 1.0, 3.0, 3.0]  # holds its value between its points
    assert np.isnan(ys["b"][0]) and ys["b"][1:].tolist() == [5.0, 5.0, 6.0]  # a gap before its first point


def test_an_earlier_run_keeps_its_final_count_on_an_overlay() -> None:
    held = F.held_to({"a": (np.array([0.0, 1.0]), np.array([0.0, 5.0])), "b": (np.array([0.0, 3.0]), np.array([1.0, 2.0]))},
                     2 * 86400.0)
    assert held["a"][0].tolist() == [0.0, 1.0, 2.0] and held["a"][1].tolist() == [0.0, 5.0, 5.0]
    assert held["b"][0].tolist() == [0.0, 3.0]  # already reaches the end
