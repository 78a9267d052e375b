"""Hypothesis properties of the native TS plugins: what the DIRAC/CTADIRAC logic guarantees for any input."""

from __future__ import annotations

import random
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twin.dirac.transformation.fakes import (
    FakeEnvironment,
    FakeFileCatalog,
    FakeOperations,
    FakeResources,
    FakeTransformationClient,
    calibrationFileMetadata,
)

GB = 1000 * 1000 * 1000
DISK_SES = ["D1", "D2", "D3", "D4"]
TAPE_SES = ["T1", "T2"]
ALL_SES = DISK_SES + TAPE_SES
SITE_SES = {f"Site{se}": [se] for se in ALL_SES} | {"SiteX": ["X1", "X2"]}

PROPERTY_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

replica_lists = st.lists(st.sampled_from(ALL_SES), max_size=4)
input_data = st.dictionaries(st.from_regex(r"/lfn/[a-z]{1,3}", fullmatch=True), replica_lists, max_size=30)
statuses = st.sampled_from(["Active", "Flush"])
sizes = st.sampled_from([0, 1, GB // 10, GB // 4, GB // 2, 9 * GB // 10, GB, 3 * GB])


def resources(**kwargs) -> FakeResources:
    return FakeResources(site_ses=SITE_SES, tape_ses=TAPE_SES, **kwargs)


def run(plugin, params, data, seed=0, **envKwargs):
    env = FakeEnvironment(resources=envKwargs.pop("res", resources()), **envKwargs)
    result = env.runPlugin(plugin, {"TransformationID": 1, **params}, data, rng=random.Random(seed))
    assert result["OK"], result
    return result["Value"]


def assigned(tasks) -> list[str]:
    return [lfn for _, lfns in tasks for lfn in lfns]


def assert_disjoint_and_from_input(tasks, data):
    counts = Counter(assigned(tasks))
    assert all(n == 1 for n in counts.values()), counts
    assert set(counts) <= set(data)


def assert_respects_replicas(tasks, data):
    """Pass-1 keys ("A,B") are the file's exact replica set; single-SE keys are an SE the file holds."""
    for key, lfns in tasks:
        for lfn in lfns:
            if "," in key:
                assert set(data[lfn]) == set(key.split(",")), (key, lfn, data[lfn])
            else:
                assert key in data[lfn], (key, lfn, data[lfn])


# -- Standard -------------------------------------------------------------------------------------
@PROPERTY_SETTINGS
@given(data=input_data, groupSize=st.integers(1, 6), status=statuses)
def test_standard_properties(data, groupSize, status):
    tasks = run("Standard", {"Status": status, "GroupSize": groupSize}, data)
    assert_disjoint_and_from_input(tasks, data)
    assert_respects_replicas(tasks, data)
    if status == "Flush":
        assert all(1 <= len(lfns) <= groupSize for _, lfns in tasks)
        assert set(assigned(tasks)) == {lfn for lfn, reps in data.items() if reps}
    else:
        assert all(len(lfns) == groupSize for _, lfns in tasks)
    assert tasks == run("Standard", {"Status": status, "GroupSize": groupSize}, data)


@PROPERTY_SETTINGS
@given(data=input_data, groupSize=st.integers(1, 6), status=statuses, seed=st.integers(0, 1000))
def test_standard_ignores_replica_order_and_keeps_input_order(data, groupSize, status, seed):
    """Replica lists are de-duplicated and sorted before grouping; LFNs keep their input order."""
    shuffler = random.Random(seed)
    scrambled = {lfn: shuffler.sample(reps, len(reps)) + reps[:1] for lfn, reps in data.items()}
    tasks = run("Standard", {"Status": status, "GroupSize": groupSize}, data)
    assert tasks == run("Standard", {"Status": status, "GroupSize": groupSize}, scrambled)
    position = {lfn: i for i, lfn in enumerate(data)}
    assert all([position[lfn] for lfn in lfns] == sorted(position[lfn] for lfn in lfns) for _, lfns in tasks)


# -- BySize ---------------------------------------------------------------------------------------
@st.composite
def sized_inputs(draw):
    data = draw(input_data)
    fileSizes = {lfn: draw(sizes) for lfn in data}
    return data, fileSizes


@PROPERTY_SETTINGS
@given(inputs=sized_inputs(), groupSizeGB=st.integers(1, 3), maxFiles=st.integers(1, 8), status=statuses)
def test_bysize_properties(inputs, groupSizeGB, maxFiles, status):
    data, fileSizes = inputs
    ops = FakeOperations({"TransformationPlugins/MaxFilesPerTask": str(maxFiles)})

    def once():
        fc = FakeFileCatalog(sizes=fileSizes)
        return run("BySize", {"Status": status, "GroupSize": groupSizeGB}, data, fc=fc, operations=ops)

    tasks = once()
    assert_disjoint_and_from_input(tasks, data)
    assert_respects_replicas(tasks, data)
    limit = groupSizeGB * GB
    assert all(fileSizes[lfn] > 0 for lfn in assigned(tasks))  # size-0 files never get a task
    for _, lfns in tasks:
        total = sum(fileSizes[lfn] for lfn in lfns)
        closed = total > limit or len(lfns) == maxFiles  # an oversized single file also exceeds
        assert len(lfns) <= maxFiles
        if status != "Flush":
            assert closed, (lfns, total, limit)
    if status == "Flush":
        assert set(assigned(tasks)) == {lfn for lfn, reps in data.items() if reps and fileSizes[lfn] > 0}
    assert tasks == once()


# -- Broadcast ------------------------------------------------------------------------------------
@PROPERTY_SETTINGS
@given(
    data=input_data,
    targets=st.lists(st.sampled_from(DISK_SES + TAPE_SES), min_size=1, max_size=5, unique=True),
    source=st.sampled_from(["", "D1", "['D1', 'T1']"]),
    destinations=st.integers(0, 5),
    groupSize=st.integers(1, 4),
    status=statuses,
    seed=st.integers(0, 2**32),
)
def test_broadcast_properties(data, targets, source, destinations, groupSize, status, seed):
    def once():
        params = {
            "Status": status,
            "GroupSize": groupSize,
            "TargetSE": list(targets),
            "SourceSE": source,
            "Destinations": destinations,
        }
        return run("Broadcast", params, data, seed=seed)

    tasks = once()
    assert_disjoint_and_from_input(tasks, data)
    sourceSEs = {"": set(), "D1": {"D1"}, "['D1', 'T1']": {"D1", "T1"}}[source]
    for key, lfns in tasks:
        chosen = key.split(",")
        assert set(chosen) <= set(targets) and chosen == sorted(chosen)
        for lfn in lfns:
            # every site holds one SE, so targets at a source replica's site are the replicas themselves
            atSource = set(chosen) & set(data[lfn])
            newSites = len(chosen) - len(atSource)
            if 0 < destinations < len(targets):
                assert newSites <= destinations
            else:
                assert set(chosen) == set(targets)
            assert not sourceSEs or sourceSEs & set(data[lfn])
        if status != "Flush":
            assert len(lfns) == groupSize
    if status == "Flush":
        expected = {lfn for lfn, reps in data.items() if reps and (not sourceSEs or sourceSEs & set(reps))}
        assert set(assigned(tasks)) == expected
    assert tasks == once()


# -- ByShare --------------------------------------------------------------------------------------
@PROPERTY_SETTINGS
@given(
    data=input_data,
    shares=st.dictionaries(st.sampled_from(sorted(SITE_SES)), st.integers(0, 100), min_size=1),
    used=st.lists(st.sampled_from(ALL_SES + ["Unknown"]), max_size=12),
    groupSize=st.integers(1, 5),
    status=statuses,
)
def test_byshare_properties(data, shares, used, groupSize, status):
    def once():
        tc = FakeTransformationClient({1: [f"/used/{i}" for i in range(len(used))]})
        for i, se in enumerate(used):
            tc.addTaskForTransformation(1, [f"/used/{i}"], se)
        return run("ByShare", {"Status": status, "GroupSize": groupSize}, data, transClient=tc, res=resources(cpu_shares=shares))

    tasks = once()
    # a site with several SEs of the group repeats the same LFN list; otherwise LFNs are disjoint
    distinctGroups = {tuple(lfns) for _, lfns in tasks}
    assert_disjoint_and_from_input([("", list(group)) for group in distinctGroups], data)
    for se, lfns in tasks:
        assert "," not in se
        assert all(se in data[lfn] for lfn in lfns)
        (site,) = [site for site, ses in SITE_SES.items() if se in ses]
        assert shares.get(site, 0) > 0
        if status != "Flush":
            assert len(lfns) == groupSize
    assert tasks == once()


# -- CTADIRAC plugins -----------------------------------------------------------------------------
@PROPERTY_SETTINGS
@given(data=input_data)
def test_groupall_properties(data):
    assert run("GroupAll", {}, data) == [("Unknown", list(data))]


chunk_ids = st.one_of(st.none(), st.integers(0, 4))


@PROPERTY_SETTINGS
@given(data=input_data, chunks=st.lists(chunk_ids, min_size=30, max_size=30))
def test_mergebytelescope_properties(data, chunks):
    chunkOf = dict(zip(data, chunks))
    metadata = {lfn: ({} if chunk is None else {"instance__chunk_id": chunk}) for lfn, chunk in chunkOf.items()}

    def once():
        return run("MergeByTelescope", {}, data, fc=FakeFileCatalog(metadata=metadata))

    tasks = once()
    assert sorted(assigned(tasks)) == sorted(data)  # a partition of the input
    assert_disjoint_and_from_input(tasks, data)
    assert len({chunkOf[lfns[0]] for _, lfns in tasks}) == len(tasks)
    assert all(se == "Unknown" and len({chunkOf[lfn] for lfn in lfns}) == 1 for se, lfns in tasks)
    assert tasks == once()


CALIB_TYPES = ["pedestal", "flatfield"]


@st.composite
def telescope_inputs(draw):
    keys = draw(st.lists(st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(0, 3)), max_size=20))
    metadata = {}
    data = {}
    for i, (obs, ae, chunk) in enumerate(keys):
        lfn = f"/d/{i}"
        metadata[lfn] = {"instance__obs_id": obs, "instance__ae_id": ae, "instance__chunk_id": chunk}
        data[lfn] = ["D1"]
    ready = draw(st.sets(st.tuples(st.integers(1, 2), st.integers(1, 3))))
    for obs, ae in sorted(ready):
        for dtype in CALIB_TYPES:
            metadata[f"/cal/{obs}_{ae}_{dtype}"] = calibrationFileMetadata(obs, ae, dtype)
    return data, metadata, ready


@PROPERTY_SETTINGS
@given(inputs=telescope_inputs())
def test_bytelescopechunk_properties(inputs):
    data, metadata, ready = inputs
    params = {"Status": "Active", "CalibpipeRelease": "v1", "CalibDataType": str(CALIB_TYPES)}

    def once():
        return run("ByTelescopeChunk", params, data, fc=FakeFileCatalog(metadata=metadata))

    tasks = once()
    inputLfns = [lfn for lfn in assigned(tasks) if lfn in data]
    assert len(inputLfns) == len(set(inputLfns))
    expected = {lfn for lfn in data if tuple(metadata[lfn].values())[:2] in ready}
    assert set(inputLfns) == expected  # readiness gate: only (obs, ae) with calibration files
    for se, lfns in tasks:
        assert se == "Unknown"
        inputs_ = [lfn for lfn in lfns if lfn in data]
        calibs = lfns[len(inputs_) :]
        assert len({tuple(metadata[lfn].values()) for lfn in inputs_}) == 1  # one (obs, ae, chunk)
        obs, ae, _ = metadata[inputs_[0]].values()
        assert sorted(calibs) == sorted(f"/cal/{obs}_{ae}_{t}" for t in CALIB_TYPES)
    assert tasks == once()
