"""Scenario loading: extends/overrides, and one clear error line for each kind of bad input."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

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
