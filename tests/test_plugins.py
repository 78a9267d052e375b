"""Example-based tests of the native TS plugins, on cases computed by hand from the DIRAC/CTADIRAC code."""

from __future__ import annotations

import random

import numpy as np
import pytest

from twin.dirac.transformation.fakes import (
    FakeEnvironment,
    FakeFileCatalog,
    FakeOperations,
    FakeResources,
    FakeTransformationClient,
    calibrationFileMetadata,
)
from twin.dirac.transformation.plugin_utils import (
    PluginUtilities,
    breakListIntoChunks,
    getFileGroups,
    sortSEs,
)
from twin.dirac.transformation.plugins import (
    CTADIRAC_PLUGIN_LOCATION,
    DIRAC_PLUGIN_LOCATION,
    CTATransformationPlugin,
    TransformationPlugin,
    load_plugin_class,
)

GB = 1000 * 1000 * 1000


def params(status: str = "Active", **extra):
    return {"TransformationID": 1, "Status": status, **extra}


def tasks_of(result):
    assert result["OK"], result
    return result["Value"]


# -- helpers --------------------------------------------------------------------------------------
def test_breakListIntoChunks():
    assert breakListIntoChunks([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]
    assert breakListIntoChunks([], 3) == []
    with pytest.raises(RuntimeError):
        breakListIntoChunks([1], 0)


def test_getFileGroups_by_replica_set_and_by_se():
    data = {"a": ["SE2", "SE1", "SE1"], "b": ["SE1"], "c": [], "d": ["SE2"]}
    assert getFileGroups(data) == {"SE1,SE2": ["a"], "SE1": ["b"], "SE2": ["d"]}
    assert getFileGroups(data, groupSE=False) == {"SE1": ["a", "b"], "SE2": ["a", "d"]}


def test_sortSEs_disk_first_unless_a_key_is_a_set():
    resources = FakeResources(tape_ses=["A-Tape", "C-Tape"])
    assert sortSEs(["C-Tape", "Z-Disk", "A-Tape", "B-Disk"], resources) == ["B-Disk", "Z-Disk", "A-Tape", "C-Tape"]
    assert sortSEs(["Z-Disk", "A-Tape,Z-Disk", "A-Tape"], resources) == ["A-Tape", "A-Tape,Z-Disk", "Z-Disk"]


def test_getPluginParam_resolution_and_casting():
    ops = FakeOperations({"TransformationPlugins/GroupSize": "4", "TransformationPlugins/Standard/GroupSize": "3"})
    util = PluginUtilities("Standard", resources=FakeResources(), operations=ops)
    util.setParameters({"TransformationID": 1})
    assert util.getPluginParam("GroupSize", 10) == 3  # plugin-specific CS beats generic CS, cast to int
    util.setParameters({"TransformationID": 1, "GroupSize": 2})
    assert util.getPluginParam("GroupSize", 10) == 2  # the transformation's parameter wins
    util.setParameters({"TransformationID": 1, "L1": "A, B", "L2": "['A','B']", "L3": "SE_MC-DST", "B": "No"})
    assert util.getPluginParam("L1", []) == ["A", "B"]
    assert util.getPluginParam("L2", []) == ["A", "B"]
    assert util.getPluginParam("L3", []) == ["SE_MC-DST"]
    assert util.getPluginParam("B", True) is False
    assert util.getPluginParam("Missing", 1.5) == 1.5


def test_setParameters_requires_TransformationID():
    plugin = FakeEnvironment().makePlugin("Standard", {"TransformationID": 1, "Status": "Active"}, {})
    with pytest.raises(KeyError):
        plugin.setParameters({"Status": "Active"})


# -- PluginBase -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["By Size", "Standard1", "", "_Standard"])
def test_plugin_name_must_be_letters(name):
    with pytest.raises(ValueError):
        TransformationPlugin(name, resources=FakeResources(), operations=FakeOperations(), rng=random.Random(0))


def test_unknown_plugin_is_S_ERROR():
    result = FakeEnvironment().runPlugin("NoSuchPlugin", params(), {"a": ["SE1"]})
    assert result == {"OK": False, "Message": "Plugin not found"}


def test_CTA_plugins_not_in_DIRAC_class():
    env = FakeEnvironment()
    result = env.runPlugin("GroupAll", params(), {"a": ["SE1"]}, pluginClass=TransformationPlugin)
    assert result["Message"] == "Plugin not found"


def test_plugin_exception_rewrapped_as_plain_Exception():
    with pytest.raises(Exception) as info:
        FakeEnvironment().runPlugin("Broadcast", params(GroupSize=1), {"a": ["SE1"]})  # no TargetSE
    assert type(info.value) is Exception and str(info.value) == "'TargetSE'"


# -- Standard -------------------------------------------------------------------------------------
STANDARD_DATA = {
    "a": ["SE1", "SE2"],
    "b": ["SE1"],
    "c": ["SE2"],
    "d": ["SE2", "SE1"],
    "e": ["SE1", "SE2"],
}


def test_standard_two_passes_fill_up_with_single_replica_files():
    # pass 1: "SE1,SE2" [a, d] full, [e] left; pass 2 at SE1: leftover e joins b
    result = FakeEnvironment().runPlugin("Standard", params(GroupSize=2), STANDARD_DATA)
    assert tasks_of(result) == [("SE1,SE2", ["a", "d"]), ("SE1", ["b", "e"])]


def test_standard_partial_groups_only_on_flush():
    result = FakeEnvironment().runPlugin("Standard", params("Flush", GroupSize=2), STANDARD_DATA)
    assert tasks_of(result) == [
        ("SE1", ["b"]),
        ("SE1,SE2", ["a", "d"]),
        ("SE1,SE2", ["e"]),
        ("SE2", ["c"]),
    ]
    assert tasks_of(FakeEnvironment().runPlugin("Standard", params(GroupSize=3), {"x": ["SE1"], "y": ["SE1"]})) == []


def test_standard_pass_two_is_disk_first():
    env = FakeEnvironment(resources=FakeResources(tape_ses=["ATape"]))
    data = {"x": ["ZDisk", "ATape"], "y": ["ATape"], "z": ["ZDisk"]}
    # alphabetical order would have made (ATape, [x, y]); disk-first takes ZDisk first
    assert tasks_of(env.runPlugin("Standard", params(GroupSize=2), data)) == [("ZDisk", ["x", "z"])]


def test_standard_files_without_replicas_are_ignored():
    result = FakeEnvironment().runPlugin("Standard", params("Flush", GroupSize=5), {"a": [], "b": ["SE1"]})
    assert tasks_of(result) == [("SE1", ["b"])]


# -- BySize ---------------------------------------------------------------------------------------
def bysize_env(sizes, **ops):
    return FakeEnvironment(fc=FakeFileCatalog(sizes=sizes), operations=FakeOperations(ops))


def test_bysize_groups_until_size_exceeds_groupsize_gb():
    sizes = {"f0": 0, "f1": 3 * GB // 10, "f2": 4 * GB // 10, "f3": 5 * GB // 10, "f4": 2 * GB}
    data = {lfn: ["SE1"] for lfn in sizes}
    result = bysize_env(sizes).runPlugin("BySize", params(GroupSize=1), data)
    # f0 (size 0) skipped; 0.3+0.4+0.5 > 1 GB closes a task; f4 > 1 GB is a task by itself
    assert tasks_of(result) == [("SE1", ["f1", "f2", "f3"]), ("SE1", ["f4"])]


def test_bysize_max_files_per_task_and_flush_remainder():
    sizes = {f"f{i}": GB // 10 for i in range(5)}
    data = {lfn: ["SE1"] for lfn in sizes}
    env = bysize_env(sizes, **{"TransformationPlugins/MaxFilesPerTask": "2"})
    assert tasks_of(env.runPlugin("BySize", params(GroupSize=1), data)) == [("SE1", ["f0", "f1"]), ("SE1", ["f2", "f3"])]
    env = bysize_env(sizes, **{"TransformationPlugins/MaxFilesPerTask": "2"})
    flushed = tasks_of(env.runPlugin("BySize", params("Flush", GroupSize=1), data))
    assert flushed[-1] == ("SE1", ["f4"])


def test_bysize_size_zero_skipped_even_on_flush():
    sizes = {"a": 0, "b": 10}
    result = bysize_env(sizes).runPlugin("BySize", params("Flush", GroupSize=1), {"a": ["SE1"], "b": ["SE1"]})
    assert tasks_of(result) == [("SE1", ["b"])]


def test_bysize_fractional_groupsize_is_truncated_like_dirac():
    # groupBySize reads GroupSize with an int default: 2.5 -> 2 GB, so a 2.2 GB file is "oversized"
    sizes = {"big": 22 * GB // 10, "small": GB // 10}
    result = bysize_env(sizes).runPlugin("BySize", params(GroupSize=2.5), {"big": ["SE1"], "small": ["SE1"]})
    assert tasks_of(result) == [("SE1", ["big"])]


def test_bysize_unknown_size_next_to_known_raises():
    sizes = {"a": 10}  # "b" unknown to the catalog -> None in the sort key
    with pytest.raises(Exception, match="not supported"):
        bysize_env(sizes).runPlugin("BySize", params(GroupSize=1), {"a": ["SE1"], "b": ["SE1"]})


def test_bysize_pass_one_keys_alphabetical_then_per_se():
    sizes = {"x": 6 * GB // 10, "y": 6 * GB // 10, "z": 6 * GB // 10}
    data = {"x": ["SE2", "SE1"], "y": ["SE1"], "z": ["SE2"]}
    # pass 1: no key reaches 1 GB; pass 2 at SE1: x + y = 1.2 GB
    assert tasks_of(bysize_env(sizes).runPlugin("BySize", params(GroupSize=1), data)) == [("SE1", ["x", "y"])]


# -- Broadcast ------------------------------------------------------------------------------------
BROADCAST_SITES = {"SiteS": ["S1"], "SiteA": ["T1"], "SiteB": ["T2"], "SiteC": ["T3"], "SiteX": ["S2"]}


def broadcast_env(site_ses=BROADCAST_SITES):
    return FakeEnvironment(resources=FakeResources(site_ses=site_ses))


def test_broadcast_source_filter_and_groupsize():
    data = {"f1": ["S1"], "f2": ["S2"], "f3": ["S1"], "f4": ["S1"]}
    p = params(TargetSE="['T1', 'T2']", SourceSE="S1", GroupSize=2)
    assert tasks_of(broadcast_env().runPlugin("Broadcast", p, data)) == [("T1,T2", ["f1", "f3"])]
    p["Status"] = "Flush"
    assert tasks_of(broadcast_env().runPlugin("Broadcast", p, data)) == [("T1,T2", ["f1", "f3"]), ("T1,T2", ["f4"])]


def test_broadcast_without_source_takes_every_file():
    data = {"f1": ["S1"], "f2": ["S2"]}
    result = broadcast_env().runPlugin("Broadcast", params(TargetSE="T3", GroupSize=1), data)
    assert tasks_of(result) == [("T3", ["f1"]), ("T3", ["f2"])]


def expected_single_destination(seed: int, targets: list[str], nLfns: int) -> list[str]:
    """With Destinations=1 and every target at a new site, each LFN goes to the first target
    after the (cumulative) shuffle of the TargetSE list."""
    stream = random.Random(seed)
    order = list(targets)
    keys = []
    for _ in range(nLfns):
        stream.shuffle(order)
        keys.append(order[0])
    return keys


@pytest.mark.parametrize("seed", [0, 7, 12345])
def test_broadcast_destinations_follow_seeded_shuffle(seed):
    data = {f"f{i}": ["S1"] for i in range(6)}

    def run():
        p = params("Flush", TargetSE=["T1", "T2", "T3"], Destinations=1, GroupSize=1)
        return tasks_of(broadcast_env().runPlugin("Broadcast", p, data, rng=random.Random(seed)))

    first = run()
    assert first == run()
    keys = expected_single_destination(seed, ["T1", "T2", "T3"], len(data))
    byLfn = {lfns[0]: se for se, lfns in first}
    assert [byLfn[lfn] for lfn in data] == keys
    # same stream as DIRAC's global random.shuffle after random.seed(seed)
    random.seed(seed)
    order = ["T1", "T2", "T3"]
    random.shuffle(order)
    assert order[0] == byLfn["f0"]


def test_broadcast_shuffles_a_list_TargetSE_in_place_like_dirac():
    p = params(TargetSE=["T1", "T2", "T3"], Destinations=1, GroupSize=1)
    broadcast_env().runPlugin("Broadcast", p, {f"f{i}": ["S1"] for i in range(4)}, rng=random.Random(1))
    order = ["T1", "T2", "T3"]
    stream = random.Random(1)
    for _ in range(4):
        stream.shuffle(order)
    assert p["TargetSE"] == order


def test_broadcast_unknown_target_se_raises():
    p = params(TargetSE=["T1", "Nowhere"], GroupSize=1)
    with pytest.raises(Exception, match="'Value'"):
        broadcast_env().runPlugin("Broadcast", p, {"f": ["S1"]})


def test_broadcast_target_at_source_site_always_added():
    sites = {site: ses for site, ses in BROADCAST_SITES.items() if site != "SiteA"} | {"SiteS": ["S1", "T1"]}
    data = {f"f{i}": ["S1"] for i in range(8)}
    p = params("Flush", TargetSE=["T1", "T2", "T3"], Destinations=1, GroupSize=1)
    for se, _ in tasks_of(broadcast_env(sites).runPlugin("Broadcast", p, data, rng=random.Random(3))):
        targets = se.split(",")
        assert "T1" in targets and len(targets) in (1, 2)


def test_broadcast_destinations_not_below_target_count_is_ignored():
    p = params(TargetSE=["T1", "T2"], Destinations=2, GroupSize=1)
    assert tasks_of(broadcast_env().runPlugin("Broadcast", p, {"f": ["S1"]})) == [("T1,T2", ["f"])]


def test_broadcast_accepts_numpy_generator():
    p = params(TargetSE=["T1", "T2", "T3"], Destinations=1, GroupSize=1)
    result = broadcast_env().runPlugin("Broadcast", p, {"f": ["S1"]}, rng=np.random.default_rng(5))
    assert tasks_of(result)[0][0] in {"T1", "T2", "T3"}


# -- ByShare --------------------------------------------------------------------------------------
def byshare_env(site_ses, shares, usedSEs=()):
    tc = FakeTransformationClient()
    old = [f"/old/{i}" for i in range(len(usedSEs))]
    tc.addFilesToTransformation(1, old)
    for lfn, se in zip(old, usedSEs):
        tc.addTaskForTransformation(1, [lfn], se)
    return FakeEnvironment(transClient=tc, resources=FakeResources(site_ses=site_ses, cpu_shares=shares))


def test_byshare_picks_largest_share_deficit_ties_first_in_share_order():
    env = byshare_env({"SiteA": ["SEA"], "SiteB": ["SEB"]}, {"SiteA": 50, "SiteB": 50}, ["SEA", "SEA"])
    data = {f"f{i}": ["SEA", "SEB"] for i in range(4)}
    # group 1: A holds 100% -> B; then A 2 / B 2 is a tie -> SiteA (first)
    assert tasks_of(env.runPlugin("ByShare", params(GroupSize=2), data)) == [
        ("SEB", ["f0", "f1"]),
        ("SEA", ["f2", "f3"]),
    ]


def test_byshare_emits_duplicate_tasks_for_two_ses_at_the_site():
    env = byshare_env({"SiteA": ["SEA", "SEA2"]}, {"SiteA": 1})
    data = {"f0": ["SEA", "SEA2"], "f1": ["SEA", "SEA2"]}
    assert tasks_of(env.runPlugin("ByShare", params(GroupSize=2), data)) == [
        ("SEA", ["f0", "f1"]),
        ("SEA2", ["f0", "f1"]),
    ]


def test_byshare_zero_share_site_gets_nothing():
    env = byshare_env({"SiteA": ["SEA"], "SiteB": ["SEB"]}, {"SiteA": 0, "SiteB": 10})
    assert tasks_of(env.runPlugin("ByShare", params(GroupSize=1), {"f": ["SEA"]})) == []


def test_byshare_without_shares_is_S_ERROR():
    env = byshare_env({"SiteA": ["SEA"]}, {})
    result = env.runPlugin("ByShare", params(GroupSize=1), {"f": ["SEA"]})
    assert result == {"OK": False, "Message": "/Resources/Shares/CPU option contains no shares"}


def test_existing_counters_last_se_of_a_site_overwrites():
    env = byshare_env({"SiteA": ["SEA", "SEA2"]}, {"SiteA": 1}, ["SEA"] * 3 + ["SEA2"] * 5 + ["Unknown"])
    util = env.makePlugin("ByShare", params(), {}).util
    assert util.getExistingCounters()["Value"] == {"SEA": 3, "SEA2": 5}
    assert util.getExistingCounters(requestedSites=["SiteA"])["Value"] == {"SiteA": 5}
    assert util.getExistingCounters(normalise=True)["Value"] == {"SEA": 37.5, "SEA2": 62.5}


def test_normaliseShares():
    assert PluginUtilities._normaliseShares({"A": 1, "B": 3}) == {"A": 25.0, "B": 75.0}
    assert PluginUtilities._normaliseShares({"A": 0}) == {"A": 0.0}


# -- CTADIRAC plugins -----------------------------------------------------------------------------
def test_groupall_one_task_with_everything():
    env = FakeEnvironment()
    assert tasks_of(env.runPlugin("GroupAll", params(), {"a": ["SE1"], "b": ["SE2"]})) == [("Unknown", ["a", "b"])]
    assert tasks_of(env.runPlugin("GroupAll", params(), {})) == [("Unknown", [])]
    assert CTATransformationPlugin.target_se == "Unknown"


def test_mergebytelescope_groups_by_chunk_id_including_none():
    metadata = {
        "/d/a": {"instance__chunk_id": 1, "instance__obs_id": 10},
        "/d/b": {"instance__chunk_id": 2},
        "/d/c": {},
        "/d/d": {"instance__chunk_id": 1, "instance__obs_id": 11},
    }
    env = FakeEnvironment(fc=FakeFileCatalog(metadata=metadata))
    data = {lfn: ["SE1"] for lfn in metadata}
    assert tasks_of(env.runPlugin("MergeByTelescope", params(), data)) == [
        ("Unknown", ["/d/a", "/d/d"]),
        ("Unknown", ["/d/b"]),
        ("Unknown", ["/d/c"]),
    ]
    assert env.fc.calls["getFileUserMetadata"] == 4  # one catalog call per file per cycle


def test_mergebytelescope_metadata_failure_is_S_ERROR():
    result = FakeEnvironment().runPlugin("MergeByTelescope", params(), {"/unknown": ["SE1"]})
    assert result == {"OK": False, "Message": "No such file or directory"}


CHUNK_META = {
    "/d/o1a1c0": {"instance__obs_id": 1, "instance__ae_id": 1, "instance__chunk_id": 0},
    "/d/o1a1c1": {"instance__obs_id": 1, "instance__ae_id": 1, "instance__chunk_id": 1},
    "/d/o1a2c0": {"instance__obs_id": 1, "instance__ae_id": 2, "instance__chunk_id": 0},
    "/cal/1_1_ped": calibrationFileMetadata(1, 1, "pedestal"),
    "/cal/1_1_flat": calibrationFileMetadata(1, 1, "flatfield"),
}
CHUNK_DATA = {lfn: ["SE1"] for lfn in CHUNK_META if lfn.startswith("/d/")}
CHUNK_PARAMS = params(CalibpipeRelease="v1", CalibDataType="['pedestal', 'flatfield']")


def chunk_env(extra_meta=None):
    tc = FakeTransformationClient({1: list(CHUNK_DATA)})
    return FakeEnvironment(fc=FakeFileCatalog(metadata={**CHUNK_META, **(extra_meta or {})}), transClient=tc)


def test_bytelescopechunk_readiness_gate_and_tasks():
    env = chunk_env()
    tasks = tasks_of(env.runPlugin("ByTelescopeChunk", CHUNK_PARAMS, CHUNK_DATA))
    # (obs 1, ae 2) has no calibration yet: skipped this cycle
    assert tasks == [
        ("Unknown", ["/d/o1a1c0", "/cal/1_1_ped", "/cal/1_1_flat"]),
        ("Unknown", ["/d/o1a1c1", "/cal/1_1_ped", "/cal/1_1_flat"]),
    ]
    assert env.transClient.calls["addFilesToTransformation"] == 2
    assert "/cal/1_1_ped" in env.transClient.transformationFiles[1]
    # the shared calibration files make the second task of the same (obs, ae) refused by the DB
    assert env.transClient.addTaskForTransformation(1, *reversed(tasks[0]))["OK"]
    assert not env.transClient.addTaskForTransformation(1, *reversed(tasks[1]))["OK"]


def test_bytelescopechunk_wrong_calibration_count_is_S_ERROR():
    env = chunk_env({"/cal/1_2_ped": calibrationFileMetadata(1, 2, "pedestal")})
    result = env.runPlugin("ByTelescopeChunk", CHUNK_PARAMS, CHUNK_DATA)
    assert result == {"OK": False, "Message": "Expected 2 calibration file(s) for OBS_ID 1, AE_ID 2, found 1"}
    assert env.transClient.calls["addFilesToTransformation"] == 0


@pytest.mark.parametrize(
    ("drop", "override", "message"),
    [
        ("CalibpipeRelease", {}, "No CalibpipeRelease configured for this transformation"),
        ("CalibDataType", {}, "No CalibDataType configured for this transformation"),
        (None, {"CalibDataType": "'pedestal'"}, "CalibDataType should be a list"),
    ],
)
def test_bytelescopechunk_parameter_errors(drop, override, message):
    p = {k: v for k, v in CHUNK_PARAMS.items() if k != drop} | override
    assert chunk_env().runPlugin("ByTelescopeChunk", p, CHUNK_DATA) == {"OK": False, "Message": message}


# -- plugin class registry ------------------------------------------------------------------------
def test_load_plugin_class_defaults_and_dirac_locations():
    assert load_plugin_class(None) is CTATransformationPlugin
    assert load_plugin_class(DIRAC_PLUGIN_LOCATION) is TransformationPlugin
    assert load_plugin_class(CTADIRAC_PLUGIN_LOCATION) is CTATransformationPlugin
    assert load_plugin_class("twin.dirac.transformation.plugins:TransformationPlugin") is TransformationPlugin
    with pytest.raises(ImportError):
        load_plugin_class("twin.dirac.transformation.plugins:NoSuchClass")


USER_PLUGIN = '''
from twin.dirac.returnvalues import S_OK
from twin.dirac.transformation.plugins import CTATransformationPlugin


class {name}(CTATransformationPlugin):
    def _OnePerFile(self):
        return S_OK([(self.target_se, [lfn]) for lfn in self.data])
'''


@pytest.mark.parametrize(("className", "suffix"), [("MyPlugins", ":MyPlugins"), ("TransformationPlugin", "")])
def test_load_plugin_class_from_user_file(tmp_path, className, suffix):
    path = tmp_path / f"user_{className}.py"
    path.write_text(USER_PLUGIN.format(name=className))
    cls = load_plugin_class(f"{path}{suffix}")
    env = FakeEnvironment()
    assert tasks_of(env.runPlugin("OnePerFile", params(), {"a": ["SE"], "b": ["SE"]}, pluginClass=cls)) == [
        ("Unknown", ["a"]),
        ("Unknown", ["b"]),
    ]
    assert tasks_of(env.runPlugin("GroupAll", params(), {"a": ["SE"]}, pluginClass=cls)) == [("Unknown", ["a"])]
