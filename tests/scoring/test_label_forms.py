"""The label surface-form policy, decided once (probekit.survey.labels) and used everywhere: the forms an
exact engine sums are carried in every label request, and the reader of generated answers (top-k
engines) accepts exactly what those forms put before a label and the same spellings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from probekit.backends.base import LabelRequest, LabelScores
from probekit.backends.fake import FakeBackend
from probekit.scoring import ScoringSettings
from probekit.scoring.reading import _matches
from probekit.scoring.sync import score_sync
from probekit.survey.expand import expand
from probekit.survey.labels import LABEL_PREFIXES, label_cores, label_forms, label_variants, strip_label_prefix
from probekit.survey.loader import load_survey

SPEC = Path(__file__).with_name("modes.yaml")


def test_variants_are_the_cores_behind_each_prefix() -> None:
    assert label_variants("A") == ["A", " A", "(A", " (A"]
    assert label_cores("a") == ("a",), "a lower-case 'a' is the article, not option A"
    assert label_cores("yes") == ("yes", "YES", "Yes")
    assert len(label_variants("yes")) == 3 * len(LABEL_PREFIXES)
    assert label_forms(("A", "yes")) == (tuple(label_variants("A")), tuple(label_variants("yes")))


def test_the_reader_accepts_every_form_an_exact_engine_sums() -> None:
    labels = ("A", "B", "yes", "Paris")
    for k, label in enumerate(labels):
        for form in label_variants(label):
            assert strip_label_prefix(form) in label_cores(label)
            assert _matches(strip_label_prefix(form), labels) == (k,), form


class RecordingFake(FakeBackend):
    """The scripted fake engine, keeping the label requests it was sent."""

    def __init__(self, model: str) -> None:
        super().__init__(model)
        self.sent: list[LabelRequest] = []

    async def label_logprobs(self, requests: list[LabelRequest]) -> list[LabelScores]:
        self.sent.extend(requests)
        return await super().label_logprobs(requests)


def test_scoring_sends_the_forms_with_every_label_request(tmp_path: Path) -> None:
    trials = expand(load_survey(SPEC))
    engine: Any = RecordingFake("fake:forms")
    score_sync(engine, trials, ScoringSettings())
    assert engine.sent and all(r.forms == label_forms(r.labels) for r in engine.sent)
