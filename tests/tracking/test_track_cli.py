"""`probekit track add | list | remove | history | run-due` through the CLI (typer's runner, real store)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from probekit.cli.main import app, expand_multi_value_options
from probekit.store.store import Store
from probekit.tracking.jobs import get_job, list_jobs

REPO = Path(__file__).resolve().parents[2]
STARTER = REPO / "surveys" / "moralchoice_starter.yaml"


def _invoke(*args: str):
    return CliRunner().invoke(app, expand_multi_value_options(list(args)))


def test_add_list_replace_remove(store_path: Path) -> None:
    added = _invoke("track", "add", "daily-mc", "--survey", str(STARTER), "--models", "fake:a", "fake:b", "--every", "1d",
                    "--limit", "3", "--mode", "sample", "--samples", "4", "--model-label", "2025-06", "--store", str(store_path))
    assert added.exit_code == 0, added.output
    assert "added job daily-mc: fake:a, fake:b on moralchoice_starter.yaml every 1d, label '2025-06'" in added.output
    job = get_job(Store(store_path), "daily-mc")
    assert job.surveys == [str(STARTER.resolve())] and job.models == ["fake:a", "fake:b"]
    assert (job.options.limit, job.options.mode, job.options.samples, job.options.vary_seed) == (3, "sample", 4, True)
    listed = _invoke("track", "list", "--format", "json", "--store", str(store_path))
    [row] = json.loads(listed.output)
    assert (row["name"], row["models"], row["label"], row["runs"]) == ("daily-mc", "fake:a fake:b", "2025-06", 0)
    # A second add of the same name is refused; --replace updates it and keeps its creation time.
    again = _invoke("track", "add", "daily-mc", "--survey", str(STARTER), "--every", "0 6 * * 1", "--store", str(store_path))
    assert again.exit_code == 1 and "--replace" in again.output
    replaced = _invoke("track", "add", "daily-mc", "--survey", str(STARTER), "--models", "fake:a", "--every", "0 6 * * 1",
                       "--tz", "Europe/Berlin", "--replace", "--store", str(store_path))
    assert replaced.exit_code == 0, replaced.output
    updated = get_job(Store(store_path), "daily-mc")
    assert (updated.schedule, updated.tz, updated.models, updated.created_at) == ("0 6 * * 1", "Europe/Berlin", ["fake:a"], job.created_at)
    removed = _invoke("track", "remove", "daily-mc", "--store", str(store_path))
    assert removed.exit_code == 0 and list_jobs(Store(store_path)) == []
    assert _invoke("track", "remove", "daily-mc", "--store", str(store_path)).exit_code == 1


def test_add_rejects_bad_schedules_surveys_and_names(store_path: Path, tmp_path: Path) -> None:
    bad_every = _invoke("track", "add", "x", "--survey", str(STARTER), "--every", "daily", "--store", str(store_path))
    assert bad_every.exit_code == 1 and "cron expression" in bad_every.output
    missing = _invoke("track", "add", "x", "--survey", str(tmp_path / "nope.yaml"), "--every", "1d", "--store", str(store_path))
    assert missing.exit_code == 2
    broken = tmp_path / "broken.yaml"
    broken.write_text("id: b\nkind: choice\ntemplates: []\nitems: []\n")
    assert _invoke("track", "add", "x", "--survey", str(broken), "--every", "1d", "--store", str(store_path)).exit_code == 2
    bad_name = _invoke("track", "add", "no spaces", "--survey", str(STARTER), "--every", "1d", "--store", str(store_path))
    assert bad_name.exit_code == 1 and "job name" in bad_name.output


def test_run_due_history_and_exit_codes(store_path: Path) -> None:
    assert _invoke("track", "add", "mc", "--survey", str(STARTER), "--models", "fake:a", "--every", "1d", "--limit", "2",
                   "--no-repeat", "--store", str(store_path)).exit_code == 0
    first = _invoke("track", "run-due", "--store", str(store_path))
    assert first.exit_code == 0 and "mc [scheduled " in first.output and "] ran run " in first.output
    second = _invoke("track", "run-due", "--store", str(store_path))
    assert second.exit_code == 0 and "done-already" in second.output
    quiet = _invoke("track", "run-due", "--quiet", "--store", str(store_path))
    assert quiet.exit_code == 0 and quiet.output == ""
    history = _invoke("track", "history", "mc", "--format", "json", "--store", str(store_path))
    [slot] = json.loads(history.output)
    assert (slot["status"], slot["kind"], slot["attempts"]) == ("done", "scheduled", 1)
    assert _invoke("track", "run-due", "--job", "nope", "--store", str(store_path)).exit_code == 1
    # A failing job exits 1 (cron mails it); the next call retries it.
    assert _invoke("track", "add", "broken", "--survey", str(STARTER), "--models", "fake:b?fatal=1", "--every", "1d", "--limit", "1",
                   "--store", str(store_path)).exit_code == 0
    failed = _invoke("track", "run-due", "--job", "broken", "--store", str(store_path))
    assert failed.exit_code == 1 and "failed" in failed.output


def test_label_an_untracked_run_and_drift_groups_by_it(store_path: Path) -> None:
    import probekit

    first = probekit.run([STARTER], models=["fake:a"], limit=2, store=store_path)
    second = probekit.run([STARTER], models=["fake:a"], limit=2, store=store_path, new_run=True)
    labelled = _invoke("track", "label", second.run_id, "after-update", "--store", str(store_path))
    assert labelled.exit_code == 0 and "fake:a labelled 'after-update'" in labelled.output
    versions = Store(store_path).query("SELECT run_id, coalesce(model_label, '-') FROM model_versions ORDER BY started_at")
    assert versions.values.tolist() == [[first.run_id, "-"], [second.run_id, "after-update"]]
    from probekit.analysis.snapshots import drift

    report = drift(store_path, survey="moralchoice_starter", model="fake:a", n_boot=100)
    assert [len(s.run_ids) for s in report.snapshots] == [1, 1] and "after-update" in report.snapshots[1].version
    assert _invoke("track", "label", second.run_id, "", "--store", str(store_path)).exit_code == 0
    assert Store(store_path).query("SELECT count(DISTINCT coalesce(model_label, '-')) AS n FROM model_versions")["n"][0] == 1
    assert _invoke("track", "label", "nope", "x", "--store", str(store_path)).exit_code == 1
    assert _invoke("track", "label", second.run_id, "x", "--models", "fake:zzz", "--store", str(store_path)).exit_code == 1
