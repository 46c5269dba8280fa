"""probekit vs lm-evaluation-harness on the MMLU subset: agreement, accuracy and throughput, one command.

    python benchmarks/mcq_vs_lmeval.py [--model smollm2] [--items 840] [--chunks 10] [--batch-size 16]

What it does:
1. Creates a separate virtual environment for lm-eval (default /tmp/probekit-lmeval-venv; lm-eval is not a
   probekit dependency) with the same torch and transformers versions as probekit's environment
   (`torch==<pinned>` installs a CPU build from local disk).
2. Expands surveys/mmlu.yaml in its 4 cyclic rotations (position-dependent items once) and writes the same
   prompts as lm-eval documents: lm-eval's zero-shot MMLU format, subject header included, continuations
   " A" … " D". The rendered prompt texts are checked to be identical before anything runs.
3. Loads the model in both systems (not timed): probekit's HFBackend (plain completion prompt, as lm-eval
   sends it, with the shared-prefix KV cache) and lm-eval's HF backend on probekit's dequantized weights.
4. Alternates chunk by chunk on the same cores (probekit, then lm-eval, on the same items) after an
   untimed warm-up of both, so load from other processes hits both alike; prompts/second = prompts ÷ time
   spent scoring, model load excluded for both.
5. Prints agreement of the predictions (argmax) on the identity order, accuracy of both, the throughput
   ratio, and probekit's selection-bias figures for the run; writes everything to --out as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DEFAULT_VENV = Path("/tmp/probekit-lmeval-venv")
LM_EVAL_VERSION = "0.4.13"


def ensure_lmeval_venv(venv: Path) -> Path:
    """The lm-eval environment's python, created on first use with probekit's torch/transformers versions."""
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import lm_eval, transformers, torch; print(lm_eval.__version__)"]
    if python.exists() and subprocess.run(probe, capture_output=True, check=False).returncode == 0:
        return python
    print(f"creating the lm-eval environment in {venv} (one time, a few minutes) ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # Pinned to the versions probekit runs with, so both load the same weights with the same kernels.
    packages = [f"torch=={metadata.version('torch').split('+')[0]}", f"transformers=={metadata.version('transformers')}",
                f"lm-eval[hf]=={LM_EVAL_VERSION}"]
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", *packages], check=True)
    return python


def lmeval_prompt(subject: str, question: str, choices: list[str]) -> str:
    """lm-eval's zero-shot MMLU context, rendered in Python to check probekit sends the same text."""
    lines = [f"The following are multiple choice questions (with answers) about {subject}.\n\n{question.strip()}"]
    lines += [f"{letter}. {choice}" for letter, choice in zip("ABCD", choices)]
    return "\n".join(lines) + "\nAnswer:"


def build_trials(items: int) -> tuple[Any, list[Any]]:
    from probekit.survey.expand import expand
    from probekit.survey.loader import load_survey

    survey = load_survey(REPO / "surveys" / "mmlu.yaml")
    return survey, expand(survey, policy="cyclic", limit=items)


def chunk_by_item(trials: list[Any], chunks: int) -> list[list[Any]]:
    """Split trials into `chunks` parts without splitting an item's rotations."""
    items = list(dict.fromkeys(t.item_id for t in trials))
    size = -(-len(items) // chunks)
    parts = []
    for start in range(0, len(items), size):
        chosen = set(items[start:start + size])
        parts.append([t for t in trials if t.item_id in chosen])
    return parts


def write_docs(path: Path, trials: list[Any], survey: Any) -> None:
    gold = {i.id: i.gold for i in survey.items}
    fields = {i.id: i.fields for i in survey.items}
    with path.open("w", encoding="utf-8") as handle:
        for t in trials:
            f = fields[t.item_id]
            text = lmeval_prompt(f["subject"], f["question"], list(t.shown_options))
            if text != t.completion_prompt:
                raise SystemExit(f"prompt mismatch for {t.trial_id}:\n{text!r}\n{t.completion_prompt!r}")
            handle.write(json.dumps({"trial_id": t.trial_id, "subject": f["subject"], "question": f["question"],
                                     "choices": list(t.shown_options), "answer": list(t.order).index(gold[t.item_id])}) + "\n")


class LmEval:
    """The lm-eval driver process (benchmarks/lmeval_driver.py in the lm-eval environment)."""

    def __init__(self, python: Path, model_dir: str, batch_size: int, log: Path):
        self.log = log.open("w")
        self.proc = subprocess.Popen([str(python), str(REPO / "benchmarks" / "lmeval_driver.py"), model_dir, str(batch_size)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, cwd="/tmp")
        self._expect("READY")

    def _expect(self, prefix: str) -> str:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(prefix):
                return line[len(prefix):].strip()
        raise RuntimeError(f"lm-eval driver ended early; see {self.log.name}")

    def run(self, docs: Path) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"RUN {docs}\n")
        self.proc.stdin.flush()
        return dict(json.loads(self._expect("DONE")))

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.write("QUIT\n")
            self.proc.stdin.close()
        self.proc.wait(timeout=60)
        self.log.close()


def probekit_score(backend: Any, trials: list[Any], batch: int) -> tuple[float, float, list[list[dict[str, Any]]]]:
    """Score trials the way the runner does (batches of `batch` in expansion order); wall seconds, process
    CPU seconds, rows."""
    from probekit.scoring import ScoringSettings
    from probekit.scoring.sync import score_sync

    settings = ScoringSettings(mode="logprob")
    rows: list[list[dict[str, Any]]] = []
    started, cpu_started = time.perf_counter(), time.process_time()
    for start in range(0, len(trials), batch):
        rows += score_sync(backend, trials[start:start + batch], settings)
    return time.perf_counter() - started, time.process_time() - cpu_started, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2", help="probekit model key (a local model)")
    parser.add_argument("--items", type=int, default=840, help="first N MMLU items")
    parser.add_argument("--chunks", type=int, default=10, help="alternate the two systems over this many chunks")
    parser.add_argument("--throughput-items", type=int, default=None,
                        help="time both systems on all 4 orders of only the first K items (default: all items); on the "
                             "remaining items lm-eval scores only the identity order (for agreement and accuracy) "
                             "while probekit scores all orders (for the selection-bias figures)")
    parser.add_argument("--batch-size", type=int, default=16, help="lm-eval batch size")
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="where the lm-eval environment lives")
    parser.add_argument("--no-share", action="store_true", help="probekit without the shared-prefix KV cache")
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "bench" / "mcq_vs_lmeval.json")
    args = parser.parse_args()

    import torch

    from probekit.backends.hf import HFBackend

    python = ensure_lmeval_venv(args.venv)
    survey, trials = build_trials(args.items)
    work = args.out.resolve().parent  # absolute: the lm-eval driver runs in another directory
    work.mkdir(parents=True, exist_ok=True)
    item_ids = list(dict.fromkeys(t.item_id for t in trials))
    timed_items = set(item_ids[:args.throughput_items or len(item_ids)])
    timed = [t for t in trials if t.item_id in timed_items]
    rest = [t for t in trials if t.item_id not in timed_items]
    parts = chunk_by_item(timed, args.chunks)
    rest_parts = chunk_by_item(rest, max(1, args.chunks // 2)) if rest else []
    paths, rest_paths = [], []
    for number, part in enumerate(parts):
        paths.append(work / f"lmeval_docs_{number}.jsonl")
        write_docs(paths[-1], part, survey)
    for number, part in enumerate(rest_parts):
        rest_paths.append(work / f"lmeval_docs_identity_{number}.jsonl")
        write_docs(rest_paths[-1], [t for t in part if tuple(t.order) == tuple(range(len(t.order)))], survey)
    warm = work / "lmeval_docs_warmup.jsonl"
    write_docs(warm, parts[0][:8], survey)

    backend = HFBackend(args.model, chat_template=False, share_prefix=not args.no_share)
    info = backend.load()
    model_dir = info.details.get("cache_dir") or info.resolved_name
    lmeval = LmEval(python, model_dir, args.batch_size, work / "lmeval_driver.log")
    print(f"model {args.model} ({model_dir}), {len(trials)} prompts ({args.items} items), torch threads {torch.get_num_threads()}",
          flush=True)
    probekit_score(backend, parts[0][:8], backend.max_batch)  # warm-up, untimed
    lmeval.run(warm)
    probekit_rows: dict[str, dict[str, Any]] = {}
    lmeval_ll: dict[str, list[float]] = {}
    time_probekit = time_lmeval = 0.0
    timing: dict[str, list[float]] = {"probekit_cpu": [], "lmeval_cpu": [], "chunk_ratios": []}
    try:
        for number, (part, path) in enumerate(zip(parts, paths)):
            seconds, cpu, rows = probekit_score(backend, part, backend.max_batch)
            time_probekit += seconds
            probekit_rows.update({t.trial_id: r[0] for t, r in zip(part, rows)})
            result = lmeval.run(path)
            time_lmeval += result["seconds"]
            lmeval_ll.update(result["docs"])
            timing["probekit_cpu"].append(cpu)
            timing["lmeval_cpu"].append(result["cpu_seconds"])
            timing["chunk_ratios"].append(result["seconds"] / seconds)
            print(f"chunk {number + 1}/{len(parts)}: {len(part)} prompts  probekit {len(part) / seconds:.2f}/s  "
                  f"lm-eval {len(part) / result['seconds']:.2f}/s  (so far: ratio {time_lmeval / time_probekit:.2f}x)", flush=True)
        done = [t for t in trials if t.trial_id in probekit_rows]
        partial = summarise(survey, done, probekit_rows, lmeval_ll, time_probekit, time_lmeval, len(timed))
        args.out.with_suffix(".partial.json").write_text(json.dumps(partial, indent=2, default=float))
        print_report(partial)
        for number, (part, path) in enumerate(zip(rest_parts, rest_paths)):
            _seconds, _cpu, rows = probekit_score(backend, part, backend.max_batch)
            probekit_rows.update({t.trial_id: r[0] for t, r in zip(part, rows)})
            result = lmeval.run(path)
            lmeval_ll.update(result["docs"])
            print(f"agreement chunk {number + 1}/{len(rest_parts)}: probekit {len(part)} prompts (all orders), "
                  f"lm-eval {len(result['docs'])} (identity order)", flush=True)
            # Partial results after every chunk: a long run cut short still leaves its figures.
            done = [t for t in trials if t.trial_id in probekit_rows]
            partial = summarise(survey, done, probekit_rows, lmeval_ll, time_probekit, time_lmeval, len(timed))
            args.out.with_suffix(".partial.json").write_text(json.dumps(partial, indent=2, default=float))
    finally:
        lmeval.close()
    report = summarise(survey, trials, probekit_rows, lmeval_ll, time_probekit, time_lmeval, len(timed))
    report.update(_timing_summary(timing))
    report.update({"model": args.model, "model_dir": model_dir, "lm_eval_batch_size": args.batch_size,
                   "probekit_share_prefix": not args.no_share, "torch_threads": torch.get_num_threads()})
    args.out.write_text(json.dumps(report, indent=2, default=float))
    print_report(report)
    print(f"written {args.out}")


def summarise(survey: Any, trials: list[Any], rows: dict[str, dict[str, Any]], logliks: dict[str, list[float]],
              time_probekit: float, time_lmeval: float, timed_prompts: int) -> dict[str, Any]:
    import pandas as pd

    from probekit.analysis.selection import (
        calibration_rows,
        cyclic_pick_rates,
        selection_summary,
    )

    gold = {i.id: int(i.gold) for i in survey.items if i.gold is not None}
    identity = [t for t in trials if tuple(t.order) == tuple(range(len(t.order)))]
    pk_pred = {t.item_id: rows[t.trial_id]["choice"] for t in identity}
    le_pred = {t.item_id: t.order[int(np.argmax(logliks[t.trial_id]))] for t in identity}
    agree = np.mean([pk_pred[i] == le_pred[i] for i in pk_pred])
    both = [t for t in trials if t.trial_id in logliks]
    agree_all = np.mean([rows[t.trial_id]["choice"] == t.order[int(np.argmax(logliks[t.trial_id]))] for t in both])
    acc_pk = np.mean([pk_pred[i] == gold[i] for i in pk_pred])
    acc_le = np.mean([le_pred[i] == gold[i] for i in le_pred])

    def frame(dists: dict[str, np.ndarray], subset: list[Any] = trials) -> pd.DataFrame:
        return pd.DataFrame({"item_id": [t.item_id for t in subset], "option_order": [tuple(t.order) for t in subset],
                             "dist": [dists[t.trial_id] for t in subset], "n_options": [len(t.order) for t in subset]})

    pk_frame = frame({tid: np.asarray(r["distribution"]) for tid, r in rows.items()})
    le_dists = {}
    for t in both:
        ll = np.asarray(logliks[t.trial_id])
        shown = np.exp(ll - ll.max())
        shown /= shown.sum()
        canonical = np.empty_like(shown)
        canonical[list(t.order)] = shown
        le_dists[t.trial_id] = canonical
    le_frame = frame(le_dists, both)
    pk = selection_summary(pk_frame, gold)
    le = selection_summary(le_frame, gold)
    probs, picks, _ = cyclic_pick_rates(pk_frame)
    return {
        "prompts": len(trials), "items": len(pk_pred), "timed_prompts": timed_prompts, "lmeval_prompts": len(both),
        "probekit_seconds": time_probekit, "lmeval_seconds": time_lmeval,
        "probekit_prompts_per_s": timed_prompts / time_probekit, "lmeval_prompts_per_s": timed_prompts / time_lmeval,
        "speedup": time_lmeval / time_probekit,
        "agreement_identity": agree, "agreement_all_orders": agree_all,
        "accuracy_identity_probekit": acc_pk, "accuracy_identity_lmeval": acc_le,
        "accuracy_difference_points": 100 * (acc_pk - acc_le),
        "probekit_selection": pk, "lmeval_selection": {k: le[k] for k in ("rstd_identity", "acc_identity")},
        "probekit_pick_rates": probs.tolist(), "probekit_argmax_rates": picks.tolist(),
        "probekit_calibration": calibration_rows(pk_frame, gold),
        "mean_valid_mass": float(np.mean([r["valid_mass"] for r in rows.values()])),
    }


def _timing_summary(timing: dict[str, list[float]]) -> dict[str, Any]:
    """Ratios robust to load from other processes on shared cores: total process CPU time of each system
    (what the work costs, whoever else runs) and the median of the per-chunk wall-clock ratios."""
    if not timing["chunk_ratios"]:
        return {}
    return {"cpu_ratio": sum(timing["lmeval_cpu"]) / sum(timing["probekit_cpu"]),
            "median_chunk_ratio": float(np.median(timing["chunk_ratios"])), **timing}


def print_report(r: dict[str, Any]) -> None:
    s = r["probekit_selection"]
    print(f"\n== probekit vs lm-eval {LM_EVAL_VERSION}: {r['items']} items, probekit {r['prompts']} prompts (4 cyclic orders), "
          f"lm-eval {r['lmeval_prompts']} ==")
    print(f"agreement (identity order): {100 * r['agreement_identity']:.2f}%   (all orders: {100 * r['agreement_all_orders']:.2f}%)")
    print(f"accuracy identity: probekit {100 * r['accuracy_identity_probekit']:.2f}%  lm-eval {100 * r['accuracy_identity_lmeval']:.2f}%"
          f"  difference {r['accuracy_difference_points']:+.2f} points")
    print(f"throughput on {r['timed_prompts']} prompts (same prompts, both systems): "
          f"probekit {r['probekit_prompts_per_s']:.2f} prompts/s  lm-eval {r['lmeval_prompts_per_s']:.2f} prompts/s"
          f"  ratio {r['speedup']:.2f}x")
    if "cpu_ratio" in r:
        print(f"  robust to other load: process CPU-time ratio {r['cpu_ratio']:.2f}x, median per-chunk wall ratio "
              f"{r['median_chunk_ratio']:.2f}x over {len(r['chunk_ratios'])} chunks")
    print(f"probekit RStd {s['rstd']:.2f} (identity {s['rstd_identity']:.2f}, after PriDe {s['rstd_pride']:.2f}); "
          f"recall by position {[round(float(s[f'recall_{k}']), 3) for k in range(1, 5)]}")
    print(f"pick rate per displayed position (cyclic mean prob) {[round(x, 3) for x in r['probekit_pick_rates']]}; "
          f"argmax share {[round(x, 3) for x in r['probekit_argmax_rates']]}")
    print(f"accuracy identity {100 * s['acc_identity']:.2f}%  PriDe {100 * s['acc_pride']:.2f}%  full cyclic {100 * s['acc_cyclic']:.2f}%;"
          f" prompts identity {s['prompts_identity']}  PriDe {s['prompts_pride']}  cyclic {s['prompts_cyclic']}; prior {s['pride_prior']}")
    for row in r["probekit_calibration"]:
        print(f"calibration {row['prediction']:<15} n={row['n']:<5} acc {100 * row['accuracy']:.2f}%  "
              f"ECE {row['ece']:.4f}  Brier {row['brier']:.4f}")


if __name__ == "__main__":
    main()
