"""Small dict-backed implementations of the client Protocols of ``twin.dirac.clients``.

For unit tests, and for the differential harness that runs the native plugins and the genuine
DIRAC/CTADIRAC ones against the same environment. They return S_OK/S_ERROR shapes and error
strings like the real services where a plugin can observe them (``DataManagement/DMSHelpers``,
``TransformationDB``), and keep everything in insertion order so results are deterministic.
They also count calls per method (``calls``) so a test can check the RPC load a plugin causes.
"""

from __future__ import annotations

import operator
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from twin.dirac.clients import Result
from twin.dirac.returnvalues import S_ERROR, S_OK

NO_SUCH_FILE = "No such file or directory"

_META_OPERATORS = {
    "=": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
    ">=": operator.ge,
    "<=": operator.le,
    "in": lambda value, allowed: value in allowed,
    "nin": lambda value, excluded: value not in excluded,
}


def _asList(lfns: Iterable[str] | str) -> list[str]:
    return [lfns] if isinstance(lfns, str) else list(lfns)


def _metaMatches(value: Any, condition: Any) -> bool:
    """One DFC meta-query term: scalar -> "=", list -> "in", {op: operand, ...} -> all ops."""
    if isinstance(condition, dict):
        terms = condition.items()
    elif isinstance(condition, (list, tuple, set)):
        terms = [("in", condition)]
    else:
        terms = [("=", condition)]
    try:
        return all(_META_OPERATORS[op](value, operand) for op, operand in terms)
    except TypeError:  # e.g. int compared with str: the DB would not match either
        return False


class FakeFileCatalog:
    """In-memory DFC: per-file size, replicas and user metadata, plus directory metadata.

    ``FakeFileCatalog(sizes={lfn: bytes}, replicas={lfn: [SE]}, metadata={lfn: {k: v}},
    directory_metadata={dir: {k: v}})``; an LFN named in any of them exists (size 0 if not given).
    """

    def __init__(
        self,
        sizes: dict[str, int] | None = None,
        replicas: dict[str, Iterable[str]] | None = None,
        metadata: dict[str, dict[str, Any]] | None = None,
        directory_metadata: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.files: dict[str, dict[str, Any]] = {}
        self.directoryMetadata: dict[str, dict[str, Any]] = {}
        self.calls: Counter[str] = Counter()
        for lfn in [*(sizes or {}), *(replicas or {}), *(metadata or {})]:
            if lfn not in self.files:
                self.addFile(
                    lfn,
                    size=(sizes or {}).get(lfn, 0),
                    replicas=(replicas or {}).get(lfn, ()),
                    metadata=(metadata or {}).get(lfn),
                )
        for path, meta in (directory_metadata or {}).items():
            self.setDirectoryMetadata(path, meta)

    # -- set-up helpers --------------------------------------------------------------------
    def addFile(
        self, lfn: str, size: int = 0, replicas: Iterable[str] = (), metadata: dict[str, Any] | None = None
    ) -> None:
        self.files[lfn] = {"Size": size, "Replicas": list(replicas), "Metadata": dict(metadata or {})}

    def setFileMetadata(self, lfn: str, metadata: dict[str, Any]) -> None:
        self.files[lfn]["Metadata"].update(metadata)

    def setDirectoryMetadata(self, path: str, metadata: dict[str, Any]) -> None:
        self.directoryMetadata.setdefault(path.rstrip("/") or "/", {}).update(metadata)

    def _fullMetadata(self, lfn: str) -> dict[str, Any]:
        """Directory metadata of every ancestor (nearest wins), then the file's own."""
        merged: dict[str, Any] = dict(self.directoryMetadata.get("/", {}))
        parts = lfn.strip("/").split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            merged.update(self.directoryMetadata.get("/" + "/".join(parts[:depth]), {}))
        merged.update(self.files[lfn]["Metadata"])
        return merged

    # -- FileCatalogAPI --------------------------------------------------------------------
    def getFileSize(self, lfns: list[str] | str) -> Result:
        self.calls["getFileSize"] += 1
        successful, failed = {}, {}
        for lfn in _asList(lfns):
            if lfn in self.files:
                successful[lfn] = self.files[lfn]["Size"]
            else:
                failed[lfn] = NO_SUCH_FILE
        return S_OK({"Successful": successful, "Failed": failed})

    def getFileUserMetadata(self, lfn: str) -> Result:
        self.calls["getFileUserMetadata"] += 1
        if lfn not in self.files:
            return S_ERROR(NO_SUCH_FILE)
        return S_OK(self._fullMetadata(lfn))

    def findFilesByMetadata(self, query: dict[str, Any], path: str = "/") -> Result:
        self.calls["findFilesByMetadata"] += 1
        prefix = path.rstrip("/") + "/"
        found = []
        for lfn in self.files:
            if not lfn.startswith(prefix):
                continue
            meta = self._fullMetadata(lfn)
            if all(key in meta and _metaMatches(meta[key], cond) for key, cond in query.items()):
                found.append(lfn)
        return S_OK(found)

    def getReplicas(self, lfns: list[str] | str) -> Result:
        self.calls["getReplicas"] += 1
        successful, failed = {}, {}
        for lfn in _asList(lfns):
            if lfn in self.files:
                successful[lfn] = {se: lfn for se in self.files[lfn]["Replicas"]}
            else:
                failed[lfn] = NO_SUCH_FILE
        return S_OK({"Successful": successful, "Failed": failed})


class FakeTransformationClient:
    """In-memory TransformationFiles/TransformationTasks for the calls plugins make.

    ``FakeTransformationClient(files={transID: [lfn, ...]})`` adds those files as Unused.
    ``addTaskForTransformation`` follows TransformationDB: only Unused/ProbInFC files can be
    tasked; they become Assigned with UsedSE = the task SE.
    """

    allowedStatusForTasks = ("Unused", "ProbInFC")

    def __init__(self, files: dict[int, Iterable[str]] | None = None) -> None:
        self.transformationFiles: dict[int, dict[str, dict[str, Any]]] = {}
        self.tasks: dict[int, list[dict[str, Any]]] = {}
        self.calls: Counter[str] = Counter()
        for transID, lfns in (files or {}).items():
            self.addFilesToTransformation(transID, list(lfns))
        self.calls.clear()

    def addFilesToTransformation(self, transID: int, lfns: list[str]) -> Result:
        self.calls["addFilesToTransformation"] += 1
        rows = self.transformationFiles.setdefault(transID, {})
        successful = {}
        for lfn in lfns:
            if lfn in rows:
                successful[lfn] = "Present"
                continue
            rows[lfn] = {
                "TransformationID": transID,
                "LFN": lfn,
                "Status": "Unused",
                "TaskID": None,
                "TargetSE": "Unknown",
                "UsedSE": "Unknown",
                "ErrorCount": 0,
            }
            successful[lfn] = "Added"
        return S_OK({"Successful": successful, "Failed": {}})

    def addTaskForTransformation(self, transID: int, lfns: list[str] | None = None, se: str = "Unknown") -> Result:
        self.calls["addTaskForTransformation"] += 1
        lfns = lfns or []
        rows = self.transformationFiles.get(transID, {})
        available = {lfn for lfn in lfns if lfn in rows and rows[lfn]["Status"] in self.allowedStatusForTasks}
        if set(lfns) - available:
            return S_ERROR("Not all supplied files available in the transformation database")
        tasks = self.tasks.setdefault(transID, [])
        taskID = len(tasks) + 1
        tasks.append({"TaskID": taskID, "TargetSE": se, "ExternalStatus": "Created", "InputVector": list(lfns)})
        for lfn in lfns:
            rows[lfn].update(Status="Assigned", TaskID=taskID, UsedSE=se)
        return S_OK(taskID)

    def getTransformationFiles(self, condDict: dict[str, Any] | None = None) -> Result:
        self.calls["getTransformationFiles"] += 1
        return S_OK([dict(row) for row in self._select(condDict or {})])

    def getCounters(self, table: str, attrList: list[str], condDict: dict[str, Any]) -> Result:
        """[({attr: value}, count)] ordered by the attribute values (as a GROUP BY would)."""
        self.calls["getCounters"] += 1
        if table != "TransformationFiles":
            return S_ERROR(f"Table {table} not modelled by FakeTransformationClient")
        counts = Counter(tuple(row[attr] for attr in attrList) for row in self._select(condDict))
        return S_OK([(dict(zip(attrList, key)), n) for key, n in sorted(counts.items(), key=lambda kv: str(kv[0]))])

    def _select(self, condDict: dict[str, Any]) -> list[dict[str, Any]]:
        def wanted(row: dict[str, Any]) -> bool:
            for key, cond in condDict.items():
                allowed = cond if isinstance(cond, (list, tuple, set)) else [cond]
                if row.get(key) not in allowed:
                    return False
            return True

        return [row for rows in self.transformationFiles.values() for row in rows.values() if wanted(row)]


class FakeResources:
    """Site/SE topology: ``FakeResources(site_ses={site: [SE]}, tape_ses=[...], cpu_shares={site: share})``.

    Every SE is disk unless listed in ``tape_ses``. ``getSitesForSE`` answers like DMSHelpers
    (LOCAL connection): "Non-existing SE" for an unknown SE and, with ``force_single_site``
    (DIRAC's ForceSingleSitePerSE default), "SE is at more than one site".
    ``getSEsForSite`` answers like SiteSEMapping: [] for an unknown site.
    """

    def __init__(
        self,
        site_ses: dict[str, Iterable[str]] | None = None,
        tape_ses: Iterable[str] = (),
        cpu_shares: dict[str, float] | None = None,
        extra_ses: Iterable[str] = (),
        force_single_site: bool = True,
    ) -> None:
        self.siteSEs = {site: list(ses) for site, ses in (site_ses or {}).items()}
        self.tapeSEs = set(tape_ses)
        self.cpuShares = dict(cpu_shares or {})
        self.knownSEs = {se for ses in self.siteSEs.values() for se in ses} | self.tapeSEs | set(extra_ses)
        self.forceSingleSite = force_single_site

    def isDiskSE(self, se: str) -> bool:
        return se not in self.tapeSEs

    def getSitesForSE(self, se: str) -> Result:
        if se not in self.knownSEs:
            return S_ERROR("Non-existing SE")
        sites = [site for site, ses in self.siteSEs.items() if se in ses]
        if len(sites) > 1 and self.forceSingleSite:
            return S_ERROR("SE is at more than one site")
        return S_OK(sites)

    def getSEsForSite(self, site: str) -> Result:
        """Sorted, as DIRAC's DMSHelpers returns them (ByShare's duplicate-task order depends on it)."""
        return S_OK(sorted(self.siteSEs.get(site, [])))

    def getCPUShares(self) -> dict[str, float]:
        return dict(self.cpuShares)


class FakeOperations:
    """The Operations CS section as a flat dict: ``FakeOperations({"TransformationPlugins/GroupSize": "5"})``.

    Store values as the CS holds them (strings) when the cast done by getPluginParam matters.
    """

    def __init__(self, values: dict[str, Any] | None = None) -> None:
        self.values = dict(values or {})

    def getValue(self, path: str, default: Any = None) -> Any:
        return self.values.get(path, default)

    def setValue(self, path: str, value: Any) -> None:
        self.values[path] = value


@dataclass
class FakeEnvironment:
    """The four fakes together, plus a one-call way to build and run a plugin the way the agent does."""

    fc: FakeFileCatalog = field(default_factory=FakeFileCatalog)
    transClient: FakeTransformationClient = field(default_factory=FakeTransformationClient)
    resources: FakeResources = field(default_factory=FakeResources)
    operations: FakeOperations = field(default_factory=FakeOperations)

    def makePlugin(
        self,
        plugin: str,
        params: dict[str, Any],
        data: dict[str, list[str]],
        rng: random.Random | None = None,
        pluginClass: type | None = None,
    ) -> Any:
        """Build, setParameters, setInputData: what TransformationAgent step 7 does before run()."""
        from twin.dirac.transformation.plugins import load_plugin_class

        cls = pluginClass or load_plugin_class(None)
        obj = cls(
            plugin,
            transClient=self.transClient,
            fc=self.fc,
            resources=self.resources,
            operations=self.operations,
            rng=rng if rng is not None else random.Random(0),
        )
        obj.setParameters(params)
        obj.setInputData(data)
        return obj

    def runPlugin(self, plugin: str, params: dict[str, Any], data: dict[str, list[str]], **kwargs: Any) -> Result:
        return self.makePlugin(plugin, params, data, **kwargs).run()


def calibrationFileMetadata(obs_id: Any, ae_id: Any, data_type: str, release: str = "v1") -> dict[str, Any]:
    """DFC user metadata of a CTA telescope calibration file, as ByTelescopeChunk's query expects it."""
    return {
        "curation__release": release,
        "data__level": "DL1",
        "data__division": "Monitoring",
        "data__association": "Telescope",
        "data__type": data_type,
        "instance__obs_id": obs_id,
        "instance__ae_id": ae_id,
    }
