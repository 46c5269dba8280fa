"""Longitudinal tracking: scheduled runs of surveys on models (jobs and slots in the store), `run-due`,
and the scheduler entries that call it (docs/tracking.md).

    from probekit.tracking import new_job, add_job, run_due
    add_job(store, new_job("daily-mc", ["surveys/moralchoice_starter.yaml"], ["smollm2"], "1d"))
    run_due("outputs/probekit.duckdb")      # runs each due slot once, however often it is called
"""

from probekit.tracking.jobs import (
           Job,
           JobExistsError,
           JobNotFoundError,
           JobOptions,
           add_job,
           get_job,
           list_jobs,
           new_job,
           remove_job,
)
from probekit.tracking.rundue import SlotOutcome, run_due
from probekit.tracking.schedule import Schedule, ScheduleError, parse_schedule

__all__ = ["Job", "JobExistsError", "JobNotFoundError", "JobOptions", "Schedule", "ScheduleError", "SlotOutcome", "add_job", "get_job",
           "list_jobs", "new_job", "parse_schedule", "remove_job", "run_due"]
