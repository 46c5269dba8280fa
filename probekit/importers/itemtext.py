"""Item identity by text: when the source gives the item's text, a row is checked against the spec's item (or, with
`--match-items text`, matched to the item whose text it is), so a source numbered differently from the spec is
found instead of silently scored against the wrong items."""

from __future__ import annotations

from probekit.importers.labels import normalise
from probekit.survey.schema import Item, Survey

MATCH_MODES = ("id", "text")


def item_texts(item: Item) -> list[str]:
    """Every wording the spec has for an item: its fields, its paraphrases' fields and meta values named *text
    (the IPIP surveys keep the inventory's own phrasing in meta.ipip_text beside the first-person statement)."""
    texts = [v for v in item.fields.values() if isinstance(v, str)]
    texts += [v for p in item.paraphrases for v in p.values() if isinstance(v, str)]
    texts += [v for k, v in item.meta.items() if k.endswith("text") and isinstance(v, str)]
    return texts


class ItemTexts:
    """A survey's items by normalised text (case, punctuation and spacing ignored)."""

    def __init__(self, survey: Survey):
        self.survey = survey
        self.items = {item.id: item for item in survey.items}
        self.by_text: dict[str, list[str]] = {}
        for item in survey.items:
            for text in dict.fromkeys(normalise(t) for t in item_texts(item)):
                self.by_text.setdefault(text, []).append(item.id)

    def find(self, text: str) -> str:
        """The id of the item whose text this is, or a message (no item, or several) starting with 'no '/'text '."""
        ids = self.by_text.get(normalise(text), [])
        if len(ids) == 1:
            return ids[0]
        if ids:
            raise LookupError(f"text {text!r} is the text of items {', '.join(map(repr, ids))} of survey "
                              f"{self.survey.id!r}: give the item id (match by id)")
        raise LookupError(f"no item of survey {self.survey.id!r} has the text {text!r} (case, spacing and punctuation "
                          "ignored)")

    def check(self, item_id: str, text: str) -> str | None:
        """Why the source's text is not the spec's item `item_id` (None when it is one of its wordings)."""
        item = self.items.get(item_id)
        if item is None:
            return None  # the missing item is reported by the trial matching
        wanted = normalise(text)
        if any(normalise(t) == wanted for t in item_texts(item)):
            return None
        spec = item_texts(item)[0] if item_texts(item) else ""
        others = [i for i in self.by_text.get(wanted, []) if i != item_id]
        where = f"; that is the text of item {others[0]!r}" if others else ""
        return (f"item {item_id!r}: the source's text {text!r} is not the survey's {spec!r}{where}: check the source's "
                "item numbering, or match rows to items by their text with --match-items text")
