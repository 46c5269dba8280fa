"""Shared by the import tests: files written line by line, the real CLI in a subprocess, a small likert spec."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROBEKIT = REPO / ".venv" / "bin" / "probekit"
ENV = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "TOKENIZERS_PARALLELISM": "false"}
ENV.pop("PROBEKIT_STORE", None)

SCALE = ["Strongly disagree", "Disagree", "Neutral", "Agree", "Strongly agree"]

MINI_SPEC = """
id: mini_traits
kind: likert
title: Eight statements, two traits (test survey)
options:
{options}
templates:
  - id: agree
    user: "Statement: {{statement}}\\n{{options}}\\nAnswer with the letter."
    labels: letters
permutations: {{policy: identity}}
scoring: {{mode: sample, samples: 1}}
analyses: [likert_traits, likert_alpha]
items:
{items}
"""
MINI_ITEMS = [  # (id, statement, domain, keyed)
    ("e1", "I am the life of the party.", "E", 1), ("e2", "I keep in the background.", "E", -1),
    ("e3", "I start conversations.", "E", 1), ("e4", "I am quiet around strangers.", "E", -1),
    ("n1", "I get stressed out easily.", "N", 1), ("n2", "I am relaxed most of the time.", "N", -1),
    ("n3", "I worry about things.", "N", 1), ("n4", "I seldom feel blue.", "N", -1),
]


def mini_spec(path: Path) -> Path:
    """A one-template likert survey (letters A..E over the five-point scale, canonical order, values 1..5)."""
    options = "\n".join(f"  - {{text: {text}, value: {k}}}" for k, text in enumerate(SCALE, start=1))
    items = "\n".join(f"  - {{id: {i}, fields: {{statement: \"{s}\"}}, keyed: {k}, meta: {{domain: {d}}}}}"
                      for i, s, d, k in MINI_ITEMS)
    path.write_text(MINI_SPEC.format(options=options, items=items), encoding="utf-8")
    return path


def write_lines(path: Path, lines: list[object]) -> Path:
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n",
                    encoding="utf-8")
    return path


def probekit(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The installed `probekit` console script, as a user runs it."""
    return subprocess.run([str(PROBEKIT), *args], capture_output=True, text=True, env=ENV, timeout=300, cwd=cwd)
