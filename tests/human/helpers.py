"""Small survey files with human reference distributions, written into a test's temporary directory."""

from __future__ import annotations

from pathlib import Path

SPEC = """id: htest
kind: choice
templates:
  - id: t1
    user: "{question}\\n{options}"
human:
  groups: {country: [Germany, Japan, Peru]}
  file: side.csv
  population: country:Germany
items:
  - id: q1
    fields: {question: Is it good?}
    meta: {topic: economy}
    options:
      - {text: Good, position: 1}
      - {text: Bad, position: 2}
      - {text: Middle, position: 1.5}
      - {text: Refused, refusal: true}
    human:
      country:
        Germany: {shares: [0.2, 0.4, 0.3, 0.1], n: 1000}
        Japan: [0.5, 0.2, 0.2, 0.1]
  - id: q2
    fields: {question: Is it fine?}
    meta: {topic: society}
    options: [{text: "Yes", id: y}, {text: "No", id: n}]
"""

SIDECAR = """question_id,group_var,group,option,share,n
q2,country,Germany,y,0.7,900
q2,country,Germany,n,0.3,900
q2,country,Japan,Yes,0.4,
q2,country,Japan,No,0.6,
q2,country,Peru,y,1,12
"""


def write_survey(folder: Path, spec: str = SPEC, sidecar: str = SIDECAR, name: str = "s.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "side.csv").write_text(sidecar, encoding="utf-8")
    path = folder / name
    path.write_text(spec, encoding="utf-8")
    return path
