"""The real run of the self-preference experiment (issue 11), as a script: smollm2 and gemma3-270m (transformers,
CPU) and SmolLM2 served by llama.cpp's OpenAI-compatible server (a third "model", through litellm) answer the
first N MT-Bench questions of experiments/selfpref_mtbench.yaml and judge each other in both orders, gold from
the panel. Prints each stage's time, the analysis tables, then runs the same experiment again and counts the
requests that reach the server (a proxy in front of it counts them): none.

    .venv/bin/python tests/judging/real_run.py [--limit 20] [--store outputs/selfpref.duckdb] [--n-boot 1000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "backends"))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

KEY_ENV = "PROBEKIT_REAL_RUN_LLAMA_KEY"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=20, help="MT-Bench questions (default 20)")
    parser.add_argument("--store", type=Path, default=None, help="DuckDB file (default: a new temporary one)")
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--tables", default="judge_position,judge_self_preference,self_recognition,answers")
    args = parser.parse_args()

    import pandas as pd
    from fault_proxy import FaultProxy
    from llama_server import start_llama_server

    from probekit.analysis import analyze
    from probekit.backends.hf_loader import resolve_local
    from probekit.judging import run_judging
    from probekit.runner import RunOptions

    store = args.store or Path(tempfile.mkdtemp()) / "selfpref.duckdb"
    os.environ[KEY_ENV] = "dummy-not-a-secret"
    gguf = resolve_local("smollm2").gguf_path
    assert gguf is not None
    started = time.perf_counter()
    server = start_llama_server(gguf, Path(tempfile.mkdtemp()) / "server.log")
    proxy = FaultProxy(upstream=server.api_base.removesuffix("/v1")).start()
    print(f"llama.cpp server up in {time.perf_counter() - started:.1f}s ({server.api_base}, proxied at {proxy.api_base})")
    api = "openai/smollm2"
    options = RunOptions(backend_options={api: {"api_base": proxy.api_base, "api_key_env": KEY_ENV, "concurrency": 2}})
    models = ["smollm2", "gemma3-270m", api]
    try:
        started = time.perf_counter()
        summary = run_judging(REPO / "experiments" / "selfpref_mtbench.yaml", models=models, store=store,
                              limit=args.limit, options=options)
        total = time.perf_counter() - started
        print(f"\nfirst run: {total:.1f}s (answer stage {summary.seconds['answer']:.1f}s, judge stage "
              f"{summary.seconds['judge']:.1f}s); store {store}")
        for stage in summary.stages:
            print(f"  {stage.stage:>6} {stage.model:<16} {stage.trials:>4} trials: {stage.ok} ok, {stage.invalid} invalid, "
                  f"{stage.errors} error, {stage.seconds:.1f}s (run {stage.run_id})")
        if summary.missing_answers:
            print(f"  answers without text (pairs left out): {summary.missing_answers}")
        first_requests = proxy.stats["requests"]
        print(f"  requests through the server: {first_requests}")

        started = time.perf_counter()
        again = run_judging(REPO / "experiments" / "selfpref_mtbench.yaml", models=models, store=store, limit=args.limit,
                            options=options)
        print(f"\nsecond run: {time.perf_counter() - started:.1f}s, stages skipped: "
              f"{sum(s.skipped for s in again.stages)}/{len(again.stages)}, requests through the server: "
              f"{proxy.stats['requests'] - first_requests}")
    finally:
        proxy.stop()
        server.stop()

    wanted = [t.strip() for t in args.tables.split(",") if t.strip()]
    with pd.option_context("display.max_columns", 60, "display.width", 250, "display.float_format", "{:.3g}".format):
        for survey in (summary.answer_survey, summary.judge_survey, summary.recognition_survey):
            if survey is None:
                continue
            scope = {"run": None, "survey": survey}
            tables = analyze(store, **scope, tables=wanted, n_boot=args.n_boot)  # type: ignore[arg-type]
            for name, frame in tables.items():
                print(f"\n== {survey}: {name}")
                print(frame.to_string(index=False))


if __name__ == "__main__":
    main()
