"""Ray executor: prompts/s of the whole `probekit run` in one process vs on 1 and 2 Ray actors.

    python benchmarks/ray_actors.py [--model smollm2] [--items 50] [--orders cyclic]

What a user waits for is timed: spec to stored rows, model load and (for Ray) starting the local Ray
instance included, each configuration into a fresh DuckDB store. The machine's cores are split evenly
between the actors (Ray sets each actor's thread count from its CPUs), so every configuration gets the
same compute; on one machine Ray buys isolation and a path to more machines and GPUs, not speed.
Scoring time alone (model load excluded) is reported as well, from the run summary.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--items", type=int, default=50, help="MMLU items")
    parser.add_argument("--orders", default="cyclic", help="option orders per item (cyclic: 4)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2,
                        help="rounds over the configurations (in turn, so other load hits all alike); the median is shown")
    args = parser.parse_args()

    import probekit
    from probekit.execution.ray_pool import RayOptions
    from probekit.runner import RunOptions

    cores = os.cpu_count() or 1
    configurations: list[tuple[str, RayOptions | None]] = [
        ("one process", None),
        ("Ray, 1 actor", RayOptions(actors=1, num_cpus=cores)),
        ("Ray, 2 actors", RayOptions(actors=2, num_cpus=max(1, cores // 2))),
    ]
    import statistics

    timings: dict[str, list[tuple[float, float]]] = {label: [] for label, _ in configurations}
    prompts = 0
    for round_ in range(args.repeats):
        for label, ray in configurations:
            with tempfile.TemporaryDirectory() as folder:
                options = RunOptions(models=[args.model], store=Path(folder) / "bench.duckdb", limit=args.items,
                                     orders=args.orders, ray=ray,
                                     backend_options={args.model: {"max_batch": args.batch_size}})
                started = time.perf_counter()
                summary = probekit.run([REPO / "surveys" / "mmlu.yaml"], options)
                wall = time.perf_counter() - started
            model = summary.models[0]
            assert model.error == 0, model.errors_by_class
            prompts = model.ok
            timings[label].append((wall, model.seconds))
            print(f"round {round_ + 1}, {label}: {model.ok} prompts, {wall:.1f} s", flush=True)
    rows = [(label, prompts, statistics.median(w for w, _ in runs), statistics.median(s for _, s in runs))
            for label, runs in timings.items()]

    baseline = rows[0][2]
    print(f"\n{args.model}, {cores} cores, {rows[0][1]} prompts (MMLU {args.items} items × {args.orders} orders), "
          f"batches of {args.batch_size}")
    print(f"{'configuration':<16}{'wall s':>8}{'prompts/s':>11}{'x one process':>15}{'model s':>9}")
    for label, prompts, wall, seconds in rows:
        print(f"{label:<16}{wall:>8.1f}{prompts / wall:>11.2f}{baseline / wall:>15.2f}{seconds:>9.1f}")
    print(f"\n(medians of {args.repeats} rounds; wall: spec to stored rows incl. load and Ray start; model s: the model's "
          "start + scoring in the run summary)")


if __name__ == "__main__":
    main()
