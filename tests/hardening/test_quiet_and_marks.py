"""Issue 10, newcomer friction: `run -q` (and a run whose stderr is not a terminal) prints no weight-loading bar;
`pytest -m "not slow"` loads no model (a test using a model fixture is slow whatever its file says, and a fast
test that loads weights anyway fails naming the fix)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import ENV, REPO, STARTER, cli

PROGRESS_VARIABLES = ("HF_HUB_DISABLE_PROGRESS_BARS", "TRANSFORMERS_VERBOSITY", "TQDM_DISABLE")


def test_quiet_run_switches_off_loading_bars_before_any_model_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROGRESS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    result = cli("run", str(STARTER), "--models", "fake:a", "--limit", "1", "--store", str(tmp_path / "s.duckdb"), "-q")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert [os.environ.get(name) for name in PROGRESS_VARIABLES] == ["1", "error", "1"]


@pytest.mark.slow
def test_quiet_run_on_the_real_model_prints_only_the_run_id(tmp_path: Path) -> None:
    env = {k: v for k, v in ENV.items() if k not in PROGRESS_VARIABLES}
    result = subprocess.run([sys.executable, "-m", "probekit.cli.main", "run", str(STARTER), "--models", "smollm2", "--limit", "1",
                             "--store", str(tmp_path / "s.duckdb"), "-q"], capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr  # no "Loading weights: 100%|████|" bar
    assert len(result.stdout.split()) == 1


def test_fast_subset_collects_no_model_test() -> None:
    collected = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "not slow", "-p", "no:cacheprovider",
                                "tests/survey/test_library_e2e.py", "tests/backends/test_hf_prefix_cache.py",
                                "tests/backends/test_hf.py", "tests/scoring/test_modes.py"],
                               capture_output=True, text=True, env=ENV, cwd=REPO, timeout=300)
    assert collected.returncode in (0, 5), collected.stdout + collected.stderr  # 5: nothing collected
    ids = [line for line in collected.stdout.splitlines() if "::" in line]
    assert not any("test_library_e2e" in i or "smollm2" in i or "gemma3" in i or "llama" in i for i in ids), ids
    assert any("test_tight_batches_bound_padding_and_budget" in i for i in ids)  # bookkeeping tests stay fast


def test_a_fast_test_that_loads_weights_fails_naming_the_fix() -> None:
    import probekit.backends.hf as hf
    import probekit.backends.hf_loader as hf_loader

    for module in (hf, hf_loader):  # the engine's loader and the function it imported: both refuse in a fast test
        with pytest.raises(RuntimeError, match="mark it @pytest.mark.slow"):
            module.load_model(hf_loader.resolve_local("smollm2"), "cpu", None)
