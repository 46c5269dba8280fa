"""Numbered, transactional schema migrations. Append new ones; never edit an applied one.

`docs/schema.md` is generated from this list (`python -m probekit.store.schema_doc`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


MIGRATIONS: list[Migration] = [
    Migration(
        1,
        "initial schema",
        """
        CREATE TABLE runs (
            run_id VARCHAR PRIMARY KEY,          -- ULID
            started_at TIMESTAMPTZ NOT NULL,
            ended_at TIMESTAMPTZ,
            status VARCHAR NOT NULL,             -- running | completed | completed_with_errors | interrupted
            config_hash VARCHAR NOT NULL,        -- same survey + models + settings => same hash (auto-resume)
            config JSON NOT NULL,                -- full configuration, keys never included
            probekit_version VARCHAR NOT NULL,
            packages JSON NOT NULL,              -- versions of the packages that shape results
            host VARCHAR
        );
        CREATE TABLE models (
            run_id VARCHAR NOT NULL,
            model VARCHAR NOT NULL,              -- model key as requested (e.g. smollm2, openai/gpt-4o-mini)
            backend VARCHAR NOT NULL,            -- hf | litellm | fake
            resolved_name VARCHAR,               -- provider's resolved name / local path
            revision VARCHAR,                    -- provider fingerprints seen, or the local weights' sha256
            weights_sha256 VARCHAR,
            dtype VARCHAR,
            device VARCHAR,
            logprobs_supported BOOLEAN,
            details JSON,
            PRIMARY KEY (run_id, model)
        );
        CREATE TABLE surveys (
            survey_hash VARCHAR PRIMARY KEY,     -- sha256 of the validated spec
            survey_id VARCHAR NOT NULL,
            version VARCHAR,
            kind VARCHAR NOT NULL,
            title VARCHAR,
            source JSON,
            spec JSON NOT NULL,                  -- the whole validated spec, items included
            path VARCHAR,
            created_at TIMESTAMPTZ NOT NULL
        );
        CREATE TABLE items (
            survey_hash VARCHAR NOT NULL,
            survey_id VARCHAR NOT NULL,
            item_id VARCHAR NOT NULL,
            n_options INTEGER NOT NULL,
            option_texts VARCHAR[] NOT NULL,     -- canonical order
            option_values DOUBLE[],              -- likert scale values (canonical order), NULL entries allowed
            option_polarities DOUBLE[],          -- POBs polarities (canonical order)
            option_refusal BOOLEAN[],
            gold INTEGER,
            keyed INTEGER,
            position_dependent BOOLEAN,
            fields JSON,
            meta JSON,
            PRIMARY KEY (survey_hash, item_id)
        );
        CREATE TABLE trials (
            trial_id VARCHAR PRIMARY KEY,        -- content hash of the rendered trial
            survey_id VARCHAR NOT NULL,
            survey_hash VARCHAR NOT NULL,
            item_id VARCHAR NOT NULL,
            template_id VARCHAR NOT NULL,
            paraphrase_id VARCHAR NOT NULL,
            factors JSON,
            option_order INTEGER[] NOT NULL,     -- option_order[k] = canonical index shown at position k
            label_scheme VARCHAR NOT NULL,
            labels VARCHAR[] NOT NULL,
            reasoning VARCHAR NOT NULL,
            messages JSON NOT NULL,
            completion_prompt VARCHAR NOT NULL,
            followups JSON
        );
        CREATE TABLE run_trials (
            run_id VARCHAR NOT NULL,
            trial_id VARCHAR NOT NULL,
            PRIMARY KEY (run_id, trial_id)
        );
        CREATE TABLE results (
            run_id VARCHAR NOT NULL,
            trial_id VARCHAR NOT NULL,
            model VARCHAR NOT NULL,
            sample_index INTEGER NOT NULL,
            status VARCHAR NOT NULL,             -- ok | refusal | invalid | error
            mode VARCHAR NOT NULL,               -- logprob | sample | sequence (the mode that produced the row)
            choice INTEGER,                      -- canonical option index (argmax in logprob mode)
            distribution DOUBLE[],               -- canonical order, sums to 1 (NULL when no valid mass)
            valid_mass DOUBLE,                   -- total probability of all label variants before renormalising
            missing_labels INTEGER,              -- labels absent from an API's top-k
            label_logprobs DOUBLE[],             -- raw log P(label) per shown position
            seq_logprob_sum DOUBLE[],            -- sequence mode, canonical order
            seq_logprob_mean DOUBLE[],           -- sequence mode, per-token mean, canonical order
            top_logprobs JSON,                   -- as returned (API) / top-20 next tokens (local)
            raw_text VARCHAR,                    -- generated text (sample / reasoning / follow-ups)
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            latency_ms DOUBLE,
            cost_usd DOUBLE,
            resolved_model VARCHAR,
            system_fingerprint VARCHAR,
            error_class VARCHAR,
            error_message VARCHAR,
            attempts INTEGER,
            created_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (run_id, trial_id, model, sample_index)
        );
        CREATE INDEX results_trial ON results (trial_id);
        """,
    ),
    Migration(
        2,
        "analyst views",
        """
        CREATE VIEW trial_results AS
        SELECT r.run_id, r.model, t.survey_id, t.item_id, t.template_id, t.paraphrase_id, t.factors,
               t.option_order, t.labels, t.reasoning, r.trial_id, r.sample_index, r.status, r.mode,
               r.choice, r.distribution, r.valid_mass, r.missing_labels, r.raw_text,
               r.error_class, r.latency_ms, r.created_at
        FROM results r JOIN trials t USING (trial_id);

        -- One row per item x model x canonical option: the mean over forms (and samples) of the
        -- per-trial distribution. Sample-mode rows carry a one-hot distribution, so this is p-hat.
        CREATE VIEW item_marginals AS
        WITH cells AS (
            SELECT run_id, model, survey_id, item_id, trial_id, sample_index,
                   unnest(distribution) AS p, generate_subscripts(distribution, 1) - 1 AS option_index
            FROM trial_results
            WHERE status = 'ok' AND distribution IS NOT NULL
        )
        SELECT run_id, model, survey_id, item_id, option_index, avg(p) AS marginal, count(*) AS n_rows
        FROM cells
        GROUP BY ALL;
        """,
    ),
    Migration(
        3,
        "position priors (PriDe)",
        """
        -- The option-position prior of a model (PriDe, METRICS.md section 3), stored with the run that
        -- estimated it, or copied into a run that reused it with --prior-from (source_run says from where).
        CREATE TABLE position_priors (
            run_id VARCHAR NOT NULL,
            model VARCHAR NOT NULL,
            survey_id VARCHAR NOT NULL,          -- survey the prior was estimated on
            reasoning VARCHAR NOT NULL,          -- direct | reasoning
            n_options INTEGER NOT NULL,          -- a prior is per number of shown positions
            prior DOUBLE[] NOT NULL,             -- P(position k), shown order, sums to 1
            n_items INTEGER NOT NULL,            -- calibration items (all cyclic rotations) behind it
            source_run VARCHAR,                  -- NULL when estimated in this run; else the run it came from
            created_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (run_id, model, survey_id, reasoning, n_options)
        );
        """,
    ),
    Migration(
        5,
        "tracking jobs, slots and model versions",
        """
        -- Longitudinal tracking (docs/tracking.md): scheduled jobs and the history of their slots.
        CREATE TABLE track_jobs (
            name VARCHAR PRIMARY KEY,            -- job name (probekit track add NAME)
            surveys JSON NOT NULL,               -- survey or experiment files, absolute paths
            models JSON NOT NULL,                -- model keys as requested
            schedule VARCHAR NOT NULL,           -- interval (30m, 6h, 1d, 1w) or cron expression
            tz VARCHAR NOT NULL,                 -- time zone a cron expression is evaluated in
            anchor TIMESTAMPTZ,                  -- first slot of an interval schedule (NULL for cron)
            options JSON NOT NULL,               -- run settings: limit, samples, mode, temperature, orders, reasoning, seed
            model_label VARCHAR,                 -- user label of the model version, recorded with every run of the job
            noise_repeat BOOLEAN NOT NULL,       -- run the first slot of a version not yet seen twice twice (drift noise floor)
            max_attempts INTEGER NOT NULL,       -- claims of one slot before run-due gives it up
            created_at TIMESTAMPTZ NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL
        );
        CREATE TABLE track_slots (
            job VARCHAR NOT NULL,                -- track_jobs.name
            slot_at TIMESTAMPTZ NOT NULL,        -- the scheduled time the slot stands for (UTC)
            kind VARCHAR NOT NULL,               -- scheduled | repeat (second run of a new version: noise floor)
            status VARCHAR NOT NULL,             -- running | done | failed | abandoned (failed max_attempts times)
            attempts INTEGER NOT NULL,           -- claims so far; a failed slot is claimed again by the next run-due
            claim_id VARCHAR NOT NULL,           -- ULID of the run-due invocation holding (or last holding) the slot
            host VARCHAR,                        -- host of that invocation
            pid INTEGER,                         -- its process id (a dead one on this host frees the slot at once)
            claimed_at TIMESTAMPTZ NOT NULL,
            heartbeat_at TIMESTAMPTZ NOT NULL,   -- refreshed while the run goes on; a stale one frees the slot
            finished_at TIMESTAMPTZ,
            run_id VARCHAR,                      -- the run made for this slot (a retry resumes it)
            missed INTEGER NOT NULL,             -- earlier slots never run (a late run-due runs only the latest slot)
            error VARCHAR,                       -- why the last attempt failed
            PRIMARY KEY (job, slot_at, kind)
        );

        -- Version identity of every run x model: what the snapshot axis and `probekit drift` group by.
        CREATE VIEW model_versions AS
        SELECT m.run_id, r.started_at, r.status AS run_status, m.model, m.backend, m.resolved_name, m.revision,
               m.weights_sha256,
               CAST(json_extract(m.details, '$.resolved_names') AS VARCHAR[]) AS resolved_names,
               CAST(json_extract(m.details, '$.system_fingerprints') AS VARCHAR[]) AS system_fingerprints,
               json_extract_string(m.details, '$.model_label') AS model_label,
               json_extract_string(r.config, '$.tracking.job') AS job,
               json_extract_string(r.config, '$.tracking.kind') AS slot_kind
        FROM models m JOIN runs r USING (run_id);
        """,
    ),
    Migration(
        6,
        "judge gold verdicts",
        """
        -- Gold verdicts for pairwise judging (METRICS.md section 7, docs/judges.md): where the judge tables of a
        -- pairwise survey take w_G from. One source per survey: a panel of judges (computed from their stored
        -- judgments at analysis time) or a file of labels (its verdicts in judge_gold). Replaced as a whole when
        -- the experiment names another source, so changing the gold never re-runs a judge.
        CREATE TABLE judge_gold_sources (
            survey_id VARCHAR PRIMARY KEY,       -- the pairwise survey the gold is for
            kind VARCHAR NOT NULL,               -- panel | file
            settings JSON NOT NULL,              -- panel: {panel: [judges] or null = every judge, exclude: parties | judge}; file: {file, sha256, rows}
            updated_at TIMESTAMPTZ NOT NULL
        );
        CREATE TABLE judge_gold (
            survey_id VARCHAR NOT NULL,
            question_id VARCHAR NOT NULL,        -- the question (items' meta.question_id)
            model_a VARCHAR NOT NULL,            -- the pair, model_a < model_b
            model_b VARCHAR NOT NULL,
            score_a DOUBLE NOT NULL,             -- w_G for model_a: 1 better, 0 worse, 0.5 tie (majority of the votes)
            votes_a INTEGER NOT NULL,            -- labels preferring model_a
            votes_b INTEGER NOT NULL,            -- labels preferring model_b
            votes_tie INTEGER NOT NULL,          -- tie labels
            PRIMARY KEY (survey_id, question_id, model_a, model_b)
        );
        """,
    ),
    Migration(
        7,
        "run ownership (one process runs a configuration at a time)",
        """
        -- The process that runs (or last ran) the run, and when it last showed life. A second `probekit run` of
        -- the same configuration waits while the owner lives, and resumes the run once it has died.
        ALTER TABLE runs ADD COLUMN owner_pid INTEGER;
        ALTER TABLE runs ADD COLUMN heartbeat_at TIMESTAMPTZ;
        """,
    ),
    Migration(
        8,
        "respondents as an axis of results",
        """
        -- Who answered, beside which model (docs/importing.md): a person of a human sample, a persona, one session
        -- of a model. '' = the model itself (probekit's own runs). Part of the natural key, so many respondents
        -- answering one trial with one model stay distinct rows and across-respondent statistics (Cronbach's alpha)
        -- see each of them. DuckDB cannot change a primary key in place: the table is rebuilt, rows unchanged.
        CREATE TABLE results_before_v8 AS SELECT * FROM results;
        DROP INDEX results_trial;
        DROP TABLE results;
        CREATE TABLE results (
            run_id VARCHAR NOT NULL,
            trial_id VARCHAR NOT NULL,
            model VARCHAR NOT NULL,
            respondent VARCHAR NOT NULL DEFAULT '',  -- who answered as that model: '' = the model itself
            sample_index INTEGER NOT NULL,
            status VARCHAR NOT NULL,             -- ok | refusal | invalid | error
            mode VARCHAR NOT NULL,               -- logprob | sample | sequence (the mode that produced the row)
            choice INTEGER,                      -- canonical option index (argmax in logprob mode)
            distribution DOUBLE[],               -- canonical order, sums to 1 (NULL when no valid mass)
            valid_mass DOUBLE,                   -- total probability of all label variants before renormalising
            missing_labels INTEGER,              -- labels absent from an API's top-k
            label_logprobs DOUBLE[],             -- raw log P(label) per shown position
            seq_logprob_sum DOUBLE[],            -- sequence mode, canonical order
            seq_logprob_mean DOUBLE[],           -- sequence mode, per-token mean, canonical order
            top_logprobs JSON,                   -- as returned (API) / top-20 next tokens (local)
            raw_text VARCHAR,                    -- generated text (sample / reasoning / follow-ups)
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            latency_ms DOUBLE,
            cost_usd DOUBLE,
            resolved_model VARCHAR,
            system_fingerprint VARCHAR,
            error_class VARCHAR,
            error_message VARCHAR,
            attempts INTEGER,
            created_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (run_id, trial_id, model, respondent, sample_index)
        );
        INSERT INTO results SELECT run_id, trial_id, model, '', sample_index, status, mode, choice, distribution,
            valid_mass, missing_labels, label_logprobs, seq_logprob_sum, seq_logprob_mean, top_logprobs, raw_text,
            prompt_tokens, completion_tokens, latency_ms, cost_usd, resolved_model, system_fingerprint, error_class,
            error_message, attempts, created_at FROM results_before_v8;
        DROP TABLE results_before_v8;
        CREATE INDEX results_trial ON results (trial_id);
        CREATE OR REPLACE VIEW trial_results AS
        SELECT r.run_id, r.model, r.respondent, t.survey_id, t.item_id, t.template_id, t.paraphrase_id, t.factors,
               t.option_order, t.labels, t.reasoning, r.trial_id, r.sample_index, r.status, r.mode,
               r.choice, r.distribution, r.valid_mass, r.missing_labels, r.raw_text,
               r.error_class, r.latency_ms, r.created_at
        FROM results r JOIN trials t USING (trial_id);
        """,
    ),
    Migration(
        9,
        "human reference distributions",
        """
        -- Human answer distributions per item x group (docs/human-alignment.md): what the human-alignment tables compare
        -- a model's answers with. Written with the survey spec (once per content hash), shares checked on load.
        CREATE TABLE human_distributions (
            survey_hash VARCHAR NOT NULL,
            survey_id VARCHAR NOT NULL,
            item_id VARCHAR NOT NULL,
            group_var VARCHAR NOT NULL,          -- group variable: country, age, sex ... (overall for the whole population)
            group_value VARCHAR NOT NULL,        -- the group: Germany, 25-44, female ... (all for the whole population)
            shares DOUBLE[] NOT NULL,            -- canonical option order, sums to 1 (renormalised on load)
            n DOUBLE,                            -- respondents (or the survey's human.n_kind); NULL when not given
            option_positions DOUBLE[],           -- the item's ordinal positions (NULL entries: off the scale, e.g. refusals)
            option_refusal BOOLEAN[],            -- the item's refusal options ("Refused", "Don't know")
            PRIMARY KEY (survey_hash, item_id, group_var, group_value)
        );
        """,
    ),
    Migration(
        10,
        "personas as an axis of trials",
        """
        -- The persona a trial asks the model to answer as (docs/personas.md): '' = the default context (no persona).
        -- A persona trial's results carry the persona id as their respondent, so every table splits by it.
        ALTER TABLE trials ADD COLUMN persona_id VARCHAR DEFAULT '';   -- persona id; '' = no persona
        ALTER TABLE trials ADD COLUMN persona_style VARCHAR DEFAULT '';  -- qa | bio | portray; '' = no persona
        -- The personas of each survey version, recorded with its spec.
        CREATE TABLE personas (
            survey_hash VARCHAR NOT NULL,        -- the survey version (surveys.survey_hash)
            survey_id VARCHAR NOT NULL,
            persona_id VARCHAR NOT NULL,         -- = trials.persona_id = results.respondent of its trials
            attributes JSON NOT NULL,            -- attribute name -> value, e.g. {"country": "Japan"}; {} for a bio only
            bio VARCHAR,                         -- free-text first-person bio (NULL when given by attributes only)
            PRIMARY KEY (survey_hash, persona_id)
        );
        CREATE OR REPLACE VIEW trial_results AS
        SELECT r.run_id, r.model, r.respondent, t.survey_id, t.item_id, t.template_id, t.paraphrase_id, t.factors,
               t.option_order, t.labels, t.reasoning, t.persona_id, t.persona_style, r.trial_id, r.sample_index,
               r.status, r.mode, r.choice, r.distribution, r.valid_mass, r.missing_labels, r.raw_text,
               r.error_class, r.latency_ms, r.created_at
        FROM results r JOIN trials t USING (trial_id);
        """,
    ),
]
