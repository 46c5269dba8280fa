"""The source's own prompt, stored with the trial instead of probekit's template wording, so the prompts that
exports and reports show are the ones the source's model saw. The trial keeps its form (template, order, labels)
for analysis; its id hashes the source's messages, so it never merges with the template's trial."""

from __future__ import annotations

from typing import Any

from probekit.survey.expand import Message, Trial, build_trial, trial_hash
from probekit.survey.schema import Survey


def with_prompt(trial: Trial, prompt: str | list[dict[str, str]]) -> Trial:
    """The trial with the exact prompt the source sent: a string is the user message; a list is the chat messages
    (role system / user / assistant, content) as sent."""
    messages = (Message(role="user", content=prompt),) if isinstance(prompt, str) else tuple(
        Message(role=m["role"], content=m["content"]) for m in prompt)
    completion = "\n\n".join(m.content.rstrip() for m in messages)
    payload: dict[str, Any] = {
        "survey_id": trial.survey_id, "item_id": trial.item_id, "template_id": trial.template_id,
        "paraphrase_id": trial.paraphrase_id, "factors": trial.factors, "order": list(trial.order),
        "labels": list(trial.labels), "reasoning": trial.reasoning, "messages": [m.model_dump() for m in messages],
        "completion_prompt": completion, "followups": [t.model_dump() for t in trial.followups],
        "source_prompt": True,  # never the id of a rendered trial, even when the texts agree
    }
    return trial.model_copy(update={"trial_id": trial_hash(payload), "messages": messages,
                                    "completion_prompt": completion})


def with_prompt_template(trial: Trial, survey: Survey, user: str) -> Trial:
    """The trial rendered from the source's template (the survey's placeholders: {statement}, {options} ...) in
    place of the spec template's user message and system prompt, by probekit's own renderer."""
    item = next(i for i in survey.items if i.id == trial.item_id)
    template = next(t for t in survey.templates if t.id == trial.template_id)
    source = template.model_copy(update={"user": user, "system": ""})
    return build_trial(survey, item, source, int(trial.paraphrase_id[1:]), dict(trial.factors), trial.order,
                       trial.reasoning)


def unknown_placeholders(user: str, survey: Survey, trial: Trial) -> list[str]:
    """Placeholders of a source template that the item cannot fill (they would stay in the prompt as typed)."""
    from probekit.survey.schema import template_placeholders

    item = next(i for i in survey.items if i.id == trial.item_id)
    known = {*item.fields, "options", "labels", "labels_or", "n_options", *survey.factors}
    known |= {f"{kind}_{k}" for kind in ("option", "label") for k in range(1, trial.n_options + 1)}
    return sorted(template_placeholders(user) - known)
