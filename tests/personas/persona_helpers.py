"""A small survey with personas, written to a temporary directory (shared by the persona tests)."""

from __future__ import annotations

import textwrap
from pathlib import Path

SURVEY = """\
id: steer
kind: choice
templates:
  - id: plain
    user: "Question: {question}\\n{options}\\nAnswer:"
  - id: polite
    system: "You answer survey questions."
    user: "Please answer.\\n{question}\\n{options}\\nAnswer:"
personas:
  styles: [qa, bio, portray]
  people:
    - id: japan
      attributes: {country: Japan}
    - id: nurse
      bio: "I am a retired nurse from Ohio."
    - id: elder
      attributes: {country: Brazil, age: 70, religion: Catholic}
items:
  - id: q1
    fields: {question: "Is it fine?"}
    options:
      - text: "Yes"
      - text: "No"
      - text: "Maybe"
  - id: q2
    fields: {question: "Is it late?"}
    options:
      - text: "Yes"
      - text: "No"
"""


def write(tmp_path: Path, text: str = SURVEY, name: str = "survey.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path
