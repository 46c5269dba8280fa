"""The `generate` scoring mode: free-text answers, stored as they are (the answers judges later compare).

One `generate` request per trial: `samples` generations at `temperature` with the per-trial seed, up to
`max_tokens`, through the runtime (cache, retries, sample splitting). Multi-turn forms first get the
model's own greedy answer and the further turns, as in the other modes. Each generation is one result row
(mode 'generate', `raw_text` the full text, no choice and no distribution); an empty answer is stored as
'invalid' (the model said nothing), never dropped. The generating model and its resolved name are on every
row, like any other result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from probekit.backends.base import GenerateRequest
from probekit.scoring.answers import ScoringSettings, trial_seed
from probekit.store.rows import ResultRow
from probekit.survey.expand import Trial

if TYPE_CHECKING:
    from probekit.scoring.modes import Primitives


async def score_generate(runtime: Primitives, trials: list[Trial], settings: ScoringSettings) -> list[list[ResultRow]]:
    """One row per generation: `settings.samples` rows per trial (sample_index 0..n-1)."""
    from probekit.scoring.modes import _provenance_fields, _with_followups

    prompts, _first = await _with_followups(runtime, trials, settings)
    requests = [
        GenerateRequest(prompt, settings.max_tokens, settings.temperature, seed=trial_seed(settings.seed, trial.trial_id),
                        n=settings.samples, context=trial)
        for trial, prompt in zip(trials, prompts)]
    generated = await runtime.generate(requests)
    rows: list[list[ResultRow]] = []
    for trial, outputs in zip(trials, generated):
        rows.append([
            ResultRow(trial_id=trial.trial_id, sample_index=k, mode="generate",
                      status="ok" if output.text.strip() else "invalid", raw_text=output.text,
                      **_provenance_fields(output.provenance))
            for k, output in enumerate(outputs)])
    return rows
