"""Experiment specs: every file in experiments/ loads, its design expands to the published counts, bad
settings fail before any model is called, and `probekit run experiments/X.yaml` runs one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from probekit.experiment import Experiment, SurveyRun, apply_settings, is_experiment_file, load_experiment
from probekit.store.store import Store
from probekit.survey.errors import SpecError
from probekit.survey.expand import expand
from probekit.survey.loader import load_survey

REPO = Path(__file__).resolve().parents[2]
EXPERIMENTS = REPO / "experiments"

# experiment file -> trials per model of its design
DESIGNS = {
    "moralchoice.yaml": 1367 * 6,
    "spinning_arrow.yaml": 62 * 11 * 5,
    "personality_reliability.yaml": 120 * 6,
    "pobs_test_time_compute.yaml": 142 * 2 * 2,
    "dailydilemmas.yaml": 1360 * 2,
}


@pytest.mark.parametrize("name", sorted(DESIGNS))
def test_experiment_loads_and_expands_to_its_design(name: str) -> None:
    path = EXPERIMENTS / name
    assert is_experiment_file(path)
    experiment, surveys = load_experiment(path)
    assert isinstance(experiment, Experiment) and experiment.analyses and experiment.replicates
    assert sum(len(expand(s)) for s in surveys) == DESIGNS[name]


def test_surveys_are_not_experiments() -> None:
    assert not is_experiment_file(REPO / "surveys" / "pct.yaml")


def test_settings_are_applied_to_the_stored_spec() -> None:
    _experiment, (moral,) = load_experiment(EXPERIMENTS / "moralchoice.yaml")
    assert moral.scoring.mode == "sample" and moral.scoring.samples == 5 and moral.scoring.temperature == 1.0
    assert moral.permutations.policy == "reversed"
    _experiment, (pobs,) = load_experiment(EXPERIMENTS / "pobs_test_time_compute.yaml")
    assert pobs.reasoning_modes == ["direct", "reasoning"] and pobs.scoring.samples == 5


def test_subsets_of_templates_and_factor_levels() -> None:
    pct = load_survey(REPO / "surveys" / "pct.yaml")
    jailbreak = apply_settings(pct, SurveyRun(path="pct.yaml", templates=["templ-01"]), "x")
    assert len(expand(jailbreak)) == 62 * 5  # the paper's jailbreak prompt set
    paraphrase = apply_settings(pct, SurveyRun(path="pct.yaml", templates=[f"templ-{n:02d}" for n in range(1, 11)],
                                               factors={"forcing": ["job"]}), "x")
    assert len(expand(paraphrase)) == 62 * 10  # the paper's paraphrase prompt set


@pytest.mark.parametrize("entry, message", [
    ({"templates": ["templ-99"]}, "no template"),
    ({"factors": {"forcing": ["please"]}}, "no level"),
    ({"factors": {"tone": ["x"]}}, "no factor"),
    ({"orders": "random:x"}, "random:K"),
    ({"scoring": {"mode": "vibes"}}, "scoring"),
])
def test_bad_settings_fail_before_any_model_is_called(entry: dict[str, object], message: str) -> None:
    pct = load_survey(REPO / "surveys" / "pct.yaml")
    with pytest.raises(SpecError) as error:
        apply_settings(pct, SurveyRun(path="pct.yaml", **entry), "exp.yaml")  # type: ignore[arg-type]
    assert message in str(error.value)


def test_probekit_run_runs_an_experiment_file(tmp_path: Path) -> None:
    """The real CLI in a subprocess; the scriptable fake backend keeps it fast (smollm2 runs are in
    test_library_e2e.py)."""
    experiment = tmp_path / "mini.yaml"
    experiment.write_text(
        "id: mini_personality\n"
        "replicates: test\n"
        "models: [fake:a]\n"
        "surveys:\n"
        f"  - path: {REPO / 'surveys' / 'ipip_neo_120.yaml'}\n"
        "    templates: [mpi_original, mpi_mirrored]\n"
        "    limit: 3\n"
        "analyses: [likert_traits]\n", encoding="utf-8")
    store = tmp_path / "store.duckdb"
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    done = subprocess.run([sys.executable, "-m", "probekit.cli.main", "run", str(experiment), "--store", str(store), "-q"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    runs = Store(store).query("SELECT config FROM runs")
    config = json.loads(runs["config"][0])
    assert config["experiment"]["id"] == "mini_personality" and config["models"] == ["fake:a"]
    rows = Store(store).query("SELECT t.template_id, count(*) AS n FROM results r JOIN trials t USING (trial_id) GROUP BY ALL ORDER BY ALL")
    assert rows.to_dict("list") == {"template_id": ["mpi_mirrored", "mpi_original"], "n": [3, 3]}
    # A bad experiment is refused with file and fix, exit 2, nothing stored.
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"id: bad\nsurveys:\n  - path: {REPO / 'surveys' / 'pct.yaml'}\n    templates: [nope]\n", encoding="utf-8")
    refused = subprocess.run([sys.executable, "-m", "probekit.cli.main", "run", str(bad), "--store", str(tmp_path / "b.duckdb")],
                             capture_output=True, text=True, env=env, timeout=300)
    assert refused.returncode == 2 and f"{bad}:3: survey 'pct' has no template(s) ['nope']" in refused.stderr
    assert not (tmp_path / "b.duckdb").exists()


def test_resolve_inputs_mixes_surveys_experiment_and_objects(tmp_path: Path) -> None:
    from probekit.experiment import RunInputs, resolve_inputs

    in_memory = load_survey(REPO / "surveys" / "moralchoice_starter.yaml")
    pct_file = REPO / "surveys" / "pct.yaml"
    inputs = resolve_inputs([str(pct_file), EXPERIMENTS / "pobs_test_time_compute.yaml", in_memory])
    assert isinstance(inputs, RunInputs)
    assert [(s.id, p) for s, p in inputs.surveys] == [
        ("pct", str(pct_file)), ("pobs", str((REPO / "surveys" / "pobs.yaml").resolve())), ("moralchoice_starter", None)]
    assert inputs.surveys[2][0] is in_memory
    pobs = inputs.surveys[1][0]
    assert pobs.reasoning_modes == ["direct", "reasoning"] and pobs.scoring.samples == 5  # the design's settings
    experiment, _ = load_experiment(EXPERIMENTS / "pobs_test_time_compute.yaml")
    assert inputs.models == experiment.models
    assert inputs.experiment is not None and inputs.experiment["id"] == "pobs_test_time_compute"
    assert inputs.experiment["path"] == str(EXPERIMENTS / "pobs_test_time_compute.yaml")
    assert inputs.experiment["analyses"] == experiment.analyses

    plain = resolve_inputs([pct_file])
    assert plain.experiment is None and plain.models is None and [s.id for s, _ in plain.surveys] == ["pct"]


def test_resolve_inputs_reports_every_bad_file(tmp_path: Path) -> None:
    from probekit.experiment import resolve_inputs

    bad_survey = tmp_path / "bad.yaml"
    starter = (REPO / "surveys" / "moralchoice_starter.yaml").read_text(encoding="utf-8")
    bad_survey.write_text(starter.replace("kind: choice", "kind: choise"), encoding="utf-8")
    with pytest.raises(SpecError) as error:
        resolve_inputs([bad_survey, tmp_path / "missing.yaml", EXPERIMENTS / "moralchoice.yaml", EXPERIMENTS / "spinning_arrow.yaml"])
    text = str(error.value)
    assert f"{bad_survey}:" in text and "choise" in text
    assert f"{tmp_path / 'missing.yaml'}:0: file not found" in text
    assert f"{EXPERIMENTS / 'spinning_arrow.yaml'}:1: a second experiment file" in text and "one experiment file at a time" in text


def test_experiment_analyses_are_checked(tmp_path: Path) -> None:
    experiment = tmp_path / "exp.yaml"
    experiment.write_text(f"id: e\nsurveys:\n  - path: {REPO / 'surveys' / 'pct.yaml'}\nanalyses: [pct, pct_coordinates]\n",
                          encoding="utf-8")
    with pytest.raises(SpecError) as error:
        load_experiment(experiment)
    assert [str(p) for p in error.value.problems] == [
        f"{experiment}:4: unknown analysis 'pct_coordinates' — did you mean 'pct'? known: "
        + str(error.value.problems[0]).split("known: ")[1]]


def test_shipped_experiments_list_tables_that_apply_to_their_surveys() -> None:
    from probekit.analysis.registry import SurveyInfo, applicable
    from probekit.judging import is_judging_file

    for path in sorted(EXPERIMENTS.glob("*.yaml")):
        if is_judging_file(path):  # two-stage judging experiments: tests/judging/test_experiment_file.py
            continue
        experiment, surveys = load_experiment(path)
        applying = {spec.name for survey in surveys
                    for spec in applicable(SurveyInfo(survey.id, survey.kind, survey.model_dump()))}
        assert experiment.analyses and set(experiment.analyses) <= applying, (path.name, set(experiment.analyses) - applying)
