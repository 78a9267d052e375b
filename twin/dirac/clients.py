"""The narrow client interfaces DIRAC logic uses to reach the (simulated) grid.

They mirror the method names and return shapes of DIRAC's own clients
(FileCatalogClient, TransformationClient, DMSHelpers/SiteSEMapping, Operations), so
that a plugin written for DIRAC runs unchanged against the twin, and so that the
genuine-DIRAC host (twin.dirac.host) can hand the same objects to DIRAC's classes.
Every call returns S_OK/S_ERROR dicts exactly as DIRAC does.
"""

from __future__ import annotations

from typing import Any, Protocol

Result = dict[str, Any]


class FileCatalogAPI(Protocol):
    """Subset of DIRAC's FileCatalogClient the TS and the plugins call."""

    def getFileSize(self, lfns: list[str] | str) -> Result:
        """S_OK({"Successful": {lfn: bytes}, "Failed": {lfn: reason}})."""

    def getFileUserMetadata(self, lfn: str) -> Result:
        """S_OK({key: value}) with directory metadata inherited."""

    def findFilesByMetadata(self, query: dict[str, Any], path: str = "/") -> Result:
        """S_OK([lfn, ...]) for a DFC meta-query (=, in, !=, nin, <, <=, >, >=)."""

    def getReplicas(self, lfns: list[str] | str) -> Result:
        """S_OK({"Successful": {lfn: {se: pfn}}, "Failed": {lfn: reason}})."""


class TransformationClientAPI(Protocol):
    """Subset of DIRAC's TransformationClient the plugins call."""

    def getCounters(self, table: str, attrList: list[str], condDict: dict[str, Any]) -> Result:
        """S_OK([({attr: value}, count), ...])."""

    def addFilesToTransformation(self, transID: int, lfns: list[str]) -> Result:
        """S_OK({"Successful": {lfn: "Added"|"Present"}, "Failed": {}})."""


class ResourcesAPI(Protocol):
    """Site/SE topology and SE status (DMSHelpers, SiteSEMapping, StorageElement.status, CS shares)."""

    def isDiskSE(self, se: str) -> bool:
        """StorageElement(se).status()["DiskSE"]."""

    def getSitesForSE(self, se: str) -> Result:
        """S_OK([site, ...])."""

    def getSEsForSite(self, site: str) -> Result:
        """S_OK([se, ...])."""

    def getCPUShares(self) -> dict[str, float]:
        """gConfig.getOptionsDict('/Resources/Shares/CPU')['Value'], values as floats."""


class OperationsAPI(Protocol):
    """DIRAC's Operations() helper: CS values under /Operations/<setup>/."""

    def getValue(self, path: str, default: Any = None) -> Any:
        """Value at `path` (e.g. 'TransformationPlugins/GroupSize'), or `default`."""
