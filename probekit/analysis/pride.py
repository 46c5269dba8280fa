"""PriDe: label-free debiasing of option-position bias (Zheng et al., ICLR 2024; METRICS.md §3), for the
analysis tables (probekit.analysis.selection).

The estimation itself (per-item and global priors from cyclic rotations, debiasing, the priors a run
stores) is probekit.scoring.priors, below the run: the pipeline imports it there, and this module re-exports
it for analysis code. Here: reading and writing priors of stored runs for analysis.

The prior is stored with the run (table `position_priors`, migration 3) so that `probekit run ...
--prior-from RUN` can debias another survey of the same model without any calibration prompts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from probekit.scoring.priors import (
    DEFAULT_ALPHA,
    EPS,
    PriDeResult,
    calibration_sample,
    complete_cyclic_items,
    cyclic_average,
    debias,
    global_prior,
    item_prior,
    kl_from_uniform,
    pride,
    prior_from_rotations,
    priors_for_run,
    run_priors,
    softmax,
    to_canonical,
    to_shown,
)

__all__ = [
    "DEFAULT_ALPHA", "EPS", "PriDeResult", "calibration_sample", "complete_cyclic_items", "cyclic_average", "debias",
    "global_prior", "item_prior", "kl_from_uniform", "load_priors", "pride", "prior_from_rotations", "prior_json",
    "priors_for_run", "run_trial_frame", "save_priors", "softmax", "store_run_priors", "stored_prior", "to_canonical",
    "to_shown",
]


def save_priors(store: Any, run_id: str, rows: Sequence[dict[str, Any]]) -> None:
    """Write priors for a run (replacing earlier ones with the same key), through the store's recorder."""
    from probekit.store.recorder import StoreRecorder

    StoreRecorder(store).record_priors(run_id, rows)


def load_priors(store: Any, run_id: str) -> pd.DataFrame:
    """Stored priors of a run (empty frame when none)."""
    return store.position_priors(run_id)


def run_trial_frame(store: Any, run_id: str) -> pd.DataFrame:
    """One row per (model, trial) of a run with its canonical distribution (ok rows only)."""
    return store.run_distributions(run_id)


def store_run_priors(store: Any, run_id: str, *, alpha: float = DEFAULT_ALPHA, seed: int = 0) -> list[dict[str, Any]]:
    """Estimate and store the position priors of a stored run (no-op without complete cyclic items): for runs
    recorded without them (a run records its own priors when it finishes)."""
    rows = run_priors(store, run_id, alpha=alpha, seed=seed)
    save_priors(store, run_id, rows)
    return rows


def stored_prior(store: Any, run_ids: Sequence[str] | None, model: str, reasoning: str, n_options: int) -> tuple[np.ndarray, str] | None:
    """A prior stored for one of `run_ids` (e.g. copied there by --prior-from) for this model, mode and
    option count: (prior, source run), or None."""
    if not run_ids:
        return None
    try:
        frame = store.query(
            f"SELECT prior, coalesce(source_run, run_id) AS source, n_items FROM position_priors WHERE run_id IN "
            f"({', '.join('?' for _ in run_ids)}) AND model = ? AND reasoning = ? AND n_options = ? "
            "ORDER BY n_items DESC LIMIT 1", [*run_ids, model, reasoning, n_options])
    except Exception as error:  # stores made before migration 3 have no table: no stored prior
        if "position_priors" in str(error):
            return None
        raise
    if frame.empty:
        return None
    return np.asarray(frame["prior"][0], dtype=float), str(frame["source"][0])


def prior_json(prior: np.ndarray) -> str:
    return json.dumps([round(float(x), 4) for x in prior])
