"""Native TransformationAgent plugins with DIRAC's plugin API.

Follows, in order:
- ``DIRAC/TransformationSystem/Client/PluginBase.py`` (name check, ``run`` dispatch and its
  error mapping),
- ``DIRAC/TransformationSystem/Agent/TransformationPlugin.py`` (Standard, BySize, Broadcast,
  ByShare),
- ``CTADIRAC/TransformationSystem/Agent/TransformationPlugin.py`` (GroupAll, MergeByTelescope,
  ByTelescopeChunk),
so that, for the same inputs, the same tasks come out as from the genuine classes (DIRAC 9.1.22,
CTADIRAC 3.3.1). DIRAC's global services are replaced by injected objects: ``resources``
(SE/site topology, disk flag, CPU shares), ``operations`` (the Operations CS section) and ``rng``
(the random stream Broadcast shuffles with, instead of the global ``random`` module).

``run`` resolves ``_<PluginName>`` with ``getattr``, so every attribute of these classes whose
name is ``_`` followed by letters only is a reachable "plugin". Only DIRAC's own such names are
defined here; injected objects are stored under public names for that reason.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import logging
import random
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twin.dirac.clients import (
    FileCatalogAPI,
    OperationsAPI,
    ResourcesAPI,
    Result,
    TransformationClientAPI,
)
from twin.dirac.returnvalues import S_ERROR, S_OK
from twin.dirac.transformation.plugin_utils import (
    PluginUtilities,
    breakListIntoChunks,
    getFileGroups,
)

if TYPE_CHECKING:
    import numpy as np

    RandomStream = random.Random | np.random.Generator

_log = logging.getLogger(__name__)

DIRAC_PLUGIN_LOCATION = "DIRAC.TransformationSystem.Agent.TransformationPlugin"
CTADIRAC_PLUGIN_LOCATION = "CTADIRAC.TransformationSystem.Agent.TransformationPlugin"


class PluginBase:
    """DIRAC's ``PluginBase``: validated plugin name, parameters, and ``run`` dispatch."""

    def __init__(self, plugin: str, operationsHelper: OperationsAPI | None = None) -> None:
        plugin = str(plugin)
        if not re.fullmatch(r"[a-zA-Z]+", plugin):
            raise ValueError(f"Invalid plugin name: {plugin!r}")
        self.plugin = plugin
        self.params: dict[str, Any] = {}
        self.opsH = operationsHelper

    def setParameters(self, params: dict[str, Any]) -> None:
        self.params = params

    def run(self) -> Result:
        """Call ``self._<plugin>()``.

        As in DIRAC: an AttributeError whose message mentions the plugin name means "no such
        plugin" -> S_ERROR("Plugin not found"); any other exception is logged and re-raised
        wrapped in a plain ``AttributeError``/``Exception`` (the original type is lost, like DIRAC).
        """
        try:
            return getattr(self, f"_{self.plugin}")()
        except AttributeError as exc:
            if re.search(self.plugin, str(exc)):
                return S_ERROR("Plugin not found")
            _log.exception("Exception in plugin %s", self.plugin)
            raise AttributeError(exc) from exc
        except Exception as exc:
            _log.exception("Exception in plugin %s", self.plugin)
            raise Exception(exc) from exc


class TransformationPlugin(PluginBase):
    """DIRAC's ``TransformationPlugin``: Standard, BySize, Broadcast, ByShare.

    Built by the twin's TransformationAgent once per transformation per cycle, like DIRAC, so the
    per-object caches in ``self.util`` (GroupSize, file sizes) live for one cycle.
    """

    def __init__(
        self,
        plugin: str,
        transClient: TransformationClientAPI | None = None,
        dataManager: Any = None,
        fc: FileCatalogAPI | None = None,
        *,
        resources: ResourcesAPI,
        operations: OperationsAPI,
        rng: RandomStream,
    ) -> None:
        super().__init__(plugin, operationsHelper=operations)
        self.data: dict[str, list[str]] = {}
        self.files: Any = False
        self.startTime = time.time()
        self.valid = False
        self.resources = resources
        self.rng = rng
        self.util = PluginUtilities(
            self.plugin,
            transClient=transClient,
            dataManager=dataManager,
            fc=fc,
            resources=resources,
            operations=operations,
        )

    def isOK(self) -> bool:
        """True when both input data and parameters were given."""
        self.valid = bool(self.data) and bool(self.params)
        return self.valid

    def setParameters(self, params: dict[str, Any]) -> None:
        """The transformation dict (with additional parameters); needs TransformationID."""
        self.params = params
        self.util.setParameters(params)

    def setInputData(self, data: dict[str, list[str]]) -> None:
        """{lfn: [SE, ...]}, already filtered by the agent to usable replicas."""
        self.data = data

    def setTransformationFiles(self, files: list[dict[str, Any]]) -> None:
        """The TransformationFiles rows the agent read this cycle."""
        self.files = files

    # -- DIRAC plugins ---------------------------------------------------------------------------
    def _Standard(self) -> Result:
        """Group by replica location (PluginUtilities.groupByReplicas)."""
        return self.util.groupByReplicas(self.data, self.params["Status"])

    def _BySize(self) -> Result:
        return self._groupBySize()

    def _groupBySize(self, files: list[str] | None = None) -> Result:
        """Size-bounded groups, optionally on a subset of ``self.data``."""
        if not files:
            selected = self.data
        else:
            selected = {lfn: self.data[lfn] for lfn in files}
        return self.util.groupBySize(selected, self.params["Status"])

    def _Broadcast(self) -> Result:
        """Replicate each file found at SourceSE (or anywhere) to TargetSE, or to Destinations of them.

        TargetSE order is reshuffled in place for every LFN (the shuffle accumulates from one
        LFN to the next, as in DIRAC), drawing from ``self.rng``. Targets at a site that already
        holds a source replica are always kept; new sites stop once Destinations targets are
        chosen. Tasks are full GroupSize chunks per target set, partial ones on Flush.
        """
        if not self.params:
            return S_ERROR("TransformationPlugin._Broadcast: The 'Broadcast' plugin requires additional parameters.")
        sourceSEs = set(self.util.seParamtoList(self.params.get("SourceSE", [])))
        targetSEs = self.util.seParamtoList(self.params["TargetSE"])
        destinations = int(self.params.get("Destinations", 0))
        if destinations and destinations >= len(targetSEs):
            destinations = 0
        status = self.params["Status"]
        groupSize = self.params["GroupSize"]

        targetSELfns: dict[str, list[str]] = {}
        for replicaSE, lfns in getFileGroups(self.data).items():
            ses = replicaSE.split(",")
            if sourceSEs and not sourceSEs.intersection(ses):
                continue
            for lfn in lfns:
                targets = self._broadcast_targets(ses, targetSEs, destinations)
                targetSELfns.setdefault(",".join(sorted(targets)), []).append(lfn)

        tasks = []
        for ses, lfns in targetSELfns.items():
            for taskLfns in breakListIntoChunks(lfns, groupSize):
                if status == "Flush" or len(taskLfns) >= int(groupSize):
                    tasks.append((ses, taskLfns))
        return S_OK(tasks)

    def _broadcast_targets(self, sourceReplicaSEs: list[str], targetSEs: list[str], destinations: int) -> list[str]:
        """Targets for one LFN; shuffles ``targetSEs`` in place (one rng draw sequence per LFN)."""
        sourceSites = self._getSitesForSEs(sourceReplicaSEs)
        self.rng.shuffle(targetSEs)
        targets = []
        for targetSE in targetSEs:
            site = self._getSiteForSE(targetSE)["Value"]  # KeyError on S_ERROR, as in DIRAC
            if site not in sourceSites:
                if destinations and len(targets) >= destinations:
                    continue
                sourceSites.append(site)
            targets.append(targetSE)
        return targets

    def _ByShare(self, shareType: str = "CPU") -> Result:
        """Send each replica group to the candidate site furthest below its CPU share.

        Emits one task per SE of the chosen site that holds the group, so a site with two such
        SEs gets the same LFNs twice (the second addTaskForTransformation then fails), as in DIRAC.
        """
        res = self._getShares(shareType, normalise=True)
        if not res["OK"]:
            return res
        cpuShares = res["Value"]
        res = self.util.getExistingCounters(requestedSites=list(cpuShares))
        if not res["OK"]:
            self.util.logError("Failed to get existing file share", res["Message"])
            return res
        existingCount = res["Value"]
        groups = self.util.groupByReplicas(self.data, self.params["Status"])
        if not groups["OK"]:
            return groups

        tasks = []
        for replicaSE, lfns in groups["Value"]:
            possibleSEs = replicaSE.split(",")
            res = self._getNextSite(existingCount, cpuShares, candidates=self._getSitesForSEs(possibleSEs))
            if not res["OK"]:
                self.util.logError("Failed to get next destination SE", res["Message"])
                continue
            targetSite = res["Value"]
            sesRes = self.resources.getSEsForSite(targetSite)
            if not sesRes["OK"]:
                continue
            for chosenSE in sesRes["Value"]:
                if chosenSE in possibleSEs:
                    tasks.append((chosenSE, lfns))
                    existingCount[targetSite] = existingCount.setdefault(targetSite, 0) + len(lfns)
        return S_OK(tasks)

    def _getShares(self, shareType: str, normalise: bool = False) -> Result:
        """Shares from /Resources/Shares/<shareType> (only CPU is modelled), as floats."""
        if shareType != "CPU":
            return S_ERROR(f"Path /Resources/Shares/{shareType} does not exist or it's not a section")
        shares = self.resources.getCPUShares()
        if not shares:
            return S_ERROR(f"/Resources/Shares/{shareType} option contains no shares")
        shares = {site: float(value) for site, value in shares.items()}
        if normalise:
            shares = self.util._normaliseShares(shares)
        if not shares:
            return S_ERROR("No non-zero shares defined")
        return S_OK(shares)

    def _getNextSite(
        self,
        existingCount: dict[str, Any],
        targetShares: dict[str, float],
        candidates: list[str] | dict[str, Any] | None = None,
    ) -> Result:
        """The candidate with a non-zero target share and the largest (target - current) %;
        first in share order on ties; "" when none qualifies."""
        if candidates is None:
            candidates = targetShares
        existingShares = self.util._normaliseShares(existingCount)
        for site in targetShares:
            existingShares.setdefault(site, 0.0)
        chosenSite = ""
        bestShortFall = -float("inf")
        for site, targetShare in targetShares.items():
            if site not in candidates or not targetShare:
                continue
            shortFall = targetShare - existingShares[site]
            if shortFall > bestShortFall:
                bestShortFall = shortFall
                chosenSite = site
        return S_OK(chosenSite)

    def _getSiteForSE(self, se: str) -> Result:
        """First site of the SE, "" if none (a classmethod in DIRAC; here it needs ``resources``)."""
        result = self.resources.getSitesForSE(se)
        if not result["OK"]:
            return result
        return S_OK(result["Value"][0] if result["Value"] else "")

    def _getSitesForSEs(self, seList: list[str]) -> list[str]:
        """All sites of the SEs, failures ignored, duplicates kept (as in DIRAC)."""
        sites: list[str] = []
        for se in seList:
            result = self.resources.getSitesForSE(se)
            if result["OK"]:
                sites += result["Value"]
        return sites


class CTATransformationPlugin(TransformationPlugin):
    """CTADIRAC's ``TransformationPlugin``: adds GroupAll, MergeByTelescope, ByTelescopeChunk.

    ``target_se = "Unknown"`` so the tasks carry no SE and the BySE destination plugin adds no
    site constraint. None of these plugins looks at Status or GroupSize.
    """

    target_se = "Unknown"

    def _ByTelescopeChunk(self) -> Result:
        """One task per (obs_id, ae_id, chunk_id) group plus that (obs_id, ae_id)'s calibration files.

        An (obs_id, ae_id) with no calibration file yet is skipped this cycle (readiness gate);
        a wrong number of calibration files, missing/invalid CalibpipeRelease or CalibDataType,
        or a failing catalog call is an S_ERROR for the whole cycle.
        """
        groups: dict[tuple[Any, Any, Any], list[str]] = {}
        obs_ae_set = set()  # a set, as in CTADIRAC: its order decides which error is reported
        for lfn in self.data:
            result = self.util.fc.getFileUserMetadata(lfn)
            if not result["OK"]:
                self.util.logError(f"Failed to get metadata for {lfn}: {result['Message']}")
                return S_ERROR(result["Message"])
            metadata = result["Value"]
            obs_id = metadata.get("instance__obs_id")
            ae_id = metadata.get("instance__ae_id")
            groups.setdefault((obs_id, ae_id, metadata.get("instance__chunk_id")), []).append(lfn)
            obs_ae_set.add((obs_id, ae_id))

        result = self._get_calibration_files(obs_ae_set)
        if not result["OK"]:
            return result
        calibration_lfns = result["Value"]

        tasks = []
        for (obs_id, ae_id, _chunk_id), lfns in groups.items():
            if (obs_id, ae_id) not in calibration_lfns:
                continue
            tel_calibs = calibration_lfns[(obs_id, ae_id)]
            result = self.util.transClient.addFilesToTransformation(self.params["TransformationID"], tel_calibs)
            if not result["OK"]:
                self.util.logError(f"Failed to add calibration files for OBS_ID {obs_id}, AE_ID {ae_id}")
                return S_ERROR(result["Message"])
            tasks.append((self.target_se, lfns + tel_calibs))
        return S_OK(tasks)

    def _get_calibration_files(self, obs_ae_set: set[tuple[Any, Any]]) -> Result:
        """{(obs_id, ae_id): calibration LFNs} for the pairs whose calibration files exist."""
        calibpipe_release = self.params.get("CalibpipeRelease", None)
        if calibpipe_release is None:
            return S_ERROR("No CalibpipeRelease configured for this transformation")
        calib_datatype = self.params.get("CalibDataType", None)
        if calib_datatype is None:
            return S_ERROR("No CalibDataType configured for this transformation")
        calib_datatype = ast.literal_eval(calib_datatype)
        if not isinstance(calib_datatype, list):
            return S_ERROR("CalibDataType should be a list")

        calibration_lfns = {}
        for obs_id, ae_id in obs_ae_set:
            query = {
                "curation__release": calibpipe_release,
                "data__level": "DL1",
                "data__division": "Monitoring",
                "data__association": "Telescope",
                "data__type": calib_datatype,
                "instance__obs_id": obs_id,
                "instance__ae_id": ae_id,
            }
            result = self.util.fc.findFilesByMetadata(query)
            if not result["OK"]:
                return S_ERROR(result["Message"])
            if not result["Value"]:
                continue
            if len(result["Value"]) != len(calib_datatype):
                return S_ERROR(
                    f"Expected {len(calib_datatype)} calibration file(s) for OBS_ID {obs_id}, AE_ID {ae_id}, "
                    f"found {len(result['Value'])}"
                )
            calibration_lfns[(obs_id, ae_id)] = result["Value"]
        return S_OK(calibration_lfns)

    def _GroupAll(self) -> Result:
        """Everything present in one task (even when there is nothing: one empty task)."""
        return S_OK([(self.target_se, list(self.data))])

    def _MergeByTelescope(self) -> Result:
        """One task per instance__chunk_id (missing key -> None), whatever subset is present."""
        chunk_groups: dict[Any, list[str]] = {}
        for lfn in self.data:
            result = self.util.fc.getFileUserMetadata(lfn)
            if not result["OK"]:
                self.util.logError(f"Failed to get metadata for {lfn}: {result['Message']}")
                return S_ERROR(result["Message"])
            chunk_groups.setdefault(result["Value"].get("instance__chunk_id"), []).append(lfn)
        return S_OK([(self.target_se, lfns) for lfns in chunk_groups.values()])


# --------------------------------------------------------------------------------------------
# Plugin class registry
# --------------------------------------------------------------------------------------------
_KNOWN_LOCATIONS: dict[str, type[TransformationPlugin]] = {
    DIRAC_PLUGIN_LOCATION: TransformationPlugin,
    CTADIRAC_PLUGIN_LOCATION: CTATransformationPlugin,
    f"{__name__}:TransformationPlugin": TransformationPlugin,
    f"{__name__}:CTATransformationPlugin": CTATransformationPlugin,
}


def load_plugin_class(module_path: str | None = None) -> type[TransformationPlugin]:
    """The plugin class the TransformationAgent instantiates.

    - None/"" -> ``CTATransformationPlugin`` (CTAO sets PluginLocation to the CTADIRAC module,
      and it holds every DIRAC plugin too);
    - DIRAC's or CTADIRAC's PluginLocation string -> the native equivalent;
    - "package.module:ClassName" or "path/to/file.py:ClassName" -> the user's class; without
      ":ClassName" the class ``TransformationPlugin`` is taken, as DIRAC's agent does.

    A user class is built like the native one (``resources``, ``operations``, ``rng`` keywords),
    so the practical way to write one is to subclass ``TransformationPlugin`` here and add
    ``_MyPlugin`` methods, exactly as one would subclass DIRAC's.
    """
    if not module_path:
        return CTATransformationPlugin
    if module_path in _KNOWN_LOCATIONS:
        return _KNOWN_LOCATIONS[module_path]
    location, sep, className = module_path.rpartition(":")
    if not sep or not className.isidentifier():
        location, className = module_path, "TransformationPlugin"
    module = _import_location(location)
    try:
        pluginClass = getattr(module, className)
    except AttributeError:
        raise ImportError(f"No class {className!r} in plugin location {location!r}") from None
    if not isinstance(pluginClass, type) or not callable(getattr(pluginClass, "run", None)):
        raise TypeError(f"{module_path!r} is not a plugin class (needs a run() method)")
    return pluginClass


def _import_location(location: str) -> Any:
    """Import a dotted module name, or a .py file path under a private module name."""
    if not location.endswith(".py"):
        return importlib.import_module(location)
    path = Path(location).expanduser().resolve()
    if not path.is_file():
        raise ImportError(f"Plugin file not found: {path}")
    moduleName = f"twin_user_plugin_{abs(hash(str(path))):x}"
    if moduleName in sys.modules:
        return sys.modules[moduleName]
    spec = importlib.util.spec_from_file_location(moduleName, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"Cannot load plugin file {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[moduleName] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(moduleName, None)
        raise
    return module
