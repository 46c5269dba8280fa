"""The registry: which tables apply to which survey conventions, detail tables, registration."""

from __future__ import annotations

import pandas as pd

from probekit.analysis.registry import (
    SurveyInfo,
    applicable,
    build_tables,
    is_dailydilemmas,
    is_moralchoice,
    is_pct,
    is_personality,
    is_pobs,
    register,
)

LIKERT = [{"text": t, "value": v} for v, t in enumerate(["SD", "D", "A", "SA"], start=1)]


def _names(info: SurveyInfo) -> set[str]:
    return {spec.name for spec in applicable(info)}


def test_convention_predicates() -> None:
    mc = SurveyInfo("mc", "choice", {"items": [{"id": "C1", "meta": {"ambiguity": "low"}}]})
    dd = SurveyInfo("dd", "choice", {"items": [{"id": "1", "options": [{"text": "to do", "meta": {"values": ["trust"]}}]}]})
    pct = SurveyInfo("pct", "likert", {"options": LIKERT, "items": [{"id": "pc-01"}, {"id": "pc-02"}]})
    ipip = SurveyInfo("ipip", "likert", {"options": LIKERT, "items": [{"id": "1", "meta": {"domain": "N"}}]})
    pobs = SurveyInfo("pobs", "likert", {"items": [{"id": "q", "options": [{"text": "x", "polarity": 1.0}], "meta": {"topic": "t"}}]})
    assert is_moralchoice(mc) and not is_dailydilemmas(mc)
    assert is_dailydilemmas(dd) and not is_moralchoice(dd)
    assert is_pct(pct) and not is_personality(pct)
    assert is_personality(ipip) and not is_pct(ipip) and not is_pobs(ipip)
    assert is_pobs(pobs) and not is_personality(pobs)
    assert {"uncertainty", "moralchoice"} <= _names(mc) and "pct" not in _names(mc)
    assert {"pct", "pct_spread", "uncertainty"} <= _names(pct) and "likert_traits" not in _names(pct)
    assert {"likert_traits", "likert_alpha"} <= _names(ipip)
    assert {"pobs", "pobs_topics"} <= _names(pobs)
    assert "dailydilemmas_values" in _names(dd)


class _Ctx:
    def __init__(self, info: SurveyInfo) -> None:
        self.info = info


def test_register_build_and_detail_tables(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from probekit.analysis import registry

    # an isolated registry: only the tables registered here
    monkeypatch.setattr(registry, "_REGISTRY", {})
    monkeypatch.setattr(registry, "load_all_modules", lambda: None)
    info = SurveyInfo("x", "generate", {})

    @register("t_table", "generate")
    def _table(ctx):  # type: ignore[no-untyped-def]
        return pd.DataFrame({"a": [1]})

    @register("t_detail", ("generate",), detail=True)
    def _detail(ctx):  # type: ignore[no-untyped-def]
        return pd.DataFrame({"b": [2]})

    @register("t_none", lambda i: i.survey_id == "x")
    def _none(ctx):  # type: ignore[no-untyped-def]
        return None

    @register("t_other_kind", "mcq")
    def _other(ctx):  # type: ignore[no-untyped-def]
        raise AssertionError("must not be built for a generate survey")

    assert set(build_tables(_Ctx(info))) == {"t_table"}  # type: ignore[arg-type]
    assert set(build_tables(_Ctx(info), ["t_detail", "t_table"])) == {"t_detail", "t_table"}  # type: ignore[arg-type]
    assert registry.registered()["t_detail"].description == ""


def test_table_names_are_read_without_importing_the_modules(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from probekit.analysis import registry

    names = set(registry.registered())
    monkeypatch.setattr(registry, "_REGISTRY", {})  # only the source scan is left
    assert registry.table_names() == names


def test_unknown_tables_name_a_likely_table() -> None:
    from probekit.analysis.registry import unknown_tables

    found = {name: fix for name, (_i, _message, fix) in zip(["uncertanty", "pct_coordinates", "opinion_change", "zzz"],
                                                            unknown_tables(["uncertanty", "pct_coordinates", "opinion_change", "zzz"]))}
    assert found["uncertanty"].startswith("did you mean 'uncertainty'? known: ")
    assert found["pct_coordinates"].startswith("did you mean 'pct'? ")
    assert found["opinion_change"].startswith("did you mean 'pobs_opinion_change'? ")
    assert found["zzz"].startswith("known: ") and "response_rates" in found["zzz"]
    assert unknown_tables(["pct", "trials"]) == []


def test_spec_validation_stays_light() -> None:
    """`probekit validate` checks `analyses:` against the registry without importing pandas & co."""
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    code = ("import sys\n"
            "from probekit.survey.loader import load_survey\n"
            "from probekit.experiment import load_experiment\n"
            "load_survey('surveys/pct.yaml'); load_experiment('experiments/spinning_arrow.yaml')\n"
            "heavy = [m for m in ('pandas', 'numpy', 'scipy', 'duckdb') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_shipped_surveys_list_tables_that_apply() -> None:
    from pathlib import Path

    from probekit.survey.loader import load_survey

    for path in sorted((Path(__file__).resolve().parents[2] / "surveys").glob("*.yaml")):
        survey = load_survey(path)
        applying = _names(SurveyInfo(survey.id, survey.kind, survey.model_dump()))
        assert survey.analyses and set(survey.analyses) <= applying, (path.name, set(survey.analyses) - applying)
