"""Local logprob scoring speed: probekit vs a plain-PyTorch floor on the same token batches.

    python benchmarks/local_scoring.py [--model smollm2] [--items 500] [--repeats 3]

Measured in one process, model load excluded for all:
- floor: the exact padded token batches probekit forms (same prompts, same token budget), fed straight to
  `model(...)` with `logits_to_keep=1` under `torch.inference_mode()` — no prompt rendering, tokenization,
  label extraction or result rows. Nothing that scores these prompts can do much better on this model.
- probekit: the scoring layer over `HFBackend` through a runtime (`probekit.scoring.sync.score_sync`: chat template,
  tokenization, batching, forward, label distribution, top-20 logprobs, result rows), prefix sharing off so the token
  batches match the floor.
- probekit runner (--runner): the whole `probekit run` path (model load, expansion, DuckDB commits).
The floor and probekit alternate batch group by batch group on the same prompts, so other load on the
machine hits both alike.
Target (issue 2): probekit backend within 1.2x of the floor's time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
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
    parser.add_argument("--repeats", type=int, default=1, help="passes over the prompts (times are summed)")
    parser.add_argument("--runner", action="store_true", help="also time the whole `probekit run` path once")
    args = parser.parse_args()

    import torch

    from probekit.backends.hf import HFBackend
    from probekit.pipeline import run_async
    from probekit.runner import RunOptions
    from probekit.scoring import ScoringSettings, trial_prompt
    from probekit.scoring.sync import score_sync
    from probekit.survey.expand import expand
    from probekit.survey.loader import load_survey

    survey = load_survey(REPO / "surveys" / "mmlu.yaml")
    trials = expand(survey, policy="identity", limit=args.items)
    backend = HFBackend(args.model, share_prefix=False)
    info = backend.load()
    settings = ScoringSettings(mode="logprob")
    print(f"model {args.model} on {info.device} ({info.dtype}), torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"{len(trials)} prompts, token budget {backend.token_budget}")

    encoded = [backend.encode_prompt(backend.prompt_text(trial_prompt(t))) for t in trials]
    batches = backend._batches([len(e) for e in encoded])
    tokens = sum(len(e) for e in encoded)
    padded = sum(len(b) * max(len(encoded[i]) for i in b) for b in batches)
    print(f"{tokens} prompt tokens in {len(batches)} batches ({padded} with padding)")

    def floor(chunk: list[list[int]]) -> None:
        with torch.inference_mode():
            for batch in chunk:
                ids, mask, positions = backend._pad([encoded[i] for i in batch])
                logits = backend._lm(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=1, use_cache=False).logits
                torch.log_softmax(logits[:, -1, :].float(), dim=-1)

    score_sync(backend, trials[:8], settings)  # warm-up: first calls allocate buffers
    # Alternate floor and probekit batch group by batch group on the same prompts, so load from other
    # processes on the machine hits both alike; sum the time each spends.
    spent = {"floor": 0.0, "backend": 0.0}
    groups = [batches[k:k + 2] for k in range(0, len(batches), 2)]
    for _ in range(args.repeats):
        for group in groups:
            started = time.perf_counter()
            floor(group)
            spent["floor"] += time.perf_counter() - started
            members = [trials[i] for batch in group for i in batch]
            started = time.perf_counter()
            score_sync(backend, members, settings)
            spent["backend"] += time.perf_counter() - started
    prompts = len(trials) * args.repeats
    rows = [("plain PyTorch floor", spent["floor"]), ("probekit scoring layer + HF", spent["backend"])]
    if args.runner:
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as folder:
            options = RunOptions(models=[args.model], store=Path(folder) / "bench.duckdb", orders="identity", limit=args.items,
                                 backend_options={args.model: {"share_prefix": False}})
            asyncio.run(run_async([survey], options))
        rows.append(("probekit run (incl. load, DuckDB)", (time.perf_counter() - started) * args.repeats))
    print(f"\n{'path':<36}{'seconds':>9}{'prompts/s':>11}{'x floor':>9}")
    for label, seconds in rows:
        print(f"{label:<36}{seconds:>9.2f}{prompts / seconds:>11.1f}{seconds / spent['floor']:>9.2f}")
    ratio = spent["backend"] / spent["floor"]
    print(f"\nprobekit backend / floor = {ratio:.2f} (target <= 1.20): {'met' if ratio <= 1.2 else 'NOT met'}")


if __name__ == "__main__":
    main()
