"""Run the genuine, unmodified DIRAC / CTADIRAC ``TransformationPlugin`` classes inside the twin.

``GenuinePluginHost`` imports DIRAC 9.1.x and CTADIRAC 3.x (the optional ``[dirac]`` extra, see
``docs/dirac-host.md`` and ``.ci/install-dirac-extra``), gives them a configuration built in memory
(no Configuration Server), hands them the twin's simulated clients, and returns plugin objects with
the same ``setParameters`` / ``setInputData`` / ``setTransformationFiles`` / ``run`` API as the
native plugins of ``twin.dirac.transformation.plugins``::

    host = GenuinePluginHost(Topology.from_resources(resources, operations))
    plugin = host.make_plugin("ByShare", source="dirac", transClient=tc, fc=fc,
                              resources=resources, operations=operations, rng=random.Random(7))
    plugin.setParameters(params); plugin.setInputData(data)
    result = plugin.run()        # S_OK([(seString, [lfn, ...]), ...]) from DIRAC's own code

What is done to DIRAC's environment (DIRAC's files are never modified):

* **Configuration**: ``Topology.to_cfg()`` builds a ``diraccfg.CFG`` (``/DIRAC/VirtualOrganization``,
  ``/Resources/Sites/<grid>/<site>/SE``, ``/Resources/StorageElements/<se>/SEType`` = ``T0D1`` for disk,
  ``T1D0`` for tape, ``/Resources/Shares/CPU``, ``/Operations/Defaults/...``) and installs it as the
  whole local configuration of ``gConfigurationData``: any ``dirac.cfg`` found at import is dropped, and
  with no ``/DIRAC/Configuration/Servers`` the refresher never contacts a server. Before each ``run`` the
  CPU shares and the Operations values of the simulated ``resources`` / ``operations`` objects are copied
  into that configuration (only when they changed), so DIRAC reads them through its own
  ``gConfig.getOptionsDict`` and ``Operations().getValue``.
* **Clients**: ``transClient``, ``dataManager`` and ``fc`` are passed to the plugin constructor. A client
  left out is replaced by an object whose every method returns ``S_ERROR`` (DIRAC would otherwise build
  a real RPC client and retry for ~90 s).
* **Name patches** (module globals of DIRAC, re-bound once, process-wide; they dispatch to the plugin
  that is currently running and fall back to DIRAC's own function otherwise):
  ``getSitesForSE`` / ``getSEsForSite`` in ``DIRAC.TransformationSystem.Agent.TransformationPlugin`` and
  ``getSitesForSE`` in ``DIRAC.TransformationSystem.Client.Utilities`` -> ``resources``;
  ``StorageElement`` in ``...Client.Utilities`` -> an object whose ``status()`` answers from
  ``resources.isDiskSE`` (anything else is delegated to DIRAC's real ``StorageElement``);
  ``random`` in both modules -> the ``rng`` given to ``make_plugin`` (so Broadcast shuffles from the same
  stream as the native plugin), or the real ``random`` module when no ``rng`` is given.
  Without ``resources`` the genuine DIRAC helpers run against the configuration (``DMSHelpers``, and
  ``StorageElement(se, vo=<VO>)`` reading ``SEType``).
* **ResourceStatus**: ``ResourceStatus.getElementStatus`` answers from ``Topology.se_status`` (default
  "Active") instead of the RSS service, and ``setElementStatus`` fails; otherwise building a genuine
  ``StorageElement`` retries the missing RSS service for ~30 s per SE.
* **M2Crypto** (``m2crypto="auto"``, the default): when the M2Crypto package is not installed, an import
  stub is registered in ``sys.meta_path`` before DIRAC is imported. DIRAC imports M2Crypto at module level
  through ``Operations -> ProxyInfo -> X509Chain`` and ``TransformationClient -> DISET``, but no plugin
  ever calls it; any call into the stub raises ``M2CryptoStubbed``. With M2Crypto installed (``.ci/
  install-dirac-extra --with-m2crypto``) the real one is used. ``m2crypto="real"`` refuses the stub,
  ``"stub"`` forces it (only possible before anything imported M2Crypto).

``import twin`` never imports DIRAC: this module only imports it when a host is created.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import random as _random_module
import sys
import threading
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from twin.dirac.resources import cs_string
from twin.dirac.returnvalues import S_ERROR, S_OK

DIRAC_EXTRA_ERROR = "plugin_source: dirac needs the [dirac] extra: see README"

DEFAULT_VO = "vo.cta.in2p3.fr"

#: Plugin parameters DIRAC's built-in plugins read through ``getPluginParam`` (Operations CS). When the
#: ``operations`` object cannot list its values, these paths are queried and copied into the CS.
PLUGIN_OPTION_NAMES = ("GroupSize", "MaxFilesPerTask", "MaxFiles")

PLUGIN_MODULES = {
    "dirac": "DIRAC.TransformationSystem.Agent.TransformationPlugin",
    "ctadirac": "CTADIRAC.TransformationSystem.Agent.TransformationPlugin",
}
_TP_MODULE = PLUGIN_MODULES["dirac"]
_UTIL_MODULE = "DIRAC.TransformationSystem.Client.Utilities"


class DiracNotInstalled(ImportError):
    """DIRAC (or CTADIRAC) cannot be imported: the optional [dirac] extra is missing."""


# ---------------------------------------------------------------------------------------------
# M2Crypto import stub
# ---------------------------------------------------------------------------------------------
class M2CryptoStubbed(RuntimeError):
    """Raised when code calls into the M2Crypto import stub (only X.509/SSL code would)."""


class _M2Placeholder:
    """Any attribute of a stubbed M2Crypto module: attributes chain, calling raises."""

    def __init__(self, path: str) -> None:
        self._path = path

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return _M2Placeholder(f"{self._path}.{name}")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise M2CryptoStubbed(
            f"{self._path}() was called, but M2Crypto is only an import stub in twin.dirac.host; "
            "install the real one with `.ci/install-dirac-extra --with-m2crypto`"
        )

    def __repr__(self) -> str:
        return f"<M2Crypto stub {self._path}>"


_M2_SUBMODULES = frozenset(
    "SSL X509 ASN1 EVP RSA DSA EC BIO Rand Err SMIME m2 threading Checker util httpslib m2urllib2".split()
)


class _M2StubModule(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        if name in _M2_SUBMODULES:
            return importlib.import_module(f"{self.__name__}.{name}")
        if name.endswith(("Error", "Exception")):  # used in `except` clauses: must be classes
            exc = type(name, (M2CryptoStubbed,), {"__module__": self.__name__})
            setattr(self, name, exc)
            return exc
        return _M2Placeholder(f"{self.__name__}.{name}")


class _M2StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves ``M2Crypto`` and every ``M2Crypto.*`` as an empty stub package."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname == "M2Crypto" or fullname.startswith("M2Crypto."):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec: Any) -> types.ModuleType:
        module = _M2StubModule(spec.name)
        module.__path__ = []
        module.__version__ = "0.0.0+twin.stub"
        module.__twin_stub__ = True
        if spec.name == "M2Crypto.threading":  # DIRAC's M2SSLTransport calls init() at import
            module.init = lambda: None
            module.cleanup = lambda: None
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        return None


def m2crypto_is_stubbed() -> bool:
    """True when the M2Crypto DIRAC imported is twin's stub."""
    module = sys.modules.get("M2Crypto")
    return bool(module is not None and getattr(module, "__twin_stub__", False))


def _install_m2crypto_stub() -> None:
    if not any(isinstance(finder, _M2StubFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _M2StubFinder())


def _prepare_m2crypto(mode: str) -> None:
    if mode not in ("auto", "real", "stub"):
        raise ValueError(f"m2crypto must be 'auto', 'real' or 'stub', not {mode!r}")
    if m2crypto_is_stubbed():
        if mode == "real":
            raise RuntimeError("M2Crypto was already replaced by twin's import stub in this process")
        return
    if "M2Crypto" in sys.modules:  # the real one is already loaded
        if mode == "stub":
            raise RuntimeError("the real M2Crypto is already imported; cannot stub it now")
        return
    realAvailable = importlib.util.find_spec("M2Crypto") is not None
    if mode == "stub" or (mode == "auto" and not realAvailable):
        _install_m2crypto_stub()
    elif not realAvailable:
        raise DiracNotInstalled(f"{DIRAC_EXTRA_ERROR} (m2crypto='real' but M2Crypto is not installed)")


# ---------------------------------------------------------------------------------------------
# DIRAC import
# ---------------------------------------------------------------------------------------------
def dirac_available() -> bool:
    """True when DIRAC and CTADIRAC look installed (nothing is imported)."""
    return all(importlib.util.find_spec(name) is not None for name in ("DIRAC", "CTADIRAC", "diraccfg"))


def _import_dirac(m2crypto: str = "auto") -> types.SimpleNamespace:
    """Import the DIRAC modules the host needs, or raise DiracNotInstalled with the extra's hint."""
    if not dirac_available():
        raise DiracNotInstalled(DIRAC_EXTRA_ERROR)
    _prepare_m2crypto(m2crypto)
    try:
        from diraccfg import CFG

        from DIRAC import gConfig, gLogger
        from DIRAC.ConfigurationSystem.Client.ConfigurationData import gConfigurationData
        from DIRAC.ResourceStatusSystem.Client.ResourceStatus import ResourceStatus
        from DIRAC.Resources.Storage import StorageElement as seModule

        tpModule = importlib.import_module(_TP_MODULE)
        utilModule = importlib.import_module(_UTIL_MODULE)
        ctaModule = importlib.import_module(PLUGIN_MODULES["ctadirac"])
    except Exception as exc:  # ImportError, or e.g. diracx's ClientDefinitionError for a partial install
        raise DiracNotInstalled(f"{DIRAC_EXTRA_ERROR} ({type(exc).__name__}: {exc})") from exc
    return types.SimpleNamespace(
        CFG=CFG,
        gConfig=gConfig,
        gLogger=gLogger,
        gConfigurationData=gConfigurationData,
        ResourceStatus=ResourceStatus,
        seModule=seModule,
        tpModule=tpModule,
        utilModule=utilModule,
        ctaModule=ctaModule,
    )


# ---------------------------------------------------------------------------------------------
# Topology -> DIRAC configuration
# ---------------------------------------------------------------------------------------------
_cfgValue = cs_string  # the same strings ScenarioOperations answers from


def _gridOf(site: str) -> str:
    parts = site.split(".")
    return parts[0] if len(parts) >= 3 else "Twin"


@dataclass
class Topology:
    """What DIRAC's configuration must say for the plugins: sites and SEs, tape flags, shares, Operations.

    ``site_ses``: {site: [SE, ...]} (DIRAC names sites ``GRID.Name.country``; other names are put under
    a grid called "Twin"); ``tape_ses``: SEs that are tape (SEType T1D0), every other SE is disk (T0D1);
    ``extra_ses``: SEs at no site; ``cpu_shares``: /Resources/Shares/CPU; ``operations``: flat
    {"TransformationPlugins/GroupSize": value} under /Operations/Defaults; ``se_status``:
    {SE: {"ReadAccess": "Banned", ...}} answered by the patched ResourceStatus (default "Active").
    """

    site_ses: dict[str, list[str]] = field(default_factory=dict)
    tape_ses: set[str] = field(default_factory=set)
    extra_ses: set[str] = field(default_factory=set)
    cpu_shares: dict[str, float] = field(default_factory=dict)
    operations: dict[str, Any] = field(default_factory=dict)
    se_status: dict[str, dict[str, str]] = field(default_factory=dict)
    vo: str = DEFAULT_VO

    @property
    def storage_elements(self) -> list[str]:
        ses = {se for ses in self.site_ses.values() for se in ses} | set(self.tape_ses) | set(self.extra_ses)
        return sorted(ses)

    @classmethod
    def from_resources(cls, resources: Any, operations: Any = None, vo: str = DEFAULT_VO) -> Topology:
        """From a ``FakeResources``-like object (``siteSEs``, ``tapeSEs``, ``cpuShares``, ``knownSEs``)
        and a ``FakeOperations``-like object (``values``)."""
        siteSEs = {site: list(ses) for site, ses in getattr(resources, "siteSEs", {}).items()}
        atSites = {se for ses in siteSEs.values() for se in ses}
        known = set(getattr(resources, "knownSEs", ())) | set(getattr(resources, "tapeSEs", ()))
        shares = getattr(resources, "cpuShares", None)
        if shares is None and hasattr(resources, "getCPUShares"):
            shares = resources.getCPUShares()
        opsValues = getattr(operations, "values", None) if operations is not None else None
        return cls(
            site_ses=siteSEs,
            tape_ses=set(getattr(resources, "tapeSEs", ())),
            extra_ses=known - atSites,
            cpu_shares=dict(shares or {}),
            operations=dict(opsValues) if isinstance(opsValues, Mapping) else {},
            vo=vo,
        )

    def to_cfg_text(self, cpu_shares: Mapping[str, Any] | None = None, operations: Mapping[str, Any] | None = None) -> str:
        """The configuration as DIRAC CFG text (``cpu_shares``/``operations`` override the topology's)."""
        shares = self.cpu_shares if cpu_shares is None else cpu_shares
        ops = self.operations if operations is None else operations
        lines = ["DIRAC", "{", f"  VirtualOrganization = {self.vo}", "  Setup = Twin", "}", "Resources", "{"]
        lines += ["  Sites", "  {"]
        grids: dict[str, dict[str, list[str]]] = {}
        for site, ses in self.site_ses.items():
            grids.setdefault(_gridOf(site), {})[site] = list(ses)
        for grid, sites in grids.items():
            lines += [f"    {grid}", "    {"]
            for site, ses in sites.items():
                lines += [f"      {site}", "      {", f"        Name = {site}"]
                if ses:
                    lines.append(f"        SE = {', '.join(ses)}")
                lines += ["      }"]
            lines += ["    }"]
        lines += ["  }", "  StorageElements", "  {"]
        for se in self.storage_elements:
            seType = "T1D0" if se in self.tape_ses else "T0D1"
            lines += [
                f"    {se}",
                "    {",
                "      BackendType = Twin",
                f"      SEType = {seType}",
                "      AccessProtocol.1",
                "      {",
                f"        Host = {se.lower()}.twin.invalid",
                "        Path = /twin",
                "        Protocol = file",
                "        PluginName = File",
                "        Access = remote",
                "      }",
                "    }",
            ]
        lines += ["  }", "  Shares", "  {", "    CPU", "    {"]
        lines += [f"      {site} = {_cfgValue(value)}" for site, value in shares.items()]
        lines += ["    }", "  }", "}"]
        lines += ["Operations", "{", "  Defaults", "  {"]
        lines += _nestedCfgLines(ops, indent=4)
        lines += ["  }", "}"]
        return "\n".join(lines) + "\n"


def _nestedCfgLines(flat: Mapping[str, Any], indent: int) -> list[str]:
    tree: dict[str, Any] = {}
    for path, value in flat.items():
        if value is None:
            continue
        parts = [p for p in str(path).strip("/").split("/") if p]
        node = tree
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):  # an option and a section of the same name: keep the section
                child = node[part] = {}
            node = child
        if parts and not isinstance(node.get(parts[-1]), dict):
            node[parts[-1]] = value

    def emit(node: dict[str, Any], depth: int) -> list[str]:
        pad = " " * depth
        out = []
        for key, value in node.items():
            if isinstance(value, dict):
                out += [f"{pad}{key}", f"{pad}{{", *emit(value, depth + 2), f"{pad}}}"]
            else:
                out.append(f"{pad}{key} = {_cfgValue(value)}")
        return out

    return emit(tree, indent)


# ---------------------------------------------------------------------------------------------
# Stand-ins for what DIRAC would build or look up by itself
# ---------------------------------------------------------------------------------------------
class MissingClient:
    """Given to DIRAC instead of a client the caller did not pass: every call is an S_ERROR."""

    def __init__(self, role: str) -> None:
        self._role = role

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)

        def call(*args: Any, **kwargs: Any) -> dict[str, Any]:
            return S_ERROR(f"twin: no {self._role} was given to GenuinePluginHost.make_plugin (called {name})")

        return call

    def __repr__(self) -> str:
        return f"<MissingClient {self._role}>"


class SimulatedStorageElement:
    """What ``StorageElement(se)`` returns inside a plugin run that has ``resources``.

    ``status()`` builds DIRAC's status dict from ``resources.isDiskSE``; every other attribute goes to
    DIRAC's real ``StorageElement`` built on first use from the configuration.
    """

    def __init__(self, name: str, resources: Any, genuineFactory: Any) -> None:
        self.name = name
        self._resources = resources
        self._genuineFactory = genuineFactory
        self._genuine = None

    def status(self) -> dict[str, Any]:
        disk = bool(self._resources.isDiskSE(self.name))
        return {
            "Read": True,
            "Write": True,
            "Remove": True,
            "Check": True,
            "DiskSE": disk,
            "TapeSE": not disk,
            "TotalCapacityTB": -1,
            "DiskCacheTB": -1,
        }

    def getStatus(self) -> dict[str, Any]:
        return S_OK(self.status())

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_genuine", "_genuineFactory", "_resources", "name"):
            raise AttributeError(name)
        if self._genuine is None:
            self._genuine = self._genuineFactory(self.name)
        return getattr(self._genuine, name)


@dataclass
class _RunContext:
    resources: Any = None
    operations: Any = None
    rng: Any = None


class _RandomRouter:
    """Stands for the ``random`` module inside DIRAC's plugin modules: the running plugin's rng, or random."""

    def __init__(self, patches: _Patches) -> None:
        self._patches = patches

    def __getattr__(self, name: str) -> Any:
        ctx = self._patches.current()
        target = ctx.rng if ctx is not None and ctx.rng is not None else _random_module
        return getattr(target, name)


class _Patches:
    """The process-wide re-binding of DIRAC module globals; dispatches to the running plugin's context."""

    def __init__(self, dirac: types.SimpleNamespace) -> None:
        self.dirac = dirac
        self._local = threading.local()
        self.vo = DEFAULT_VO
        self.seStatus: dict[str, dict[str, str]] = {}
        tp, util = dirac.tpModule, dirac.utilModule
        self.genuine = {
            "getSitesForSE": tp.getSitesForSE,
            "getSEsForSite": tp.getSEsForSite,
            "StorageElement": util.StorageElement,
            "getElementStatus": dirac.ResourceStatus.getElementStatus,
            "setElementStatus": dirac.ResourceStatus.setElementStatus,
        }
        router = _RandomRouter(self)
        tp.getSitesForSE = self.getSitesForSE
        tp.getSEsForSite = self.getSEsForSite
        tp.random = router
        util.getSitesForSE = self.getSitesForSE
        util.StorageElement = self.StorageElement
        util.random = router
        patches = self

        def getElementStatus(rs: Any, elementName: Any, elementType: str, statusType: Any = None, default: Any = None, vO: Any = None) -> dict[str, Any]:
            return patches.getElementStatus(elementName, elementType, statusType)

        def setElementStatus(rs: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
            return S_ERROR("twin: the ResourceStatus service is not simulated by GenuinePluginHost")

        dirac.ResourceStatus.getElementStatus = getElementStatus
        dirac.ResourceStatus.setElementStatus = setElementStatus

    # -- context stack -------------------------------------------------------------------------
    def current(self) -> _RunContext | None:
        stack = getattr(self._local, "stack", None)
        return stack[-1] if stack else None

    def push(self, ctx: _RunContext) -> None:
        if not hasattr(self._local, "stack"):
            self._local.stack = []
        self._local.stack.append(ctx)

    def pop(self) -> None:
        self._local.stack.pop()

    # -- the patched names -----------------------------------------------------------------------
    def getSitesForSE(self, storageElement: str, gridName: str = "", withSiteLocalSEMapping: bool = False) -> dict[str, Any]:
        ctx = self.current()
        if ctx is None or ctx.resources is None:
            return self.genuine["getSitesForSE"](storageElement, gridName, withSiteLocalSEMapping)
        result = ctx.resources.getSitesForSE(storageElement)
        if not result["OK"] or not gridName:
            return result
        return S_OK([site for site in result["Value"] if _gridOf(site) == gridName])

    def getSEsForSite(self, siteName: str, withSiteLocalSEMapping: bool = False) -> dict[str, Any]:
        ctx = self.current()
        if ctx is None or ctx.resources is None:
            return self.genuine["getSEsForSite"](siteName, withSiteLocalSEMapping)
        result = ctx.resources.getSEsForSite(siteName)
        return result if result["OK"] else S_OK([])  # as SiteSEMapping.getSEsForSite

    def _genuineSE(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if not args and "vo" not in kwargs:
            kwargs["vo"] = self.vo  # no proxy lookup for the VO
        return self.genuine["StorageElement"](name, *args, **kwargs)

    def StorageElement(self, name: str, *args: Any, **kwargs: Any) -> Any:
        ctx = self.current()
        if ctx is None or ctx.resources is None:
            return self._genuineSE(name, *args, **kwargs)
        return SimulatedStorageElement(name, ctx.resources, lambda se: self._genuineSE(se, *args, **kwargs))

    def getElementStatus(self, elementName: Any, elementType: str, statusType: Any = None) -> dict[str, Any]:
        if elementType not in ("StorageElement", "ComputingElement", "FTS"):
            return S_ERROR(f"{elementType} in not in the list of the allowed parameters")
        if not statusType:
            statusType = ["ReadAccess", "WriteAccess", "CheckAccess", "RemoveAccess"] if elementType == "StorageElement" else ["all"]
        if isinstance(statusType, str):
            statusType = [statusType]
        names = [elementName] if isinstance(elementName, str) else list(elementName)
        return S_OK({name: {st: self.seStatus.get(name, {}).get(st, "Active") for st in statusType} for name in names})


_PATCHES: _Patches | None = None
_PATCH_LOCK = threading.RLock()


# ---------------------------------------------------------------------------------------------
# The host
# ---------------------------------------------------------------------------------------------
class GenuinePluginHost:
    """Owns DIRAC's in-process configuration and builds genuine plugin objects.

    Only one configuration exists per process (DIRAC's ``gConfigurationData`` is global), so one host at
    a time should be used; creating a new host replaces the configuration of the previous one.
    """

    def __init__(
        self,
        topology: Topology | None = None,
        *,
        m2crypto: str = "auto",
        log_level: str = "ERROR",
    ) -> None:
        global _PATCHES
        self.dirac = _import_dirac(m2crypto)
        self.topology = topology if topology is not None else Topology()
        if log_level:
            self.dirac.gLogger.setLevel(log_level)
        with _PATCH_LOCK:
            if _PATCHES is None:
                _PATCHES = _Patches(self.dirac)
            self._patches = _PATCHES
        self._synced: tuple[Any, Any] | None = None
        self.configure(self.topology)

    @property
    def m2crypto_stubbed(self) -> bool:
        return m2crypto_is_stubbed()

    # -- configuration -------------------------------------------------------------------------
    def configure(self, topology: Topology, cpu_shares: Mapping[str, Any] | None = None, operations: Mapping[str, Any] | None = None) -> None:
        """Replace DIRAC's whole local configuration by the one of ``topology``."""
        self.topology = topology
        self._install_cfg(topology.to_cfg_text(cpu_shares, operations))
        self._patches.vo = topology.vo
        self._patches.seStatus = {se: dict(st) for se, st in topology.se_status.items()}
        self._synced = (
            dict(topology.cpu_shares if cpu_shares is None else cpu_shares),
            dict(topology.operations if operations is None else operations),
        )

    def _install_cfg(self, text: str) -> None:
        d = self.dirac
        cfg = d.CFG()
        cfg.loadFromBuffer(text)
        data = d.gConfigurationData
        data.localCFG = d.CFG()
        data.remoteCFG = d.CFG()
        data.mergedCFG = d.CFG()
        data.mergeWithLocal(cfg)
        data.generateNewVersion()
        # StorageElement objects are cached by DIRAC for 30 min: drop those built from the old config
        seFactory = getattr(d.seModule, "StorageElement", None)
        if hasattr(getattr(seFactory, "seCache", None), "purgeAll"):
            seFactory.seCache.purgeAll(useLock=True)

    def cfg_text(self) -> str:
        """DIRAC's current merged configuration, as text (for debugging)."""
        return str(self.dirac.gConfigurationData.mergedCFG)

    def _sync(self, plugin: str, resources: Any, operations: Any) -> None:
        """Copy the simulated CPU shares and Operations values into the configuration if they changed."""
        shares = dict(self._synced[0]) if self._synced else dict(self.topology.cpu_shares)
        ops = dict(self._synced[1]) if self._synced else dict(self.topology.operations)
        if resources is not None and hasattr(resources, "getCPUShares"):
            shares = dict(resources.getCPUShares())
        if operations is not None:
            values = getattr(operations, "values", None)
            if isinstance(values, Mapping):
                ops = dict(values)
            else:
                ops = dict(self.topology.operations)
                for name in PLUGIN_OPTION_NAMES:
                    for path in (f"TransformationPlugins/{name}", f"TransformationPlugins/{plugin}/{name}"):
                        value = operations.getValue(path, None)
                        if value is not None:
                            ops[path] = value
                        else:
                            ops.pop(path, None)
        if (shares, ops) != self._synced:
            self.configure(self.topology, cpu_shares=shares, operations=ops)

    # -- plugins -------------------------------------------------------------------------------
    def plugin_class(self, source: str = "dirac") -> type:
        """DIRAC's or CTADIRAC's ``TransformationPlugin`` class."""
        if source not in PLUGIN_MODULES:
            raise ValueError(f"source must be one of {sorted(PLUGIN_MODULES)}, not {source!r}")
        module = self.dirac.ctaModule if source == "ctadirac" else self.dirac.tpModule
        return module.TransformationPlugin

    def make_plugin(
        self,
        name: str,
        source: str = "dirac",
        transClient: Any = None,
        fc: Any = None,
        resources: Any = None,
        operations: Any = None,
        *,
        dataManager: Any = None,
        rng: Any = None,
    ) -> GenuinePlugin:
        """A genuine ``TransformationPlugin(name, transClient=, dataManager=, fc=)`` behind the native API.

        ``resources``/``operations``: the simulated ResourcesAPI/OperationsAPI (None: DIRAC's own helpers
        on the host configuration). ``rng``: the random stream DIRAC's ``random.shuffle`` draws from while
        this plugin runs (e.g. the ``random.Random`` given to the native plugin); None: Python's ``random``.
        """
        cls = self.plugin_class(source)
        ctx = _RunContext(resources=resources, operations=operations, rng=rng)
        with self._activated(name, ctx):
            genuine = cls(
                name,
                transClient=transClient if transClient is not None else MissingClient("transClient"),
                dataManager=dataManager if dataManager is not None else MissingClient("dataManager"),
                fc=fc if fc is not None else MissingClient("fc"),
            )
        return GenuinePlugin(self, genuine, ctx, source)

    def _activated(self, plugin: str, ctx: _RunContext) -> _Activation:
        return _Activation(self, plugin, ctx)


class _Activation:
    def __init__(self, host: GenuinePluginHost, plugin: str, ctx: _RunContext) -> None:
        self.host, self.plugin, self.ctx = host, plugin, ctx

    def __enter__(self) -> None:
        _PATCH_LOCK.acquire()
        try:
            self.host._sync(self.plugin, self.ctx.resources, self.ctx.operations)
            self.host._patches.push(self.ctx)
        except BaseException:
            _PATCH_LOCK.release()
            raise

    def __exit__(self, *exc: Any) -> None:
        try:
            self.host._patches.pop()
        finally:
            _PATCH_LOCK.release()


class GenuinePlugin:
    """A genuine DIRAC/CTADIRAC plugin object with the native plugin API.

    ``run()`` makes this plugin's ``resources``/``operations``/``rng`` the ones DIRAC's patched names
    answer from, then calls DIRAC's ``run()``. Other attributes (``data``, ``params``, ``util``, ...) are
    those of the genuine object, available as ``.genuine``.
    """

    def __init__(self, host: GenuinePluginHost, genuine: Any, ctx: _RunContext, source: str) -> None:
        self.host = host
        self.genuine = genuine
        self.source = source
        self._ctx = ctx

    @property
    def rng(self) -> Any:
        return self._ctx.rng

    @rng.setter
    def rng(self, value: Any) -> None:
        self._ctx.rng = value

    def seed(self, seed: Any) -> None:
        """Seed the stream Broadcast shuffles with: this plugin's rng, or Python's ``random``."""
        (self._ctx.rng if self._ctx.rng is not None else _random_module).seed(seed)

    def setParameters(self, params: dict[str, Any]) -> None:
        self.genuine.setParameters(params)

    def setInputData(self, data: dict[str, list[str]]) -> None:
        self.genuine.setInputData(data)

    def setTransformationFiles(self, files: Iterable[dict[str, Any]]) -> None:
        self.genuine.setTransformationFiles(files)

    def isOK(self) -> bool:
        return self.genuine.isOK()

    def run(self) -> dict[str, Any]:
        with self.host._activated(self.genuine.plugin, self._ctx):
            return self.genuine.run()

    def __getattr__(self, name: str) -> Any:
        if name in ("genuine", "host", "source", "_ctx"):
            raise AttributeError(name)
        return getattr(self.genuine, name)

    def __repr__(self) -> str:
        return f"<GenuinePlugin {self.source}:{self.genuine.plugin}>"


def make_genuine_plugin(name: str, source: str = "dirac", **kwargs: Any) -> GenuinePlugin:
    """Convenience: a host on ``Topology.from_resources(resources, operations)`` and one plugin."""
    resources, operations = kwargs.get("resources"), kwargs.get("operations")
    topology = Topology.from_resources(resources, operations) if resources is not None else None
    return GenuinePluginHost(topology).make_plugin(name, source, **kwargs)
