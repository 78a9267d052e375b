"""DIRAC's view of the topology and of SE status, answered from the simulated grid.

Stands in for SiteSEMapping (getSitesForSE/getSEsForSite), StorageElement(se).status()
(DiskSE flag, Read/Write access driven by faults), the CS CPU shares and the
Operations section, so that native and genuine DIRAC plugins see the same world.
"""

from __future__ import annotations

from typing import Any

from twin.dirac.returnvalues import S_ERROR, S_OK


class GridResources:
    """ResourcesAPI over the Grid built from the scenario topology."""

    def __init__(self, grid: Any, cpu_shares: dict[str, float]) -> None:
        self.grid = grid
        self._cpu_shares = dict(cpu_shares)
        self._sites_for_se: dict[str, list[str]] = {}
        for site in grid.sites.values():
            for se in site.ses:
                self._sites_for_se.setdefault(se, []).append(site.name)
        for se in grid.ses.values():
            sites = self._sites_for_se.setdefault(se.name, [])
            if se.site not in sites:
                sites.append(se.site)

    def isDiskSE(self, se: str) -> bool:
        storage = self.grid.ses.get(se)
        return bool(storage is not None and storage.is_disk)

    def getSitesForSE(self, se: str) -> dict[str, Any]:
        if se not in self.grid.ses:
            return S_ERROR(f"Non-existing SE {se}")
        return S_OK(list(self._sites_for_se.get(se, [])))

    def getSEsForSite(self, site: str) -> dict[str, Any]:
        found = self.grid.sites.get(site)
        if found is None:
            return S_ERROR(f"Unknown site {site}")
        local = [se.name for se in self.grid.ses.values() if se.site == site]
        return S_OK(sorted(set(found.ses) | set(local)))

    def getCPUShares(self) -> dict[str, float]:
        return dict(self._cpu_shares)

    # The shape twin.dirac.host.Topology.from_resources reads to build DIRAC's configuration.
    @property
    def siteSEs(self) -> dict[str, list[str]]:
        return {site: self.getSEsForSite(site)["Value"] for site in sorted(self.grid.sites)}

    @property
    def tapeSEs(self) -> set[str]:
        return {name for name, se in self.grid.ses.items() if not se.is_disk}

    @property
    def knownSEs(self) -> set[str]:
        return set(self.grid.ses)

    def sites_for(self, se: str) -> list[str]:
        return self._sites_for_se.get(se, [])

    def tiers_with_storage(self) -> list[str]:
        """DMSHelpers.getTiers(withStorage=True): the sites that have a local SE, sorted."""
        return sorted(site for site in self.grid.sites if self.getSEsForSite(site)["Value"])

    def readable(self, se: str) -> bool:
        storage = self.grid.ses.get(se)
        return storage is not None and storage.readable

    def writable(self, se: str) -> bool:
        storage = self.grid.ses.get(se)
        return storage is not None and storage.writable


class ScenarioOperations:
    """OperationsAPI: CS values under /Operations, from `dirac.operations` in the scenario."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = dict(values)

    def getValue(self, path: str, default: Any = None) -> Any:
        return self.values.get(path.strip("/"), default)

    def getOptionsDict(self, path: str) -> dict[str, Any]:
        """Operations.getOptionsDict: S_OK({option: value}) of the options directly under ``path``
        (flat "path/option" keys, or a mapping given at ``path``); S_ERROR if there is no such section."""
        prefix = path.strip("/") + "/"
        found = {key[len(prefix):]: value for key, value in self.values.items()
                 if key.startswith(prefix) and "/" not in key[len(prefix):]}
        nested = self.values.get(path.strip("/"))
        if isinstance(nested, dict):
            found.update({key: value for key, value in nested.items() if not isinstance(value, dict)})
        elif not found:
            return S_ERROR(f"{path} in Operations does not exist")
        return S_OK(found)
