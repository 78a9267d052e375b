"""Behaviour of the in-memory DFC: typed metadata, indexed meta-queries with inheritance, datasets, facade."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from twin.dirac.catalog import FILE_META, NO_SUCH_FILE, FileCatalog, FileCatalogClient

MC = "/vo/MC"


def build_catalog(meter=None) -> FileCatalog:
    """gamma/{z20,z40} and proton/z20 with directory metadata, runs as file metadata, plus an untagged dir."""
    fc = FileCatalog(meter=meter)
    fc.add_metadata_field("particle", str)
    fc.add_metadata_field("zenith", int)
    fc.add_metadata_field("runNumber", int, FILE_META)
    fc.add_metadata_field("nsb", float, FILE_META)
    for particle in ("gamma", "proton"):
        fc.create_directory(f"{MC}/{particle}")
        fc.set_metadata(f"{MC}/{particle}", {"particle": particle})
    for sub, zenith in (("gamma/z20", 20), ("gamma/z40", 40), ("proton/z20", 20)):
        fc.create_directory(f"{MC}/{sub}")
        fc.set_metadata(f"{MC}/{sub}", {"zenith": zenith})
        for run in range(1, 5):
            fc.add_file(f"{MC}/{sub}/run{run}", size=run * 10, se="DISK-1",
                        metadata={"runNumber": run, "nsb": float(run % 2)})
    fc.add_file(f"{MC}/untagged/run1", size=1, se="DISK-1", metadata={"runNumber": 1})
    return fc


def names(lfns: list[str]) -> set[str]:
    return {lfn.removeprefix(MC + "/") for lfn in lfns}


@pytest.fixture()
def fc() -> FileCatalog:
    return build_catalog()


# --- typed fields -----------------------------------------------------------------------------


def test_wrong_types_are_rejected_with_a_clear_message(fc: FileCatalog) -> None:
    with pytest.raises(ValueError, match="'runNumber' has type int.*'7'.*str"):
        fc.set_metadata(f"{MC}/gamma/z20/run1", {"runNumber": "7"})
    with pytest.raises(ValueError, match="has type int"):
        fc.set_metadata(f"{MC}/gamma/z20/run1", {"runNumber": True})
    with pytest.raises(ValueError, match="has type int"):
        fc.set_metadata(f"{MC}/gamma/z20/run1", {"runNumber": 1.5})
    with pytest.raises(ValueError, match="has type str"):
        fc.set_metadata(f"{MC}/gamma", {"particle": 3})
    fc.set_metadata(f"{MC}/gamma/z20/run1", {"nsb": 2})  # ints are fine for float fields
    assert fc.get_file_user_metadata(f"{MC}/gamma/z20/run1")["nsb"] == 2.0


def test_a_failed_write_leaves_nothing_behind(fc: FileCatalog) -> None:
    with pytest.raises(ValueError):
        fc.add_file(f"{MC}/gamma/z20/bad", 1, metadata={"runNumber": 9, "nsb": "high"})
    assert f"{MC}/gamma/z20/bad" not in fc
    assert fc.find_files_by_metadata({"runNumber": 9}) == []


def test_fields_have_one_level_and_one_type(fc: FileCatalog) -> None:
    with pytest.raises(ValueError, match="not defined"):
        fc.set_metadata(f"{MC}/gamma", {"energy": 1})
    with pytest.raises(ValueError, match="directory field"):
        fc.set_metadata(f"{MC}/gamma/z20/run1", {"particle": "gamma"})
    with pytest.raises(ValueError, match="file field"):
        fc.set_metadata(f"{MC}/gamma", {"runNumber": 1})
    fc.add_metadata_field("zenith", "INT")  # same declaration again: accepted
    with pytest.raises(ValueError, match="already defined"):
        fc.add_metadata_field("zenith", float)
    with pytest.raises(ValueError, match="Unsupported metadata type"):
        fc.add_metadata_field("when", "DATETIME")
    assert fc.get_metadata_fields() == {
        "DirectoryMetaFields": {"particle": "VARCHAR(128)", "zenith": "INT"},
        "FileMetaFields": {"runNumber": "INT", "nsb": "FLOAT"},
    }


def test_directory_field_is_set_once_per_chain(fc: FileCatalog) -> None:
    with pytest.raises(ValueError, match="Metadata conflict detected for particle"):
        fc.set_metadata(f"{MC}/gamma/z20", {"particle": "electron"})
    with pytest.raises(ValueError, match="Metadata conflict detected for zenith"):
        fc.set_metadata(f"{MC}/gamma", {"zenith": 20})
    fc.set_metadata(f"{MC}/gamma", {"particle": "gamma-diffuse"})  # same holder: update allowed
    assert names(fc.find_files_by_metadata({"particle": "gamma-diffuse", "zenith": 40})) == {
        f"gamma/z40/run{r}" for r in range(1, 5)}


# --- meta-queries ----------------------------------------------------------------------------------

Z20 = {f"{p}/z20/run{r}" for p in ("gamma", "proton") for r in range(1, 5)}
Z40 = {f"gamma/z40/run{r}" for r in range(1, 5)}
GAMMA = Z40 | {f"gamma/z20/run{r}" for r in range(1, 5)}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"zenith": 20}, Z20),
        ({"zenith": {"=": 40}}, Z40),
        ({"zenith": [20, 40]}, Z20 | Z40),
        ({"zenith": {"in": [40, 60]}}, Z40),
        ({"zenith": {"!=": 20}}, Z40),
        ({"zenith": {"nin": [20]}}, Z40),
        ({"zenith": {"<": 40}}, Z20),
        ({"zenith": {"<=": 40}}, Z20 | Z40),
        ({"zenith": {">": 20}}, Z40),
        ({"zenith": {">=": 20}}, Z20 | Z40),
        ({"zenith": {">": 20, "<": 40}}, set()),
        ({"particle": "gamma"}, GAMMA),
        ({"particle": {"!=": "gamma"}}, {f"proton/z20/run{r}" for r in range(1, 5)}),
    ],
)
def test_each_operator_on_inherited_directory_metadata(fc: FileCatalog, query: dict, expected: set) -> None:
    assert names(fc.find_files_by_metadata(query)) == expected


@pytest.mark.parametrize(
    ("query", "runs"),
    [
        ({"runNumber": 2}, {2}),
        ({"runNumber": {"in": [1, 4, 99]}}, {1, 4}),
        ({"runNumber": {"!=": 2}}, {1, 3, 4}),
        ({"runNumber": {"nin": [1, 2]}}, {3, 4}),
        ({"runNumber": {"<": 3}}, {1, 2}),
        ({"runNumber": {"<=": 3}}, {1, 2, 3}),
        ({"runNumber": {">": 3}}, {4}),
        ({"runNumber": {">=": 3}}, {3, 4}),
        ({"runNumber": {">=": 2, "<=": 3, "!=": 3}}, {2}),
        ({"nsb": {">": 0.5}}, {1, 3}),
    ],
)
def test_each_operator_on_file_metadata(fc: FileCatalog, query: dict, runs: set) -> None:
    found = fc.find_files_by_metadata(dict(query, particle="gamma", zenith=40))
    assert names(found) == {f"gamma/z40/run{r}" for r in runs}


def test_mixed_directory_and_file_keys(fc: FileCatalog) -> None:
    query = {"particle": {"in": ["gamma", "proton"]}, "zenith": {"<": 30}, "runNumber": {">=": 3}}
    assert names(fc.find_files_by_metadata(query)) == {
        "gamma/z20/run3", "gamma/z20/run4", "proton/z20/run3", "proton/z20/run4"}


def test_file_key_alone_spans_the_whole_namespace_including_untagged_dirs(fc: FileCatalog) -> None:
    assert names(fc.find_files_by_metadata({"runNumber": 1})) == {
        "gamma/z20/run1", "gamma/z40/run1", "proton/z20/run1", "untagged/run1"}


def test_missing_metadata_never_matches_negative_operators(fc: FileCatalog) -> None:
    assert "untagged/run1" not in names(fc.find_files_by_metadata({"particle": {"nin": ["gamma"]}}))


def test_path_restricts_the_search_above_and_below_the_holder(fc: FileCatalog) -> None:
    assert names(fc.find_files_by_metadata({"zenith": 20}, path=f"{MC}/proton")) == {
        f"proton/z20/run{r}" for r in range(1, 5)}
    assert names(fc.find_files_by_metadata({"particle": "gamma"}, path=f"{MC}/gamma/z40/")) == Z40
    assert fc.find_files_by_metadata({"particle": "gamma"}, path=f"{MC}/proton") == []
    with pytest.raises(FileNotFoundError):
        fc.find_files_by_metadata({}, path="/nowhere")


def test_query_errors_are_explicit(fc: FileCatalog) -> None:
    with pytest.raises(ValueError, match="not defined"):
        fc.find_files_by_metadata({"energy": 1})
    with pytest.raises(ValueError, match="Illegal query operator"):
        fc.find_files_by_metadata({"zenith": {"~": 1}})
    with pytest.raises(ValueError, match="list of values for comparison"):
        fc.find_files_by_metadata({"zenith": {"<": [1, 2]}})
    with pytest.raises(ValueError, match="has type int"):
        fc.find_files_by_metadata({"zenith": "20"})


def test_updates_move_files_between_index_buckets(fc: FileCatalog) -> None:
    lfn = f"{MC}/gamma/z20/run1"
    fc.set_metadata(lfn, {"runNumber": 100})
    assert fc.find_files_by_metadata({"runNumber": {">": 50}}) == [lfn]
    fc.set_metadata(f"{MC}/gamma/z20", {"zenith": 60})
    assert names(fc.find_files_by_metadata({"zenith": {">=": 60}})) == {f"gamma/z20/run{r}" for r in range(1, 5)}
    fc.remove_metadata(f"{MC}/gamma/z20", ["zenith"])
    assert fc.find_files_by_metadata({"zenith": 60}) == []
    with pytest.raises(ValueError, match="conflict"):
        fc.set_metadata(f"{MC}/gamma", {"zenith": 10})  # gamma/z40 still holds zenith
    fc.remove_metadata(f"{MC}/gamma/z40", ["zenith"])
    fc.set_metadata(f"{MC}/gamma", {"zenith": 10})  # no conflict any more
    assert lfn in fc.find_files_by_metadata({"zenith": 10})
    fc.remove_files([lfn])
    assert lfn not in fc.find_files_by_metadata({"zenith": 10})
    assert fc.find_files_by_metadata({"runNumber": 100}) == []


def test_range_scans_skip_values_that_left_and_count_returning_ones_once() -> None:
    fc = FileCatalog()
    fc.add_metadata_field("runNumber", int, FILE_META)
    for run in range(100):
        fc.add_file(f"/runs/r{run}", 1, metadata={"runNumber": run})
    assert len(fc.find_files_by_metadata({"runNumber": {">=": 10, "<": 20}})) == 10  # values now sorted
    fc.remove_files(["/runs/r12", "/runs/r13"])  # two stale values, too few to trigger a compaction
    fc.set_metadata("/runs/r14", {"runNumber": 1000})
    fc.set_metadata("/runs/r15", {"runNumber": 13})  # a stale value comes back: listed twice, found once
    found = fc.find_files_by_metadata({"runNumber": {">=": 10, "<": 20}})
    assert sorted(found) == sorted(f"/runs/r{run}" for run in (10, 11, 15, 16, 17, 18, 19))
    assert fc.find_files_by_metadata({"runNumber": {">": 999}}) == ["/runs/r14"]


def test_file_matches_agrees_with_the_index(fc: FileCatalog) -> None:
    query = {"particle": "gamma", "runNumber": {">": 2}}
    hits = set(fc.find_files_by_metadata(query))
    for lfn in (f"{MC}/gamma/z20/run3", f"{MC}/gamma/z20/run1", f"{MC}/proton/z20/run4", f"{MC}/untagged/run1"):
        assert fc.file_matches(lfn, query) == (lfn in hits)


# --- replicas, namespace, listeners, meter -------------------------------------------------------------


def test_replicas_and_removal(fc: FileCatalog) -> None:
    lfn = f"{MC}/gamma/z20/run2"
    fc.add_replicas({lfn: "TAPE-1", "/no/such": "TAPE-1"})
    ok, failed = fc.get_replicas([lfn, "/no/such"])
    assert ok == {lfn: {"DISK-1": lfn, "TAPE-1": lfn}}
    assert failed == {"/no/such": NO_SUCH_FILE}
    fc.remove_replicas({lfn: "DISK-1"})
    assert fc.get_replicas(lfn).successful == {lfn: {"TAPE-1": lfn}}
    assert fc.remove_files([lfn, "/no/such"]).successful == {lfn: True, "/no/such": True}
    assert lfn not in fc and len(fc) == 12
    with pytest.raises(ValueError, match="already registered"):
        fc.add_file(f"{MC}/gamma/z20/run3", 1)


def test_listener_sees_a_fully_registered_file() -> None:
    fc = build_catalog()
    seen: list[tuple[str, bool]] = []
    fc.on_file_registered.append(lambda lfn: seen.append((lfn, fc.file_matches(lfn, {"runNumber": 7}))))
    fc.add_file(f"{MC}/gamma/z20/run7", 70, "DISK-1", {"runNumber": 7})
    assert seen == [(f"{MC}/gamma/z20/run7", True)]


def test_meter_and_counters_see_every_public_call() -> None:
    calls: list[tuple[str, str, int]] = []
    fc = build_catalog(meter=lambda db, op, rows: calls.append((db, op, rows)))
    calls.clear()
    fc.counters.clear()
    fc.find_files_by_metadata({"zenith": 20})
    fc.get_file_sizes([f"{MC}/gamma/z20/run1", "/missing"])
    with pytest.raises(ValueError):
        fc.find_files_by_metadata({"nope": 1})
    assert calls == [("FileCatalogDB", "findFilesByMetadata", 8), ("FileCatalogDB", "getFileSize", 2),
                     ("FileCatalogDB", "findFilesByMetadata", 0)]
    assert fc.counters == {"findFilesByMetadata": 2, "getFileSize": 1}


# --- datasets -------------------------------------------------------------------------------------------


def test_datasets_are_evaluated_on_demand(fc: FileCatalog) -> None:
    fc.add_dataset("/vo/datasets/gamma_z20", {"particle": "gamma", "zenith": 20})
    params = fc.get_dataset_parameters("/vo/datasets/gamma_z20")
    assert (params["NumberOfFiles"], params["TotalSize"]) == (4, 100)
    assert params["MetaQuery"] == {"particle": "gamma", "zenith": 20}
    fc.add_file(f"{MC}/gamma/z20/run9", 1000, "DISK-1", {"runNumber": 9})
    params = fc.get_dataset_parameters("/vo/datasets/gamma_z20")
    assert (params["NumberOfFiles"], params["TotalSize"]) == (5, 1100)
    assert len(fc.get_dataset_files("/vo/datasets/gamma_z20")) == 5
    with pytest.raises(ValueError, match="already exists"):
        fc.add_dataset("/vo/datasets/gamma_z20", {})
    with pytest.raises(ValueError, match="not defined"):
        fc.add_dataset("/vo/datasets/bad", {"energy": 1})
    fc.remove_dataset("/vo/datasets/gamma_z20")
    with pytest.raises(FileNotFoundError, match="Unknown MetaDataset"):
        fc.get_dataset_parameters("/vo/datasets/gamma_z20")


# --- facade -------------------------------------------------------------------------------------------------


def test_facade_return_shapes(fc: FileCatalog) -> None:
    client = FileCatalogClient(fc)
    lfn = f"{MC}/gamma/z40/run3"
    assert client.getFileSize([lfn, "/x"]) == {
        "OK": True, "Value": {"Successful": {lfn: 30}, "Failed": {"/x": NO_SUCH_FILE}}}
    assert client.getFileSize(lfn)["Value"]["Successful"] == {lfn: 30}
    assert client.getFileUserMetadata(lfn) == {
        "OK": True, "Value": {"particle": "gamma", "zenith": 40, "runNumber": 3, "nsb": 1.0}}
    assert client.getFileUserMetadata("/x") == {"OK": False, "Message": f"{NO_SUCH_FILE}: /x"}
    found = client.findFilesByMetadata({"zenith": 40, "runNumber": 3})
    assert found == {"OK": True, "Value": [lfn]}
    assert client.findFilesByMetadata({"bogus": 1})["OK"] is False
    assert client.getReplicas([lfn])["Value"] == {"Successful": {lfn: {"DISK-1": lfn}}, "Failed": {}}


def test_facade_registration_as_jobs_do_it(fc: FileCatalog) -> None:
    client = FileCatalogClient(fc)
    new = f"{MC}/gamma/z40/run8"
    res = client.addFile({new: {"Size": 5, "SE": "DISK-2", "GUID": "g", "Checksum": "c",
                                "Metadata": {"runNumber": 8}},
                          f"{MC}/gamma/z40/run1": {"Size": 1, "SE": "DISK-2"}})
    assert res["Value"]["Successful"] == {new: True}
    assert "already registered" in res["Value"]["Failed"][f"{MC}/gamma/z40/run1"]
    assert client.setMetadata(new, {"nsb": 0.2}) == {"OK": True, "Value": None}
    assert client.setMetadataBulk({new: {"runNumber": 18}, "/x": {"runNumber": 1}})["Value"]["Failed"].keys() == {"/x"}
    assert client.addReplica({new: {"SE": "TAPE-1"}})["Value"]["Successful"] == {new: True}
    assert client.getReplicas(new)["Value"]["Successful"][new].keys() == {"DISK-2", "TAPE-1"}
    assert client.removeReplica({new: {"SE": "DISK-2"}})["OK"]
    assert client.findFilesByMetadata({"runNumber": 18, "nsb": 0.2})["Value"] == [new]
    assert client.getDirectoryUserMetadata(f"{MC}/gamma/z40")["Value"] == {"particle": "gamma", "zenith": 40}
    assert client.addMetadataField("site", "VARCHAR(128)")["OK"]
    assert client.getMetadataFields()["Value"]["DirectoryMetaFields"]["site"] == "VARCHAR(128)"
    assert client.removeFile(new)["Value"]["Successful"] == {new: True}


def test_facade_datasets(fc: FileCatalog) -> None:
    client = FileCatalogClient(fc)
    assert client.addDataset({"/ds/a": {"zenith": 40}, "/ds/b": {"nope": 1}})["Value"]["Successful"] == {"/ds/a": True}
    res = client.getDatasetParameters("/ds/a")["Value"]
    assert res["Successful"]["/ds/a"]["NumberOfFiles"] == 4
    assert client.getDatasetParameters(["/ds/zz"])["Value"]["Failed"] == {"/ds/zz": "Unknown MetaDataset /ds/zz"}
    assert len(client.getDatasetFiles("/ds/a")["Value"]["Successful"]["/ds/a"]) == 4
    assert client.removeDataset("/ds/a")["Value"]["Successful"] == {"/ds/a": True}


# --- property: index == brute force ------------------------------------------------------------------------

DIRS = ["/a", "/a/b", "/a/b/c", "/a/d", "/e", "/e/f"]
OPS = ["=", "in", "!=", "nin", "<", "<=", ">", ">="]


def brute_force_match(meta: dict[str, Any], query: dict[str, dict[str, Any]]) -> bool:
    """MetaQuery.applyQuery, written independently of the catalog."""
    for key, ops in query.items():
        if key not in meta:
            return False
        value = meta[key]
        for op, operand in ops.items():
            ok = {
                "=": lambda: value == operand, "!=": lambda: value != operand,
                "in": lambda: value in operand, "nin": lambda: value not in operand,
                "<": lambda: value < operand, "<=": lambda: value <= operand,
                ">": lambda: value > operand, ">=": lambda: value >= operand,
            }[op]()
            if not ok:
                return False
    return True


small_int = hs.integers(0, 3)
condition = hs.sampled_from(OPS).flatmap(
    lambda op: (hs.lists(small_int, max_size=3) if op in ("in", "nin") else small_int).map(lambda v: {op: v}))
query_strategy = hs.dictionaries(hs.sampled_from(["d1", "d2", "f1", "f2"]), condition, max_size=2)
add_file = hs.tuples(hs.just("file"), hs.sampled_from(DIRS), hs.integers(0, 30), small_int, small_int)
set_dir_meta = hs.tuples(hs.just("dir_meta"), hs.sampled_from(DIRS), hs.sampled_from(["d1", "d2"]), small_int)
mutation = hs.one_of(
    add_file,
    set_dir_meta,
    hs.tuples(hs.just("dir_unset"), hs.sampled_from(DIRS), hs.sampled_from(["d1", "d2"])),
    hs.tuples(hs.just("file_meta"), hs.integers(0, 30), hs.sampled_from(["f1", "f2"]), small_int),
    hs.tuples(hs.just("remove"), hs.integers(0, 30)),
)


def apply(fc: FileCatalog, op: tuple) -> None:
    kind = op[0]
    try:
        if kind == "dir_meta":
            fc.create_directory(op[1])
            fc.set_metadata(op[1], {op[2]: op[3]})
        elif kind == "dir_unset" and op[1] in fc._dir_ids:
            fc.remove_metadata(op[1], [op[2]])
        elif kind == "file":
            fc.add_file(f"{op[1]}/f{op[2]}", op[2], "SE", {"f1": op[3], "f2": op[4]})
        elif kind == "file_meta":
            lfns = sorted(fc.lfns())
            if lfns:
                fc.set_metadata(lfns[op[1] % len(lfns)], {op[2]: op[3]})
        elif kind == "remove":
            lfns = sorted(fc.lfns())
            if lfns:
                fc.remove_files([lfns[op[1] % len(lfns)]])
    except ValueError:
        pass  # conflicts and duplicates are legitimately refused


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files=hs.lists(add_file, min_size=3, max_size=30), dir_meta=hs.lists(set_dir_meta, min_size=1, max_size=8),
       mutations=hs.lists(mutation, max_size=20), queries=hs.lists(query_strategy, min_size=1, max_size=4),
       path=hs.sampled_from(["/", "/a", "/a/b", "/e"]))
def test_index_query_equals_brute_force_scan(
    files: list[tuple], dir_meta: list[tuple], mutations: list[tuple], queries: list[dict], path: str
) -> None:
    fc = FileCatalog()
    fc.add_metadata_field("d1", int)
    fc.add_metadata_field("d2", int)
    fc.add_metadata_field("f1", int, FILE_META)
    fc.add_metadata_field("f2", int, FILE_META)
    for dirpath in DIRS:
        fc.create_directory(dirpath)
    for op in files + dir_meta + mutations:
        apply(fc, op)
    for query in queries:
        found = fc.find_files_by_metadata(query, path)
        expected = {
            lfn for lfn in fc.lfns()
            if (path == "/" or lfn.startswith(path + "/"))
            and brute_force_match(fc.get_file_user_metadata(lfn), query)
        }
        assert found == [lfn for lfn in fc.lfns() if lfn in expected]  # each once, by FileID as the DFC answers
        assert set(found) == expected


def test_compiled_query_agrees_with_file_matches_and_is_not_metered():
    calls = []
    catalog = FileCatalog(meter=lambda db, op, rows: calls.append(op))
    catalog.add_metadata_field("particle", str)
    catalog.add_metadata_field("nsb", int, "-f")
    catalog.create_directory("/d")
    catalog.set_metadata("/d", {"particle": "proton"})
    catalog.add_file("/d/a", 10, "SE", {"nsb": 1})
    catalog.add_file("/d/b", 10, "SE", {"nsb": 5})
    query = {"particle": "proton", "nsb": {">": 2}}
    predicate = catalog.compile_query(query)
    calls.clear()
    assert [predicate(catalog.effective_metadata(lfn)) for lfn in ("/d/a", "/d/b")] == [False, True]
    assert calls == []
    assert [catalog.file_matches(lfn, query) for lfn in ("/d/a", "/d/b")] == [False, True]


# --- compact layout: names coded, not stored; LFN index; file fields as columns -------------------------

name_text = hs.text(alphabet="ab_.-0123456789x", min_size=1, max_size=40)


@settings(max_examples=200, deadline=None)
@given(names=hs.lists(name_text, min_size=1, max_size=40, unique=True), removed=hs.sets(hs.integers(0, 39)))
def test_coded_names_read_back_exactly_and_are_found_after_removals_and_growth(names: list[str], removed: set[int]) -> None:
    fc = FileCatalog()
    lfns = [f"/d{i % 3}/{name}" for i, name in enumerate(names)] + ["//odd", "/d0/Z" + "9" * 30]
    for i, lfn in enumerate(lfns):
        fc.add_file(lfn, i, "SE")
    gone = {lfns[i] for i in removed if i < len(lfns)}
    fc.remove_files(sorted(gone))
    live = [lfn for lfn in lfns if lfn not in gone]
    assert list(fc.lfns()) == live and len(fc) == len(live)
    assert fc.get_file_sizes(lfns).successful == {lfn: i for i, lfn in enumerate(lfns) if lfn not in gone}
    assert all(lfn not in fc for lfn in gone)
    assert "/odd" not in fc and ("//odd" in fc) == ("//odd" not in gone)
    fc.add_file(lfns[0] + "0", 1)  # a near name is another file
    assert fc.file_id(lfns[0] + "0") not in (None, fc.file_id(lfns[0]))


def test_a_removed_file_keeps_its_name_for_lists_of_outputs() -> None:
    from twin.dirac.catalog import LfnList

    fc = FileCatalog()
    outputs = LfnList(fc)
    fc.add_file("/p/00000001_00000007_0_0.dat", 5, "SE")
    outputs.extend(["/p/00000001_00000007_0_0.dat", "/p/never-registered"])
    fc.remove_files("/p/00000001_00000007_0_0.dat")
    assert list(outputs) == ["/p/00000001_00000007_0_0.dat", "/p/never-registered"]
    fc.add_file("/p/00000001_00000007_0_0.dat", 6, "SE")  # registered again: a new FileID
    assert fc.get_file_sizes("/p/00000001_00000007_0_0.dat").successful == {"/p/00000001_00000007_0_0.dat": 6}


def test_file_fields_hold_any_value_of_their_type_and_filter_like_applyquery() -> None:
    fc = FileCatalog()
    fc.add_metadata_field("run", int, FILE_META)
    fc.add_metadata_field("x", float, FILE_META)
    fc.add_metadata_field("tag", str, FILE_META)
    values = [(5, 0.5, "b"), (2**70, float("nan"), "a"), (-(2**63), 2.0, "c")]
    for i, (run, x, tag) in enumerate(values):
        fc.add_file(f"/f/{i}", 1, "SE", {"run": run, "x": x, "tag": tag})
    fc.add_file("/f/none", 1, "SE")
    meta = fc.get_file_user_metadata("/f/1")
    assert meta["run"] == 2**70 and meta["tag"] == "a" and meta["x"] != meta["x"]
    assert fc.get_file_user_metadata("/f/none") == {}
    assert fc.find_files_by_metadata({"run": {">": 4}}) == ["/f/0", "/f/1"]
    assert fc.find_files_by_metadata({"run": {"<": 2**80}}) == ["/f/0", "/f/1", "/f/2"]
    assert fc.find_files_by_metadata({"x": {"!=": 0.5}}) == ["/f/1", "/f/2"]  # NaN != 0.5; no value never matches
    assert fc.find_files_by_metadata({"tag": {">=": "b"}, "run": {"nin": [5]}}) == ["/f/2"]
    fc.remove_metadata("/f/2", ["tag"])
    assert fc.find_files_by_metadata({"tag": {">=": "b"}}) == ["/f/0"]


def test_narrow_columns_widen_when_a_value_needs_it_and_keep_the_others() -> None:
    fc = FileCatalog()
    fc.add_metadata_field("run", int, FILE_META)
    fc.add_file("/w/a", 5, "SE", {"run": 7})
    fc.add_file("/w/none", 6, "SE")
    fc.add_file("/w/b", 5 * 2**32, "SE", {"run": -(2**31)})  # a 20 GiB file; the int32 "no value" marker as a value
    fc.add_file("/w/c", 1, "SE", {"run": 2**40})
    assert fc.get_file_sizes(["/w/a", "/w/b"]).successful == {"/w/a": 5, "/w/b": 5 * 2**32}
    assert [fc.get_file_user_metadata(f"/w/{n}").get("run") for n in ("a", "none", "b", "c")] == [7, None, -(2**31), 2**40]
    assert fc.find_files_by_metadata({"run": {"<": 8}}) == ["/w/a", "/w/b"]
    for i in range(70_000):  # past 65,535 directories: the directory column widens
        fc.create_directory(f"/many/{i}")
    fc.add_file("/many/69999/x", 3, "SE")
    assert fc.get_file_sizes("/many/69999/x").successful == {"/many/69999/x": 3} and "/many/69998/x" not in fc


# --- the registration path of job outputs -------------------------------------------------------------


def test_paid_registration_is_counted_but_not_charged_again_and_writes_like_add_file() -> None:
    calls: list[tuple[str, str, int]] = []
    fc = build_catalog(meter=lambda db, op, rows: calls.append((db, op, rows)))
    seen: list[str] = []
    fc.on_file_registered.append(seen.append)
    calls.clear()
    fc.counters.clear()
    one, two = f"{MC}/gamma/z20/00000001_00000011_0_0.dat", f"{MC}/new/00000001_00000012_0_0.dat"
    fids = fc.add_files_paid([(one, 5, "DISK-1", {"runNumber": 11}), (two, 6, ["DISK-2", "DISK-1", "DISK-2"], None)])
    assert calls == [] and fc.counters == {"addFile": 2} and seen == [one, two]
    assert fids == [fc.file_id(one), fc.file_id(two)] and fids[1] == fids[0] + 1
    assert fc.get_replicas([one, two]).successful == {one: {"DISK-1": one}, two: {"DISK-2": two, "DISK-1": two}}
    assert fc.get_file_user_metadata(one) == {"particle": "gamma", "zenith": 20, "runNumber": 11}
    with pytest.raises(ValueError, match="File already registered"):
        fc.add_files_paid([(one, 1, "DISK-1", None)])
    assert fc.counters["addFile"] == 3 and fc.get_file_sizes(one).successful == {one: 5}


def test_metered_calls_charge_their_rows_and_a_failed_call_none() -> None:
    calls: list[tuple[str, str, int]] = []
    fc = build_catalog(meter=lambda db, op, rows: calls.append((db, op, rows)))
    calls.clear()
    fc.add_file(f"{MC}/gamma/z20/extra", 1, "DISK-1")
    with pytest.raises(ValueError):
        fc.add_file(f"{MC}/gamma/z20/extra", 1, "DISK-1")
    fc.get_replicas([f"{MC}/gamma/z20/run1", f"{MC}/gamma/z20/run2", "/nope"])
    assert calls == [("FileCatalogDB", "addFile", 1), ("FileCatalogDB", "addFile", 0), ("FileCatalogDB", "getReplicas", 3)]


any_name = hs.text(alphabet="ab_.0123456789\x00\u00e9\u0663\ud800", min_size=1, max_size=24)


@settings(max_examples=300, deadline=None)
@given(names=hs.lists(any_name, min_size=1, max_size=30), digits=hs.lists(hs.text(alphabet="0123456789", min_size=1, max_size=1), min_size=1),
       creates=hs.lists(hs.booleans(), min_size=1))
def test_name_codes_of_known_shapes_equal_the_digit_split(names: list[str], digits: list[str], creates: list[bool]) -> None:
    """The shape cache codes a name as the regex split does, also for NULs, non-ASCII digits and lone
    surrogates, and for names of the same shape with other digits (the common case of job outputs)."""
    from twin.dirac.catalog import _TEXT, _NameCodec

    codec, reference = _NameCodec(), _NameCodec()
    renamed = ["".join(digits[i % len(digits)] if c.isascii() and c.isdigit() else c for i, c in enumerate(name)) for name in names]
    for i, name in enumerate(names + renamed + names):
        create = creates[i % len(creates)]
        coded = codec.encode(name, create)
        assert coded == reference._split_encode(name, create), name
        if coded is not None and coded[0] != _TEXT:
            assert codec.decode(*coded) == name


def test_replicas_and_sizes_in_one_pass_answer_and_charge_as_the_two_calls() -> None:
    calls: list[tuple[str, str, int]] = []
    fc = build_catalog(meter=lambda db, op, rows: calls.append((db, op, rows)))
    fc.add_replicas({f"{MC}/gamma/z20/run2": "DISK-2"})
    lfns = [f"{MC}/gamma/z20/run2", "/missing", f"{MC}/proton/z20/run3", f"{MC}/gamma/z20/run2"]
    calls.clear()
    fc.counters.clear()
    both = fc.get_replicas_and_sizes(lfns)
    one_pass = (calls[:], dict(fc.counters))
    calls.clear()
    fc.counters.clear()
    assert both == (fc.get_replicas(lfns), fc.get_file_sizes(lfns))
    assert one_pass == (calls, dict(fc.counters)) == (
        [("FileCatalogDB", "getReplicas", 3), ("FileCatalogDB", "getFileSize", 3)], {"getReplicas": 1, "getFileSize": 1})
    assert both[0].successful[f"{MC}/gamma/z20/run2"] == {"DISK-1": f"{MC}/gamma/z20/run2", "DISK-2": f"{MC}/gamma/z20/run2"}


def test_growth_rebuilds_the_lfn_table_as_slot_by_slot_insertion_would() -> None:
    """_rehash places each live FileID at the first empty slot from its home without comparing keys:
    the very table that inserting them one by one through _slot builds (removed and odd names left out)."""
    from array import array

    from twin.dirac.catalog import _EMPTY, _REMOVED

    fc = FileCatalog()
    lfns = [f"/p/{d:03d}xxx/00000001_{t:08d}_0_{k}.dat" for t in range(300) for d in (t // 100,) for k in (0, 1)]
    lfns += ["//odd", "/p/x" + "7" * 30, "/p/plain"]
    for i, lfn in enumerate(lfns):
        fc.add_file(lfn, i, "SE")
    fc.remove_files(lfns[::7])
    fc._rehash()
    rehashed = fc._slots
    fc._slots = array("i", [_EMPTY]) * len(rehashed)  # the same catalog, its table rebuilt slot by slot
    odd = set(fc._odd.values())
    for fid in range(len(fc._rset)):
        if fc._rset[fid] != _REMOVED and fid not in odd:
            fc._slots[fc._slot(fc._key_of(fid))] = fid
    assert rehashed == fc._slots and fc._used_slots == len(fc) - 1  # the odd name is not in the table
    assert all(fc.file_id(lfn) == (None if i % 7 == 0 else i) for i, lfn in enumerate(lfns))


@pytest.mark.parametrize("lfns", [["/d/a"], "/d/a", ("/d/a",), {"/d/a"}, {"/d/a": True}],
                         ids=["list", "str", "tuple", "set", "dict"])
def test_the_client_takes_lfns_in_every_shape_dirac_does(lfns):
    """DIRAC's checkArgumentFormat takes a str, a list or a dict of LFNs; the compiled client must too
    (a `list[str]` annotation made it raise TypeError on a tuple or a dict: review 6, R1)."""
    catalog = FileCatalog()
    catalog.add_file("/d/a", 7, "SE")
    client = FileCatalogClient(catalog)
    assert client.getFileSize(lfns)["Value"] == {"Successful": {"/d/a": 7}, "Failed": {}}
    assert client.getReplicas(lfns)["Value"] == {"Successful": {"/d/a": {"SE": "/d/a"}}, "Failed": {}}
    assert client.removeFile(lfns)["OK"] and catalog.file_id("/d/a") is None


@pytest.mark.parametrize("size", [5.0, "5", -1, True, None])
def test_addfile_with_a_size_that_is_not_a_natural_number_fails_that_file_only(size):
    """The size check is the contract in both modes: a Failed entry, never a TypeError from a compiled `int`."""
    client = FileCatalogClient(FileCatalog())
    result = client.addFile({"/d/x": {"Size": size, "SE": "SE"}, "/d/y": {"Size": 3, "SE": "SE"}})
    assert result["OK"] and list(result["Value"]["Successful"]) == ["/d/y"]
    assert result["Value"]["Failed"]["/d/x"] == f"File size must be a non-negative int, got {size!r}"
