"""Every option of `probekit run`, `probekit expand` and `probekit track add`, for every spec kind (survey,
experiment, judging experiment): honoured (seen in the stored configuration, in what the engine or the
runner was given, in the stored job, or in the expansion) or refused with a message — none dropped silently.

The options are read from the CLI itself, so a new option without a row here fails
`test_the_tables_cover_every_option`. In process (typer's runner) on the fake engine; `run`'s API options
against the fixed-latency OpenAI-compatible server (tests/backends/latency_server.py) in a subprocess: those
cases are marked slow."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from latency_server import start_latency_server, stop_latency_server
from typer.testing import CliRunner

import probekit.pipeline as pipeline
from probekit.cli.main import app, expand_multi_value_options
from probekit.store.store import Store
from probekit.tracking.jobs import list_jobs

REPO = Path(__file__).resolve().parents[2]
STARTER = REPO / "surveys" / "moralchoice_starter.yaml"
KINDS = ("survey", "experiment", "judging")
API = "openai/bench-model"
KEY = "PROBEKIT_OPTION_TEST_KEY"


@pytest.fixture(scope="module")
def api_base() -> Iterator[str]:
    process, base_url = start_latency_server(0.0)
    try:
        yield base_url
    finally:
        stop_latency_server(process)


def spec_file(kind: str, folder: Path) -> Path:
    """A small spec of each kind: 2 items of the starter survey; a judging experiment with 2 questions."""
    if kind == "survey":
        return STARTER
    if kind == "experiment":
        path = folder / "experiment.yaml"
        path.write_text(yaml.safe_dump({"id": "opts", "models": ["fake:a"], "surveys": [{"path": str(STARTER), "limit": 2}]}))
        return path
    path = folder / "judging.yaml"
    path.write_text(yaml.safe_dump({
        "id": "optsj", "models": ["fake:a", "fake:b"], "judges": ["fake:j"],
        "answer": {"path": str(REPO / "surveys" / "mtbench.yaml"), "limit": 2, "scoring": {"max_tokens": 8}},
        "judge": {"path": str(REPO / "surveys" / "mtbench_judge.yaml"), "templates": ["pair_v2_verdict"],
                  "scoring": {"mode": "logprob"}, "pairs": "all"}}))
    return path


@dataclass
class Seen:
    """What one invocation did: its exit code and output, the runs stored, what the runner was handed."""

    code: int
    output: str
    store: Path
    executions: list[dict[str, Any]] = field(default_factory=list)
    """Per run the pipeline executed: its RunOptions, backends (what each engine was made with) and trials."""

    def configs(self) -> list[dict[str, Any]]:
        if not self.store.exists():
            return []
        frame = Store(self.store).query("SELECT config FROM runs ORDER BY started_at")
        return [json.loads(c) if isinstance(c, str) else dict(c) for c in frame["config"]]

    def config(self) -> dict[str, Any]:
        """The survey run's configuration; a judging experiment's: its judge-stage run."""
        configs = self.configs()
        judged = [c for c in configs if (c.get("experiment") or {}).get("stage") == "judge"]
        return (judged or configs)[-1]

    def answer_configs(self) -> list[dict[str, Any]]:
        return [c for c in self.configs() if (c.get("experiment") or {}).get("stage") in (None, "answer")]

    def options(self) -> Any:
        return self.executions[-1]["options"]

    def backend(self, model: str) -> Any:
        return next(e["backends"][model] for e in self.executions if model in (e["backends"] or {}))


def invoke(monkeypatch: pytest.MonkeyPatch, store: Path, args: list[str], *, dry: bool = False) -> Seen:
    """`probekit ARGS` in process. `dry`: the runner is not called (no model loads, no Ray starts); the run's
    inputs are recorded and it ends with no results."""
    seen = Seen(0, "", store)
    real = pipeline.execute

    async def spy(*positional: Any, **named: Any) -> Any:
        seen.executions.append({"options": positional[4], "backends": named.get("backends", positional[5] if len(positional) > 5 else None),
                                "trials": positional[1]})
        if dry:
            if named.get("ready") is not None:
                await named["ready"]
            return []
        return await real(*positional, **named)

    monkeypatch.setattr(pipeline, "execute", spy)
    monkeypatch.setenv(KEY, "sk-test-not-a-real-key")
    result = CliRunner().invoke(app, expand_multi_value_options(args))
    seen.code, seen.output = result.exit_code, result.output
    return seen


@dataclass(frozen=True)
class Probe:
    """One option tried on one spec kind: the arguments added, then either a check that it was honoured or
    the words its refusal must say."""

    args: Callable[[dict[str, Any]], list[str]]
    honoured: Callable[[Seen, dict[str, Any]], None] | None = None
    refused: str | None = None
    models: list[str] | None = None
    """Models for this probe (default fake:a; None in `track add` means the default)."""
    dry: bool = False
    before: Callable[[pytest.MonkeyPatch, dict[str, Any]], None] | None = None
    """Run first (e.g. a run to resume), with the same store."""


def first_run(monkeypatch: pytest.MonkeyPatch, env: dict[str, Any], *extra: str) -> None:
    limit = ["--limit", "2"] if env["kind"] == "survey" else []
    done = invoke(monkeypatch, env["store"], ["run", str(env["spec"]), "--models", "fake:a", "--store", str(env["store"]),
                                               "-q", *limit, *extra])
    assert done.code == 0, done.output
    env["first"] = done.output.split()[-1]


def _job_surveys(seen: Seen, env: dict[str, Any]) -> None:
    assert _job(seen).surveys == [str(Path(env["spec"]).resolve())]


def _stored(seen: Seen, env: dict[str, Any]) -> None:
    assert seen.configs(), "no run in the store given"


def _one_question(seen: Seen, env: dict[str, Any]) -> None:
    asked = {t.item_id for e in seen.executions if e["options"].experiment["stage"] == "answer" for t in e["trials"]}
    assert len(asked) == 1, asked


def _models_check(seen: Seen, env: dict[str, Any]) -> None:
    assert {m for c in seen.answer_configs() for m in c["models"]} == {"fake:b"}


def _endpoint(name: str, value: Callable[[dict[str, Any]], Any]) -> Callable[[Seen, dict[str, Any]], None]:
    def check(seen: Seen, env: dict[str, Any]) -> None:
        [config] = [c for c in seen.configs() if API in c["models"]]
        assert config["endpoints"][API][name] == str(value(env)), config
    return check


def _api_config(name: str, value: Any) -> Callable[[Seen, dict[str, Any]], None]:
    def check(seen: Seen, env: dict[str, Any]) -> None:
        assert getattr(seen.backend(API).config, name) == value
    return check


def _same_for_all_kinds(probe: Probe) -> dict[str, Probe]:
    return {kind: probe for kind in KINDS}


def _judging_refuses(probe: Probe, words: str, args: list[str] | None = None) -> dict[str, Probe]:
    """Honoured for surveys and experiments; refused for a judging experiment (with `args`: only the option)."""
    return {"survey": probe, "experiment": probe,
            "judging": Probe(probe.args if args is None else (lambda env: list(args)), refused=words)}


def _quiet_check(seen: Seen, env: dict[str, Any]) -> None:
    stored = Store(seen.store).query("SELECT run_id FROM runs")["run_id"].tolist()
    assert seen.output.split() and set(seen.output.split()) <= set(stored), seen.output


API_PROBES: dict[str, dict[str, Probe]] = {
    "models_config": _same_for_all_kinds(Probe(lambda env: ["--models-config", str(env["models_yaml"])],
                                               _endpoint("models_config", lambda env: env["models_yaml"]), models=[API, "fake:a"])),
    "api_base": _same_for_all_kinds(Probe(lambda env: ["--api-base", env["api_base"], "--api-key-env", KEY],
                                          _endpoint("api_base", lambda env: env["api_base"]), models=[API, "fake:a"])),
    "api_key_env": _same_for_all_kinds(Probe(lambda env: ["--api-base", env["api_base"], "--api-key-env", KEY],
                                             _endpoint("api_key_env", lambda env: KEY), models=[API, "fake:a"])),
    "concurrency": _same_for_all_kinds(Probe(lambda env: ["--api-base", env["api_base"], "--concurrency", "3"],
                                             _api_config("concurrency", 3), models=[API, "fake:a"])),
    "rpm": _same_for_all_kinds(Probe(lambda env: ["--api-base", env["api_base"], "--rpm", "6000"],
                                     _api_config("rpm", 6000.0), models=[API, "fake:a"])),
    "tpm": _same_for_all_kinds(Probe(lambda env: ["--api-base", env["api_base"], "--tpm", "900000"],
                                     _api_config("tpm", 900000.0), models=[API, "fake:a"])),
    "timeout": _same_for_all_kinds(Probe(lambda env: ["--api-base", env["api_base"], "--timeout", "7"],
                                         _api_config("timeout", 7.0), models=[API, "fake:a"])),
}

# These specs have no personas: --personas is refused, naming why (honoured on specs with a personas: block:
# tests/personas/test_persona_store.py checks the stored respondents and configuration).
_PERSONAS = {"survey": Probe(lambda env: ["--personas", "japan"], refused="no survey of the run has personas"),
             "experiment": Probe(lambda env: ["--personas", "japan"], refused="no survey of the run has personas"),
             "judging": Probe(lambda env: ["--personas", "japan"], refused="--personas does not apply to a judging experiment")}

RUN_PROBES: dict[str, dict[str, Probe]] = {
    "models": _same_for_all_kinds(Probe(lambda env: [], _models_check, models=["fake:b"])),
    "store": _same_for_all_kinds(Probe(lambda env: [], _stored)),
    "limit": {"survey": Probe(lambda env: ["--limit", "1"], lambda seen, env: seen.config()["limit"] == 1 or pytest.fail("limit")),
              "experiment": Probe(lambda env: ["--limit", "1"], lambda seen, env: seen.config()["limit"] == 1 or pytest.fail("limit")),
              "judging": Probe(lambda env: ["--limit", "1"], _one_question)},
    "orders": _judging_refuses(Probe(lambda env: ["--orders", "reversed"],
                                     lambda seen, env: seen.config()["orders"] == "reversed" or pytest.fail("orders")),
                               "--orders does not apply to a judging experiment"),
    "mode": _same_for_all_kinds(Probe(lambda env: ["--mode", "sample"],
                                      lambda seen, env: seen.config()["mode"] == "sample" or pytest.fail("mode"))),
    "samples": _same_for_all_kinds(Probe(lambda env: ["--mode", "sample", "--samples", "3"],
                                         lambda seen, env: seen.config()["samples"] == 3 or pytest.fail("samples"))),
    "temperature": _same_for_all_kinds(Probe(lambda env: ["--temperature", "0.5"],
                                             lambda seen, env: seen.config()["temperature"] == 0.5 or pytest.fail("temperature"))),
    "reasoning": _same_for_all_kinds(Probe(lambda env: ["--reasoning", "direct", "reasoning"],
                                           lambda seen, env: seen.config()["reasoning"] == ["direct", "reasoning"]
                                           or pytest.fail("reasoning"))),
    "seed": _same_for_all_kinds(Probe(lambda env: ["--seed", "7"],
                                      lambda seen, env: all(c["seed"] == 7 for c in seen.configs()) or pytest.fail("seed"))),
    "resume": _judging_refuses(Probe(lambda env: ["--resume", env["first"]],
                                     lambda seen, env: (seen.options().resume == env["first"] and len(seen.configs()) == 1)
                                     or pytest.fail("resume"), before=first_run),
                               "--resume does not apply to a judging experiment", ["--resume", "01JSOMERUN"]),
    "new_run": _judging_refuses(Probe(lambda env: ["--new-run"], lambda seen, env: len(seen.configs()) == 2 or pytest.fail("new run"),
                                      before=first_run),
                                "--new-run does not apply to a judging experiment"),
    "prior_from": _judging_refuses(Probe(lambda env: ["--prior-from", env["first"]],
                                         lambda seen, env: seen.config()["prior_from"] == env["first"] or pytest.fail("prior"),
                                         before=lambda mp, env: first_run(mp, env, "--orders", "cyclic")),
                                   "--prior-from does not apply to a judging experiment", ["--prior-from", "01JSOMERUN"]),
    **API_PROBES,
    "max_rate_limit_wait": _same_for_all_kinds(Probe(lambda env: ["--max-rate-limit-wait", "5"],
                                                     lambda seen, env: all(e["options"].max_rate_limit_wait == 5 for e in seen.executions)
                                                     or pytest.fail("wait"))),
    # A local model's batch size reaches its engine (dry: smollm2 is made, never loaded); fake models take none.
    "batch_size": {kind: Probe(lambda env: ["--batch-size", "2"], lambda seen, env: seen.backend("smollm2").max_batch == 2
                               or pytest.fail("batch"), models=["smollm2"] if kind != "judging" else ["smollm2", "fake:a"], dry=True)
                   for kind in KINDS},
    "executor": _same_for_all_kinds(Probe(lambda env: ["--executor", "ray"],
                                          lambda seen, env: all(e["options"].uses_ray() for e in seen.executions) or pytest.fail("ray"),
                                          dry=True)),
    "ray_address": _same_for_all_kinds(Probe(lambda env: ["--executor", "ray", "--ray-address", "auto"],
                                             lambda seen, env: seen.options().ray.address == "auto" or pytest.fail("address"), dry=True)),
    "ray_actors": _same_for_all_kinds(Probe(lambda env: ["--executor", "ray", "--ray-actors", "2"],
                                            lambda seen, env: seen.options().ray.actors == 2 or pytest.fail("actors"), dry=True)),
    "ray_gpus": _same_for_all_kinds(Probe(lambda env: ["--executor", "ray", "--ray-gpus", "0"],
                                          lambda seen, env: seen.options().ray.num_gpus == 0 or pytest.fail("gpus"), dry=True)),
    "ray_cpus": _same_for_all_kinds(Probe(lambda env: ["--executor", "ray", "--ray-cpus", "2"],
                                          lambda seen, env: seen.options().ray.num_cpus == 2 or pytest.fail("cpus"), dry=True)),
    "quiet": _same_for_all_kinds(Probe(lambda env: [], _quiet_check)),
    **{"personas": _PERSONAS},
}


def _expanded(words: str) -> Callable[[Seen, dict[str, Any]], None]:
    def check(seen: Seen, env: dict[str, Any]) -> None:
        assert words in seen.output, seen.output
    return check


def _seed_changes_orders(seen: Seen, env: dict[str, Any]) -> None:
    other = invoke(env["monkeypatch"], env["store"], ["expand", str(env["spec"]), "--orders", "random:1", "--show", "500",
                                                        "--seed", "8"])
    assert other.code == 0 and other.output != seen.output


EXPAND_PROBES: dict[str, dict[str, Probe]] = {
    "show": {"survey": Probe(lambda env: ["--show", "2"], _expanded("--- trial")),
             "experiment": Probe(lambda env: ["--show", "2"], _expanded("--- trial")),
             "judging": Probe(lambda env: ["--show", "2"], _expanded("example prompts of stage 1"))},
    "orders": _judging_refuses(Probe(lambda env: ["--orders", "all"], _expanded("orders: 2")),
                               "--orders does not apply to a judging experiment"),
    "reasoning": {"survey": Probe(lambda env: ["--reasoning", "direct", "reasoning"], _expanded("reasoning_modes: 2")),
                  "experiment": Probe(lambda env: ["--reasoning", "direct", "reasoning"], _expanded("reasoning_modes: 2")),
                  "judging": Probe(lambda env: ["--reasoning", "direct", "reasoning"], _expanded("2 form(s)"))},
    "limit": {"survey": Probe(lambda env: ["--limit", "1"], _expanded("items: 1")),
              "experiment": Probe(lambda env: ["--limit", "1"], _expanded("items: 1")),
              "judging": Probe(lambda env: ["--limit", "1"], _expanded("(1 questions)"))},
    # The seed picks PriDe's calibration items (all rotations): another seed, other trials.
    "seed": _judging_refuses(Probe(lambda env: ["--orders", "pride:0.5", "--show", "500", "--seed", "7"], _seed_changes_orders),
                             "--seed does not apply to a judging experiment", ["--seed", "7"]),
    "personas": _PERSONAS,
}


def _job(seen: Seen) -> Any:
    [job] = list_jobs(Store(seen.store))
    return job


def _job_has(get: Callable[[Any], Any], value: Any) -> Callable[[Seen, dict[str, Any]], None]:
    def check(seen: Seen, env: dict[str, Any]) -> None:
        assert get(_job(seen)) == value
    return check


def _track(probe: Probe) -> dict[str, Probe]:
    """Tracking runs surveys and experiments; a judging experiment is refused as a whole."""
    return {"survey": probe, "experiment": probe, "judging": Probe(probe.args, refused="judging experiment cannot be tracked",
                                                                    models=probe.models)}


def _api_job(name: str, value: Callable[[dict[str, Any]], Any]) -> Callable[[Seen, dict[str, Any]], None]:
    def check(seen: Seen, env: dict[str, Any]) -> None:
        assert getattr(_job(seen).options, name) == value(env)
    return check


TRACK_PROBES: dict[str, dict[str, Probe]] = {
    "surveys": _track(Probe(lambda env: [], _job_surveys)),
    "every": _track(Probe(lambda env: [], _job_has(lambda j: j.schedule, "1d"))),
    "models": _track(Probe(lambda env: [], _job_has(lambda j: j.models, ["fake:b"]), models=["fake:b"])),
    "model_label": _track(Probe(lambda env: ["--model-label", "v1"], _job_has(lambda j: j.model_label, "v1"))),
    "limit": _track(Probe(lambda env: ["--limit", "2"], _job_has(lambda j: j.options.limit, 2))),
    "mode": _track(Probe(lambda env: ["--mode", "sample"], _job_has(lambda j: j.options.mode, "sample"))),
    "samples": _track(Probe(lambda env: ["--samples", "4"], _job_has(lambda j: j.options.samples, 4))),
    "temperature": _track(Probe(lambda env: ["--temperature", "0.7"], _job_has(lambda j: j.options.temperature, 0.7))),
    "orders": _track(Probe(lambda env: ["--orders", "cyclic"], _job_has(lambda j: j.options.orders, "cyclic"))),
    "reasoning": _track(Probe(lambda env: ["--reasoning", "direct", "reasoning"],
                              _job_has(lambda j: j.options.reasoning, ("direct", "reasoning")))),
    "personas": _track(Probe(lambda env: ["--personas", "japan"], refused="no survey of the run has personas")),
    "seed": _track(Probe(lambda env: ["--seed", "9"], _job_has(lambda j: j.options.seed, 9))),
    "fixed_seed": _track(Probe(lambda env: ["--fixed-seed"], _job_has(lambda j: j.options.vary_seed, False))),
    "tz": _track(Probe(lambda env: ["--every", "0 6 * * *", "--tz", "Europe/Berlin"], _job_has(lambda j: j.tz, "Europe/Berlin"))),
    "start": _track(Probe(lambda env: ["--start", "2025-06-01T06:00:00+00:00"],
                          _job_has(lambda j: j.anchor.isoformat(), "2025-06-01T06:00:00+00:00"))),
    "no_repeat": _track(Probe(lambda env: ["--no-repeat"], _job_has(lambda j: j.noise_repeat, False))),
    "max_attempts": _track(Probe(lambda env: ["--max-attempts", "5"], _job_has(lambda j: j.max_attempts, 5))),
    "models_config": _track(Probe(lambda env: ["--models-config", str(env["models_yaml"])],
                                  _api_job("models_config", lambda env: env["models_yaml"]), models=[API])),
    "api_base": _track(Probe(lambda env: ["--api-base", env["api_base"]], _api_job("api_base", lambda env: env["api_base"]), models=[API])),
    "api_key_env": _track(Probe(lambda env: ["--api-base", env["api_base"], "--api-key-env", KEY],
                                _api_job("api_key_env", lambda env: KEY), models=[API])),
    "concurrency": _track(Probe(lambda env: ["--api-base", env["api_base"], "--concurrency", "3"],
                                _api_job("concurrency", lambda env: 3), models=[API])),
    "rpm": _track(Probe(lambda env: ["--api-base", env["api_base"], "--rpm", "60"], _api_job("rpm", lambda env: 60.0), models=[API])),
    "tpm": _track(Probe(lambda env: ["--api-base", env["api_base"], "--tpm", "6000"], _api_job("tpm", lambda env: 6000.0), models=[API])),
    "timeout": _track(Probe(lambda env: ["--api-base", env["api_base"], "--timeout", "9"], _api_job("timeout", lambda env: 9.0),
                            models=[API])),
    "replace": _track(Probe(lambda env: ["--replace", "--limit", "3"], _job_has(lambda j: (j.options.limit, j.options.mode), (3, "sample")),
                            before=lambda mp, env: _track_first(mp, env))),
    "store": _track(Probe(lambda env: [], _job_has(lambda j: j.name, "job1"))),
}


def _track_first(monkeypatch: pytest.MonkeyPatch, env: dict[str, Any]) -> None:
    done = invoke(monkeypatch, env["store"], ["track", "add", "job1", "--survey", str(env["spec"]), "--every", "1d",
                                               "--models", "fake:a", "--mode", "sample", "--store", str(env["store"])])
    if env["kind"] != "judging":
        assert done.code == 0, done.output


COMMANDS: dict[str, dict[str, dict[str, Probe]]] = {"run": RUN_PROBES, "expand": EXPAND_PROBES, "track add": TRACK_PROBES}


def cli_options(command: str) -> set[str]:
    """The options of a command as the CLI declares them (click's parameters; typer may bundle its own click)."""
    found: Any = typer.main.get_command(app)
    for name in command.split():
        found = found.commands[name]
    return {p.name for p in found.params if p.param_type_name == "option" and p.name}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_the_tables_cover_every_option(command: str) -> None:
    assert cli_options(command) - {"help"} == set(COMMANDS[command]), "a new option needs a row here"
    assert all(set(kinds) == set(KINDS) for kinds in COMMANDS[command].values())


def _arguments(command: str, kind: str, probe: Probe, env: dict[str, Any]) -> list[str]:
    spec, store = str(env["spec"]), str(env["store"])
    models = ["--models", *probe.models] if probe.models else []
    if command == "run":  # a survey run asks 2 items (later flags win: a probe's own --limit replaces it)
        return ["run", spec, *(models or ["--models", "fake:a"] if kind != "judging" else models), "--store", store, "-q",
                *(["--limit", "2"] if kind == "survey" else []), *probe.args(env)]
    if command == "expand":
        return ["expand", spec, *probe.args(env)]
    return ["track", "add", "job1", "--survey", spec, "--every", "1d", *(models or ["--models", "fake:a"]), "--store", store,
            *probe.args(env)]


def _needs_server(command: str, option: str) -> bool:
    """A run with an API model calls it: those cases start the latency server (slow); `track add` calls none."""
    return command == "run" and option in API_PROBES


CASES = [pytest.param(command, option, kind, id=f"{command}-{option}-{kind}".replace(" ", "_"),
                      marks=[pytest.mark.slow] if _needs_server(command, option) else [])
         for command, table in COMMANDS.items() for option in table for kind in KINDS]


@pytest.mark.parametrize(("command", "option", "kind"), CASES)
def test_each_option_is_honoured_or_refused(command: str, option: str, kind: str, tmp_path: Path,
                                            request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    probe = COMMANDS[command][option][kind]
    api_base = request.getfixturevalue("api_base") if _needs_server(command, option) else "http://127.0.0.1:9/v1"
    models_yaml = tmp_path / "models.yaml"
    models_yaml.write_text(yaml.safe_dump({"models": {API: {"api_base": api_base, "api_key_env": KEY}}}))
    env: dict[str, Any] = {"spec": spec_file(kind, tmp_path), "store": tmp_path / "store.duckdb", "api_base": api_base,
                           "models_yaml": models_yaml.absolute(), "kind": kind, "monkeypatch": monkeypatch}
    if probe.before is not None:
        probe.before(monkeypatch, env)
    seen = invoke(monkeypatch, env["store"], _arguments(command, kind, probe, env), dry=probe.dry)
    if probe.refused is not None:
        assert seen.code != 0 and probe.refused in seen.output, seen.output
        if command == "track add" and probe.before is None:
            assert not env["store"].exists() or not list_jobs(Store(env["store"])), "a refused job is not stored"
        return
    assert seen.code in (0, 1) and "error: " not in seen.output.replace("trial(s) failed", ""), seen.output
    assert probe.honoured is not None
    probe.honoured(seen, env)
