"""Spec loading benchmark (issue 9): `load_survey` on surveys with 1,000 and 10,000 inline items.

Generates choice surveys (each item: an id, two fields, 2–5 options, a meta mapping) in a temporary
directory and times, in the same process:

- new: `probekit.survey.loader.load_survey` (one libyaml parse; data built from the same node tree;
  validation and checks), best of 3;
- old: the previous pipeline, one run: PyYAML's pure-Python `yaml.compose` for line marks plus
  `yaml.safe_load` for the data (two parses), the duplicate-key walk, then the same validation.

    python benchmarks/spec_loading.py [--items 1000 10000] [--repeat 3]

Target: 10,000 items load (validated) in under a second.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import yaml

from probekit.survey.loader import load_survey, survey_from_yaml
from probekit.survey.yamlfile import YamlDocument, duplicate_keys, libyaml_available


def make_spec(n_items: int, seed: int = 0) -> str:
    """A choice survey with `n_items` inline items of 2–5 options each."""
    rnd = random.Random(seed)
    lines = ["id: bench", "kind: choice", "templates:", "  - id: ab",
             '    user: "Question: {context}\\nTopic: {topic}\\n{options}\\nAnswer with {labels_or}."',
             "permutations: {policy: reversed}", "analyses: [uncertainty, position_bias]", "items:"]
    for i in range(n_items):
        lines += [f"  - id: q{i:05d}", "    fields:",
                  f'      context: "Scenario {i}: someone has to decide what to do next."',
                  f"      topic: topic-{i % 37}", "    options:"]
        lines += [f'      - text: "Option {j} of scenario {i}"' for j in range(rnd.randint(2, 5))]
        lines += ["    meta: {ambiguity: low, source: generated}"]
    return "\n".join(lines) + "\n"


def old_load(path: Path) -> object:
    """The loader before issue 9: two pure-Python parses, then the same validation."""
    text = path.read_text(encoding="utf-8")
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    data = yaml.load(text, Loader=yaml.SafeLoader)
    return survey_from_yaml(YamlDocument(str(path), root, data, duplicate_keys(root, str(path))))


def timed(fn: object, path: Path, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn(path)  # type: ignore[operator]
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=3, help="runs of the new loader (best is reported)")
    args = parser.parse_args()
    print(f"libyaml: {'yes' if libyaml_available() else 'NO (pure-Python fallback)'}")
    print(f"{'items':>7} {'lines':>8} {'new s':>8} {'old s':>8} {'old/new':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for n_items in args.items:
            path = Path(tmp) / f"bench_{n_items}.yaml"
            path.write_text(make_spec(n_items), encoding="utf-8")
            survey = load_survey(path)
            assert len(survey.items) == n_items
            new = timed(load_survey, path, args.repeat)
            old = timed(old_load, path, 1)
            lines = path.read_text(encoding="utf-8").count("\n")
            print(f"{n_items:>7} {lines:>8} {new:>8.3f} {old:>8.2f} {old / new:>7.1f}x")


if __name__ == "__main__":
    main()
