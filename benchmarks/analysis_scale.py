"""Scale benchmark for `probekit analyze` (issue 4).

Builds a synthetic MoralChoice-style store with 1,000,000 result rows — N scenarios × 3 templates ×
2 option orders × 5 samples × M models, sample mode, one-hot distributions, a few refusals/invalids —
directly with DuckDB SQL (no model is called), then times `probekit analyze` for the MoralChoice
metrics in a subprocess and reports its wall time and peak resident memory.

    python benchmarks/analysis_scale.py [--rows 1000000] [--models 2] [--keep DIR]

Targets: under 10 s and under 2 GiB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from probekit.store.store import Store

TABLES = "response_rates,uncertainty,uncertainty_summary,moralchoice,moralchoice_agreement"
FORMS = 6  # 3 templates × 2 orders
SAMPLES = 5


def build_store(path: Path, rows: int, models: int) -> tuple[str, int]:
    """Create the store; returns (run id, number of result rows)."""
    n_items = -(-rows // (FORMS * SAMPLES * models))
    Store(path).migrate()
    items = [{"id": f"S{i:06d}", "fields": {"context": f"scenario {i}"},
              "options": [{"id": "action1", "text": "do it"}, {"id": "action2", "text": "do not"}],
              "meta": {"ambiguity": "low" if i % 2 == 0 else "high"}} for i in range(n_items)]
    spec = {"id": "mc_scale", "kind": "choice", "version": "1", "title": "scale", "templates": [
        {"id": t, "user": "{context}"} for t in ("ab", "compare", "repeat")], "items": items}
    con = duckdb.connect(str(path))
    con.execute("BEGIN TRANSACTION")
    con.execute("INSERT INTO runs VALUES ('BENCH', now(), now(), 'completed', 'x', '{}', 'bench', '{}', 'bench')")
    con.execute("INSERT INTO surveys VALUES ('H', 'mc_scale', '1', 'choice', 'scale', '{}', ?, NULL, now())", [json.dumps(spec)])
    con.execute(f"""
        INSERT INTO items SELECT 'H', 'mc_scale', printf('S%06d', i), 2, ['do it', 'do not'], [NULL, NULL]::DOUBLE[],
               [NULL, NULL]::DOUBLE[], [false, false], NULL, 1, false, '{{}}',
               CASE WHEN i % 2 = 0 THEN '{{"ambiguity": "low"}}' ELSE '{{"ambiguity": "high"}}' END
        FROM range({n_items}) r(i)""")
    con.execute(f"""
        INSERT INTO trials
        SELECT printf('T%06d-%d', i, f), 'mc_scale', 'H', printf('S%06d', i), ['ab', 'compare', 'repeat'][f // 2 + 1], 'p0',
               '{{}}', CASE WHEN f % 2 = 0 THEN [0, 1] ELSE [1, 0] END, 'letters', ['A', 'B'], 'direct', '[]', '', '[]'
        FROM range({n_items}) a(i), range({FORMS}) b(f)""")
    con.execute("INSERT INTO run_trials SELECT 'BENCH', trial_id FROM trials")
    # Each model prefers action1 with a per-scenario probability; position 0 gets a bonus (a position bias).
    con.execute(f"""
        INSERT INTO results (run_id, trial_id, model, sample_index, status, mode, choice, distribution, valid_mass,
                             raw_text, created_at)
        WITH draws AS (
            SELECT t.trial_id, 'model' || m AS model, s AS sample_index,
                   hash(t.trial_id, m, s) % 1000 / 1000.0 AS u,
                   0.2 + 0.6 * (hash(t.item_id, m) % 1000 / 1000.0) + CASE WHEN t.option_order[1] = 0 THEN 0.1 ELSE -0.1 END AS p1
            FROM trials t, range({models}) a(m), range({SAMPLES}) b(s)
        )
        SELECT 'BENCH', trial_id, model, sample_index,
               CASE WHEN u < 0.01 THEN 'refusal' WHEN u < 0.02 THEN 'invalid' ELSE 'ok' END, 'sample',
               CASE WHEN u < 0.02 THEN NULL WHEN u < p1 THEN 0 ELSE 1 END,
               CASE WHEN u < 0.02 THEN NULL WHEN u < p1 THEN [1.0, 0.0] ELSE [0.0, 1.0] END,
               NULL, 'A', now()
        FROM draws""")
    count = con.execute("SELECT count(*) FROM results").fetchone()[0]
    con.execute("COMMIT")
    con.close()
    return "BENCH", int(count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--models", type=int, default=2)
    parser.add_argument("--keep", type=Path, default=None, help="Keep the store in this directory.")
    args = parser.parse_args()
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="probekit-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    store = workdir / "bench.duckdb"
    if store.exists():
        store.unlink()
    started = time.perf_counter()
    run_id, count = build_store(store, args.rows, args.models)
    print(f"store: {count:,} result rows ({store.stat().st_size / 2**20:.0f} MiB) built in {time.perf_counter() - started:.1f}s")
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    command = [sys.executable, "-m", "probekit.cli.main", "analyze", "--store", str(store), "--run", run_id,
               "--tables", TABLES, "--format", "json"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_kib = after.ru_maxrss
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        print(done.stderr)
        raise SystemExit(done.returncode)
    tables = json.loads(done.stdout)
    print(f"probekit analyze --tables {TABLES}")
    print(f"  wall time: {seconds:.2f} s (target < 10 s); CPU time {cpu:.2f} s; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs (wall time grows when other processes share the CPUs)")
    print(f"  peak RSS:  {peak_kib / 2**20:.2f} GiB (target < 2 GiB; the analyze subprocess alone)")
    print("  tables: " + ", ".join(f"{name}={len(rows)} rows" for name, rows in tables.items()))
    for row in tables["moralchoice"]:
        print(f"  {row['model']} {row['ambiguity']}: share_action1={row['share_action1']:.3f} "
              f"[{row['share_action1_ci_low']:.3f}, {row['share_action1_ci_high']:.3f}] qf_c={row['qf_c']:.3f} n={row['n_items']}")
    if args.keep is None:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
