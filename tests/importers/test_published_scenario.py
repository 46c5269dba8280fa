"""The issue's scenario at full size: IPIP-NEO-120 answers of 6 models × 6 prompts (4,320 rows) given as the source
recorded them (shown letters, half of the prompts with the scale reversed, each prompt's exact text, the item's
text, the prompt as respondent) import through the CLI, and probekit's trait scores and α equal an independent
computation on the answers as generated."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from import_helpers import probekit, write_lines

from probekit.analysis import analyze

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "personality"
MODELS = [f"model-{k}" for k in range(6)]
PROMPTS = [(f"prompt-{k}", "original" if k % 2 else "mirrored") for k in range(6)]
LETTERS = "ABCDE"


def alpha(marks: np.ndarray) -> float:
    k = marks.shape[1]
    return k / (k - 1) * (1 - marks.var(axis=0, ddof=1).sum() / marks.sum(axis=1).var(ddof=1))


@pytest.mark.slow
def test_six_models_six_prompts_match_an_independent_computation(tmp_path: Path) -> None:
    with open(DATA / "ipip_neo_120.csv", encoding="utf-8") as handle:
        items = list(csv.DictReader(handle))
    rng = np.random.default_rng(7)
    marks = {}  # (model, prompt) -> 120 marks on 1..5 (what the model meant, before keying)
    rows: list[object] = [{"defaults": {"survey": "ipip_neo_120"}}]
    for model in MODELS:
        trait = {d: rng.normal(0, 1) for d in "NEOAC"}
        for prompt, anchors in PROMPTS:
            level = rng.normal(0, 0.5)  # a prompt moves every answer of a model a little: α across prompts > 0
            meant = []
            for item in items:
                lean = (trait[item["domain"]] + level) * int(item["key"]) + rng.normal(0, 0.8)
                mark = int(np.clip(np.rint(3 + lean), 1, 5))
                meant.append(mark)
                # original anchors show the scale reversed: A = Very Accurate (mark 5)
                letter = LETTERS[5 - mark] if anchors == "original" else LETTERS[mark - 1]
                rows.append({"item": item["item_num_120"], "item_text": item["text"], "model": model, "respondent": prompt,
                             "form": {"template": f"mpi_{anchors}"}, "label": letter,
                             "prompt": f"[{prompt}] Given a statement of you: \"{item['text_first_person']}.\" ..."})
            marks[(model, prompt)] = np.array(meant)
    source = write_lines(tmp_path / "published.jsonl", rows)
    store = tmp_path / "store.duckdb"
    done = probekit("import", str(source), "--store", str(store))  # (no time bound: timings are in benchmarks/)
    assert done.returncode == 0 and "imported 4320 response(s)" in done.stdout, done.stderr
    tables = analyze(store, survey="ipip_neo_120", tables=["likert_alpha", "likert_traits"], n_boot=20)
    keys = np.array([int(i["key"]) for i in items])
    domains = np.array([i["domain"] for i in items])
    alphas = tables["likert_alpha"].set_index(["model", "trait"])
    traits = tables["likert_traits"].set_index(["model", "anchors", "trait"])
    for model in MODELS:
        keyed = np.array([np.where(keys < 0, 6 - marks[(model, p)], marks[(model, p)]) for p, _a in PROMPTS])
        for domain in "NEOAC":
            columns = domains == domain
            assert alphas.loc[(model, domain), "alpha"] == pytest.approx(alpha(keyed[:, columns]), abs=1e-12)
            assert alphas.loc[(model, domain), "n_respondents"] == 6
            for anchors in ("original", "mirrored"):
                chosen = [k for k, (_p, a) in enumerate(PROMPTS) if a == anchors]
                expected = keyed[chosen][:, columns].mean()
                assert traits.loc[(model, anchors, domain), "score"] == pytest.approx(expected, abs=1e-12)
    again = probekit("import", str(source), "--store", str(store))
    assert again.returncode == 0 and "all 4320 row(s) were already imported" in again.stdout
