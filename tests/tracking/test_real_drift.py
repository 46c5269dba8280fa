"""The real thing: SmolLM2-135M-Instruct tracked under one model key whose weights change between two slots.

v1 is the embedded model saved as a local transformers model; v2 is the same model with Gaussian noise
(5 % of each weight matrix's standard deviation, seeded) added to every weight matrix, written over v1's
weights in the same directory: the model key `hf:<dir>` stays the same and only the weights' sha256
tells the versions apart, as with a hosted model updated under its name. run-due runs each version
twice (the scheduled run and the noise-floor repeat); drift must find no change between the two runs of a
version and a change between the versions, naming the items that moved.

Run with: pytest -m slow tests/tracking/test_real_drift.py -s (prints the numbers; about 2-4 minutes on 2 CPUs).
"""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from probekit.analysis.snapshots import drift
from probekit.cli.track import render_drift
from probekit.store.store import Store
from probekit.tracking import JobOptions, add_job, new_job, run_due

REPO = Path(__file__).resolve().parents[2]
STARTER = REPO / "surveys" / "moralchoice_starter.yaml"
T0 = datetime(2025, 6, 2, 15, tzinfo=timezone.utc)
PERTURBATION = 0.05
LIMIT = 5


def save_v1(target: Path) -> None:
    """The embedded smollm2 (its dequantized weights, tokenizer and chat template) as a local model dir."""
    import torch

    from probekit.backends.hf_loader import load_model, resolve_local

    _model, _tok, details = load_model(resolve_local("smollm2"), "cpu", torch.float32)
    target.mkdir(parents=True)
    for file in Path(details["cache_dir"]).iterdir():
        if file.is_file() and file.name != "probekit_source.json":
            shutil.copy2(file, target / file.name)


def perturbed_weights(source: Path, out: Path, scale: float, seed: int = 0) -> Path:
    """v1 plus seeded Gaussian noise (scale × each matrix's std) on every weight matrix; returns the
    safetensors file."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() == 2:
                parameter.add_(torch.randn(parameter.shape, generator=generator) * parameter.std() * scale)
    model.save_pretrained(out, safe_serialization=True)
    return out / "model.safetensors"


@pytest.mark.slow
def test_smollm2_v1_twice_is_unchanged_and_v2_is_changed(tmp_path: Path) -> None:
    model_dir = tmp_path / "smollm2-tracked"
    save_v1(model_dir)
    v2 = perturbed_weights(model_dir, tmp_path / "v2", PERTURBATION)
    model, store = f"hf:{model_dir}", tmp_path / "store.duckdb"
    add_job(Store(store), new_job("smollm2-daily", [STARTER], [model], "1d", options=JobOptions(limit=LIMIT), now=T0))

    assert [(o.kind, o.action) for o in run_due(store, now=T0)] == [("scheduled", "ran"), ("repeat", "ran")]
    assert [o.action for o in run_due(store, now=T0 + timedelta(hours=1))] == ["done-already"]
    shutil.copy2(v2, model_dir / "model.safetensors")  # the provider updates the model under the same name
    assert [(o.kind, o.action) for o in run_due(store, now=T0 + timedelta(days=1))] == [("scheduled", "ran"), ("repeat", "ran")]

    versions = Store(store).query("SELECT run_id, model, weights_sha256, slot_kind FROM model_versions ORDER BY started_at")
    assert versions["model"].nunique() == 1 and versions["weights_sha256"].nunique() == 2

    # How much the answers moved, in plain numbers: per form, |ΔP(action 1)| and argmax flips from v1 to v2.
    forms = Store(store).query(
        "SELECT v.weights_sha256 AS w, r.trial_id, r.distribution[1] AS p1 FROM results r JOIN model_versions v USING (run_id, model) "
        "WHERE v.slot_kind = 'scheduled' AND r.status = 'ok'")
    wide = forms.pivot_table(index="trial_id", columns="w", values="p1")
    first, second = (versions["weights_sha256"].iloc[0], versions["weights_sha256"].iloc[-1])
    shift = (wide[second] - wide[first]).abs()
    flips = int(((wide[first] > 0.5) != (wide[second] > 0.5)).sum())
    print(f"\nper form |ΔP(action 1)| v1 → v2: mean {shift.mean():.3f}, max {shift.max():.3f}; "
          f"argmax flipped on {flips} of {len(wide)} forms")
    assert shift.mean() > 0.01

    by_version = drift(store, survey="moralchoice_starter", model=model)
    print("\n" + render_drift(by_version, top=5))
    [pair] = by_version.pairs
    assert pair.summary["verdict"] == "changed"
    assert pair.summary["n_moved"] >= 1 and pair.comparison.items["moved"].iloc[0]

    by_run = drift(store, survey="moralchoice_starter", model=model, by="run")
    print("\n" + render_drift(by_run, top=3))
    verdicts = {(p.a.label, p.b.label): p.summary["verdict"] for p in by_run.pairs}
    assert verdicts[("S1", "S2")] == "no change beyond noise"  # v1, twice
    assert verdicts[("S2", "S3")] == "changed"                 # v1 -> v2
    assert verdicts[("S3", "S4")] == "no change beyond noise"  # v2, twice
