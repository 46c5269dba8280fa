"""vLLM vs the transformers backend on the same machine and the same MMLU prompts, in one process.

    .venv-vllm/bin/python benchmarks/vllm_vs_hf.py [--items 200] [--chunk 50] [--json OUT.json]

(.venv-vllm holds both engines: `bash scripts/setup_vllm.sh`.) The prompts are exactly what `probekit run
surveys/mmlu.yaml` sends: the survey expanded by probekit (its 4 cyclic orders per item; the few
position-dependent items are shown once). Both backends score through probekit's runtime with their default
settings (transformers: batches of 64 with prefix sharing; vLLM: calls of up to 256 requests, automatic
prefix caching, top-20 evidence tokens, float32 on CPU). Model load is timed apart. Throughput alternates
chunks of items between the two engines, so load from other processes hits both alike.

Reported: engine start, prompts/s of each, argmax agreement, max and mean |dp| over the stored (canonical,
renormalised) distributions and over the raw label probabilities, and seeded sampling reproducibility
(the same seeds twice, and one trial alone instead of in its batch), plus greedy-text agreement.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "backends"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=200, help="MMLU items, each in the survey's 4 cyclic orders")
    parser.add_argument("--chunk", type=int, default=50, help="items per alternation between the engines")
    parser.add_argument("--generation-trials", type=int, default=40, help="trials for the sampling checks")
    parser.add_argument("--block-size", type=int, default=None, help="vLLM KV block size (CPU default here: 32)")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args()

    from vllm_check import score_open

    from probekit.backends.hf import HFBackend
    from probekit.backends.vllm_backend import VLLMBackend
    from probekit.scoring import ScoringSettings
    from probekit.survey.expand import expand
    from probekit.survey.loader import load_survey

    trials = expand(load_survey(REPO / "surveys" / "mmlu.yaml"), limit=args.items)
    orders = len({t.order for t in trials})
    print(f"{len(trials)} prompts: {args.items} MMLU items in {orders} orders (position-dependent items once)", flush=True)

    started = time.perf_counter()
    vllm: Any = VLLMBackend("vllm:smollm2", block_size=args.block_size)
    vllm_info = vllm.load()
    vllm_start = time.perf_counter() - started
    started = time.perf_counter()
    hf = HFBackend("smollm2")
    hf_info = hf.load()
    hf_start = time.perf_counter() - started
    import torch

    print(f"vLLM {vllm_info.details['vllm']} ({vllm_info.dtype}, {vllm_info.device}) started in {vllm_start:.1f} s; "
          f"transformers (torch {torch.__version__}, {hf_info.dtype}, {torch.get_num_threads()} threads) loaded in {hf_start:.1f} s",
          flush=True)

    settings = ScoringSettings()
    report: dict[str, Any] = {"prompts": len(trials), "items": args.items, "orders": orders,
                              "vllm_start_s": round(vllm_start, 1), "hf_start_s": round(hf_start, 1)}
    try:
        score_open(vllm, trials[:8], settings)  # warm-up: first calls allocate buffers
        score_open(hf, trials[:8], settings)
        vllm._llm.reset_prefix_cache()  # the warm-up prompts would otherwise be cached for the timed pass
        rows: dict[str, list[Any]] = {"vllm": [], "hf": []}
        spent = {"vllm": 0.0, "hf": 0.0}
        by_item: dict[str, list[Any]] = {}
        for trial in trials:
            by_item.setdefault(trial.item_id, []).append(trial)
        items = list(by_item.values())
        for k in range(0, len(items), args.chunk):
            chunk = [t for item in items[k:k + args.chunk] for t in item]
            for name, backend in (("vllm", vllm), ("hf", hf)):
                started = time.perf_counter()
                rows[name].extend(score_open(backend, chunk, settings))
                spent[name] += time.perf_counter() - started
            print(f"  {k + len(items[k:k + args.chunk])}/{len(items)} items: vLLM {spent['vllm']:.1f} s, "
                  f"transformers {spent['hf']:.1f} s", flush=True)
        ordered = [t for item in items for t in item]
        agree = dp_max = dp_sum = raw_max = 0.0
        count = 0
        for trial, (v,), (h,) in zip(ordered, rows["vllm"], rows["hf"]):
            assert v["trial_id"] == h["trial_id"] == trial.trial_id and v["status"] == h["status"] == "ok"
            agree += v["choice"] == h["choice"]
            for a, b in zip(v["distribution"], h["distribution"]):
                dp_max, dp_sum, count = max(dp_max, abs(a - b)), dp_sum + abs(a - b), count + 1
            for a, b in zip(v["label_logprobs"], h["label_logprobs"]):
                raw_max = max(raw_max, abs(math.exp(a) - math.exp(b)))
        report.update({
            "vllm_prompts_per_s": round(len(trials) / spent["vllm"], 2), "hf_prompts_per_s": round(len(trials) / spent["hf"], 2),
            "vllm_s": round(spent["vllm"], 1), "hf_s": round(spent["hf"], 1),
            "argmax_agreement_pct": round(100 * agree / len(trials), 2), "max_abs_dp": dp_max, "mean_abs_dp": dp_sum / count,
            "max_abs_dp_raw_label_probs": raw_max,
        })

        generation = trials[: args.generation_trials]
        sample = ScoringSettings(mode="sample", samples=3, temperature=1.0, max_tokens=16, seed=0)
        texts = lambda rows: [[r["raw_text"] for r in samples] for samples in rows]  # noqa: E731
        first = texts(score_open(vllm, generation, sample))
        again = texts(score_open(vllm, generation, sample))
        alone = [texts(score_open(vllm, [t], sample))[0] for t in generation[:5]]
        greedy = ScoringSettings(mode="sample", samples=1, temperature=0.0, max_tokens=16, seed=0)
        v_greedy = texts(score_open(vllm, generation, greedy))
        h_greedy = texts(score_open(hf, generation, greedy))
        report.update({
            "seeded_samples": len(generation) * 3,
            "seeded_repeat_identical_pct": round(100 * sum(a == b for a, b in zip(first, again)) / len(first), 2),
            "seeded_alone_identical_pct": round(100 * sum(a == b for a, b in zip(alone, first)) / len(alone), 2),
            "seeded_samples_distinct_within_trial_pct": round(100 * sum(len(set(s)) > 1 for s in first) / len(first), 2),
            "greedy_text_identical_vllm_vs_hf_pct": round(100 * sum(a == b for a, b in zip(v_greedy, h_greedy)) / len(v_greedy), 2),
        })
    finally:
        vllm.shutdown()

    print(f"\n{'engine':<34}{'start s':>9}{'score s':>9}{'prompts/s':>11}")
    print(f"{'vLLM ' + str(vllm_info.details['vllm']) + ' (vllm:smollm2)':<34}{report['vllm_start_s']:>9.1f}{report['vllm_s']:>9.1f}"
          f"{report['vllm_prompts_per_s']:>11.2f}")
    print(f"{'transformers (smollm2)':<34}{report['hf_start_s']:>9.1f}{report['hf_s']:>9.1f}{report['hf_prompts_per_s']:>11.2f}")
    print(f"vLLM / transformers throughput: {report['vllm_prompts_per_s'] / report['hf_prompts_per_s']:.2f}x")
    print(f"\nargmax agreement: {report['argmax_agreement_pct']:.2f} % of {len(trials)} prompts (target >= 99 %)")
    print(f"|dp| over the stored distributions: max {report['max_abs_dp']:.2e}, mean {report['mean_abs_dp']:.2e}; "
          f"raw label probabilities: max {report['max_abs_dp_raw_label_probs']:.2e}")
    print(f"seeded sampling ({report['seeded_samples']} samples, T=1): same seeds again identical "
          f"{report['seeded_repeat_identical_pct']:.0f} %, a trial alone vs in its batch identical "
          f"{report['seeded_alone_identical_pct']:.0f} %; greedy text vLLM = transformers for "
          f"{report['greedy_text_identical_vllm_vs_hf_pct']:.0f} % of trials")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
