"""Human reference distributions in survey specs (issue 24, step 1): inline and sidecar (CSV, Parquet) data, the
checks on load (file:line — fix, nothing stored), the store table, hashes of other surveys unchanged, export."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from probekit.provenance import survey_hash
from probekit.store.recorder import StoreRecorder
from probekit.survey.errors import SpecError
from probekit.survey.loader import load_survey
from tests.human.helpers import SIDECAR, SPEC, write_survey

REPO = Path(__file__).resolve().parents[2]


def test_inline_and_sidecar_distributions_load_renormalised(tmp_path: Path) -> None:
    survey = load_survey(write_survey(tmp_path))
    q1, q2 = survey.items
    assert q1.human["country"]["Germany"].shares == pytest.approx([0.2, 0.4, 0.3, 0.1])
    assert q1.human["country"]["Germany"].n == 1000
    assert q1.human["country"]["Japan"].n is None
    # Sidecar rows name options by id or text; a group may give only some options (Peru: 'n' has share 0).
    assert q2.human["country"]["Germany"].shares == pytest.approx([0.7, 0.3])
    assert q2.human["country"]["Japan"].shares == pytest.approx([0.4, 0.6])
    assert q2.human["country"]["Peru"].shares == [1.0, 0.0]
    assert [o.position for o in q1.options or []] == [1, 2, 1.5, None]


def test_parquet_sidecar_reads_like_csv(tmp_path: Path) -> None:
    path = write_survey(tmp_path, spec=SPEC.replace("file: side.csv", "file: side.parquet"))
    pd.read_csv(tmp_path / "side.csv").to_parquet(tmp_path / "side.parquet")
    assert load_survey(path).items[1].human == load_survey(write_survey(tmp_path / "csv")).items[1].human


def test_shares_are_renormalised_within_the_tolerance(tmp_path: Path) -> None:
    sidecar = SIDECAR.replace("q2,country,Germany,n,0.3,900", "q2,country,Germany,n,0.305,900")
    shares = load_survey(write_survey(tmp_path, sidecar=sidecar)).items[1].human["country"]["Germany"].shares
    assert sum(shares) == pytest.approx(1.0, abs=1e-12)
    assert shares[0] == pytest.approx(0.7 / 1.005)


@pytest.mark.parametrize(("spec_change", "sidecar_change", "where", "message"), [
    (("Japan: [0.5, 0.2, 0.2, 0.1]", "Japan: [0.5, 0.2, 0.2]"), None, ("s.yaml", 22), "3 shares for 4 options"),
    (("Japan: [0.5, 0.2, 0.2, 0.1]", "Japan: [0.5, 0.2, 0.2, 0.3]"), None, ("s.yaml", 22), "shares sum to 1.2"),
    (("Japan: [0.5, 0.2, 0.2, 0.1]", "Japan: [0.5, 0.6, -0.2, 0.1]"), None, ("s.yaml", 22), "negative share"),
    (("Japan: [0.5, 0.2, 0.2, 0.1]", "Japn: [0.5, 0.2, 0.2, 0.1]"), None, ("s.yaml", 22), "unknown country group 'Japn'"),
    (("{text: Refused, refusal: true}", "{text: Refused, refusal: true, position: 3}"), None, ("s.yaml", 18),
     "refusal option 'Refused' has ordinal position"),
    (None, ("q2,country,Germany,n,0.3,900", "q2,country,Germany,n,0.5,900"), ("side.csv", 2), "shares sum to 1.2"),
    (None, ("q2,country,Japan,No,0.6,", "q2,country,Japan,Maybe,0.6,"), ("side.csv", 5), "unknown option 'Maybe'"),
    (None, ("q2,country,Peru,y,1,12", "q9,country,Peru,y,1,12"), ("side.csv", 6), "unknown question_id 'q9'"),
    (None, ("q2,country,Peru,y,1,12", "q2,country,Peru,y,1,12\nq2,country,Peru,y,0,12"), ("side.csv", 7), "given twice"),
    (None, ("q2,country,Peru,y,1,12", "q2,country,Peru,y,x,12"), ("side.csv", 6), "is not a number"),
    (None, ("q2,country,Peru,y,1,12", "q2,region,Peru,y,1,12"), ("side.csv", 6), "unknown group variable 'region'"),
    (None, ("q2,country,Germany,y,0.7,900", "q2,country,Germany,y,0.7,800"), ("side.csv", 2), "different n"),
])
def test_bad_distributions_are_refused_with_their_line(tmp_path: Path, spec_change: tuple[str, str] | None,
                                                      sidecar_change: tuple[str, str] | None, where: tuple[str, int],
                                                      message: str) -> None:
    spec = SPEC.replace(*spec_change) if spec_change else SPEC
    sidecar = SIDECAR.replace(*sidecar_change) if sidecar_change else SIDECAR
    assert spec != SPEC or sidecar != SIDECAR
    with pytest.raises(SpecError) as caught:
        load_survey(write_survey(tmp_path, spec=spec, sidecar=sidecar))
    found = [p for p in caught.value.problems if message in p.message]
    assert found, str(caught.value)
    assert Path(found[0].path).name == where[0] and found[0].line == where[1], str(found[0])
    assert found[0].fix


def test_missing_sidecar_and_unknown_population_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"s.yaml:8: human.file 'nowhere.csv' not found"):
        load_survey(write_survey(tmp_path, spec=SPEC.replace("file: side.csv", "file: nowhere.csv")))
    with pytest.raises(SpecError, match=r"s.yaml:9: human.population 'country:Chile' names no group"):
        load_survey(write_survey(tmp_path, spec=SPEC.replace("population: country:Germany", "population: country:Chile")))


def test_other_surveys_keep_their_content_hash() -> None:
    """The new fields are left out of the stored spec when unset: a survey without human data hashes as before."""
    for name in ("pct.yaml", "moralchoice_starter.yaml", "ipip_bigfive_50.yaml"):
        text = load_survey(REPO / "surveys" / name).model_dump_json()
        assert '"human"' not in text and '"position"' not in text


def test_distributions_are_stored_once_and_exported(tmp_path: Path) -> None:
    survey = load_survey(write_survey(tmp_path))
    digest = survey_hash(survey)
    recorder = StoreRecorder(tmp_path / "store.duckdb")
    for _ in range(2):  # a second record of the same spec adds nothing
        recorder.record_survey(survey, digest, "s.yaml")
    stored = recorder.store.query("SELECT * FROM human_distributions ORDER BY item_id, group_value")
    assert len(stored) == 5
    germany = stored[(stored["item_id"] == "q1") & (stored["group_value"] == "Germany")].iloc[0]
    assert list(germany["shares"]) == pytest.approx([0.2, 0.4, 0.3, 0.1])
    assert germany["n"] == 1000
    positions = recorder.store.query("SELECT option_positions[4] IS NULL AS off, option_positions[1:3] AS pos FROM "
                                     "human_distributions WHERE item_id = 'q1' LIMIT 1")
    assert bool(positions["off"][0]) and list(positions["pos"][0]) == [1, 2, 1.5]
    assert list(germany["option_refusal"]) == [False, False, False, True]
    sql = recorder.store.query("SELECT sum(n) AS n FROM human_distributions WHERE group_var = 'country' AND n IS NOT NULL")
    assert sql["n"][0] == 1000 + 900 + 12


def test_export_and_import_carry_the_human_table(tmp_path: Path) -> None:
    import probekit
    from probekit.exporting import export
    from probekit.importers.probekit_export import import_export

    path = write_survey(tmp_path / "spec")
    store = tmp_path / "a.duckdb"
    probekit.run([path], store=store, models=["fake:m"])
    export(tmp_path / "out", store=store)
    assert (tmp_path / "out" / "human_distributions.parquet").is_file()
    import_export(tmp_path / "out", store_path=tmp_path / "b.duckdb")
    query = "SELECT item_id, group_var, group_value, shares, n FROM human_distributions ORDER BY ALL"
    a = StoreRecorder(store).store.query(query)
    b = StoreRecorder(tmp_path / "b.duckdb").store.query(query)
    assert len(a) == 5
    pd.testing.assert_frame_equal(a, b)
