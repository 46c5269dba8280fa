"""Writing a survey's human reference distributions into the store (`human_distributions`, migration 9).

Called when a survey is recorded (`StoreRecorder.record_survey`): the rows are keyed by the survey's content hash,
so recording the same spec again adds nothing (INSERT OR IGNORE), like the survey and its items.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from probekit.survey.human import HUMAN_COLUMNS, human_rows

if TYPE_CHECKING:
    from probekit.store.store import Store
    from probekit.survey.schema import Survey


def record_human(store: Store, survey: Survey, survey_hash: str) -> int:
    """Store the survey's human distributions (one transaction); returns the rows offered (0: the survey has none)."""
    rows = human_rows(survey, survey_hash)
    if not rows:
        return 0
    frame = pd.DataFrame(rows, columns=list(HUMAN_COLUMNS))
    frame["n"] = frame["n"].astype("Float64")
    columns = ", ".join(HUMAN_COLUMNS)
    # Lists of floats with None entries arrive from pandas as object columns: cast them to the table's types.
    select = ", ".join(f"CAST({c} AS DOUBLE[])" if c in ("shares", "option_positions") else c for c in HUMAN_COLUMNS)
    with store.transaction() as con:
        con.register("human_frame", frame)
        try:
            con.execute(f"INSERT OR IGNORE INTO human_distributions ({columns}) SELECT {select} FROM human_frame")
        finally:
            con.unregister("human_frame")
    return len(rows)
