"""lm-evaluation-harness side of benchmarks/mcq_vs_lmeval.py. Runs inside the separate lm-eval virtual
environment (lm-eval is not a probekit dependency), never imports probekit.

Protocol (so the two systems alternate chunk by chunk on the same cores): load the model once (not
timed), print READY; then for every line "RUN <docs.jsonl>" on stdin evaluate that chunk with lm-eval's
HF backend and the zero-shot MMLU prompt, and print "DONE <json>" with the seconds spent in
`simple_evaluate` (wall clock and process CPU time) and the per-document log-likelihoods of " A" … " D". "QUIT" ends it.
"""

from __future__ import annotations

import json
import sys
import time

# lm-eval's mmlu task (tasks/mmlu/default): description "The following are multiple choice questions (with
# answers) about <subject>.\n\n" + "{{question.strip()}}\nA. …\nD. …\nAnswer:", choices A–D with the
# target delimiter " ". Zero-shot, the description is simply prepended, so it is part of doc_to_text here.
DOC_TO_TEXT = (
    "The following are multiple choice questions (with answers) about {{subject}}.\n\n"
    "{{question.strip()}}\nA. {{choices[0]}}\nB. {{choices[1]}}\nC. {{choices[2]}}\nD. {{choices[3]}}\nAnswer:"
)


def task_config(name: str, path: str) -> dict:
    return {
        "task": name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": path}},
        "test_split": "test",
        "output_type": "multiple_choice",
        "doc_to_text": DOC_TO_TEXT,
        "doc_to_choice": ["A", "B", "C", "D"],
        "doc_to_target": "answer",
        "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
    }


def main() -> None:
    model_dir, batch_size = sys.argv[1], int(sys.argv[2])
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    lm = HFLM(pretrained=model_dir, device="cpu", dtype="float32", batch_size=batch_size)
    manager = TaskManager()
    print("READY", flush=True)
    for number, line in enumerate(sys.stdin):
        command = line.strip()
        if command == "QUIT" or not command:
            break
        path = command.removeprefix("RUN ").strip()
        name = f"probekit_mcq_chunk_{number}"
        started, cpu_started = time.perf_counter(), time.process_time()
        results = simple_evaluate(model=lm, tasks=[task_config(name, path)], task_manager=manager,
                                  num_fewshot=0, log_samples=True, batch_size=batch_size)
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
        assert results is not None
        samples = results["samples"][name]
        docs = {}
        for sample in samples:
            logliks = [float(r[0]) for r in sample["filtered_resps"]]
            docs[sample["doc"]["trial_id"]] = logliks
        print("DONE " + json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds, "docs": docs,
                                    "lm_eval_version": __import__("lm_eval").__version__}), flush=True)


if __name__ == "__main__":
    main()
