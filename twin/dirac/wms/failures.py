"""Job failure models that real grids show: site/time-correlated, black holes, input-correlated,
failure phases with their wasted CPU, CPU efficiency and per-job overhead, file-size spread.

The WMS asks `JobFates.fate()` once per job start and gets back *when* (seconds into the job) and
*in which phase* the job fails, or that it runs through. No simpy events are added: site states
are an alternating renewal sequence advanced lazily as simulated time passes, and per-pilot /
per-file properties (black-hole worker node, bad input file) are a deterministic hash of a named
stream's seed and the pilot ID / LFN, so they need no memory and are the same in every replay.

Every draw comes from a named stream: `failures.job` (four uniforms per job start, always four,
so the stream stays aligned across parameter values: common random numbers for calibration),
`failures.site.<site>.state` (good/bad sojourns), `failures.site.<site>.black_hole` and
`failures.bad_input` (hash seeds), `failures.file_size.<data type>`.
See docs/calibration.md for the DIRAC behaviour each model follows.
"""

from __future__ import annotations

import fnmatch
import hashlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Final, Iterable, Mapping, TypeVar

import numpy as np

from twin.scenario.schema import FailureModels, FailurePhase, FileSizeModel, SiteFailureModel, StepFailureModel

if TYPE_CHECKING:
    from twin.engine.rng import RandomStreams
    from twin.grid.site import Pilot

START: Final = "start"
PAYLOAD: Final = "payload"
UPLOAD: Final = "upload"
REASON_BLACK_HOLE: Final = "Application Finished With Errors (black-hole node)"
REASON_BAD_INPUT: Final = "Application Finished With Errors (bad input file)"
REASON_LIMIT: Final = "Application Finished With Errors (memory/time limit)"
REASON_PHASE = {START: "Job setup failed (software/input)", PAYLOAD: "Application Finished With Errors",
                UPLOAD: "Failed to upload output data"}
_NEUTRAL_SITE = SiteFailureModel()
_NEUTRAL_STEP = StepFailureModel()


@dataclass(frozen=True, slots=True)
class Fate:
    """How a job attempt ends: `phase` None = runs through; else it fails `after_s` into the job."""

    phase: str | None
    after_s: float = 0.0
    reason: str = ""


RUNS_THROUGH = Fate(None)


def unit_hash(seed: int, key: str) -> float:
    """A uniform in [0, 1) fixed by (seed, key): a per-pilot or per-file property without storage."""
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8, key=seed.to_bytes(8, "little")).digest()
    return int.from_bytes(digest, "little") / 2.0 ** 64


class SiteState:
    """Two-state Markov-modulated failure probability: exponential good and bad sojourns."""

    def __init__(self, model: SiteFailureModel, rng: np.random.Generator) -> None:
        self.model = model
        self.rng = rng
        self.modulated = model.mean_good > 0 and model.mean_bad > 0
        self.bad = False
        self.until = math.inf
        if self.modulated:
            self.bad = bool(rng.random() < model.mean_bad / (model.mean_good + model.mean_bad))  # stationary start
            self.until = self._sojourn()

    def _sojourn(self) -> float:
        return float(self.rng.exponential(self.model.mean_bad if self.bad else self.model.mean_good))

    def failure_prob(self, now: float) -> float:
        """The site's failure probability at `now` (simulated time only moves forward)."""
        while now >= self.until:
            self.bad = not self.bad
            self.until += self._sojourn()
        return self.model.bad_failure_prob if self.bad else self.model.good_failure_prob


_Model = TypeVar("_Model", SiteFailureModel, StepFailureModel)


def _first_match(models: Iterable[_Model], pattern_of: Callable[[_Model], str], name: str, neutral: _Model) -> _Model:
    return next((m for m in models if fnmatch.fnmatchcase(name, pattern_of(m))), neutral)


class JobFates:
    """The failure, efficiency and size models of one run (scenario `failure_models`)."""

    def __init__(self, models: FailureModels, streams: "RandomStreams") -> None:
        self.models = models
        self.streams = streams
        self.enabled = bool(models.sites or models.steps)
        self.rng = streams.get("failures.job")
        self._sites: dict[str, tuple[SiteFailureModel, SiteState | None, int]] = {}
        self._steps: dict[str, StepFailureModel] = {}
        self._bad_input_seed = streams.seed_for("failures.bad_input")
        self._size_rngs: dict[str, tuple[FileSizeModel, np.random.Generator]] = {}

    # ------------------------------------------------------------------ lookups (cached per name)
    def site(self, name: str) -> tuple[SiteFailureModel, SiteState | None, int]:
        found = self._sites.get(name)
        if found is None:
            model = _first_match(self.models.sites, lambda m: m.sites, name, _NEUTRAL_SITE)
            state = SiteState(model, self.streams.get(f"failures.site.{name}.state")) if model.mean_good > 0 else None
            found = (model, state, self.streams.seed_for(f"failures.site.{name}.black_hole"))
            self._sites[name] = found
        return found

    def step(self, key: str) -> StepFailureModel:
        found = self._steps.get(key)
        if found is None:
            found = self._steps[key] = _first_match(self.models.steps, lambda m: m.steps, key, _NEUTRAL_STEP)
        return found

    # ------------------------------------------------------------------ time
    def wall_s(self, site: str, step_key: str, payload_s: float) -> tuple[float, float]:
        """(setup overhead, payload wall time): CPU seconds stretched by the CPU efficiencies of site and step."""
        s_model, _, _ = self.site(site)
        t_model = self.step(step_key)
        overhead = s_model.overhead_s + t_model.overhead_s
        return overhead, payload_s / (s_model.cpu_efficiency * t_model.cpu_efficiency)

    # ------------------------------------------------------------------ the fate of one attempt
    def fate(self, site: str, pilot_id: int, step_key: str, inputs: tuple[str, ...], input_bytes: float,
             overhead_s: float, payload_s: float, now: float) -> Fate:
        """Black hole first (it fails whatever runs), then bad inputs, then the competing random causes."""
        u_fail, u_phase, u_when, u_hazard = self.rng.random(4)
        s_model, state, hole_seed = self.site(site)
        t_model = self.step(step_key)
        if s_model.black_hole_fraction and unit_hash(hole_seed, str(pilot_id)) < s_model.black_hole_fraction:
            return Fate(START, min(s_model.black_hole_after_s, overhead_s + payload_s), REASON_BLACK_HOLE)
        if t_model.bad_input_fraction and any(unit_hash(self._bad_input_seed, lfn) < t_model.bad_input_fraction
                                              for lfn in inputs):
            return self._in_phase(t_model.bad_input_phase, u_when, overhead_s, payload_s, REASON_BAD_INPUT)
        if t_model.hazard_per_cpu_hour:
            t_fail = -math.log(1.0 - u_hazard) * 3600.0 / t_model.hazard_per_cpu_hour
            if t_fail < payload_s:
                return Fate(PAYLOAD, overhead_s + t_fail, REASON_LIMIT)
        p_site = 0.0
        if fnmatch.fnmatchcase(step_key, s_model.steps):
            p_site = state.failure_prob(now) if state is not None else s_model.good_failure_prob
        p_size = 1.0 - math.exp(-t_model.fail_prob_per_input_gb * input_bytes / 1e9)
        p_fail = 1.0 - (1.0 - p_site) * (1.0 - t_model.failure_prob) * (1.0 - p_size)
        if u_fail < p_fail:
            phase = _pick(t_model.phases, u_phase)
            return self._in_phase(phase, u_when, overhead_s, payload_s, REASON_PHASE[phase])
        return RUNS_THROUGH

    @staticmethod
    def _in_phase(phase: str, u: float, overhead_s: float, payload_s: float, reason: str) -> Fate:
        """Start: during setup; payload: a uniform fraction of the payload; upload: after the payload."""
        if phase == START:
            return Fate(START, u * overhead_s, reason)
        if phase == PAYLOAD:
            return Fate(PAYLOAD, overhead_s + u * payload_s, reason)
        return Fate(UPLOAD, overhead_s + payload_s, reason)

    def after_failure(self, pilot: "Pilot") -> None:
        """JobAgent StopOnApplicationFailure (default True): the pilot stops after a failed payload, so a
        black-hole node fails one job per pilot that lands on it, not a job every few seconds."""
        if self.models.stop_pilot_on_failure:
            pilot.finish()

    # ------------------------------------------------------------------ file sizes
    def file_size(self, data_type: str, mean_bytes: float) -> float:
        """One output file's size: lognormal with the data type's cv around the job model's size."""
        entry = self._size_rngs.get(data_type)
        if entry is None:
            model = self.models.file_sizes.get(data_type) or self.models.file_sizes.get("default") or FileSizeModel()
            entry = self._size_rngs[data_type] = (model, self.streams.get(f"failures.file_size.{data_type}"))
        model, rng = entry
        if model.cv <= 0 or mean_bytes <= 0:
            return mean_bytes
        sigma2 = math.log(1.0 + model.cv ** 2)
        return float(rng.lognormal(math.log(mean_bytes) - sigma2 / 2.0, math.sqrt(sigma2)))

    def bad_inputs(self, step_key: str, lfns: Iterable[str]) -> list[str]:
        """The LFNs of `lfns` that make every attempt of this step fail (for reports and tests)."""
        fraction = self.step(step_key).bad_input_fraction
        return [lfn for lfn in lfns if fraction and unit_hash(self._bad_input_seed, lfn) < fraction]


def _pick(weights: Mapping[FailurePhase, float], u: float) -> str:
    total = sum(weights.values())
    acc = 0.0
    for phase in (START, PAYLOAD, UPLOAD):
        acc += weights.get(phase, 0.0)
        if u * total < acc:
            return phase
    return PAYLOAD
