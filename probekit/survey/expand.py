"""Expansion of a survey into trials: one exact prompt per item × template × paraphrase × factors × order
× reasoning mode. Deterministic: the same spec always gives the same trials with the same ids."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterator, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from probekit.survey.labels import join_or, labels_for
from probekit.survey.permutations import Order, orders_for, parse_policy
from probekit.survey.personas import Persona, contexts, render_persona
from probekit.survey.schema import Item, Option, ReasoningMode, Survey, Template, Turn, template_placeholders


class Message(BaseModel):
    """One chat message."""

    model_config = ConfigDict(frozen=True)
    role: str
    """system | user | assistant."""
    content: str
    """Message text."""


class Trial(BaseModel):
    """One exact prompt for one item in one form. Stored as is; `trial_id` hashes all of it."""

    model_config = ConfigDict(frozen=True)
    trial_id: str
    """Content hash of everything below (16 hex characters)."""
    survey_id: str
    """Survey the trial belongs to."""
    item_id: str
    """Item id as in the source data."""
    template_id: str
    """Template (the template axis)."""
    paraphrase_id: str
    """Item paraphrase: p0 is the original wording."""
    factors: dict[str, str] = Field(default_factory=dict)
    """Levels of the survey's extra axes used by this template."""
    order: tuple[int, ...]
    """Shown order as canonical option indices: order[k] is shown at position k."""
    label_scheme: str
    """letters | numbers | yesno | option_text | custom."""
    labels: tuple[str, ...]
    """Label of each shown position."""
    shown_options: tuple[str, ...]
    """Option texts in shown order."""
    reasoning: ReasoningMode
    """direct | reasoning."""
    messages: tuple[Message, ...]
    """Chat messages (system + user) for chat models."""
    completion_prompt: str
    """Plain prompt for models without a chat template; the label follows it directly."""
    answer_prefix: str
    """Text after which the label is read (reasoning mode, completion prompts)."""
    followups: tuple[Turn, ...] = ()
    """Further turns of a multi-turn form; `{previous_answer}` is filled at run time."""
    persona_id: str = ""
    """Persona the model answers as ('' = the default context, no persona); its results' respondent."""
    persona_style: str = ""
    """How the persona is given: qa | bio | portray ('' = the default context)."""

    @property
    def n_options(self) -> int:
        return len(self.order)

    def form(self) -> dict[str, Any]:
        """The form columns of this trial (what analysis groups by)."""
        return {
            "template_id": self.template_id,
            "paraphrase_id": self.paraphrase_id,
            "order": list(self.order),
            "reasoning": self.reasoning,
            **{f"factor_{k}": v for k, v in self.factors.items()},
            **({"persona_id": self.persona_id, "persona_style": self.persona_style} if self.persona_id else {}),
        }


class _SafeDict(dict[str, str]):
    """Leaves `{previous_answer}` and unknown names in place for a later fill."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _fill(text: str, values: dict[str, str]) -> str:
    return text.format_map(_SafeDict(values))


def trial_hash(payload: dict[str, Any]) -> str:
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def item_options(survey: Survey, item: Item) -> list[Option]:
    options = list((item.options if item.options is not None else survey.options) or [])
    if survey.kind == "pairwise" and survey.judging.tie and not any(o.meta.get("tie") for o in options):
        # The tie verdict: one more canonical option after the two responses (never permuted).
        options.append(Option(text=survey.judging.tie_text, id="tie", meta={"tie": True}))
    return options


PAIRWISE_ORDERS: tuple[Order, ...] = ((0, 1), (1, 0))
"""A pair of responses is always judged in both orders (the permutation policy does not apply)."""


def _pairwise_orders(survey: Survey, item: Item) -> list[Order]:
    responses = [o for o in item_options(survey, item) if not o.meta.get("tie")]
    if len(responses) != 2:
        raise ValueError(f"pairwise item {item.id!r} has {len(responses)} responses: give exactly 2 options "
                         "(the two responses; a tie is `pairwise: {tie: true}`)")
    tail = tuple(range(2, len(item_options(survey, item))))
    return [order + tail for order in PAIRWISE_ORDERS]


def _used_factors(survey: Survey, template: Template) -> list[str]:
    names: set[str] = set()
    for text in [template.user, template.system or survey.system or "", *[t.content for t in template.followups]]:
        names |= template_placeholders(text)
    return [name for name in survey.factors if name in names]


def build_trial(
    survey: Survey,
    item: Item,
    template: Template,
    paraphrase_index: int,
    factors: dict[str, str],
    order: Order,
    reasoning: ReasoningMode,
    persona: Persona | None = None,
    persona_style: str = "",
) -> Trial:
    """Render one trial. Pure: the same arguments always give the same trial and id. With a persona, its
    context (probekit.survey.personas) comes before the user message: qa as prior turns, bio and portray as
    the message's first paragraph."""
    options = item_options(survey, item)
    texts = template.option_texts if template.option_texts is not None else [o.text for o in options]
    shown = [texts[c] for c in order]
    scheme = template.labels if template.labels is not None else survey.labels
    labels = labels_for(scheme, len(order), shown)
    option_format = template.option_format or survey.option_format
    separator = template.option_separator if template.option_separator is not None else survey.option_separator
    fields = dict(item.fields)
    if paraphrase_index:
        fields.update(item.paraphrases[paraphrase_index - 1])
    values: dict[str, str] = {**fields}
    values.update({name: survey.factors[name][level] for name, level in factors.items()})
    values["options"] = separator.join(
        option_format.format(label=label, text=text, index=k + 1) for k, (label, text) in enumerate(zip(labels, shown))
    )
    values["labels"] = ", ".join(labels)
    values["labels_or"] = join_or(labels)
    values["n_options"] = str(len(order))
    for k, (label, text) in enumerate(zip(labels, shown), start=1):
        values[f"option_{k}"] = text
        values[f"label_{k}"] = label
    system_text = template.system if template.system is not None else survey.system
    user_text = _fill(template.user, values)
    answer_prefix = template.answer_prefix if template.answer_prefix is not None else survey.answer_prefix
    if reasoning == "reasoning":
        user_text = user_text.rstrip()
        if answer_prefix and user_text.endswith(answer_prefix):
            user_text = user_text[: -len(answer_prefix)].rstrip()
        user_text = f"{user_text}\n\n{survey.reasoning.instruction}"
        answer_prefix = survey.reasoning.answer_prefix
    messages: list[Message] = []
    system_filled = _fill(system_text, values) if system_text else ""
    if system_filled:
        messages.append(Message(role="system", content=system_filled))
    context_prefix = ""
    if persona is not None:
        context = render_persona(persona, persona_style, survey.personas)
        messages.extend(Message(role=role, content=content) for role, content in context.turns)
        context_prefix = context.completion_prefix
        if context.preamble:
            user_text = f"{context.preamble}\n\n{user_text}"
    messages.append(Message(role="user", content=user_text))
    completion = (system_filled.rstrip() + "\n\n" if system_filled else "") + context_prefix + user_text.rstrip()
    if reasoning == "direct" and answer_prefix and not completion.endswith(answer_prefix):
        completion = f"{completion}\n{answer_prefix}"
    if reasoning == "reasoning":
        completion = f"{completion}\n"
    followups = tuple(Turn(role=t.role, content=_fill(t.content, values)) for t in template.followups)
    payload = {
        "survey_id": survey.id,
        "item_id": item.id,
        "template_id": template.id,
        "paraphrase_id": f"p{paraphrase_index}",
        "factors": factors,
        "order": list(order),
        "labels": labels,
        "reasoning": reasoning,
        "messages": [m.model_dump() for m in messages],
        "completion_prompt": completion,
        "followups": [t.model_dump() for t in followups],
    }
    if persona is not None:  # only then: trials without a persona keep the ids they had before personas existed
        payload["persona_id"], payload["persona_style"] = persona.id, persona_style
    return Trial(
        trial_id=trial_hash(payload),
        survey_id=survey.id,
        item_id=item.id,
        template_id=template.id,
        paraphrase_id=f"p{paraphrase_index}",
        factors=factors,
        order=tuple(order),
        label_scheme=scheme if isinstance(scheme, str) else "custom",
        labels=tuple(labels),
        shown_options=tuple(shown),
        reasoning=reasoning,
        messages=tuple(messages),
        completion_prompt=completion,
        answer_prefix=answer_prefix,
        followups=followups,
        persona_id=persona.id if persona is not None else "",
        persona_style=persona_style if persona is not None else "",
    )


def iter_trials(
    survey: Survey,
    *,
    policy: str | None = None,
    reasoning_modes: list[ReasoningMode] | None = None,
    limit: int | None = None,
    seed: int | None = None,
    personas: Sequence[str] | None = None,
) -> Iterator[Trial]:
    """All trials of a survey in a fixed order. Overrides (policy, modes, limit, seed, the persona ids to keep)
    come from the CLI. Persona contexts (the default one first) are crossed with every form."""
    parsed = parse_policy(policy or survey.permutations.policy)
    persona_contexts = contexts(survey.personas, personas)
    use_seed = survey.permutations.seed if seed is None else seed
    modes = reasoning_modes or survey.reasoning_modes
    items = survey.items[:limit] if limit else survey.items
    for item in items:
        n_options = len(item_options(survey, item))
        if survey.kind == "pairwise":
            orders = _pairwise_orders(survey, item)
        else:
            orders = orders_for(n_options, parsed, seed=use_seed, item_id=item.id, fixed=item.position_dependent)
        for paraphrase_index in range(1 + len(item.paraphrases)):
            for template in survey.templates:
                factor_names = _used_factors(survey, template)
                level_lists = [list(survey.factors[name]) for name in factor_names]
                for levels in itertools.product(*level_lists):
                    factors = dict(zip(factor_names, levels))
                    # A reversed-scale template shows each order back to front; the stored order still
                    # names canonical indices, so analyses never see the reversal.
                    reverse = template.reverse_options and survey.kind != "pairwise"  # a pair is shown both ways anyway
                    shown_orders = [tuple(reversed(o)) for o in orders] if reverse else orders
                    for persona, style in persona_contexts:
                        for order in shown_orders:
                            for mode in modes:
                                yield build_trial(survey, item, template, paraphrase_index, factors, order, mode,
                                                  persona, style)


def expand(survey: Survey, **overrides: Any) -> list[Trial]:
    """All trials as a list (see `iter_trials`)."""
    return list(iter_trials(survey, **overrides))


def axis_counts(survey: Survey, trials: list[Trial]) -> dict[str, int]:
    """Distinct values per axis, for `probekit expand`."""
    factor_levels = {f"factor:{name}": len({t.factors.get(name) for t in trials if name in t.factors}) for name in survey.factors}
    return {
        "items": len({t.item_id for t in trials}),
        "templates": len({t.template_id for t in trials}),
        "paraphrases": len({t.paraphrase_id for t in trials}),
        "orders": len({t.order for t in trials}),
        "reasoning_modes": len({t.reasoning for t in trials}),
        **factor_levels,
        **({"personas": len({t.persona_id for t in trials if t.persona_id}),
            "persona_contexts": len({(t.persona_id, t.persona_style) for t in trials})} if survey.personas else {}),
        "trials": len(trials),
    }
