"""Verdicts: which resource saturates first, and whether the plan meets its deadline."""

from __future__ import annotations

from conftest import minimal
from twin.runner import simulate
from twin.summary import bottleneck


def row(kind: str, name: str, mean: float, first: float | None) -> dict:
    return {"kind": kind, "name": name, "mean_utilization": mean, "peak_utilization": 1.0 if first else mean,
            "first_saturated_at": first}


def test_earliest_saturation_wins_over_higher_mean():
    verdict = bottleneck([row("site slots", "A", 0.9, 7200.0), row("tape drives", "T", 0.5, 3600.0)])
    assert verdict["kind"] == "tape drives" and verdict["verdict"].startswith("tape drives saturate first: T, after 1.0 h")


def test_resources_saturating_together_are_named_as_a_kind():
    verdict = bottleneck([row("site slots", n, 0.7, 3600.0) for n in "ABC"] + [row("storage space", "S", 0.2, None)])
    assert verdict["saturated_together"] == ["A", "B", "C"]
    assert "3 of 3 (A, B, C)" in verdict["verdict"]


def test_nothing_saturated_names_the_busiest():
    verdict = bottleneck([row("site slots", "A", 0.4, None), row("server cores", "S", 0.6, None)])
    assert verdict["verdict"].startswith("nothing saturates; the busiest resource is server cores of S")


def test_deadline_verdict_follows_the_finish_time():
    met = simulate(minimal(**{"run.deadline": "1d"})).summary["plan"]
    missed = simulate(minimal(**{"run.deadline": "1h"})).summary["plan"]
    assert met["deadline_met"] is True and met["complete"] and met["finished_at"] <= 86400
    assert missed["deadline_met"] is False and "MISSED" in missed["verdict"]
    assert missed["finished_at"] == met["finished_at"]  # the deadline only judges, it changes nothing
