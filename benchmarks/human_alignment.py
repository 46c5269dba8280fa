"""Scale benchmark for the human-alignment tables (issue 24; not a timed test).

Synthetic data in the frames the store reader builds (probekit.analysis.human): 10,000 questions (2–5 options, half
of them ordinal with a refusal option) asked of 100 groups (each group misses ~10 % of the questions), and one model
answering in the default context and as 10 personas (each standing for one group). Times, in this process, every
registered human table's computation: similarity, representativeness, baselines, steerability (both metrics),
consistency (20 topics), diversity, and the per-question detail table, each with 1,000 bootstrap resamples over
questions; prints wall time and peak resident memory (ru_maxrss).

    python benchmarks/human_alignment.py [--questions 10000] [--groups 100] [--personas 10] [--boot 1000]

Targets: under 30 s and under 4 GiB (2 shared CPU cores).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import numpy as np
import pandas as pd

from probekit.analysis import human as hm


def build(questions: int, groups: int, personas: int, seed: int = 0) -> hm.HumanInputs:
    rng = np.random.default_rng(seed)
    k = rng.integers(2, 6, size=questions)
    ordinal = rng.random(questions) < 0.5
    positions, refusal = [], []
    for n, is_ordinal in zip(k, ordinal):
        if is_ordinal:
            pos = np.arange(1, n + 1, dtype=float)
            pos[-1] = np.nan
            refusal.append(np.arange(n) == n - 1)
        else:
            pos = np.full(n, np.nan)
            refusal.append(np.zeros(n, dtype=bool))
        positions.append(pos)
    items = np.array([f"q{i:05d}" for i in range(questions)], dtype=object)
    asked = rng.random((questions, groups)) > 0.1
    q_idx, g_idx = np.nonzero(asked)
    human = pd.DataFrame({
        "item_id": items[q_idx], "group_var": "group", "group_value": np.array([f"g{g:03d}" for g in range(groups)])[g_idx],
        "shares": [rng.dirichlet(np.ones(k[q])) for q in q_idx], "n": 1000.0,
        "positions": [positions[q] for q in q_idx], "refusal": [refusal[q] for q in q_idx],
        "options": [[f"o{j}" for j in range(k[q])] for q in q_idx]})
    contexts = [("", "")] + [(f"p{p:02d}", "bio") for p in range(personas)]
    model = pd.DataFrame([{"model": "m", "persona_id": pid, "persona_style": style, "item_id": items[q],
                           "dist": rng.dirichlet(np.ones(k[q])), "n_forms": 2, "valid_mass": 0.8}
                          for pid, style in contexts for q in range(questions)])
    targets = pd.DataFrame({"persona_id": [f"p{p:02d}" for p in range(personas)], "group_var": "group",
                            "group_value": [f"g{p * (groups // max(personas, 1)):03d}" for p in range(personas)]})
    topics = {item: f"topic{i % 20}" for i, item in enumerate(items)}
    return hm.HumanInputs(model=model, human=human, personas=targets, population=None, topics=topics,
                          texts={item: f"question {item}" for item in items})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=100)
    parser.add_argument("--personas", type=int, default=10)
    parser.add_argument("--boot", type=int, default=1000)
    args = parser.parse_args()
    start = time.perf_counter()
    data = build(args.questions, args.groups, args.personas)
    built = time.perf_counter() - start
    print(f"data: {len(data.human):,} human distributions, {len(data.model):,} model distributions "
          f"(built in {built:.1f} s, not counted)", flush=True)
    timings: dict[str, float] = {}

    cpu: dict[str, float] = {}

    def timed(name: str, fn: object) -> pd.DataFrame:
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()  # type: ignore[operator]
        timings[name], cpu[name] = time.perf_counter() - t0, time.process_time() - c0
        print(f"  {name:<28} {timings[name]:6.2f} s wall {cpu[name]:6.2f} s CPU {len(out):>9,} rows", flush=True)
        return out

    t0, c0 = time.perf_counter(), time.process_time()
    pairs = timed("pairs (default context)", lambda: hm.pair_frame(data.model, data.human))
    timed("human_similarity", lambda: hm.similarity_table(pairs, n_boot=args.boot))
    timed("human_representativeness", lambda: hm.representativeness_table(pairs, n_boot=args.boot))
    timed("human_baselines", lambda: hm.baselines_table(data.human, data.population, n_boot=args.boot))
    timed("human_steerability (rep)", lambda: hm.steerability_table(data.model, data.human, data.personas, n_boot=args.boot))
    timed("human_steerability (sim)", lambda: hm.steerability_table(data.model, data.human, data.personas, metric="similarity",
                                                                   n_boot=args.boot))
    timed("human_consistency", lambda: hm.consistency_table(pairs, data.topics))
    items = timed("human_diversity_items", lambda: hm.diversity_items(data.model, data.human))
    timed("human_diversity", lambda: hm.diversity_table(items, n_boot=args.boot))
    total, total_cpu = time.perf_counter() - t0, time.process_time() - c0
    timed("human_items (detail)", lambda: hm.items_table(pairs, data.model, data.human, data.texts))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2  # KiB on Linux → GiB
    print(f"total analysis (every default table): {total:.1f} s wall, {total_cpu:.1f} s CPU (target < 30 s); "
          f"peak RSS {peak:.2f} GiB (target < 4 GiB); the detail table human_items, built only when asked for, is "
          "timed after the total")
    print(f"command: {sys.executable} benchmarks/human_alignment.py --questions {args.questions} --groups {args.groups} "
          f"--personas {args.personas} --boot {args.boot}")


if __name__ == "__main__":
    main()
