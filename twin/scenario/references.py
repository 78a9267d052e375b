"""Cross-reference checks the schema cannot express: names that must exist elsewhere."""

from __future__ import annotations

from twin.scenario.paths import get_path
from twin.scenario.schema import Scenario


def check_references(scenario: Scenario) -> list[tuple[str, str]]:
    """(key path, message) for every dangling name; empty when the scenario is consistent."""
    topo = scenario.topology
    sites = {site.name for site in topo.sites}
    ses = {se.name for se in topo.storage}
    servers = {server.name for server in topo.servers}
    problems: list[tuple[str, str]] = []

    def need(names: set[str], value: str, path: str, what: str) -> None:
        if value not in names:
            problems.append((path, f"expected the name of a {what} in the topology, got {value!r}"))

    ce_names: dict[str, str] = {}
    for i, site in enumerate(topo.sites):
        for j, ce in enumerate(site.ces):
            if ce.name in ce_names:
                problems.append((f"topology.sites[{i}].ces[{j}].name",
                                 f"expected a CE name unique across sites, {ce.name!r} is also a CE of {ce_names[ce.name]}"))
            ce_names.setdefault(ce.name, site.name)
        for j, se in enumerate(site.ses):
            need(ses, se, f"topology.sites[{i}].ses[{j}]", "storage element")
    for i, se in enumerate(topo.storage):
        need(sites, se.site, f"topology.storage[{i}].site", "site")
    for i, link in enumerate(topo.network.links):
        need(sites, link.source, f"topology.network.links[{i}].source", "site")
        need(sites, link.destination, f"topology.network.links[{i}].destination", "site")
    for i, db in enumerate(topo.databases):
        need(servers, db.server, f"topology.databases[{i}].server", "core server")
    for i, prod in enumerate(scenario.workload.productions):
        for j, step in enumerate(prod.steps):
            for key in ("source_se", "target_se"):
                for k, se in enumerate(getattr(step, key)):
                    need(ses, se, f"workload.productions[{i}].steps[{j}].{key}[{k}]", "storage element")
            for k, site in enumerate(step.job.destination):
                need(sites, site, f"workload.productions[{i}].steps[{j}].job.destination[{k}]", "site")
    plugins = native_plugin_names()
    for i, prod in enumerate(scenario.workload.productions):
        for j, step in enumerate(prod.steps):
            if step.plugin_class is None and step.plugin_source == "native" and step.plugin not in plugins:
                problems.append((f"workload.productions[{i}].steps[{j}].plugin",
                                 f"expected a TransformationAgent plugin of the twin ({', '.join(sorted(plugins))}) "
                                 f"or a plugin_class defining _{step.plugin}, got {step.plugin!r}"))
    steps = {f"{prod.name}/{step.name}" for prod in scenario.workload.productions for step in prod.steps}
    for i, action in enumerate(scenario.workload.operator_actions):
        if action.target not in steps:
            problems.append((f"workload.operator_actions[{i}].target",
                             f"expected 'Production/Step' naming a step of the workload, got {action.target!r}"))
    for i, data in enumerate(scenario.workload.initial_data):
        for k, se in enumerate(data.ses):
            need(ses, se, f"workload.initial_data[{i}].ses[{k}]", "storage element")
    for kind in ("production_outputs", "production_outputs_failover"):
        for data_type, names in getattr(scenario.dirac, kind).items():
            for k, se in enumerate(names):
                need(ses, se, f"dirac.{kind}.{data_type}[{k}]", "storage element")
    if scenario.dirac.replication_mode == "direct":  # FTS settings are used only in FTS3 mode
        for key in sorted({"max_files_per_fts_job", "max_attempts_per_file"} & topo.network.model_fields_set):
            problems.append((f"topology.network.{key}", "expected no value with dirac.replication_mode: direct "
                                                        "(file-by-file copies); it is used only in fts3 mode"))
        if "fts3_agent" in scenario.dirac.model_fields_set:
            problems.append(("dirac.fts3_agent", "expected no value with dirac.replication_mode: direct; "
                                                 "the FTS3Agent runs only in fts3 mode"))
    for kind in ("running_limits", "matching_delays"):
        for site in getattr(scenario.dirac, kind):
            need(sites, site, f"dirac.{kind}.{site}", "site")
    databases = {db.name for db in topo.databases}
    tape_ses = {se.name for se in topo.storage if se.kind == "tape"}
    targets = {
        "site_down": (sites, "site"), "failure_spike": (sites, "site"), "se_banned": (ses, "storage element"),
        "tape_drive_lost": (tape_ses, "tape storage element"), "db_slow": (databases, "database"),
        "db_down": (databases, "database"), "server_down": (servers, "core server"),
    }
    tape_drives = {se.name: se.tape.drives for se in topo.storage if se.tape is not None}
    for i, fault in enumerate(scenario.faults):
        lost = fault.params.get("drives", 1) if fault.kind == "tape_drive_lost" else 0
        if lost > tape_drives.get(fault.target, lost):
            problems.append((f"faults[{i}].params.drives", f"expected at most the {tape_drives[fault.target]} drives "
                                                            f"of {fault.target}, got {lost}"))
        if fault.kind == "link_cut":
            ends = [end.strip() for end in fault.target.split("->")]
            if len(ends) != 2 or any(end not in sites for end in ends):
                problems.append((f"faults[{i}].target", f"expected 'SourceSite->DestinationSite' naming two sites, got {fault.target!r}"))
        else:
            names, what = targets[fault.kind]
            need(names, fault.target, f"faults[{i}].target", what)
    problems += _check_patterns(scenario, sites, steps)
    problems += _check_provenance(scenario)
    return problems


def _check_patterns(scenario: Scenario, sites: set[str], steps: set[str]) -> list[tuple[str, str]]:
    """Failure-model and supply patterns must match something: a typo would silently model nothing."""
    from fnmatch import fnmatchcase

    problems = []
    groups = [("failure_models.sites", [m.sites for m in scenario.failure_models.sites], sites, "site"),
              ("failure_models.steps", [m.steps for m in scenario.failure_models.steps], steps, "'Production/Step'"),
              ("supply", [m.steps for m in scenario.supply], steps, "'Production/Step'")]
    for where, patterns, names, what in groups:
        key = where.rsplit(".", 1)[-1] if where != "supply" else "steps"
        for i, pattern in enumerate(patterns):
            if pattern != "*" and not any(fnmatchcase(name, pattern) for name in names):
                problems.append((f"{where}[{i}].{key}", f"expected a pattern matching some {what} name "
                                                         f"({', '.join(sorted(names)) or 'none defined'}), got {pattern!r}"))
    return problems


def native_plugin_names() -> set[str]:
    """The plugins the twin's native CTA plugin class runs: its `_Name` methods (DIRAC's naming rule)."""
    import re

    from twin.dirac.transformation.plugins import CTATransformationPlugin

    return {attr[1:] for klass in CTATransformationPlugin.__mro__ for attr, value in vars(klass).items()
            if re.fullmatch(r"_[A-Z][A-Za-z]+", attr) and callable(value)}


def _check_provenance(scenario: Scenario) -> list[tuple[str, str]]:
    """Every provenance entry must point at a value that exists (so sources cannot go stale silently)."""
    data = scenario.model_dump(mode="json")
    problems = []
    for key in scenario.provenance:
        try:
            get_path(data, key)
        except (KeyError, ValueError) as exc:
            problems.append((f"provenance[{key}]", f"expected a key path that exists in the scenario ({str(exc).strip(chr(34) + chr(39))})"))
    return problems
