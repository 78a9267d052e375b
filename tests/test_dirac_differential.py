"""Differential tests: the native plugins against the genuine DIRAC 9.1 / CTADIRAC 3.x classes.

For hypothesis-generated environments (sites and SEs with disk/tape flags, CPU shares, Operations
values, replica maps, sizes, metadata, calibration files, transformation history, GroupSize, Flush or
not) the native plugin of ``twin.dirac.transformation.plugins`` and the genuine one run by
``twin.dirac.host.GenuinePluginHost`` get two identical, separate sets of fakes; the test asserts they
return the same thing (same tasks in the same order, same error message, or the same exception) and
leave the fakes in the same state with the same calls made.

Needs the [dirac] extra (``.ci/install-dirac-extra``); the DIRAC tests are skipped without it. The
tests at the end (lazy import, clear error) run everywhere.
"""

from __future__ import annotations

import copy
import os
import random
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from twin.dirac.transformation.fakes import (
    FakeFileCatalog,
    FakeOperations,
    FakeResources,
    FakeTransformationClient,
)

GB = 1000 * 1000 * 1000
TRANS_ID = 42
SE_POOL = ["CTAO-CERN-Disk", "CTAO-CERN-Tape", "CTAO-DESY-Disk", "CTAO-PIC-Disk", "CTAO-PIC-Tape"]
SITE_POOL = ["CTAO.CERN.ch", "CTAO.DESY.de", "CTAO.PIC.es", "CTAO.CSCS.ch"]
OPTION_PATHS = [
    "TransformationPlugins/GroupSize",
    "TransformationPlugins/MaxFiles",
    "TransformationPlugins/MaxFilesPerTask",
    "TransformationPlugins/Standard/GroupSize",
    "TransformationPlugins/BySize/MaxFilesPerTask",
    "TransformationPlugins/ByShare/GroupSize",
]
CALIB_TYPES = ["pedestal", "flatfield", "timing"]

#: Scale every example count with TWIN_DIRAC_DIFF_SCALE (e.g. 20 for a long bug hunt); 1 = about 15 s.
SCALE = float(os.environ.get("TWIN_DIRAC_DIFF_SCALE", "1"))


def examples(n: int) -> int:
    return max(1, int(n * SCALE))


DIFF_SETTINGS = settings(
    max_examples=examples(150),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=False,
)


# ------------------------------------------------------------------------------------------------
# Fixtures
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def host():
    pytest.importorskip("DIRAC", reason="needs the [dirac] extra (.ci/install-dirac-extra)")
    pytest.importorskip("CTADIRAC", reason="needs the [dirac] extra (.ci/install-dirac-extra)")
    from twin.dirac.host import GenuinePluginHost

    return GenuinePluginHost(log_level="FATAL")


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any attempt of DIRAC to reach a server (CS, RSS, TS, DFC) fails the test at once."""

    def refuse(self, *args, **kwargs):
        raise AssertionError(f"network connection attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


# ------------------------------------------------------------------------------------------------
# Environments: everything is built twice, once for each side
# ------------------------------------------------------------------------------------------------
@dataclass
class Env:
    site_ses: dict[str, list[str]]
    tape_ses: set[str]
    extra_ses: set[str]
    cpu_shares: dict[str, Any]
    options: dict[str, str]
    ses: list[str]
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # lfn -> {size, replicas, metadata}
    history: list[tuple[str, str]] = field(default_factory=list)  # (lfn, UsedSE) already assigned
    data: dict[str, list[str]] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)

    def resources(self) -> FakeResources:
        return FakeResources(
            site_ses=self.site_ses, tape_ses=self.tape_ses, cpu_shares=self.cpu_shares, extra_ses=self.extra_ses
        )

    def operations(self) -> FakeOperations:
        return FakeOperations(dict(self.options))

    def catalog(self) -> FakeFileCatalog:
        fc = FakeFileCatalog()
        for lfn, f in self.files.items():
            fc.addFile(lfn, size=f["size"], replicas=f["replicas"], metadata=f["metadata"])
        return fc

    def transClient(self) -> FakeTransformationClient:
        tc = FakeTransformationClient(files={TRANS_ID: [*self.data, *(lfn for lfn, _ in self.history)]})
        for lfn, se in self.history:
            assert tc.addTaskForTransformation(TRANS_ID, [lfn], se)["OK"]
        tc.calls.clear()
        return tc


@st.composite
def topologies(draw, shared_se: bool = True) -> Env:
    sites = draw(st.lists(st.sampled_from(SITE_POOL), min_size=1, max_size=4, unique=True))
    ses = draw(st.lists(st.sampled_from(SE_POOL), min_size=1, max_size=len(SE_POOL), unique=True))
    site_ses: dict[str, list[str]] = {site: [] for site in sites}
    extra: set[str] = set()
    for se in ses:
        where = draw(st.integers(0, 2 * len(sites)))  # mostly at one site, sometimes none or two
        if where < len(sites):
            site_ses[sites[where]].append(se)
        elif where == len(sites) and shared_se and len(sites) > 1:
            site_ses[sites[0]].append(se)
            site_ses[sites[1]].append(se)
        elif where == len(sites):
            extra.add(se)
        else:
            site_ses[sites[where % len(sites)]].append(se)
    tape = draw(st.sets(st.sampled_from(ses)))
    shareValue = st.one_of(st.integers(0, 100), st.floats(0, 100, allow_nan=False).map(lambda x: round(x, 2)))
    shares = draw(st.dictionaries(st.sampled_from(sites), shareValue, max_size=len(sites)))
    optionValue = st.one_of(st.integers(1, 8).map(str), st.sampled_from(["0", "2.5", "None", "abc", 3]))
    options = draw(st.dictionaries(st.sampled_from(OPTION_PATHS), optionValue, max_size=3))
    return Env(site_ses=site_ses, tape_ses=tape, extra_ses=extra, cpu_shares=shares, options=options, ses=ses)


@st.composite
def replica_maps(draw, env: Env, max_files: int = 40, sizes: bool = True) -> Env:
    """Unused files in a random (not sorted) order, each with 0-3 replicas (duplicates allowed)."""
    n = draw(st.integers(0, max_files))
    order = draw(st.permutations(range(n)))
    for i in order:
        lfn = f"/vo.cta.in2p3.fr/MC/PROD7/Paranal/proton/sim_telarray/run{i:04d}.simtel.zst"
        replicas = draw(st.lists(st.sampled_from(env.ses), max_size=3))
        env.data[lfn] = replicas
        kind = draw(st.integers(0, 39)) if sizes else 5
        if kind == 0:
            continue  # not in the catalog at all: getFileSize fails for it (DIRAC then raises on the sort)
        size = 0 if kind == 1 else draw(st.integers(1, 3 * GB // 2))
        env.files[lfn] = {"size": size, "replicas": replicas, "metadata": {}}
    return env


def status_and_groupsize(draw, odd: bool = True) -> dict[str, Any]:
    status = draw(st.sampled_from(["Active", "Flush"]))
    kind = draw(st.integers(0, 29)) if odd else 5
    groupSize = 0 if kind == 0 else ("3" if kind == 1 else draw(st.integers(1, 6)))
    return {"TransformationID": TRANS_ID, "Status": status, "GroupSize": groupSize, "Type": "Replication"}


@st.composite
def standard_cases(draw) -> Env:
    env = draw(replica_maps(draw(topologies())))
    env.params = status_and_groupsize(draw)
    return env


@st.composite
def bysize_cases(draw) -> Env:
    env = draw(replica_maps(draw(topologies())))
    env.params = status_and_groupsize(draw, odd=False)
    # GB for BySize: the DB column is an int, but a string or fractional value can come from parameters
    env.params["GroupSize"] = draw(st.one_of(st.integers(1, 3), st.sampled_from(["2", "1.5", 0.5, 0])))
    return env


def _seListParam(draw, ses: list[str]) -> Any:
    chosen = draw(st.lists(st.sampled_from(ses), min_size=1, max_size=len(ses), unique=True))
    form = draw(st.integers(0, 2))
    if form == 0:
        return str(chosen)  # string form of a list, as stored in the TS additional parameters
    if form == 1:
        return chosen[0]
    return chosen


@st.composite
def broadcast_cases(draw) -> Env:
    env = draw(replica_maps(draw(topologies())))
    env.params = status_and_groupsize(draw)
    targets = list(env.ses)
    if draw(st.integers(0, 9)) == 0:
        targets.append("CTAO-UNKNOWN-Disk")  # not in the topology: DIRAC's KeyError path
    env.params["TargetSE"] = _seListParam(draw, targets) if draw(st.integers(0, 14)) else draw(st.sampled_from(["[]", ""]))
    if draw(st.booleans()):
        env.params["SourceSE"] = _seListParam(draw, env.ses)
    if draw(st.booleans()):
        env.params["Destinations"] = draw(st.integers(0, 4))
    env.params["Seed"] = draw(st.integers(0, 2**32 - 1))
    return env


@st.composite
def byshare_cases(draw) -> Env:
    env = draw(replica_maps(draw(topologies()), sizes=False))
    env.params = status_and_groupsize(draw)
    if not env.cpu_shares and draw(st.integers(0, 9)):  # mostly with shares: "no shares" is one error path
        sites = list(env.site_ses)
        env.cpu_shares = dict(zip(sites, draw(st.lists(st.integers(0, 100), min_size=len(sites), max_size=len(sites)))))
    nHistory = draw(st.integers(0, 15))
    for i in range(nHistory):
        se = draw(st.sampled_from([*env.ses, "Unknown", "Unknown"] + (["CTAO-GONE-Disk"] if i == 7 else [])))
        env.history.append((f"/vo.cta.in2p3.fr/MC/PROD7/done/run{i:04d}.zst", se))
    return env


@st.composite
def telescope_cases(draw, calibration: bool) -> Env:
    env = draw(topologies(shared_se=False))
    n = draw(st.integers(0, 30))
    for i in draw(st.permutations(range(n))):
        lfn = f"/vo.cta.in2p3.fr/DL0/LSTN-01/obs/run{i:04d}.fits.fz"
        meta: dict[str, Any] = {}
        for key, values in (
            ("instance__obs_id", [2001, 2002]),
            ("instance__ae_id", [1, 2, 3]),
            ("instance__chunk_id", [0, 1, 2, 3]),
        ):
            if draw(st.integers(0, 14)):  # sometimes missing: groups under None
                meta[key] = draw(st.sampled_from(values))
        replicas = draw(st.lists(st.sampled_from(env.ses), min_size=1, max_size=2))
        env.data[lfn] = replicas
        env.files[lfn] = {"size": 10**8, "replicas": replicas, "metadata": meta}
    env.params = {"TransformationID": TRANS_ID, "Status": draw(st.sampled_from(["Active", "Flush"]))}
    if not calibration:
        return env
    release = "v0.3.1"
    types = draw(st.lists(st.sampled_from(CALIB_TYPES), min_size=1, max_size=3, unique=True))
    form = draw(st.integers(0, 19))
    if form != 0:
        env.params["CalibpipeRelease"] = release
    if form != 1:
        env.params["CalibDataType"] = "'pedestal'" if form == 2 else str(types)
    for obs in (2001, 2002):
        for ae in (1, 2, 3):
            howMany = draw(st.integers(0, 7))  # 0-1: none yet, 2: one too many, else complete
            calibTypes = [] if howMany < 2 else (types + ["extra"] if howMany == 2 else list(types))
            for t in calibTypes:
                lfn = f"/vo.cta.in2p3.fr/DL1/Monitoring/obs{obs}/ae{ae:03d}/{t}.h5"
                env.files[lfn] = {
                    "size": 10**6,
                    "replicas": [env.ses[0]],
                    "metadata": {
                        "curation__release": release if t != "extra" or draw(st.booleans()) else "v0.2",
                        "data__level": "DL1",
                        "data__division": "Monitoring",
                        "data__association": "Telescope",
                        "data__type": t if t != "extra" else types[0],
                        "instance__obs_id": obs,
                        "instance__ae_id": ae,
                    },
                }
    return env


# ------------------------------------------------------------------------------------------------
# Running both sides
# ------------------------------------------------------------------------------------------------
@dataclass
class Side:
    outcome: tuple
    fc: FakeFileCatalog
    tc: FakeTransformationClient

    def state(self) -> tuple:
        return (self.outcome, dict(self.fc.calls), dict(self.tc.calls), self.tc.transformationFiles, self.tc.tasks)


def outcome_of(run: Callable[[], dict[str, Any]]) -> tuple:
    try:
        result = run()
    except Exception as exc:  # PluginBase.run re-raises any failure as a plain Exception
        return ("raised", type(exc).__name__, str(exc))
    if result["OK"]:
        return ("OK", result["Value"], {k: v for k, v in result.items() if k not in ("OK", "Value")})
    return ("ERROR", result["Message"])


def run_native(env: Env, plugin: str, source: str, rng: Any) -> Side:
    from twin.dirac.transformation.plugins import CTATransformationPlugin, TransformationPlugin

    cls = CTATransformationPlugin if source == "ctadirac" else TransformationPlugin
    fc, tc = env.catalog(), env.transClient()
    obj = cls(plugin, tc, None, fc, resources=env.resources(), operations=env.operations(), rng=rng)
    obj.setParameters(copy.deepcopy(env.params))
    obj.setInputData({lfn: list(reps) for lfn, reps in env.data.items()})
    obj.setTransformationFiles(tc.getTransformationFiles({"TransformationID": TRANS_ID})["Value"])
    tc.calls.clear()
    return Side(outcome_of(obj.run), fc, tc)


def run_genuine(host, env: Env, plugin: str, source: str, rng: Any, via_cs: bool = False, seed: Any = None) -> Side:
    from twin.dirac.host import Topology

    fc, tc = env.catalog(), env.transClient()
    resources, operations = env.resources(), env.operations()
    host.configure(Topology.from_resources(resources, operations))
    if via_cs:  # DIRAC's own DMSHelpers / StorageElement on the configuration built from the topology
        resources = operations = None
    obj = host.make_plugin(plugin, source, tc, fc, resources, operations, rng=rng)
    if seed is not None:
        obj.seed(seed)
    obj.setParameters(copy.deepcopy(env.params))
    obj.setInputData({lfn: list(reps) for lfn, reps in env.data.items()})
    obj.setTransformationFiles(tc.getTransformationFiles({"TransformationID": TRANS_ID})["Value"])
    tc.calls.clear()
    return Side(outcome_of(obj.run), fc, tc)


def assert_same(
    host, env: Env, plugin: str, source: str = "dirac", via_cs: bool = False, in_hypothesis: bool = True
) -> tuple:
    seed = env.params.pop("Seed", 0)
    native = run_native(env, plugin, source, random.Random(seed))
    genuine = run_genuine(host, env, plugin, source, random.Random(seed), via_cs=via_cs)
    assert genuine.outcome == native.outcome, f"\nnative:  {native.outcome}\ngenuine: {genuine.outcome}\nenv: {env}"
    assert genuine.state() == native.state()
    if in_hypothesis:  # what kind of outcome was compared (pytest --hypothesis-show-statistics)
        kind = native.outcome[0]
        if kind == "OK":
            n = len(native.outcome[1])
            event(f"OK, {'no task' if not n else '1 task' if n == 1 else '2-5 tasks' if n <= 5 else '>5 tasks'}")
        else:
            event(f"{kind}: {native.outcome[-1][:40]}")
    return native.outcome


# ------------------------------------------------------------------------------------------------
# The differential tests
# ------------------------------------------------------------------------------------------------
@pytest.mark.dirac
@DIFF_SETTINGS
@given(env=standard_cases())
def test_standard(host, env):
    assert_same(host, env, "Standard")


@pytest.mark.dirac
@DIFF_SETTINGS
@given(env=bysize_cases())
def test_bysize(host, env):
    assert_same(host, env, "BySize")


@pytest.mark.dirac
@DIFF_SETTINGS
@given(env=broadcast_cases())
def test_broadcast_same_rng(host, env):
    assert_same(host, env, "Broadcast")


@pytest.mark.dirac
@settings(DIFF_SETTINGS, max_examples=examples(60))
@given(env=broadcast_cases())
def test_broadcast_seeding_python_random(host, env):
    """The genuine plugin on Python's global ``random`` seeded with s == the native one on Random(s)."""
    seed = env.params.pop("Seed")
    native = run_native(env, "Broadcast", "dirac", random.Random(seed))
    genuine = run_genuine(host, env, "Broadcast", "dirac", rng=None, seed=seed)
    assert genuine.state() == native.state()


@pytest.mark.dirac
@DIFF_SETTINGS
@given(env=byshare_cases())
def test_byshare(host, env):
    assert_same(host, env, "ByShare")


@pytest.mark.dirac
@settings(DIFF_SETTINGS, max_examples=examples(60))
@given(env=telescope_cases(calibration=False), source=st.sampled_from(["dirac", "ctadirac"]))
def test_groupall(host, env, source):
    assert_same(host, env, "GroupAll", source)


@pytest.mark.dirac
@DIFF_SETTINGS
@given(env=telescope_cases(calibration=False))
def test_merge_by_telescope(host, env):
    assert_same(host, env, "MergeByTelescope", "ctadirac")


@pytest.mark.dirac
@DIFF_SETTINGS
@given(env=telescope_cases(calibration=True))
def test_by_telescope_chunk(host, env):
    assert_same(host, env, "ByTelescopeChunk", "ctadirac")


@pytest.mark.dirac
@settings(DIFF_SETTINGS, max_examples=examples(60))
@given(
    env=st.one_of(standard_cases(), bysize_cases(), broadcast_cases(), byshare_cases()),
    plugin=st.sampled_from(["Standard", "BySize", "Broadcast", "ByShare"]),
)
def test_dirac_plugins_through_genuine_cs_helpers(host, env, plugin):
    """No simulated ``resources``/``operations`` on the genuine side: DIRAC's own DMSHelpers, StorageElement
    (SEType) and Operations read the configuration built from the topology, and must agree with the fakes."""
    if plugin == "BySize":
        env.params["GroupSize"] = 2
    if plugin == "Broadcast" and "TargetSE" not in env.params:
        env.params["TargetSE"] = str(env.ses)
    # (Replicas are only ever at SEs of the topology: for an SE the configuration does not define, the fake
    # says disk while DIRAC's StorageElement is invalid, DiskSE False; not a plugin difference.)
    assert_same(host, env, plugin, via_cs=True)


@pytest.mark.dirac
@settings(DIFF_SETTINGS, max_examples=examples(80))
@given(env=topologies())
def test_fake_resources_agree_with_dirac_helpers(host, env):
    """FakeResources answers like DMSHelpers/SiteSEMapping/StorageElement on the same topology."""
    from DIRAC.Core.Utilities.SiteSEMapping import getSEsForSite, getSitesForSE
    from DIRAC.Resources.Storage.StorageElement import StorageElement

    from twin.dirac.host import Topology

    resources = env.resources()
    host.configure(Topology.from_resources(resources))
    strip = lambda r: {"OK": r["OK"], "Value": r.get("Value"), "Message": r.get("Message")}  # noqa: E731
    for se in [*env.ses, "CTAO-NOWHERE-Disk"]:
        assert strip(getSitesForSE(se)) == strip(resources.getSitesForSE(se)), se
        if se in env.ses:
            status = StorageElement(se, vo=host.topology.vo).status()
            assert status["DiskSE"] == resources.isDiskSE(se)
            assert status["TapeSE"] == (not resources.isDiskSE(se))
    for site in [*env.site_ses, "CTAO.NOWHERE.xx"]:
        genuine, fake = strip(getSEsForSite(site)), strip(resources.getSEsForSite(site))
        assert genuine == fake, site


GRID_SITE_POOL = ["LCG.CERN.ch", "LCG.PIC.es", "EGI.CYF.pl", "LCG.IN2P3-CC.fr", "CTAO.DESY.de", "Local"]


@st.composite
def grid_topologies(draw) -> tuple[Any, dict[str, Any]]:
    """A scenario topology (sites of several grids; each SE at its own site, sometimes also listed by one or
    two other sites) and Operations values of every type a YAML scenario can give."""
    from twin.scenario import schema

    sites = draw(st.lists(st.sampled_from(GRID_SITE_POOL), min_size=1, max_size=5, unique=True))
    ses = draw(st.lists(st.sampled_from(SE_POOL), min_size=1, max_size=len(SE_POOL), unique=True))
    home = {se: draw(st.sampled_from(sites)) for se in ses}
    listed: dict[str, list[str]] = {site: [] for site in sites}
    for se in ses:
        for site in draw(st.lists(st.sampled_from(sites), max_size=3, unique=True)):
            listed[site].append(se)
    tape = draw(st.sets(st.sampled_from(ses)))
    storage = [{"name": se, "site": home[se], "capacity_tb": 1, **({"kind": "tape", "tape": {"drives": 1, "drive_mbps": 100}}
                                                                    if se in tape else {})} for se in ses]
    topology = schema.Topology.model_validate(
        {"sites": [{"name": site, "ses": listed[site], "ces": [{"name": f"ce-{i}", "slots": 1}]} for i, site in enumerate(sites)],
         "storage": storage})
    value = st.one_of(st.integers(-3, 8), st.sampled_from([2.5, 0.0, "2.5", "abc", "", True, False, "yes", "no"]),
                      st.lists(st.sampled_from(["a", "b c", "d"]), max_size=3))
    options = draw(st.dictionaries(st.sampled_from([*OPTION_PATHS, "DataManagement/ForceSingleSitePerSE"]), value, max_size=4))
    return topology, options


@pytest.mark.dirac
@settings(DIFF_SETTINGS, max_examples=examples(60))
@given(case=grid_topologies())
def test_grid_resources_and_operations_answer_as_dirac_helpers(host, case):
    """The twin's GridResources/ScenarioOperations (what native runs use) against DMSHelpers/SiteSEMapping and
    Operations on the configuration built from the same scenario: same sites per SE (order, "SE is at more
    than one site" under ForceSingleSitePerSE), same SEs per site, same typed option values."""
    from DIRAC.ConfigurationSystem.Client.Helpers.Operations import Operations
    from DIRAC.Core.Utilities.SiteSEMapping import getSitesForSE
    from DIRAC.DataManagementSystem.Utilities.DMSHelpers import DMSHelpers

    from twin.dirac.host import Topology
    from twin.dirac.resources import GridResources, ScenarioOperations
    from twin.engine.simulation import Simulation
    from twin.grid.grid import build_grid

    topology, options = case
    operations = ScenarioOperations(options)
    resources = GridResources(build_grid(Simulation(1), topology), {}, operations)
    host.configure(Topology.from_resources(resources, operations))
    strip = lambda r: {"OK": r["OK"], "Value": r.get("Value"), "Message": r.get("Message")}  # noqa: E731
    for se in [*resources.knownSEs, "CTAO-NOWHERE-Disk"]:
        assert strip(resources.getSitesForSE(se)) == strip(getSitesForSE(se)), se
    for site in [*(s.name for s in topology.sites), "CERN", "LCG.NOWHERE.xx"]:
        assert strip(resources.getSEsForSite(site)) == strip(DMSHelpers().getSEsForSite(site, connectionLevel="LOCAL")), site
    genuine = Operations()
    for path in [*options, "TransformationPlugins/Absent"]:
        for default in (None, 0, 1.5, [], True, "x"):
            assert resources is not None and operations.getValue(path, default) == genuine.getValue(path, default), (path, default)


@pytest.mark.dirac
@pytest.mark.parametrize("plugin", ["Standard", "BySize"])
def test_float_plugin_option_fails_native_as_it_fails_dirac(host, plugin):
    """TransformationPlugins/MaxFiles: 2.5 written in a scenario: getPluginParam(..., int) raises in DIRAC
    (int("2.5")); the native plugin, reading the same CS string, raises the same way instead of using 2."""
    from twin.dirac.resources import ScenarioOperations

    class ScenarioEnv(Env):
        def operations(self) -> ScenarioOperations:  # the native side reads what a scenario wrote
            return ScenarioOperations(dict(self.options))

    env = ScenarioEnv(**fixed_env({"Status": "Active", "GroupSize": 2}).__dict__)
    env.options = {"TransformationPlugins/MaxFiles": 2.5, "TransformationPlugins/BySize/MaxFilesPerTask": 2.5}
    outcome = assert_same(host, env, plugin, in_hypothesis=False)
    assert (outcome[0] == "OK") is (plugin == "Standard"), outcome  # Standard does not read MaxFiles


@pytest.mark.dirac
def test_getSEsForSite_order_matches_dirac(host):
    """DMSHelpers._getSEsForSItes returns ``sorted(ses)``, and so do the fakes (they kept the configured
    order until this test, then an xfail, caught it).

    ByShare emits one task per SE of the chosen site that holds the group, in getSEsForSite order, so with
    a site declaring ``SE = Tape, Disk`` the order decides which of the duplicate tasks gets the files.
    """
    env = Env(
        site_ses={"CTAO.CERN.ch": ["CTAO-CERN-Tape", "CTAO-CERN-Disk"]},
        tape_ses={"CTAO-CERN-Tape"},
        extra_ses=set(),
        cpu_shares={"CTAO.CERN.ch": 100},
        options={},
        ses=["CTAO-CERN-Tape", "CTAO-CERN-Disk"],
    )
    for i in range(4):
        lfn = f"/vo.cta.in2p3.fr/both/f{i}"
        env.data[lfn] = ["CTAO-CERN-Disk", "CTAO-CERN-Tape"]
        env.files[lfn] = {"size": GB, "replicas": env.data[lfn], "metadata": {}}
    env.params = {"TransformationID": TRANS_ID, "Status": "Flush", "GroupSize": 2}
    assert_same(host, env, "ByShare", via_cs=True, in_hypothesis=False)


# ------------------------------------------------------------------------------------------------
# Fixed cases (documentation of what is compared) and host behaviour
# ------------------------------------------------------------------------------------------------
FIXED = Env(
    site_ses={"CTAO.CERN.ch": ["CTAO-CERN-Disk", "CTAO-CERN-Tape"], "CTAO.DESY.de": ["CTAO-DESY-Disk"]},
    tape_ses={"CTAO-CERN-Tape"},
    extra_ses=set(),
    cpu_shares={"CTAO.CERN.ch": 60, "CTAO.DESY.de": 40},
    options={"TransformationPlugins/MaxFiles": "4"},
    ses=["CTAO-CERN-Disk", "CTAO-CERN-Tape", "CTAO-DESY-Disk"],
)


def fixed_env(params: dict[str, Any]) -> Env:
    env = Env(**{k: v for k, v in FIXED.__dict__.items() if k not in ("files", "data", "params", "history")})
    layouts = [["CTAO-CERN-Disk"], ["CTAO-CERN-Tape"], ["CTAO-DESY-Disk"], ["CTAO-CERN-Disk", "CTAO-DESY-Disk"]]
    for i in range(23):
        lfn = f"/vo.cta.in2p3.fr/fixed/f{i:02d}"
        env.data[lfn] = layouts[i % 4]
        meta = {"instance__obs_id": 2001, "instance__ae_id": 1 + i % 2, "instance__chunk_id": i % 3}
        env.files[lfn] = {"size": (i + 1) * GB // 7, "replicas": layouts[i % 4], "metadata": meta}
    env.params = {"TransformationID": TRANS_ID, **params}
    return env


@pytest.mark.dirac
@pytest.mark.parametrize(
    "plugin,source,params",
    [
        ("Standard", "dirac", {"Status": "Active", "GroupSize": 3}),
        ("Standard", "dirac", {"Status": "Flush", "GroupSize": 4}),
        ("BySize", "dirac", {"Status": "Active", "GroupSize": 2}),
        ("Broadcast", "dirac", {"Status": "Active", "GroupSize": 2, "TargetSE": "['CTAO-CERN-Disk', 'CTAO-DESY-Disk']", "Destinations": 1}),
        ("ByShare", "dirac", {"Status": "Active", "GroupSize": 2}),
        ("GroupAll", "ctadirac", {"Status": "Active"}),
        ("MergeByTelescope", "ctadirac", {"Status": "Active"}),
        ("ByTelescopeChunk", "ctadirac", {"Status": "Active", "CalibpipeRelease": "v1", "CalibDataType": "['pedestal']"}),
        ("NoSuchPlugin", "ctadirac", {"Status": "Active"}),
    ],
)
def test_fixed_cases(host, plugin, source, params):
    outcome = assert_same(host, fixed_env(params), plugin, source, in_hypothesis=False)
    if plugin == "NoSuchPlugin":
        assert outcome == ("ERROR", "Plugin not found")
    else:
        assert outcome[0] == "OK"


@pytest.mark.dirac
def test_genuine_classes_are_dirac_and_ctadirac(host):
    from twin.dirac.host import GenuinePlugin

    plugin = host.make_plugin("Standard", "ctadirac", FakeTransformationClient(), FakeFileCatalog())
    assert isinstance(plugin, GenuinePlugin)
    assert type(plugin.genuine).__module__ == "CTADIRAC.TransformationSystem.Agent.TransformationPlugin"
    assert type(plugin.genuine).__mro__[1].__module__ == "DIRAC.TransformationSystem.Agent.TransformationPlugin"
    with pytest.raises(ValueError):
        host.make_plugin("Standard", "lhcbdirac")


@pytest.mark.dirac
def test_missing_client_is_an_error_not_an_rpc(host):
    """A client not given is not built by DIRAC (which would retry an RPC for ~90 s)."""
    env = fixed_env({"Status": "Active", "GroupSize": 2})
    plugin = host.make_plugin("ByShare", "dirac", None, env.catalog(), env.resources(), env.operations())
    plugin.setParameters(dict(env.params))
    plugin.setInputData(dict(env.data))
    result = plugin.run()
    assert not result["OK"] and "no transClient" in result["Message"]


# ------------------------------------------------------------------------------------------------
# Without DIRAC: lazy import and the error message (run in every environment)
# ------------------------------------------------------------------------------------------------
def test_import_twin_does_not_import_dirac():
    code = "import sys, twin, twin.dirac.host; assert 'DIRAC' not in sys.modules and 'CTADIRAC' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_clear_error_without_the_extra(monkeypatch):
    import twin.dirac.host as hostModule

    monkeypatch.setattr(hostModule, "dirac_available", lambda: False)
    with pytest.raises(hostModule.DiracNotInstalled, match=r"plugin_source: dirac needs the \[dirac\] extra: see README"):
        hostModule.GenuinePluginHost()
    assert issubclass(hostModule.DiracNotInstalled, ImportError)
