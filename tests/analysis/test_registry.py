"""The registry: which tables apply to which survey conventions, detail tables, registration."""

from __future__ import annotations

import pandas as pd

from probekit.analysis.registry import (
    SurveyInfo, applicable, build_tables, is_dailydilemmas, is_moralchoice, is_pct, is_personality, is_pobs, register,
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
