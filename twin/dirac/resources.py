"""DIRAC's view of the topology and of SE status, answered from the simulated grid.

Stands in for SiteSEMapping (getSitesForSE/getSEsForSite), StorageElement(se).status()
(DiskSE flag, Read/Write access driven by faults), the CS CPU shares and the
Operations section, so that native and genuine DIRAC plugins see the same world.
"""

from __future__ import annotations

from typing import Any

from twin.dirac.returnvalues import S_ERROR, S_OK


class GridResources:
    """ResourcesAPI over the Grid built from the scenario topology, answering as DIRAC's DMSHelpers do
    on the configuration ``twin.dirac.host`` writes for that topology (``tests/test_dirac_differential.py``
    checks it against the genuine helpers)."""

    def __init__(self, grid: Any, cpu_shares: dict[str, float], operations: Any = None) -> None:
        self.grid = grid
        self._cpu_shares = dict(cpu_shares)
        self._operations = operations
        local: dict[str, set[str]] = {site: set(spec.ses) for site, spec in grid.sites.items()}
        for se in grid.ses.values():
            local.setdefault(se.site, set()).add(se.name)
        self._local_ses = {site: sorted(local[site]) for site in cs_site_order(local)}
        self._sites_for_se: dict[str, list[str]] = {}
        for site, ses in self._local_ses.items():
            for se in ses:
                self._sites_for_se.setdefault(se, []).append(site)

    def isDiskSE(self, se: str) -> bool:
        storage = self.grid.ses.get(se)
        return bool(storage is not None and storage.is_disk)

    def getSitesForSE(self, se: str) -> dict[str, Any]:
        """DMSHelpers._getLocalSitesForSE: the sites declaring the SE, in configuration order; an SE at
        several sites is an error while Operations DataManagement/ForceSingleSitePerSE is True (default)."""
        sites = self._sites_for_se.get(se)
        if not sites:
            return S_ERROR("Non-existing SE")
        if len(sites) > 1 and self._force_single_site():
            return S_ERROR("SE is at more than one site")
        return S_OK(list(sites))

    def getSEsForSite(self, site: str) -> dict[str, Any]:
        """DMSHelpers.getSEsForSite(LOCAL): sorted; "Unknown site" / "No SE found" as DIRAC says them."""
        sites = [site] if site in self._local_ses else [s for s in self._local_ses if f".{site}." in s]
        if not sites:
            return S_ERROR("Unknown site")
        ses = sorted(se for s in sites for se in self._local_ses[s])
        return S_OK(ses) if ses else S_ERROR("No SE found")

    def _force_single_site(self) -> bool:
        if self._operations is None:
            return True
        return bool(self._operations.getValue("DataManagement/ForceSingleSitePerSE", True))

    def getCPUShares(self) -> dict[str, float]:
        return dict(self._cpu_shares)

    # The shape twin.dirac.host.Topology.from_resources reads to build DIRAC's configuration.
    @property
    def siteSEs(self) -> dict[str, list[str]]:
        return {site: list(ses) for site, ses in self._local_ses.items()}

    @property
    def tapeSEs(self) -> set[str]:
        return {name for name, se in self.grid.ses.items() if not se.is_disk}

    @property
    def knownSEs(self) -> set[str]:
        return set(self.grid.ses)

    def sites_for(self, se: str) -> list[str]:
        """getSitesForSE's sites, none when DIRAC answers an error (e.g. an SE at two sites)."""
        result = self.getSitesForSE(se)
        return result["Value"] if result["OK"] else []

    def tiers_with_storage(self) -> list[str]:
        """DMSHelpers.getTiers(withStorage=True): the sites that have a local SE, sorted."""
        return sorted(site for site, ses in self._local_ses.items() if ses)

    def readable(self, se: str) -> bool:
        storage = self.grid.ses.get(se)
        return storage is not None and storage.readable

    def writable(self, se: str) -> bool:
        storage = self.grid.ses.get(se)
        return storage is not None and storage.writable


class ScenarioOperations:
    """OperationsAPI: CS values under /Operations, from `dirac.operations` in the scenario.

    Answers as DIRAC's Operations().getValue does over the CS that ``twin.dirac.host`` writes: the CS
    holds strings, and diraccfg's ``CFG.getOption`` casts them to the type of the default (a list
    default splits on commas, a bool default reads y/yes/true/1, an int default of "2.5" falls back to
    the default) and returns the raw string when the default is None; a section is not an option.
    """

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = dict(values)

    def getValue(self, path: str, default: Any = None) -> Any:
        value = self.values.get(path.strip("/"))
        if value is None or isinstance(value, dict):
            return default
        return cast_cs_option(cs_string(value), default)

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
        return S_OK({key: cs_string(value) for key, value in found.items()})


def cs_string(value: Any) -> str:
    """How a scenario value is written into DIRAC's CFG (lists comma-separated, bools True/False)."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (list, tuple, set)):
        return ", ".join(str(v) for v in value)
    return str(value)


def cast_cs_option(value: str, default: Any) -> Any:
    """diraccfg CFG.getOption: the CS string cast to type(default); the default when the cast fails."""
    if default is None or value == default:
        return value if default is None else default
    kind = default if isinstance(default, type) else type(default)
    if kind is list:
        return [part.strip() for part in value.split(",") if part.strip()]
    if kind is bool:
        return value.lower() in ("y", "yes", "true", "1")
    try:
        return kind(value)
    except (TypeError, ValueError):
        return default


def cs_site_order(sites: Any) -> list[str]:
    """The order DIRAC lists sites of the configuration ``twin.dirac.host`` writes: sorted by name, then
    grouped by grid (``GRID.Name.country``; other names under "Twin") in order of first appearance."""
    by_grid: dict[str, list[str]] = {}
    for site in sorted(sites):
        parts = site.split(".")
        by_grid.setdefault(parts[0] if len(parts) >= 3 else "Twin", []).append(site)
    return [site for group in by_grid.values() for site in group]
