"""Local logprob scoring speed: probekit vs a plain-PyTorch floor on the same token batches.

    python benchmarks/local_scoring.py [--model smollm2] [--items 500] [--repeats 3]

Measured in one process, model load excluded for all:
- floor: the exact padded token batches probekit forms (same prompts, same token budget), fed straight to
  `model(...)` with `logits_to_keep=1` under `torch.inference_mode()` — no prompt rendering, tokenization,
  label extraction or result rows. Nothing that scores these prompts can do much better on this model.
- probekit backend: `HFBackend.score_sync` (chat template, tokenization, batching, forward, label
  distribution, top-20 logprobs, result rows), prefix sharing off so the token batches match the floor.
- probekit runner: the whole `probekit run` path (expansion, retries, DuckDB commits) into a temporary store.
Target (issue 2): probekit backend within 1.2x of the floor's time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--items", type=int, default=500, help="MMLU items, identity order (one prompt each)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions; the median is reported")
    args = parser.parse_args()

    import torch

    from probekit.backends.hf import HFBackend
    from probekit.runner import RunOptions, run_async
    from probekit.scoring import ScoringSettings
    from probekit.survey.expand import expand
    from probekit.survey.loader import load_survey

    survey = load_survey(REPO / "surveys" / "mmlu.yaml")
    trials = expand(survey, policy="identity", limit=args.items)
    backend = HFBackend(args.model, share_prefix=False)
    info = backend.load()
    settings = ScoringSettings(mode="logprob")
    print(f"model {args.model} on {info.device} ({info.dtype}), torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"{len(trials)} prompts, token budget {backend.token_budget}")

    encoded = [backend.encode_prompt(backend.prompt_text(t)) for t in trials]
    batches = backend._batches([len(e) for e in encoded])
    tokens = sum(len(e) for e in encoded)
    padded = sum(len(b) * max(len(encoded[i]) for i in b) for b in batches)
    print(f"{tokens} prompt tokens in {len(batches)} batches ({padded} with padding)")

    def floor() -> None:
        with torch.inference_mode():
            for batch in batches:
                ids, mask, positions = backend._pad([encoded[i] for i in batch])
                logits = backend._lm(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=1, use_cache=False).logits
                torch.log_softmax(logits[:, -1, :].float(), dim=-1)

    def probekit_backend() -> None:
        backend.score_sync(trials, settings)

    def probekit_runner() -> None:
        with tempfile.TemporaryDirectory() as folder:
            options = RunOptions(models=[args.model], store=Path(folder) / "bench.duckdb", orders="identity", limit=args.items,
                                 backend_options={args.model: {"share_prefix": False}})
            asyncio.run(run_async([survey], options))

    backend.score_sync(trials[:8], settings)  # warm-up: first calls allocate and compile kernels
    timings: dict[str, list[float]] = {"floor": [], "backend": [], "runner": []}
    for _ in range(args.repeats):
        for name, function in (("floor", floor), ("backend", probekit_backend), ("runner", probekit_runner)):
            started = time.perf_counter()
            function()
            timings[name].append(time.perf_counter() - started)
    floor_s = statistics.median(timings["floor"])
    print(f"\n{'path':<34}{'seconds':>9}{'prompts/s':>11}{'x floor':>9}")
    for name, label in (("floor", "plain PyTorch floor"), ("backend", "probekit HFBackend.score_sync"),
                        ("runner", "probekit run (incl. model load)")):
        seconds = statistics.median(timings[name])
        print(f"{label:<34}{seconds:>9.2f}{len(trials) / seconds:>11.1f}{seconds / floor_s:>9.2f}")
    ratio = statistics.median(timings["backend"]) / floor_s
    print(f"\nprobekit backend / floor = {ratio:.2f} (target <= 1.20): {'met' if ratio <= 1.2 else 'NOT met'}")


if __name__ == "__main__":
    main()
