"""Issue 23's CLI pre-flight items and issue 21's settings rules: each mistake is found before a run exists,
with a message that names the fix. In process on the fake engine; two real subprocesses (marked slow) hide an
installed package the way a missing extra would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import probekit
import probekit.settings as settings
from probekit.cli.main import app, expand_multi_value_options
from probekit.settings import RunRequest, SettingsError, plan_run, run_settings
from probekit.store.store import Store

REPO = Path(__file__).resolve().parents[2]
STARTER = REPO / "surveys" / "moralchoice_starter.yaml"


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, expand_multi_value_options(list(args)))
    return result.exit_code, result.output


def no_run(store: Path) -> bool:
    return not store.exists() or Store(store).runs().empty


@pytest.mark.parametrize("limit", ["0", "-1"])
def test_expand_refuses_a_limit_below_one_as_run_does(limit: str) -> None:
    code, output = cli("expand", str(STARTER), "--limit", limit)
    assert code == 2 and "--limit" in output
    assert cli("run", str(STARTER), "--models", "fake:a", "--limit", limit)[0] == 2


def test_a_missing_api_key_is_found_before_a_run_exists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "s.duckdb"
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    code, output = cli("run", str(STARTER), "--models", "openai/gpt-4o-mini", "--limit", "1", "--store", str(store))
    assert code == 1 and "openai/gpt-4o-mini: no API key: set OPENAI_API_KEY" in output and no_run(store)
    monkeypatch.delenv("MY_PROXY_KEY", raising=False)
    code, output = cli("run", str(STARTER), "--models", "openai/gpt-4o-mini", "--api-key-env", "MY_PROXY_KEY", "--limit", "1",
                       "--store", str(store))
    assert code == 1 and "the API key variable MY_PROXY_KEY (api_key_env) is not set" in output and no_run(store)
    monkeypatch.setenv("MY_PROXY_KEY", "")  # empty is unset
    code, output = cli("run", str(STARTER), "--models", "openai/gpt-4o-mini", "--api-key-env", "MY_PROXY_KEY", "--limit", "1",
                       "--store", str(store))
    assert code == 1 and "is not set" in output and no_run(store)
    # A server named by --api-base (often one's own) may need no key: not refused for that.
    config = run_settings(RunRequest(models=("openai/x",), api_base="http://127.0.0.1:9/v1", api_key_env="MY_PROXY_KEY")
                          ).engines["openai/x"].api
    assert config is not None and config.api_base == "http://127.0.0.1:9/v1"
    monkeypatch.setenv("MY_PROXY_KEY", "sk-set")
    assert run_settings(RunRequest(models=("openai/gpt-4o-mini",), api_key_env="MY_PROXY_KEY")).models == ("openai/gpt-4o-mini",)


def test_the_local_engine_without_torch_names_the_setup_script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "s.duckdb"
    monkeypatch.setattr(settings, "_module_available", lambda name: name != "torch")
    code, output = cli("run", str(STARTER), "--models", "smollm2", "--limit", "1", "--store", str(store))
    assert code == 1 and "needs 'torch'" in output and "bash scripts/setup.sh" in output and no_run(store)
    with pytest.raises(SettingsError, match="scripts/setup.sh"):
        probekit.run([STARTER], models=["smollm2"], store=store, limit=1)
    assert no_run(store)


def test_ray_not_installed_is_refused_before_a_run_exists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "s.duckdb"
    monkeypatch.setattr(settings, "_module_available", lambda name: name != "ray")
    code, output = cli("run", str(STARTER), "--models", "fake:a", "--limit", "1", "--executor", "ray", "--store", str(store))
    assert code == 1 and "--executor ray needs Ray" in output and "probekit[ray]" in output and no_run(store)
    # The library's own path (RunOptions given directly) is checked in the pipeline's pre-flight.
    from probekit.execution.ray_pool import RayOptions
    from probekit.runner import RunOptions

    with pytest.raises(SettingsError, match="needs Ray"):
        probekit.run([STARTER], RunOptions(models=["fake:a"], store=store, limit=1, ray=RayOptions()))
    assert no_run(store)


def test_reasoning_takes_several_values_after_one_flag_as_readme_shows(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    spaced = cli("run", str(STARTER), "--models", "fake:a", "--limit", "1", "--reasoning", "direct", "reasoning", "--store",
                 str(store), "-q")
    assert spaced[0] == 0, spaced[1]
    repeated = cli("run", str(STARTER), "--models", "fake:a", "--limit", "1", "--reasoning", "direct", "--reasoning",
                   "reasoning", "--store", str(store), "-q")
    # The same settings: the same run (-q on a no-op prints that run's id, for scripts).
    assert repeated[0] == 0 and repeated[1].split() == spaced[1].split()
    [config] = [Store(store).run_config(r) for r in Store(store).runs()["run_id"]]
    assert config["reasoning"] == ["direct", "reasoning"]
    assert "reasoning_modes: 2" in cli("expand", str(STARTER), "--reasoning", "direct", "reasoning")[1]


def test_settings_are_parsed_at_the_edge() -> None:
    request = RunRequest.checked(models=("fake:a fake:b", "fake:a"), orders=" cyclic ", reasoning=["direct", "reasoning"],
                                 mode="sample")
    built = run_settings(request)
    assert built.models == ("fake:a", "fake:b") and built.orders == "cyclic" and built.reasoning == ("direct", "reasoning")
    assert built.engines["fake:a"].engine == "fake" and built.engines["fake:a"].local_weights
    with pytest.raises(SettingsError) as error:
        RunRequest.checked(mode="bogus", orders="random:x", reasoning=["maybe"], limit=0)
    text = str(error.value)
    for words in ("--mode: unknown scoring mode 'bogus'", "--orders: write random:K", "--reasoning: unknown reasoning mode(s) 'maybe'",
                  "--limit:"):
        assert words in text
    with pytest.raises(SettingsError, match="no model key"):
        run_settings(RunRequest(models=(" ",)))


def test_engine_options_are_typed_through_the_registry(tmp_path: Path) -> None:
    """A local engine's models.yaml options are checked against the options its engine registered."""
    path = tmp_path / "models.yaml"
    path.write_text("models:\n  'hf:*':\n    device: cpu\n  smollm2:\n    share_prefix: false\n  'fake:*':\n    device: cuda\n")
    built = run_settings(RunRequest(models=("smollm2",), models_config=path, batch_size=4))
    assert built.engines["smollm2"].engine == "transformers" and built.engines["smollm2"].options == {"share_prefix": False,
                                                                                                     "max_batch": 4}
    with pytest.raises(SettingsError, match=r"fake:a: the fake engine has no option\(s\) device"):
        run_settings(RunRequest(models=("fake:a",), models_config=path))


def test_models_yaml_is_parsed_once_per_file_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import probekit.models_config as models_config

    path = tmp_path / "models.yaml"
    path.write_text("models:\n  openai/*:\n    api_base: http://127.0.0.1:9/v1\n    api_key_env: SOME_KEY\n")
    parsed: list[str] = []
    real = models_config._parse_models_file
    monkeypatch.setattr(models_config, "_parse_models_file", lambda p: parsed.append(str(p)) or real(p))
    monkeypatch.setenv("SOME_KEY", "x")
    built = run_settings(RunRequest(models=("openai/a", "openai/b"), models_config=path))
    from probekit.backends import make_backend

    for model in built.models:
        assert make_backend(model, built.engines[model].options).config.api_base == "http://127.0.0.1:9/v1"  # type: ignore[attr-defined]
    assert len(parsed) == 1
    path.write_text("models:\n  openai/*:\n    api_base: http://127.0.0.1:8/v1\n    api_key_env: SOME_KEY\n    rpm: 5\n")
    assert run_settings(RunRequest(models=("openai/a",), models_config=path)).engines["openai/a"].api.rpm == 5  # type: ignore[union-attr]
    assert len(parsed) == 2


def test_probekit_run_takes_all_three_spec_kinds(tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO / "tests" / "judging"))
    from selfpref_helpers import write_experiment

    from probekit.judging.flow import JudgingSummary

    store = tmp_path / "s.duckdb"
    survey = probekit.run(STARTER, models=["fake:a"], limit=1, store=store)
    experiment = tmp_path / "e.yaml"
    experiment.write_text(f"id: e\nmodels: [fake:b]\nsurveys:\n  - path: {STARTER}\n    limit: 1\n")
    experimental = probekit.run(experiment, store=store)
    judged = probekit.run(write_experiment(tmp_path, models=["fake:a", "fake:b"], answer={"limit": 1}), store=store)
    assert survey.models[0].model == "fake:a" and experimental.models[0].model == "fake:b"
    assert isinstance(judged, JudgingSummary) and {s.stage for s in judged.stages} == {"answer", "judge"}
    with pytest.raises(SettingsError, match="--orders does not apply to a judging experiment"):
        probekit.run(write_experiment(tmp_path, "j2"), store=store, orders="cyclic")


def test_a_plan_refuses_a_judging_experiment_beside_other_files(tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO / "tests" / "judging"))
    from selfpref_helpers import write_experiment

    with pytest.raises(SettingsError, match="runs on its own"):
        plan_run([write_experiment(tmp_path), STARTER], RunRequest())


# -- real subprocesses: the package is hidden from the interpreter, as an environment without the extra -------
HIDE = ("import sys; sys.modules[{name!r}] = None\n"  # importlib.util.find_spec and import both see it missing
        "from probekit.cli.main import main; sys.argv = ['probekit', *sys.argv[1:]]; main()")


def hidden(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", HIDE.format(name=name), *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "PYTHONPATH": str(REPO)}, cwd=REPO)


@pytest.mark.slow
def test_without_torch_run_names_the_setup_script_in_a_real_process(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    done = hidden("torch", "run", str(STARTER), "--models", "smollm2", "--limit", "1", "--store", str(store))
    assert done.returncode == 1 and "bash scripts/setup.sh" in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert no_run(store)


@pytest.mark.slow
def test_without_ray_executor_ray_leaves_no_interrupted_run_in_a_real_process(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    done = hidden("ray", "run", str(STARTER), "--models", "fake:a", "--limit", "1", "--executor", "ray", "--store", str(store))
    assert done.returncode == 1 and "--executor ray needs Ray" in done.stderr, done.stderr
    assert no_run(store)
