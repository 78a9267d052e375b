"""`twin import-cs dirac.cfg`: a DIRAC Configuration Service dump -> scenario topology + DIRAC options.

Reads the dump with `diraccfg` (what `dirac-configuration-dump-local-cache` or a server's .cfg
writes) and maps, with the DIRAC code that reads each value:

- /Resources/Sites/<grid>/<site>: `SE` (site-SE mapping, DMSHelpers.getSiteSEMapping);
  CEs/<ce>/Queues/<queue>: `MaxTotalJobs` -> slots, `MaxWaitingJobs` -> max_waiting_pilots (SiteDirector,
  defaults 10 and 10), `SI00` -> hs06_per_core (SI00 / 250, QueueUtilities.computeQueueCPULimit),
  `maxCPUTime` (minutes, capped at 12.5 d as computeQueueCPULimit does) -> pilot_lifetime,
  `NumberOfProcessors` (default 1), `MaxRAM` (MB) -> memory_mb_per_slot;
- /Resources/StorageElements/<se>: `SEType` TXDY -> disk or tape (StorageElement.getStatus),
  `TotalCapacityTB`, `DiskCacheTB`;
- /Resources/Shares/CPU/<site> -> cpu_share (TransformationPlugin._getShares);
- /Operations/<section>/Transformations/{DataProcessing, DataManipulation, ExtendableTransfTypes,
  FilesMaxResetCounter, DestinationPlugin}, ProductionOutputs/<type>, ProductionOutputsFailover/<type>
  (CTADIRAC ProdDataManager._getSEList) and TransformationPlugins/* (plugin options).

A value the twin needs that the CS does not hold (an SE's capacity, tape drives, a queue's SI00) is
*reported* and left out of the YAML, never guessed: the written file then does not load until a
scenario extending it supplies the value (named lists merge by name). Values DIRAC itself defaults
(MaxTotalJobs 10...) use DIRAC's default and say so in provenance.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from twin.errors import TwinError

SI00_PER_HS06 = 250.0           # DIRAC's normalisation: 1 HS06 = 250 SpecInt2000 (computeQueueCPULimit)
MAX_CPU_TIME_MIN = 86400 * 12.5  # computeQueueCPULimit caps maxCPUTime (minutes) at this value
SITE_DIRECTOR_DEFAULTS = {"MaxTotalJobs": 10, "MaxWaitingJobs": 10}
LIST_OPTIONS = ("DataProcessing", "DataManipulation", "ExtendableTransfTypes")
OPS_TRANSFORMATIONS = {"DataProcessing": "data_processing_types", "DataManipulation": "data_manipulation_types",
                       "ExtendableTransfTypes": "extendable_types", "FilesMaxResetCounter": "files_max_reset_counter",
                       "DestinationPlugin": "destination_plugin"}


@dataclass
class ImportedCS:
    """The scenario fragment, its provenance, and what the CS did not say."""

    source: str
    topology: dict[str, Any] = field(default_factory=lambda: {"sites": [], "storage": []})
    dirac: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"topology": self.topology}
        if self.dirac:
            doc["dirac"] = self.dirac
        doc["provenance"] = self.provenance
        return doc

    def source_note(self, cs_path: str) -> str:
        return f"source: CS dump {self.source} {cs_path}"


def load_cfg(path: Path) -> dict[str, Any]:
    """The dump as nested dicts of strings; a missing or unparsable file is a one-line error."""
    from diraccfg import CFG

    try:
        return CFG().loadFromFile(str(path)).getAsDict()
    except FileNotFoundError:
        raise TwinError(f"{path}: no such file (expected a DIRAC CS dump, .cfg)") from None
    except (ValueError, IndexError, UnicodeDecodeError) as exc:
        raise TwinError(f"{path}: not a DIRAC CS dump ({str(exc).splitlines()[0]})") from None


def import_cs(path: Path, operations_section: str = "Defaults") -> ImportedCS:
    cfg = load_cfg(path)
    out = ImportedCS(path.name)
    resources = _section(cfg, "Resources", path, "/Resources")
    se_sites = _import_sites(out, _section(resources, "Sites", path, "/Resources/Sites"), _dict(resources.get("Shares", {})).get("CPU", {}))
    _import_ses(out, _dict(resources.get("StorageElements", {})), se_sites)
    ops = _dict(_dict(cfg.get("Operations", {})).get(operations_section, {}))
    if not ops:
        out.missing.append(f"/Operations/{operations_section}: no such section (DIRAC defaults apply)")
    _import_operations(out, ops, f"/Operations/{operations_section}")
    return out


# ---------------------------------------------------------------- sites, CEs, queues
def _import_sites(out: ImportedCS, grids: dict[str, Any], shares: Any) -> dict[str, str]:
    """Sites with their queues; returns SE -> first site naming it (the SE's home site)."""
    se_sites: dict[str, str] = {}
    shares = _dict(shares)
    for grid in sorted(grids):
        for site_name, site in sorted(_dict(grids[grid]).items()):
            base = f"/Resources/Sites/{grid}/{site_name}"
            ses = _list(_dict(site).get("SE", ""))
            ces = _import_ces(out, site_name, _dict(_dict(site).get("CEs", {})), base)
            if not ces:
                out.missing.append(f"{base}/CEs: no CE with a queue (site left out)")
                continue
            entry: dict[str, Any] = {"name": site_name, "ces": ces, "ses": ses}
            if site_name in shares:
                entry["cpu_share"] = _number(shares[site_name], f"/Resources/Shares/CPU/{site_name}")
                out.provenance[f"topology.sites[{site_name}].cpu_share"] = out.source_note(f"/Resources/Shares/CPU/{site_name}")
            out.topology["sites"].append(entry)
            out.provenance[f"topology.sites[{site_name}]"] = out.source_note(base)
            for se in ses:
                se_sites.setdefault(se, site_name)
    for site_name in sorted(set(shares) - {s["name"] for s in out.topology["sites"]}):
        out.unknown.append(f"/Resources/Shares/CPU/{site_name}: share for a site with no queue in the dump")
    return se_sites


def _import_ces(out: ImportedCS, site: str, ces: dict[str, Any], base: str) -> list[dict[str, Any]]:
    entries = []
    for ce_name, ce in sorted(ces.items()):
        for queue_name, queue in sorted(_dict(_dict(ce).get("Queues", {})).items()):
            params = {**{k: v for k, v in _dict(ce).items() if not isinstance(v, dict)}, **_dict(queue)}  # CE-level values inherited
            name = f"{ce_name}_{queue_name}"
            entries.append(_queue(out, site, name, params, f"{base}/CEs/{ce_name}/Queues/{queue_name}"))
    return entries


def _queue(out: ImportedCS, site: str, name: str, q: dict[str, Any], path: str) -> dict[str, Any]:
    key = f"topology.sites[{site}].ces[{name}]"
    entry: dict[str, Any] = {"name": name}
    for option, target in (("MaxTotalJobs", "slots"), ("MaxWaitingJobs", "max_waiting_pilots")):
        if option in q:
            entry[target] = int(_number(q[option], f"{path}/{option}"))
            out.provenance[f"{key}.{target}"] = out.source_note(f"{path}/{option}")
        else:
            entry[target] = SITE_DIRECTOR_DEFAULTS[option]
            out.provenance[f"{key}.{target}"] = f"source: DIRAC SiteDirector default {option}={entry[target]} ({path}/{option} not set)"
    if "SI00" in q:
        entry["hs06_per_core"] = round(_number(q["SI00"], f"{path}/SI00") / SI00_PER_HS06, 3)
        out.provenance[f"{key}.hs06_per_core"] = out.source_note(f"{path}/SI00") + " / 250 (computeQueueCPULimit)"
    else:
        out.missing.append(f"{path}/SI00: CPU normalisation not in the CS (hs06_per_core left to the scenario)")
    if "maxCPUTime" in q:
        minutes = min(max(_number(q["maxCPUTime"], f"{path}/maxCPUTime"), 0.0), MAX_CPU_TIME_MIN)
        entry["pilot_lifetime"] = minutes * 60.0
        out.provenance[f"{key}.pilot_lifetime"] = out.source_note(f"{path}/maxCPUTime") + " (minutes)"
    else:
        out.missing.append(f"{path}/maxCPUTime: queue time limit not in the CS (pilot_lifetime left to the scenario)")
    if "NumberOfProcessors" in q:
        entry["processors"] = int(_number(q["NumberOfProcessors"], f"{path}/NumberOfProcessors"))
    if "MaxRAM" in q:
        entry["memory_mb_per_slot"] = int(_number(q["MaxRAM"], f"{path}/MaxRAM"))
        out.provenance[f"{key}.memory_mb_per_slot"] = out.source_note(f"{path}/MaxRAM")
    return entry


# ---------------------------------------------------------------- storage elements
def _import_ses(out: ImportedCS, ses: dict[str, Any], se_sites: dict[str, str]) -> None:
    for name in sorted(set(ses) | set(se_sites)):
        path = f"/Resources/StorageElements/{name}"
        if name not in ses:
            out.missing.append(f"{path}: SE named by site {se_sites[name]} but not defined")
            continue
        if name not in se_sites:
            out.unknown.append(f"{path}: SE not named by any site's SE option (left out: the twin needs its site)")
            continue
        options = _dict(ses[name])
        entry: dict[str, Any] = {"name": name, "site": se_sites[name]}
        se_type = str(options.get("SEType", ""))
        tape = re.search("T[1-9]", se_type) is not None
        entry["kind"] = "tape" if tape else "disk"
        out.provenance[f"topology.storage[{name}].kind"] = (out.source_note(f"{path}/SEType") if se_type else
                                                             "source: DIRAC default (no SEType: DiskSE, StorageElement.getStatus)")
        if "TotalCapacityTB" in options and _number(options["TotalCapacityTB"], f"{path}/TotalCapacityTB") > 0:
            entry["capacity_tb"] = _number(options["TotalCapacityTB"], f"{path}/TotalCapacityTB")
            out.provenance[f"topology.storage[{name}].capacity_tb"] = out.source_note(f"{path}/TotalCapacityTB")
        else:
            out.missing.append(f"{path}/TotalCapacityTB: capacity not in the CS (capacity_tb must be given)")
        if tape:
            out.missing.append(f"{path}: tape drives and drive speed are not in the CS (tape.drives, tape.drive_mbps must be given)")
            if "DiskCacheTB" in options:
                entry["tape"] = {"disk_cache_tb": _number(options["DiskCacheTB"], f"{path}/DiskCacheTB")}
        out.topology["storage"].append(entry)


# ---------------------------------------------------------------- Operations
def _import_operations(out: ImportedCS, ops: dict[str, Any], base: str) -> None:
    trans = _dict(ops.get("Transformations", {}))
    for option, target in OPS_TRANSFORMATIONS.items():
        if option not in trans:
            continue
        value = trans[option]
        path = f"{base}/Transformations/{option}"
        out.dirac[target] = _list(value) if option in LIST_OPTIONS else (
            int(_number(value, path)) if option == "FilesMaxResetCounter" else str(value))
        out.provenance[f"dirac.{target}"] = out.source_note(path)
    for section, target in (("ProductionOutputs", "production_outputs"), ("ProductionOutputsFailover", "production_outputs_failover")):
        values = {k: _list(v) for k, v in _dict(ops.get(section, {})).items() if not isinstance(v, dict)}
        if values:
            out.dirac[target] = values
            out.provenance[f"dirac.{target}"] = out.source_note(f"{base}/{section}")
    plugins = _flatten(_dict(ops.get("TransformationPlugins", {})), "TransformationPlugins")
    if plugins:
        out.dirac["operations"] = plugins
        out.provenance["dirac.operations"] = out.source_note(f"{base}/TransformationPlugins")


# ---------------------------------------------------------------- helpers
def _section(parent: dict[str, Any], name: str, path: Path, cs_path: str) -> dict[str, Any]:
    value = parent.get(name)
    if not isinstance(value, dict):
        raise TwinError(f"{path}: {cs_path}: expected a section, {'found an option' if value is not None else 'not found'}")
    return value


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[str]:
    """A CS list option: comma-separated."""
    return [item.strip() for item in str(value).split(",") if item.strip()]


def _number(value: Any, cs_path: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TwinError(f"{cs_path}: expected a number, got {value!r}") from None


def _flatten(section: dict[str, Any], prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in section.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}/{key}"))
        else:
            out[f"{prefix}/{key}"] = _list(value) if "," in str(value) else str(value)
    return out


# ---------------------------------------------------------------- CLI
def add_import_cs_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("cfg", type=Path, help="DIRAC CS dump (.cfg, as dirac-configuration-dump-local-cache writes it)")
    parser.add_argument("--out", type=Path, help="YAML file to write (default: print to stdout)")
    parser.add_argument("--operations", default="Defaults", metavar="SECTION",
                        help="the /Operations section to read (default: Defaults)")


def cmd_import_cs(args: argparse.Namespace) -> int:
    """Write the scenario fragment; report what is missing or not understood on stderr (exit 0)."""
    import sys

    imported = import_cs(args.cfg, args.operations)
    header = [f"# Imported from the DIRAC CS dump {args.cfg.name} by `twin import-cs`."]
    if imported.missing:
        header.append("# Not in the CS (give these in a scenario that extends this file):")
        header += [f"#   {line}" for line in imported.missing]
    text = "\n".join(header) + "\n" + yaml.safe_dump(imported.document(), sort_keys=False, width=120)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
    else:
        print(text, end="")
    sites, ses = imported.topology["sites"], imported.topology["storage"]
    print(f"import-cs: {len(sites)} sites, {sum(len(s['ces']) for s in sites)} queues, {len(ses)} SEs"
          f"{' -> ' + str(args.out) if args.out else ''}", file=sys.stderr)
    for line in imported.missing:
        print(f"import-cs: missing: {line}", file=sys.stderr)
    for line in imported.unknown:
        print(f"import-cs: not used: {line}", file=sys.stderr)
    return 0
