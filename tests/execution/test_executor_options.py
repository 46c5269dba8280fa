"""Choosing the executor: experiment files, CLI flags, defaults and mistakes (no Ray started)."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from probekit.backends import engine_for
from probekit.cli.main import _ray_options
from probekit.execution.ray_pool import RayOptions
from probekit.experiment import resolve_inputs
from probekit.runner import RunOptions
from probekit.survey.errors import SpecError

ROOT = Path(__file__).resolve().parents[2]


def experiment(tmp_path: Path, executor: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(f"id: sweep\nsurveys:\n  - path: {ROOT / 'surveys' / 'moralchoice_starter.yaml'}\n{executor}",
                    encoding="utf-8")
    return path


def test_an_experiment_file_can_ask_for_ray(tmp_path: Path) -> None:
    inputs = resolve_inputs([experiment(tmp_path, "executor: {kind: ray, actors: 3, gpus_per_actor: 0.5}\n")])
    assert inputs.ray == RayOptions(actors=3, num_gpus=0.5)
    assert "executor" not in str(inputs.experiment)  # not part of the run's configuration
    assert resolve_inputs([experiment(tmp_path, "executor: {kind: local, actors: 3}\n")]).ray is None
    assert resolve_inputs([experiment(tmp_path, "")]).ray is None


@pytest.mark.parametrize("block, message", [
    ("executor: {kind: rey}\n", "executor.kind"),
    ("executor: {kind: ray, actors: 0}\n", "executor.actors"),
    ("executor: {kind: ray, nodes: 2}\n", "executor.nodes"),
])
def test_a_bad_executor_block_names_the_line(tmp_path: Path, block: str, message: str) -> None:
    with pytest.raises(SpecError) as error:
        resolve_inputs([experiment(tmp_path, block)])
    text = str(error.value)
    assert "exp.yaml:4" in text and message in text


def test_flags_go_on_top_of_the_experiment() -> None:
    from_file = RayOptions(actors=3, num_gpus=1.0)
    assert _ray_options(None, from_file, address=None, actors=None, num_gpus=None, num_cpus=None) is from_file
    merged = _ray_options(None, from_file, address="10.0.0.1:6379", actors=None, num_gpus=None, num_cpus=2.0)
    assert merged == RayOptions(address="10.0.0.1:6379", actors=3, num_gpus=1.0, num_cpus=2.0)
    assert _ray_options("ray", None, address=None, actors=2, num_gpus=None, num_cpus=None) == RayOptions(actors=2)
    assert _ray_options("ray", None, address=None, actors=None, num_gpus=None, num_cpus=None) == RayOptions()
    assert _ray_options("local", from_file, address=None, actors=None, num_gpus=None, num_cpus=None) is None


@pytest.mark.parametrize("executor, flags, message", [
    ("local", {"actors": 2}, "--ray-actors has no effect with --executor local"),
    (None, {"num_gpus": 1.0}, "--ray-* options need --executor ray"),
    ("rey", {}, "--executor 'rey': use local or ray"),
])
def test_flag_mistakes_are_errors(capsys: pytest.CaptureFixture[str], executor: str | None, flags: dict[str, float],
                                  message: str) -> None:
    given = {"address": None, "actors": None, "num_gpus": None, "num_cpus": None, **flags}
    with pytest.raises(typer.Exit) as exit_:
        _ray_options(executor, None, **given)
    assert exit_.value.exit_code == 1 and message in capsys.readouterr().err


def test_ray_options_are_checked() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RayOptions(actors=0)
    with pytest.raises(ValueError, match="negative"):
        RayOptions(num_gpus=-1)


def test_which_runs_use_ray_and_which_models_it_shards() -> None:
    assert not RunOptions().uses_ray()
    assert RunOptions(ray=RayOptions()).uses_ray()
    assert RunOptions(executor="ray").uses_ray()
    assert not RunOptions(executor="local", ray=RayOptions()).uses_ray()
    # Local weights go to actors; API models stay in the driver (network-bound, keys stay here).
    assert engine_for("smollm2").local_weights and engine_for("hf:/models/x").local_weights
    assert not engine_for("openai/gpt-4o-mini").local_weights
