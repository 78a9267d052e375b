"""Scenario loading: extends/overrides, and one clear error line for each kind of bad input."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
import yaml

from twin.cli import main
from twin.errors import ScenarioError, ScenarioErrors
from twin.scenario.loader import load_scenario, merge
from twin.scenario.paths import set_path, split_path

DATA = Path(__file__).parent / "data"
MINIMAL = DATA / "minimal.yaml"


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def what_if(tmp_path: Path, body: str) -> Path:
    """A scenario extending the minimal one with `body` (so each case changes one thing)."""
    (tmp_path / "minimal.yaml").write_text(MINIMAL.read_text())
    return write(tmp_path, "extends: minimal.yaml\n" + textwrap.dedent(body))


def error_of(path: Path) -> str:
    with pytest.raises((ScenarioError, ScenarioErrors)) as info:
        load_scenario(path)
    message = str(info.value)
    assert "Traceback" not in message
    return message.splitlines()[0]


def test_minimal_scenario_loads_with_dirac_defaults():
    scenario = load_scenario(MINIMAL)
    assert scenario.run.duration == 2 * 86400
    assert scenario.topology.sites[0].ces[0].slots == 40
    assert scenario.dirac.transformation_agent.polling_time == 120
    assert scenario.dirac.stalled_time == 4500
    assert scenario.dirac.failed_time == 11700


def test_extends_merges_named_lists_and_overrides_by_path(tmp_path):
    path = what_if(tmp_path, """
        name: pic-halved
        topology:
          sites:
            - name: LCG.PIC.es
              ces: [{name: pic-ce, slots: 10}]
        overrides:
          topology.sites[LCG.IN2P3-CC.fr].ces[cc-ce].hs06_per_core: 20
          run.seed: 99
        """)
    scenario = load_scenario(path)
    sites = {s.name: s for s in scenario.topology.sites}
    assert scenario.name == "pic-halved"
    assert [s.name for s in scenario.topology.sites] == ["LCG.IN2P3-CC.fr", "LCG.PIC.es"]
    assert sites["LCG.PIC.es"].ces[0].slots == 10
    assert sites["LCG.PIC.es"].ces[0].hs06_per_core == 10  # kept from the baseline
    assert sites["LCG.IN2P3-CC.fr"].ces[0].hs06_per_core == 20
    assert scenario.run.seed == 99


def test_cli_param_override_wins_over_file():
    scenario = load_scenario(MINIMAL, {"run.seed": 3, "topology.sites[LCG.PIC.es].ces[0].slots": 0})
    assert scenario.run.seed == 3
    assert scenario.topology.sites[1].ces[0].slots == 0


@pytest.mark.parametrize(
    "body, expected",
    [
        # 1. wrong type
        ("run: {seed: abc}\n", "s.yaml:2: run.seed: expected a valid integer"),
        # 2. negative count
        ("topology: {sites: [{name: LCG.PIC.es, ces: [{name: pic-ce, slots: -3}]}]}\n",
         "topology.sites[1].ces[0].slots: expected greater than or equal to 0, got -3"),
        # 3. unknown key, with a suggestion
        ("run: {seeds: 3}\n", "run.seeds: unknown key (did you mean 'seed'?)"),
        # 4. probability out of range
        ("topology: {sites: [{name: LCG.PIC.es, job_failure_prob: 1.5}]}\n",
         "topology.sites[1].job_failure_prob: expected less than or equal to 1, got 1.5"),
        # 5. bad duration string
        ("run: {duration: soon}\n", "run.duration: expected a duration"),
        # 6. dangling SE reference
        ("topology: {sites: [{name: LCG.PIC.es, ses: [NOPE-Disk]}]}\n",
         "topology.sites[1].ses[0]: expected the name of a storage element in the topology, got 'NOPE-Disk'"),
        # 7. tape SE without tape section
        ("topology: {storage: [{name: CC-Tape, site: LCG.IN2P3-CC.fr, kind: tape, capacity_tb: 10}]}\n",
         "topology.storage[2]: expected a 'tape' section"),
        # 8. unknown fault kind
        ("faults: [{kind: meteor, target: LCG.PIC.es, start: 1h}]\n", "faults[0].kind: expected 'site_down'"),
        # 9. fault on an unknown site
        ("faults: [{kind: site_down, target: LCG.MOON.xx, start: 1h}]\n",
         "faults[0].target: expected the name of a site in the topology, got 'LCG.MOON.xx'"),
        # 10. fault ending before it starts
        ("faults: [{kind: site_down, target: LCG.PIC.es, start: 2h, end: 1h}]\n", "faults[0]: expected end > start"),
        # 11. step parent that does not exist
        ("workload: {productions: [{name: test, steps: [{name: Processing, parent: Nope}]}]}\n",
         "workload.productions[0]: step 'Processing': expected parent to name a step of this production, got 'Nope'"),
        # 12. invalid plugin name (DIRAC requires [a-zA-Z]+)
        ("workload: {productions: [{name: test, steps: [{name: Processing, plugin: By-Size}]}]}\n",
         "workload.productions[0].steps[1].plugin: expected a string matching the pattern"),
        # 13. duplicate names
        ("topology: {storage: [{name: PIC-Disk, site: LCG.PIC.es, capacity_tb: 1}, {name: PIC-Disk, site: LCG.PIC.es, capacity_tb: 2}]}\n",
         "topology.storage: expected unique names, 'PIC-Disk' appears twice"),
        # 14. required key missing
        ("topology: {storage: [{name: X-Disk, site: LCG.PIC.es}]}\n", "topology.storage[2].capacity_tb: required key is missing"),
        # 15. override path to a missing item
        ("overrides:\n  topology.sites[LCG.MOON.xx].ces[0].slots: 1\n",
         "overrides.topology.sites[LCG.MOON.xx].ces[0].slots: topology.sites[LCG.MOON.xx]: no item named 'LCG.MOON.xx'"),
        # 16. output SE that does not exist
        ("dirac: {production_outputs: {simtel: [Nowhere-Disk]}}\n",
         "dirac.production_outputs.simtel[0]: expected the name of a storage element in the topology, got 'Nowhere-Disk'"),
    ],
)
def test_bad_input_gives_one_line_with_file_and_path(tmp_path, body, expected):
    message = error_of(what_if(tmp_path, body))
    assert "s.yaml" in message or "minimal.yaml" in message
    assert expected in message


def test_error_points_at_the_line_in_the_file(tmp_path):
    path = write(tmp_path, """\
        name: x
        topology:
          sites:
            - name: A
              ces:
                - {name: ce, slots: many}
        """)
    assert error_of(path).startswith(f"{path}:6: topology.sites[0].ces[0].slots: expected a valid integer")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("name: [unclosed\n", "invalid YAML"),
        ("- just\n- a list\n", "expected a mapping at the top level, got list"),
        ("extends: missing.yaml\nname: x\n", "missing.yaml: file not found"),
        ("extends: s.yaml\nname: x\n", "expected no cycle"),
        ("extends: {a: 1}\nname: x\n", "extends: expected a file name or a list of file names"),
    ],
)
def test_file_level_errors(tmp_path, text, expected):
    assert expected in error_of(write(tmp_path, text))


def test_cli_exit_code_2_and_single_line_on_bad_input(tmp_path, capsys):
    path = what_if(tmp_path, "run: {seed: abc}\n")
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("twin: error: ") and "run.seed" in err[0]


def test_cli_bad_param_syntax_exit_2(capsys):
    assert main(["check", str(MINIMAL), "--param", "run.seed"]) == 2
    assert "expected KEY.PATH=VALUE" in capsys.readouterr().err


def test_cli_missing_file_exit_2(capsys):
    assert main(["check", "does-not-exist.yaml"]) == 2
    assert "does-not-exist.yaml: file not found" in capsys.readouterr().err


def test_split_and_set_path():
    assert split_path("topology.sites[LCG.CNAF.it].ces[0].slots") == ["topology", "sites", "LCG.CNAF.it", "ces", 0, "slots"]
    data = {"a": [{"name": "x", "v": 1}, {"name": "y", "v": 2}]}
    set_path(data, "a[y].v", 5)
    assert data["a"][1]["v"] == 5
    with pytest.raises(ValueError):
        split_path("a..b")


def test_merge_rules():
    base = {"l": [{"name": "a", "x": 1}], "m": {"k": 1, "j": 2}, "p": [1, 2]}
    change = {"l": [{"name": "a", "y": 2}, {"name": "b"}], "m": {"k": 3}, "p": [3]}
    assert merge(base, change) == {"l": [{"name": "a", "x": 1, "y": 2}, {"name": "b"}], "m": {"k": 3, "j": 2}, "p": [3]}


def test_workflow_file_is_imported_as_a_production(tmp_path):
    workflow = Path(__file__).parent.parent / "scenarios" / "workflows" / "prod5b_test.yml"
    path = what_if(tmp_path, f"""
        workload:
          productions: []
          workflow_files: [{workflow}]
          job_models:
            Merging: {{cpu_hs06s: 1000}}
        """)
    scenario = load_scenario(path)
    (production,) = scenario.workload.productions
    assert [step.type for step in production.steps] == ["MCSimulation", "DataReprocessing", "Merging", "Merging"]
    assert production.steps[2].job.cpu_hs06s == 1000
    assert production.steps[1].parents == [production.steps[0].name]


def test_bad_workflow_file_error_names_the_workflow(tmp_path):
    bad = write(tmp_path, "Common: {MCCampaign: X, configuration_id: 1, base_path: /x}\nProdSteps:\n  - {ID: 1, job_config: {type: Nope}}\n", "wf.yml")
    path = what_if(tmp_path, f"workload: {{workflow_files: [{bad.name}]}}\n")
    message = error_of(path)
    assert "wf.yml" in message and "ProdSteps[0]" in message



# ---------------------------------------------------------------- overrides and YAML anchors (issue 11 item 1)
ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "scenarios").glob("*.yaml"))


def _chain(path: Path) -> list[Path]:
    """The scenario file and every file it extends (recursively)."""
    parents = (yaml.safe_load(path.read_text()) or {}).get("extends", [])
    out = [path]
    for parent in [parents] if isinstance(parents, str) else parents:
        out += _chain(Path(os.path.normpath(path.parent / parent)))
    return out


def _anchored_paths(path: Path) -> set[str]:
    """Key paths (list items by name) of every mapping or list an alias shares, outside `x-` keys.

    A `<<: *anchor` merge counts as the mapping that holds it."""
    text = path.read_text()
    seen: dict[int, list[str]] = {}

    def walk(node: yaml.Node, value, here: str) -> None:
        if not isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
            return
        seen.setdefault(id(node), []).append(here)
        if isinstance(node, yaml.SequenceNode):
            for i, child in enumerate(node.value):
                item = value[i]
                walk(child, item, f"{here}[{item['name'] if isinstance(item, dict) and 'name' in item else i}]")
            return
        for key, child in node.value:
            if key.value == "<<":
                seen.setdefault(id(child), []).append(here)
            else:
                walk(child, value[key.value], f"{here}.{key.value}" if here else key.value)

    walk(yaml.compose(text), yaml.safe_load(text), "")
    return {p for paths in seen.values() if len(paths) > 1 for p in paths if p and not p.startswith("x-")}


def _leaves(value, here: str) -> dict[str, object]:
    """{key path: scalar} of every leaf under `value` (list items by name where they have one)."""
    if isinstance(value, (dict, list)):
        out: dict[str, object] = {}
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(value, list):
                label = f"[{item['name'] if isinstance(item, dict) and 'name' in item else key}]"
            else:
                label = f".{key}" if here else str(key)
            out.update(_leaves(item, here + label))
        return out
    return {here: value}


@pytest.mark.parametrize("scenario", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_override_changes_exactly_its_key_path_on_every_anchored_mapping(scenario):
    """Every leaf under every alias-shared mapping of the scenario's files is overridden (one
    shared mapping per load); only the named key paths may change (issue 11 item 1)."""
    from twin.scenario.loader import resolve
    from twin.scenario.paths import get_path

    base = resolve(scenario)
    before = _leaves(base, "")
    anchored = sorted({p for f in _chain(scenario) for p in _anchored_paths(f)})
    present = [p for p in anchored if any(k == p or k.startswith((p + ".", p + "[")) for k in before)]
    assert present or not anchored, f"{scenario.name}: no anchored mapping survives in the resolved data"
    for path in present:
        leaves = [leaf for leaf in _leaves(get_path(base, path), path) if not leaf.endswith(".name")]  # names address items
        marks = {leaf: f"override of {leaf}" for leaf in leaves}
        after = _leaves(resolve(scenario, marks), "")
        changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
        assert changed == set(marks), f"{scenario.name}: overriding {path} also changed {sorted(changed - set(marks))[:4]}"


def test_shipped_scenarios_share_anchors():
    """The test above is only as good as its inputs: the shipped job models are anchored."""
    anchored = {p for f in _chain(ROOT / "scenarios/prod5b-baseline.yaml") for p in _anchored_paths(f)}
    assert "workload.productions[Prod5b-electron].steps[NSB1x].job" in anchored
    assert len(anchored) >= 12


def test_param_on_one_anchored_step_leaves_its_siblings_alone(capsys):
    """The reproducer of issue 11 item 1: one EvnDisp step's failure_prob, not all six."""
    path = "workload.productions[Prod5b-electron].steps[NSB1x].job.failure_prob"
    assert main(["check", str(ROOT / "scenarios/prod5b-baseline.yaml"), "--param", f"{path}=0.17"]) == 0
    resolved = yaml.safe_load(capsys.readouterr().out)
    probs = {(p["name"], s["name"]): s["job"]["failure_prob"] for p in resolved["workload"]["productions"]
             for s in p["steps"] if s.get("job_type") == "EvnDispProcessing"}
    assert len(probs) == 6 and probs.pop(("Prod5b-electron", "NSB1x")) == 0.17
    anchored = load_scenario(ROOT / "scenarios/prod5b-baseline.yaml").workload.productions[0].steps[1].job.failure_prob
    assert anchored != 0.17 and set(probs.values()) == {anchored}


def test_overrides_in_a_what_if_and_sweep_values_change_one_step(tmp_path):
    from twin.sweep import expand, load_specs

    path = "workload.productions[Prod5b-proton].steps[NSB5x].job.cpu_hs06s"
    whatif = write(tmp_path, f"""\
        extends: {ROOT / 'scenarios/prod5b-baseline.yaml'}
        name: w
        overrides:
          {path}: 99
        """)
    scenario = load_scenario(whatif)
    costs = [s.job.cpu_hs06s for p in scenario.workload.productions for s in p.steps if s.job_type == "EvnDispProcessing"]
    assert sorted(costs) == [99.0] + [18000.0] * 5
    jobs = load_specs(ROOT / "scenarios/prod5b-baseline.yaml", expand([f"{path}=7,8"], 1, 1))
    for spec, loaded in jobs:
        costs = [s.job.cpu_hs06s for p in loaded.workload.productions for s in p.steps if s.job_type == "EvnDispProcessing"]
        assert sorted(costs) == [spec.params[path]] + [18000.0] * 5


def test_duplicate_keys_are_refused_with_both_lines(tmp_path):
    path = what_if(tmp_path, """\
        run:
          seed: 3
          seed: 4
        """)
    message = error_of(path)
    assert "s.yaml:4" in message and "duplicate key 'seed' (also on line 3)" in message


def test_alias_merge_keys_may_be_overridden_in_place(tmp_path):
    """`<<: *anchor` then an explicit key is YAML's way to vary a shared model: not a duplicate."""
    path = what_if(tmp_path, """\
        x-run: &run {seed: 3, duration: 2d}
        run: {<<: *run, seed: 4}
        """)
    scenario = load_scenario(path)
    assert (scenario.run.seed, scenario.run.duration) == (4, 172800.0)


@pytest.mark.parametrize(
    "files, expected",
    [
        # the what-if's own override of a key its base sets
        ({"s.yaml": "extends: minimal.yaml\nname: x\noverrides:\n  run.seed: -1\n"}, "s.yaml:4: run.seed: expected greater than"),
        # a named list item (a CE of a site)
        ({"s.yaml": "extends: minimal.yaml\nname: x\noverrides:\n  run.duration: 1d\n  topology.sites[LCG.PIC.es].ces[0].slots: -1\n"},
         "s.yaml:5: topology.sites[1].ces[0].slots: expected greater than"),
        # an override in the middle file of a chain
        ({"m.yaml": "extends: minimal.yaml\nname: m\noverrides: {run.seed: -1}\n", "s.yaml": "extends: m.yaml\nname: x\n"},
         "m.yaml:3: run.seed"),
        # a file that sets the key itself beats the override of the file it extends
        ({"m.yaml": "extends: minimal.yaml\nname: m\noverrides: {run.seed: 3}\n", "s.yaml": "extends: m.yaml\nname: x\nrun: {seed: -1}\n"},
         "s.yaml:3: run.seed"),
    ],
)
def test_errors_in_overrides_point_at_the_overriding_file(tmp_path, files, expected):
    """Issue 12 review: an `overrides:` value pointed at the base file's line for the key."""
    (tmp_path / "minimal.yaml").write_text(MINIMAL.read_text())
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    message = error_of(tmp_path / "s.yaml")
    assert f"{tmp_path}/{expected}" in message, message
