"""cta-prod-submit workflow import (twin.scenario.workflow) against CTADIRAC 3.3.1 and its test fixture."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from twin.dirac.production import ProductionSystem, checkMatchQuery, production_steps, start_order
from twin.errors import ScenarioError
from twin.scenario.schema import JobModel
from twin.scenario.workflow import TYPE_NAMES, import_workflow, load_workflow

EXAMPLE = Path(__file__).resolve().parents[1] / "scenarios" / "workflows" / "prod5b_test.yml"
COMMON = {"MCCampaign": "PROD6", "configuration_id": 16, "base_path": "/ctao/MC"}
#: CTADIRAC fixture SIMULATION_OUTPUT_METADATA / CTAPIPE_PROCESS_OUTPUT_METADATA / MERGING1_OUTPUT_METADATA,
#: plus the file metadata (nsb) that build_output_data adds to the stored Output query.
MC_OUT = {"array_layout": "Advanced-Baseline", "site": "LaPalma", "particle": "gamma-diffuse", "phiP": 180.0,
          "thetaP": 20.0, "sct": "False", "tel_sim_prog": "sim_telarray", "tel_sim_prog_version": "2020-06-29b",
          "data_level": -1, "outputType": "Data", "configuration_id": 1, "MCCampaign": "Prod5bTest", "nsb": 1}
PROCESS_OUT = {"array_layout": "Alpha", "site": "LaPalma", "particle": "gamma-diffuse", "phiP": 180, "thetaP": 20.0,
               "sct": "False", "analysis_prog": "ctapipe-process", "analysis_prog_version": "v0.19.2",
               "data_level": 2, "outputType": "Data", "configuration_id": 1, "MCCampaign": "Prod5bTest", "nsb": 1}
MERGE1_OUT = {**PROCESS_OUT, "analysis_prog": "ctapipe-merge", "merged": 1}


def _example() -> dict:
    return yaml.safe_load(EXAMPLE.read_text())


def _import(data: dict, **kwargs):
    [production] = import_workflow(data, "wf.yml", name="wf", **kwargs)
    return production


# --- the example workflow (CTADIRAC unit-test fixture) -------------------------------------
def test_example_workflow_steps_types_and_links():
    [prod] = load_workflow(EXAMPLE)
    assert prod.name == "prod5b_test"
    assert [s.name for s in prod.steps] == ["Step1_MCSimulation", "Step2_CtapipeProcessing", "Step3_Merging",
                                            "Step4_Merging"]
    assert [s.type for s in prod.steps] == ["MCSimulation", "DataReprocessing", "Merging", "Merging"]
    assert [s.job_type for s in prod.steps] == ["MCSimulation", "DL0_Reprocessing", "Merging", "Merging"]
    assert [s.group_size for s in prod.steps] == [1, 1, 5, 2]
    assert [s.parent for s in prod.steps] == [None, "Step1_MCSimulation", "Step2_CtapipeProcessing", "Step3_Merging"]
    assert {s.plugin for s in prod.steps} == {"Standard"} and {s.body for s in prod.steps} == {"workflow"}


def test_example_workflow_metadata_propagation_matches_the_fixture():
    mc, process, merge1, merge2 = load_workflow(EXAMPLE)[0].steps
    assert mc.input_query == {} and mc.output_metadata == MC_OUT
    assert process.input_query == MC_OUT  # parent output + moon: dark -> nsb 1
    assert process.output_metadata == PROCESS_OUT
    assert merge1.output_metadata == MERGE1_OUT
    assert merge2.output_metadata == {**MERGE1_OUT, "merged": 2}
    by_name = {s.name: s for s in (mc, process, merge1, merge2)}
    for child in (process, merge1, merge2):
        parent_out = by_name[child.parent].output_metadata
        assert checkMatchQuery(child.input_query, parent_out) == (True, "")
        assert set(child.input_query) <= set(parent_out)


def test_example_workflow_starts_in_the_production_system():
    [prod] = load_workflow(EXAMPLE)
    created: list[str] = []
    system = ProductionSystem(lambda **f: created.append(f["transName"]) or len(created), lambda t: None,
                              lambda t: None)
    system.add_production(prod.name, production_steps(prod))
    assert system.start_production(prod.name)["OK"]
    assert created == [f"00000001_{name}" for name in start_order(s.name for s in prod.steps)]


def test_job_models_by_job_type_and_step_overrides():
    models = {"Merging": JobModel(cpu_hs06s=500.0, output_size_mb=20.0), "MCSimulation": JobModel(cpu_hs06s=9e5)}
    data = _example()
    data["ProdSteps"][1]["job_config"].update(nb_processors=4, cpu_time=3600)
    mc, process, merge1, merge2 = _import(data, job_models=models).steps
    assert mc.job.cpu_hs06s == 9e5 and merge1.job.cpu_hs06s == merge2.job.cpu_hs06s == 500.0
    assert merge2.job.output_size_mb == 20.0
    assert process.job.cpu_hs06s == JobModel().cpu_hs06s
    assert (process.job.processors, process.job.cpu_time_limit) == (4, 3600.0)
    assert models["Merging"].processors == 1  # the caller's models are not modified


def test_job_config_destination_becomes_the_job_site():
    """WorkflowElement.set_constrained_job_attribute: destination -> Job.setDestination (comma string or list)."""
    data = _example()
    data["ProdSteps"][0]["job_config"]["destination"] = "LCG.CNAF.it, LCG.PIC.es"
    data["ProdSteps"][1]["job_config"]["destination"] = ["ANY"]
    mc, process, *_ = _import(data).steps
    assert mc.job.destination == ["LCG.CNAF.it", "LCG.PIC.es"] and process.job.destination == []


# --- other step types ----------------------------------------------------------------------
def _prod6_input(**extra) -> dict:
    query = {"parentID": None, "MCCampaign": "PROD6", "array_layout": "Alpha", "site": "LaPalma",
             "particle": "gamma-diffuse", "thetaP": 60.0, "phiP": 180.0, "analysis_prog": "ctapipe-merge",
             "analysis_prog_version": "v0.23.0", "data_level": 2, "outputType": "Data", "configuration_id": 16,
             "merged": 3, "moon": "dark"}
    query.update(extra)
    return query


def test_training_and_apply_models_steps():
    data = {"Common": COMMON, "ProdSteps": [
        {"ID": 1, "input_meta_query": _prod6_input(split="train_en"),
         "job_config": {"type": "CtapipeTrainEnergy", "version": "v0.23.0", "tag": "training"}},
        {"ID": 2, "input_meta_query": _prod6_input(split="train_cl"),
         "job_config": {"type": "ctapipeapplymodels", "version": "v0.23.0",
                        "options": "--reconstructor energy_model.pkl"}},
        {"ID": 3, "input_meta_query": _prod6_input(split="test"),
         "job_config": {"type": "CtapipeApplyModels", "version": "v0.23.0", "options": "--no-models"}},
    ]}
    train, apply, plain = _import(data).steps
    assert (train.type, train.job_type, train.job.processors, train.job.model_query) == ("Training", "Training", 8, {})
    assert train.output_metadata["outputType"] == "Model"
    assert train.output_metadata["analysis_prog"] == "ctapipe-train-energy-regressor"
    assert train.input_query["nsb"] == 1 and "moon" not in train.input_query
    assert (apply.type, apply.job_type, apply.name) == ("ApplyModel", "ApplyModel", "Step2_CtapipeApplyModels")
    assert apply.output_metadata["split"] == "train_cl"  # a file metadata key of apply-models jobs
    query = apply.job.model_query
    assert query["outputType"] == "Model" and query["analysis_prog"] == "ctapipe-train-energy-regressor"
    assert "particle" not in query and "split" not in query
    assert all(train.output_metadata[key] == value for key, value in query.items())  # the trained model matches
    assert plain.job.model_query == {}


def test_prod6_merge_chain_counts_merge_levels_and_names_sort_lexicographically():
    steps = []
    for n in range(1, 13):
        query = _prod6_input(analysis_prog="ctapipe-process", merged=0, split="test") if n == 1 else {"parentID": n - 1}
        steps.append({"ID": n, "input_meta_query": query, "job_config": {
            "type": "Merging", "version": "v0.23.0", "group_size": 10000 if n == 12 else 25,
            "output_extension": "merged.DL2.h5"}})
    prod = _import({"Common": COMMON, "ProdSteps": steps})
    assert [s.output_metadata["merged"] for s in prod.steps] == list(range(1, 13))
    assert prod.steps[-1].group_size == 10000
    assert start_order(s.name for s in prod.steps)[:3] == ["Step10_Merging", "Step11_Merging", "Step12_Merging"]


def test_sibling_steps_share_the_parents_refined_query_as_cta_prod_submit_does():
    data = _example()
    data["ProdSteps"][0]["job_config"]["moon"] = ["dark", "half", "full"]
    data["ProdSteps"][1]["input_meta_query"]["moon"] = "half"
    sibling = copy.deepcopy(data["ProdSteps"][1])
    sibling["ID"] = 5
    del sibling["input_meta_query"]["moon"]
    data["ProdSteps"] = data["ProdSteps"][:2] + [sibling]
    mc, first, second = _import(data).steps
    assert mc.output_metadata["nsb"] == {"in": [1, 5, 19]}
    assert first.input_query["nsb"] == 5
    assert second.input_query["nsb"] == 5  # inherited from the first sibling's in-place refinement


def test_steps_are_sorted_by_id_and_name_overrides():
    data = _example()
    data["ProdSteps"].reverse()
    data["ProdSteps"][0]["name"] = "FinalMerge"
    names = [s.name for s in _import(data).steps]
    assert names == ["Step1_MCSimulation", "Step2_CtapipeProcessing", "Step3_Merging", "Step4_FinalMerge"]


# --- bad input: one error, naming the file and the key path ----------------------------------
def _broken(edit) -> dict:
    data = _example()
    edit(data)
    return data


def _set(path: list, value):
    def edit(data):
        node = data
        for key in path[:-1]:
            node = node[key]
        if value is KeyError:
            del node[path[-1]]
        else:
            node[path[-1]] = value
    return edit


@pytest.mark.parametrize("edit, message", [
    (_set(["ProdSteps", 2, "job_config", "type"], "foo"),
     f"wf.yml: ProdSteps[2].job_config.type: expected one of {TYPE_NAMES}, got 'foo'"),
    (_set(["ProdSteps", 2, "input_meta_query", "parentID"], 3),
     "wf.yml: ProdSteps[2].input_meta_query.parentID: A step can only have a parent which ID is inferior to its ID "
     "(got 3 for ID 3)"),
    (_set(["ProdSteps", 2, "input_meta_query", "dataset"], "Prod6_gamma"),
     "wf.yml: ProdSteps[2].input_meta_query.dataset: A step cannot have input data from a dataset and from a parent"),
    (_set(["Common", "MCCampaign"], KeyError), "wf.yml: Common.MCCampaign: missing mandatory key"),
    (_set(["ProdSteps", 0, "ID"], KeyError), "wf.yml: ProdSteps[0].ID: missing mandatory key"),
    (_set(["ProdSteps", 3, "ID"], 3), "wf.yml: ProdSteps[3].ID: expected unique IDs, 3 is also ProdSteps[2]"),
    (_set(["ProdSteps", 1, "job_config", "output_extension"], KeyError),
     "wf.yml: ProdSteps[1].job_config.output_extension: missing mandatory key for type CtapipeProcessing"),
    (_set(["ProdSteps", 1, "input_meta_query", "moon"], "new"),
     "wf.yml: ProdSteps[1].input_meta_query.moon: expected one of ['dark', 'half', 'full'], got 'new'"),
    (_set(["ProdSteps", 0, "job_config", "particle"], "photon"),
     "wf.yml: ProdSteps[0].job_config.particle: expected one of ['gamma', 'gamma-diffuse', 'electron', 'proton', "
     "'helium', 'muon'], got 'photon'"),
    (_set(["ProdSteps", 3, "input_meta_query"], KeyError), "wf.yml: ProdSteps[3].input_meta_query: missing mandatory key"),
    (_set(["ProdSteps", 2, "job_config", "group_size"], 0),
     "wf.yml: ProdSteps[2].job_config.group_size: expected a positive integer, got 0"),
    (_set(["ProdSteps", 1, "job_config", "input_sandbox"], "a.txt"),
     "wf.yml: ProdSteps[1].job_config.input_sandbox: Not allowed input_sandbox key in production mode. "
     "Only available in wms mode"),
    (_set(["ProdSteps", 1, "input_meta_query", "split"], "train"),
     "wf.yml: ProdSteps[1].input_meta_query: the production would not start (checkMatchQuery against step 1): "
     "Metadata split is not in parent transformation query"),
    (_set(["ProdSteps", 0, "input_meta_query", "parentID"], 1),
     "wf.yml: ProdSteps[0].input_meta_query.parentID: expected null: a MCSimulation step takes no input"),
])
def test_bad_workflow_is_rejected_with_its_key_path(edit, message):
    with pytest.raises(ScenarioError) as err:
        _import(_broken(edit))
    assert str(err.value) == message


def test_parent_is_taken_by_position_so_gapped_ids_are_refused():
    data = _example()
    data["ProdSteps"][2]["ID"] = 4
    data["ProdSteps"][3]["ID"] = 5
    data["ProdSteps"][3]["input_meta_query"]["parentID"] = 4
    with pytest.raises(ScenarioError, match=r"ProdSteps\[3\]\.input_meta_query\.parentID: cta-prod-submit takes the "
                                            r"parent by position: parentID 4 is the step with ID 5"):
        _import(data)


def test_dataset_input_needs_its_meta_query():
    data = {"Common": COMMON, "ProdSteps": [{"ID": 1, "input_meta_query": {"dataset": "Prod6_gamma_R1"},
                                             "job_config": {"type": "CtapipeProcessing", "version": "v0.23.0",
                                                            "data_level": 1, "output_extension": "DL1.h5"}}]}
    with pytest.raises(ScenarioError, match=r"ProdSteps\[0\]\.input_meta_query\.dataset: unknown dataset"):
        _import(data)
    query = {"MCCampaign": "PROD6", "array_layout": "Prod6-Hyperarray", "site": "LaPalma", "particle": "gamma",
             "phiP": 180.0, "thetaP": 60.0, "data_level": -1}
    [step] = _import(data, datasets={"Prod6_gamma_R1": query}).steps
    assert step.input_query == query and step.output_metadata["data_level"] == 1


def test_file_errors(tmp_path):
    with pytest.raises(ScenarioError, match="file not found"):
        load_workflow(tmp_path / "missing.yml")
    bad = tmp_path / "bad.yml"
    bad.write_text("Common: [unclosed\n")
    with pytest.raises(ScenarioError, match="invalid YAML"):
        load_workflow(bad)
    top = tmp_path / "list.yml"
    top.write_text("- 1\n")
    with pytest.raises(ScenarioError) as err:
        load_workflow(top)
    assert str(err.value).startswith(f"{top}: expected a mapping with Common and ProdSteps")
