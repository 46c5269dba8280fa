"""Drift and the snapshot axis end to end on a tracked fake model whose version changes under the same name
(v1: no position preference; v2: a strong preference for the first shown option), each version run twice by
run-due's noise-floor repeat. `probekit drift` exit codes, JSON, --on-change; `probekit snapshots`; plots."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from probekit.analysis.snapshots import analyze_snapshots, drift
from probekit.cli.main import app
from probekit.store.store import Store
from probekit.tracking import JobOptions, add_job, new_job, run_due

REPO = Path(__file__).resolve().parents[2]
STARTER = REPO / "surveys" / "moralchoice_starter.yaml"
T0 = datetime(2025, 6, 2, 15, tzinfo=timezone.utc)
SURVEY, MODEL = "moralchoice_starter", "fake:x"


@pytest.fixture(scope="module")
def tracked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("drift") / "store.duckdb"
    options = JobOptions(limit=8, mode="sample", samples=16, temperature=1.0, orders="identity")

    def version(model: str, label: str, now: datetime) -> None:
        add_job(Store(store), new_job("mc", [STARTER], [model], "1d", options=options, model_label=label, now=T0), replace=True)
        assert all(o.action == "ran" for o in run_due(store, now=now))

    version("fake:x?prior=1,1", "v1", T0)                         # S1: scheduled + repeat
    version("fake:x?prior=9,1", "v2", T0 + timedelta(days=1))     # S2: scheduled + repeat
    version("fake:x?prior=9,1", "v2", T0 + timedelta(days=2))     # S2 again: no repeat needed
    assert int(Store(store).query("SELECT count(*) AS n FROM runs")["n"][0]) == 5
    return store


def test_drift_by_version_finds_the_change_against_the_noise_floor(tracked: Path) -> None:
    report = drift(tracked, survey=SURVEY, model=MODEL, n_boot=400)
    assert [s.label for s in report.snapshots] == ["S1", "S2"]
    assert [len(s.run_ids) for s in report.snapshots] == [2, 3]
    assert "v1" in report.snapshots[0].version and "v2" in report.snapshots[1].version
    assert report.noise_source == "tracked repeats" and len(report.noise_pairs) == 2
    [pair] = report.pairs
    s = pair.summary
    assert s["verdict"] == "changed" and report.changed
    assert s["excess_ci_low"] > 0 and s["distance_ci_low"] > s["noise_floor_ci_high"]
    assert s["n_items"] == 8 and s["n_moved"] >= 6
    moved = pair.comparison.items[pair.comparison.items["moved"]]
    assert (moved["marginal_b"].map(lambda m: m[0]) > moved["marginal_a"].map(lambda m: m[0])).all()  # towards option 1 (shown first)


def test_drift_by_run_repeats_are_no_change_and_the_version_switch_is_changed(tracked: Path) -> None:
    report = drift(tracked, survey=SURVEY, model=MODEL, by="run", n_boot=400)
    verdicts = {(p.a.label, p.b.label): p.summary["verdict"] for p in report.pairs}
    assert verdicts[("S1", "S2")] == "no change beyond noise"   # v1 twice (the repeat)
    assert verdicts[("S2", "S3")] == "changed"                  # v1 -> v2
    assert verdicts[("S3", "S4")] == "no change beyond noise"   # v2 twice (the repeat)
    assert verdicts[("S4", "S5")] == "no change beyond noise"   # v2 a day later
    assert verdicts[("S1", "S5")] == "changed"                  # against the first
    notes = {(p.a.label, p.b.label): p.noise_note for p in report.pairs}
    assert "left out of its own noise floor" in notes[("S1", "S2")]
    latest = drift(tracked, survey=SURVEY, model=MODEL, by="run", latest_only=True, n_boot=200)
    assert [(p.a.label, p.b.label) for p in latest.pairs] == [("S4", "S5"), ("S1", "S5")]


def _drift_cli(store: Path, *args: str):
    return CliRunner().invoke(app, ["drift", "--survey", SURVEY, "--model", MODEL, "--n-boot", "300", "--store", str(store), *args])


def test_drift_cli_exit_codes_json_and_on_change(tracked: Path, tmp_path: Path) -> None:
    marker = tmp_path / "webhook.txt"
    changed = _drift_cli(tracked, "--on-change", f"cat \"$PROBEKIT_DRIFT_JSON\" > {marker}; echo $PROBEKIT_DRIFT_CHANGED >> {marker}")
    assert changed.exit_code == 3, changed.output
    assert "S1 → S2: changed — mean distance" in changed.output and "moved: C_0" in changed.output
    sent = marker.read_text().splitlines()
    assert json.loads(sent[0])["pairs"][0]["verdict"] == "changed" and sent[1] == "S1->S2"
    as_json = _drift_cli(tracked, "--format", "json")
    data = json.loads(as_json.output)
    assert as_json.exit_code == 3 and data["changed"] and data["pairs"][0]["moved_items"]
    assert {"distance", "distance_ci_low", "noise_floor", "excess_ci_low", "refusal_rate_a", "invalid_rate_diff"} <= set(data["pairs"][0])
    # Since v2 appeared (its three runs only): unchanged, exit 0. One snapshot: nothing to compare, exit 4.
    v2_start = Store(tracked).query("SELECT min(started_at) AS t FROM model_versions WHERE model_label = 'v2'")["t"][0]
    since_v2 = _drift_cli(tracked, "--by", "run", "--since", v2_start.isoformat())
    assert since_v2.exit_code == 0, since_v2.output
    assert since_v2.output.count("no change beyond noise") == 3  # S1→S2, S2→S3, S1→S3 of the window
    one = _drift_cli(tracked, "--since", "2999-01-01")
    assert one.exit_code == 4
    unknown = CliRunner().invoke(app, ["drift", "--survey", "nope", "--model", MODEL, "--store", str(tracked)])
    assert unknown.exit_code == 1 and "no survey" in unknown.output


def _assert_images(paths: list[Path]) -> None:
    png, svg = paths
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert ET.parse(svg).getroot().tag.endswith("svg")


def test_drift_plot(tracked: Path, tmp_path: Path) -> None:
    result = _drift_cli(tracked, "--by", "run", "--plot", str(tmp_path / "drift.png"))
    assert result.exit_code == 3
    _assert_images([tmp_path / "drift.png", tmp_path / "drift.svg"])


def test_snapshot_axis_tables_and_timeline(tracked: Path, tmp_path: Path) -> None:
    tables = analyze_snapshots(tracked, survey=SURVEY, model=MODEL, tables=["uncertainty_summary", "response_rates"], n_boot=200)
    summary = tables["uncertainty_summary"]
    assert list(summary["snapshot"]) == ["S1", "S2"] and list(summary["n_runs"]) == [2, 3]
    # Per snapshot, not pooled: v1 (no position preference, identity order) is more uncertain than v2.
    assert summary["entropy"][0] > summary["entropy"][1]
    by_run = analyze_snapshots(tracked, survey=SURVEY, model=MODEL, by="run", tables=["uncertainty_summary"], n_boot=100)
    assert list(by_run["uncertainty_summary"]["snapshot"]) == ["S1", "S2", "S3", "S4", "S5"]
    result = CliRunner().invoke(app, ["snapshots", "--survey", SURVEY, "--model", MODEL, "--tables", "uncertainty_summary",
                                      "--plot", str(tmp_path / "timeline"), "--metric", "uncertainty_summary.entropy",
                                      "--n-boot", "100", "--store", str(tracked)])
    assert result.exit_code == 0, result.output
    assert "== uncertainty_summary (2 rows)" in result.output
    _assert_images([tmp_path / "timeline.png", tmp_path / "timeline.svg"])
    bad = CliRunner().invoke(app, ["snapshots", "--survey", SURVEY, "--model", MODEL, "--tables", "uncertainty_summary",
                                   "--plot", str(tmp_path / "t"), "--metric", "uncertainty_summary.nope", "--store", str(tracked)])
    assert bad.exit_code == 1 and "no column 'nope'" in bad.output
