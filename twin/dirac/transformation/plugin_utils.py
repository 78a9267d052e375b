"""Native equivalent of DIRAC's ``PluginUtilities`` and the grouping helpers the TS plugins share.

Follows ``DIRAC/TransformationSystem/Client/Utilities.py`` (DIRAC 9.1.22) and
``DIRACCommon/Core/Utilities/List.py`` step by step, because the twin must create exactly the
tasks the real TransformationAgent would: same key order, same chunking, same tie-breaks, same
type casting of plugin parameters, same edge cases (including the ones that raise).
The only change of substance is that DIRAC's global singletons (``Operations()``,
``StorageElement(se).status()``, ``getSitesForSE``) are reached through the injected
``OperationsAPI`` and ``ResourcesAPI`` of ``twin.dirac.clients``.
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from twin.dirac.clients import (
    FileCatalogAPI,
    OperationsAPI,
    ResourcesAPI,
    Result,
    TransformationClientAPI,
)
from twin.dirac.returnvalues import S_ERROR, S_OK

Task = tuple[str, list[str]]

_log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# Module functions (DIRACCommon List.py, DIRAC SaferEval.py, TS Client/Utilities.py)
# --------------------------------------------------------------------------------------------
def getChunk(aList: Sequence[Any], chunkSize: int) -> Iterable[Sequence[Any]]:
    """Consecutive slices of ``int(chunkSize)`` (DIRACCommon List.getChunk)."""
    chunkSize = int(chunkSize)
    for start in range(0, len(aList), chunkSize):
        yield aList[start : start + chunkSize]


def breakListIntoChunks(aList: Iterable[Any], chunkSize: int) -> list[Any]:
    """Slices of chunkSize, last one shorter; RuntimeError below 1, as DIRACCommon does.

    The ``< 1`` comparison is done on the raw value, so a string chunkSize raises TypeError
    exactly like DIRAC.
    """
    if chunkSize < 1:
        raise RuntimeError("chunkSize cannot be less than 1")
    if isinstance(aList, (set, dict, tuple, type({}.keys()), type({}.items()), type({}.values()))):
        aList = list(aList)
    return list(getChunk(aList, chunkSize))


def saferEval(obj_str: Any, max_len: int = 2048) -> Any:
    """``ast.literal_eval`` with DIRAC's length guard and ValueError-only failures (SaferEval.py)."""
    obj_str = str(obj_str)
    if len(obj_str) > max_len:
        raise ValueError(f"Object string is too long (>{max_len} bytes)")
    try:
        return ast.literal_eval(obj_str)
    except (ValueError, TypeError, SyntaxError):
        raise ValueError("Syntax error processing object expression")
    except (MemoryError, RecursionError):
        raise ValueError("Object expression too large")
    except Exception:
        raise ValueError("Unknown error processing object expression")


def getFileGroups(fileReplicas: dict[str, Iterable[str]], groupSE: bool = True) -> dict[str, list[str]]:
    """Group LFNs by replica location.

    groupSE=True: one key per exact (sorted, de-duplicated) replica set, "SE1,SE2" for several;
    groupSE=False: a file is listed under each of its SEs. Files without replicas are dropped.
    Key and LFN order follow the input dict order, as in DIRAC.
    """
    fileGroups: dict[str, list[str]] = {}
    for lfn, replicas in fileReplicas.items():
        if not replicas:
            continue
        ses = sorted(set(replicas))
        if groupSE and len(ses) > 1:
            fileGroups.setdefault(",".join(ses), []).append(lfn)
        else:
            for se in ses:
                fileGroups.setdefault(se, []).append(lfn)
    return fileGroups


def sortSEs(ses: Iterable[str], resources: ResourcesAPI) -> list[str]:
    """Disk SEs alphabetically, then tape SEs; plain alphabetical as soon as a key is a set.

    DIRAC asks ``StorageElement(se).status()["DiskSE"]``; the twin asks ``resources.isDiskSE``.
    """
    ses = list(ses)
    isDisk: dict[str, bool] = {}
    for se in ses:
        if "," in se:
            return sorted(ses)
        if se not in isDisk:
            isDisk[se] = resources.isDiskSE(se)
    diskSEs = [se for se in ses if isDisk[se]]
    tapeSEs = [se for se in ses if not isDisk[se]]
    return sorted(diskSEs) + sorted(tapeSEs)


def castPluginParam(value: Any, valueType: type | None, warn: Callable[[str], None] = _log.warning) -> Any:
    """Cast a plugin parameter to the type of its default, with DIRAC's quirks.

    Lists accept a Python literal or a comma string; bools treat "False"/"No"/"None"/None/0 as
    False; str and unknown types are left alone (PluginUtilities.getPluginParam).
    """
    if not valueType or isinstance(value, valueType):
        return value
    if valueType is list:
        try:
            return saferEval(value) if value and value != "None" else []
        except (ValueError, SyntaxError):
            # literal_eval("SE-DST") -> ValueError, literal_eval("SE_MC-DST") -> SyntaxError
            return [val for val in value.replace(" ", "").split(",") if val]
    if valueType is int:
        return int(value)
    if valueType is float:
        return float(value)
    if valueType is bool:
        return False if value in ("False", "No", "None", None, 0) else bool(value)
    if valueType is not str:
        warn(f"Unknown parameter type ({valueType}), passed as string")
    return value


def _lfnsOf(tasks: Iterable[Task]) -> list[str]:
    return [lfn for _, taskLfns in tasks for lfn in taskLfns]


# --------------------------------------------------------------------------------------------
# PluginUtilities
# --------------------------------------------------------------------------------------------
class PluginUtilities:
    """Per-plugin helper object, as ``DIRAC.TransformationSystem.Client.Utilities.PluginUtilities``.

    ``groupSize`` and ``maxFiles`` are cached on the object after their first resolution and the
    file sizes read from the catalog are cached in ``cachedLFNSize``, as in DIRAC, because a
    plugin object lives for one agent cycle and the caching changes results in corner cases
    (e.g. ByShare calling groupByReplicas after BySize-style resolution).
    """

    def __init__(
        self,
        plugin: str = "Standard",
        transClient: TransformationClientAPI | None = None,
        dataManager: Any = None,
        fc: FileCatalogAPI | None = None,
        debug: bool = False,
        transID: int | None = None,
        *,
        resources: ResourcesAPI,
        operations: OperationsAPI,
    ) -> None:
        # DIRAC builds real clients when None is given; the twin has none to build, so a plugin
        # that needs a missing client fails when it calls it.
        self.transClient = transClient
        self.dm = dataManager
        self.fc = fc
        self.resources = resources
        self.operations = operations
        self.plugin = plugin
        self.transID = transID
        self.transIDStr = str(transID) if transID else "None"
        self.params: dict[str, Any] = {}
        self.groupSize: float = 0
        self.maxFiles: int = 0
        self.cachedLFNSize: dict[str, int] = {}
        self.transString = ""
        self.debug = debug
        self.log = self._makeLogger()

    # -- logging (same helper names as DIRAC so DIRAC-style plugins run unchanged) -----------
    def _makeLogger(self) -> logging.Logger:
        return logging.getLogger(f"twin.dirac.transformation.plugin.{self.plugin}{self.transIDStr}")

    def logVerbose(self, message: str, param: Any = "") -> None:
        self.log.debug("%s %s", message, param)

    def logDebug(self, message: str, param: Any = "") -> None:
        self.log.debug("%s %s", message, param)

    def logInfo(self, message: str, param: Any = "") -> None:
        self.log.info("%s %s", message, param)

    def logWarn(self, message: str, param: Any = "") -> None:
        self.log.warning("%s %s", message, param)

    def logError(self, message: str, param: Any = "") -> None:
        self.log.error("%s %s", message, param)

    def logException(self, message: str, param: Any = "", lException: Any = False) -> None:
        self.log.error("%s %s", message, param, exc_info=lException or True)

    # -- parameters ----------------------------------------------------------------------------
    def setParameters(self, params: dict[str, Any]) -> None:
        """Keep the transformation dict; like DIRAC, a missing TransformationID is a KeyError."""
        self.params = params
        self.transID = params["TransformationID"]
        self.transIDStr = str(self.transID) if self.transID else "None"
        self.log = self._makeLogger()

    def getPluginParam(self, name: str, default: Any = None) -> Any:
        """Resolve ``name``: Operations TransformationPlugins/<name>, then .../<Plugin>/<name>,
        then the transformation parameter; the last one found wins and is cast to type(default).
        """
        valueType = type(default) if default is not None else None
        value = self.operations.getValue(f"TransformationPlugins/{name}", None)
        value = self.operations.getValue(f"TransformationPlugins/{self.plugin}/{name}", value)
        if value is not None:
            default = value
        value = self.params.get(name, default)
        return castPluginParam(value, valueType, warn=self.logWarn)

    @staticmethod
    def _normaliseShares(originalShares: dict[str, Any]) -> dict[str, float]:
        """Scale to percent; all zero when the total is zero (never divides by zero)."""
        total = sum(float(share) for share in originalShares.values())
        return {site: 100.0 * float(share) / total if total else 0.0 for site, share in originalShares.items()}

    @staticmethod
    def seParamtoList(inputParam: Any) -> list[str]:
        """List, single SE string, or the string form of a list -> list.

        Like DIRAC, a comma string "A,B" is NOT split: it becomes ["A,B"].
        """
        if not inputParam:
            return []
        if inputParam.count("["):
            return saferEval(inputParam)
        if isinstance(inputParam, list):
            return inputParam
        return [inputParam]

    # -- grouping ------------------------------------------------------------------------------
    def _groupInTwoPasses(
        self,
        files: dict[str, list[str]],
        keyOrder: Callable[[dict[str, list[str]], bool], list[str]],
        makeTasks: Callable[[list[str], str], list[Task]],
    ) -> list[Task]:
        """The two-pass skeleton of groupByReplicas and groupBySize.

        Pass 1 groups by exact replica set, pass 2 by single SE on what is left; after a pass-2
        SE produced tasks, its LFNs are withdrawn from the other SEs' lists, so a file is used
        once. ``files`` is consumed.
        """
        tasks: list[Task] = []
        for groupSE in (True, False):
            if not files:
                break
            seFiles = getFileGroups(files, groupSE=groupSE)
            for replicaSE in keyOrder(seFiles, groupSE):
                lfns = seFiles[replicaSE]
                if not lfns:
                    continue
                newTasks = makeTasks(lfns, replicaSE)
                tasks += newTasks
                inTasks = set(_lfnsOf(newTasks))
                for lfn in _lfnsOf(newTasks):
                    files.pop(lfn)
                if not groupSE and inTasks:
                    for se in seFiles:
                        if se != replicaSE:
                            seFiles[se] = [lfn for lfn in seFiles[se] if lfn not in inTasks]
            self.logVerbose(f"{len(tasks)} tasks after pass groupSE={groupSE}", f"{len(files)} files left")
        return tasks

    def groupByReplicas(self, files: dict[str, list[str]], status: str) -> Result:
        """Standard plugin: chunks of GroupSize files sharing a location; partial chunks on Flush only."""
        if not files:
            return S_OK([])
        files = dict(files)
        if not self.groupSize:
            self.groupSize = self.getPluginParam("GroupSize", 10)
        flush = status == "Flush"
        groupSize = self.groupSize

        def chunkTasks(lfns: list[str], replicaSE: str) -> list[Task]:
            return [
                (replicaSE, taskLfns)
                for taskLfns in breakListIntoChunks(lfns, groupSize)
                if flush or len(taskLfns) >= groupSize
            ]

        tasks = self._groupInTwoPasses(files, lambda seFiles, _: sortSEs(seFiles, self.resources), chunkTasks)
        return S_OK(tasks)

    def createTasksBySize(
        self,
        lfns: list[str],
        replicaSE: str,
        fileSizes: dict[str, int] | None = None,
        flush: bool = False,
    ) -> list[Task]:
        """Tasks for one location, smallest files first, each closing once its size exceeds
        GroupSize (GB) or it holds MaxFilesPerTask files.

        Files of size 0 (or unknown) never get a task; a file larger than GroupSize is a task
        alone. The open remainder is emitted on flush only. A size missing from ``fileSizes``
        next to known sizes makes the sort raise TypeError, as in DIRAC.
        """
        if fileSizes is None:
            fileSizes = self._getFileSize(lfns).get("Value")
        if fileSizes is None:
            self.logWarn("Error getting file sizes, no tasks created")
            return []
        if not self.groupSize:
            # GB -> bytes; same operation order as DIRAC so float rounding matches
            self.groupSize = float(self.getPluginParam("GroupSize", 1.0)) * 1000 * 1000 * 1000
        if not self.maxFiles:
            self.maxFiles = self.getPluginParam("MaxFilesPerTask", self.getPluginParam("MaxFiles", 100))
        tasks: list[Task] = []
        taskLfns: list[str] = []
        taskSize = 0
        for lfn in sorted(lfns, key=fileSizes.get):
            size = fileSizes.get(lfn, 0)
            if not size:
                continue
            if size > self.groupSize:
                tasks.append((replicaSE, [lfn]))
                continue
            taskSize += size
            taskLfns.append(lfn)
            if taskSize > self.groupSize or len(taskLfns) >= self.maxFiles:
                tasks.append((replicaSE, taskLfns))
                taskLfns, taskSize = [], 0
        if flush and taskLfns:
            tasks.append((replicaSE, taskLfns))
        return tasks

    def groupBySize(self, files: dict[str, list[str]], status: str) -> Result:
        """BySize plugin: size-bounded groups; pass 1 keys alphabetical, pass 2 disk-first."""
        if not len(files):
            return S_OK([])
        files = dict(files)
        if not self.groupSize:
            # default 1 is an int, so a fractional GroupSize is truncated here (DIRAC does the same)
            self.groupSize = float(self.getPluginParam("GroupSize", 1)) * 1000 * 1000 * 1000
        flush = status == "Flush"
        res = self._getFileSize(list(files))
        if not res["OK"]:
            return res
        fileSizes = res["Value"]

        def keyOrder(seFiles: dict[str, list[str]], groupSE: bool) -> list[str]:
            return sorted(seFiles) if groupSE else sortSEs(seFiles, self.resources)

        def sizeTasks(lfns: list[str], replicaSE: str) -> list[Task]:
            newTasks = self.createTasksBySize(lfns, replicaSE, fileSizes=fileSizes, flush=flush)
            self.clearCachedFileSize(_lfnsOf(newTasks))
            return newTasks

        return S_OK(self._groupInTwoPasses(files, keyOrder, sizeTasks))

    # -- history and sizes ---------------------------------------------------------------------
    def getExistingCounters(self, normalise: bool = False, requestedSites: list[str] | None = None) -> Result:
        """Files already assigned per UsedSE (or per site when requestedSites is given).

        Per site the count of the LAST SE mapped to it wins (no sum), as in DIRAC.
        """
        res = self.transClient.getCounters(
            "TransformationFiles", ["UsedSE"], {"TransformationID": self.params["TransformationID"]}
        )
        if not res["OK"]:
            return res
        usageDict = {used["UsedSE"]: count for used, count in res["Value"] if used["UsedSE"] != "Unknown"}
        if requestedSites:
            siteDict: dict[str, Any] = {}
            for se, count in usageDict.items():
                res = self.resources.getSitesForSE(se)
                if not res["OK"]:
                    return res
                for site in res["Value"]:
                    if site in requestedSites:
                        siteDict[site] = count
            usageDict = siteDict
        if normalise:
            usageDict = self._normaliseShares(usageDict)
        return S_OK(usageDict)

    def _getFileSize(self, lfns: Iterable[str]) -> Result:
        """Sizes from the per-object cache, the rest from the catalog."""
        lfns = list(lfns)
        fileSizes = {lfn: self.cachedLFNSize[lfn] for lfn in lfns if lfn in self.cachedLFNSize}
        missing = [lfn for lfn in lfns if lfn not in self.cachedLFNSize]
        if missing:
            res = self._getFileSizeFromCatalog(missing, fileSizes)
            if not res["OK"]:
                self.logError(res["Message"])
                return res
            fileSizes = res["Value"]
        return S_OK(fileSizes)

    def _getFileSizeFromCatalog(self, lfns: list[str], fileSizes: dict[str, int]) -> Result:
        res = self.fc.getFileSize(list(lfns))
        if not res["OK"]:
            return S_ERROR(f"Failed to get sizes for all files: {res['Message']}")
        if res["Value"]["Failed"]:
            self.logWarn(
                f"Failed to get sizes for {len(res['Value']['Failed'])} files:",
                sorted(set(res["Value"]["Failed"].values())),
            )
        fileSizes = dict(fileSizes)
        fileSizes.update(res["Value"]["Successful"])
        self.cachedLFNSize.update(res["Value"]["Successful"])
        return S_OK(fileSizes)

    def clearCachedFileSize(self, lfns: Iterable[str]) -> None:
        for lfn in lfns:
            self.cachedLFNSize.pop(lfn, None)
