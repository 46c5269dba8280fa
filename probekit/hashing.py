"""Canonical JSON and the content hashes built on it, in one place: what identifies a run's configuration (its
config hash: auto-resume, a tracking slot's run, a judging stage, an import), a trial, a cached request.

The byte forms are part of the stores already written (config hashes and trial ids are stored and compared
with new ones), so each function here reproduces exactly the form it replaced: `canonical_json` is
`json.dumps(value, sort_keys=True)` (ASCII escapes, default separators); `compact_json` is the compact UTF-8
form trial ids and cache keys use."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> str:
    """Keys sorted, ASCII escapes, `json`'s default separators: the form run configurations are stored and hashed in."""
    return json.dumps(value, sort_keys=True)


def compact_json(value: Any, *, default: Any = None) -> str:
    """Keys sorted, UTF-8 kept, no spaces (trial ids, response-cache keys); `default` as in `json.dumps`."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=default)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def config_hash(config: Any) -> str:
    """The hash a run's configuration is found by (a run with the same hash is resumed, not repeated)."""
    return sha256_hex(canonical_json(config))


def extended_hash(base_hash: str, extra: Any) -> str:
    """A configuration hash extended by more settings (a tracking slot's `tracking` block): never equal to
    the base hash, so a run made with the extra settings is never resumed without them."""
    return sha256_hex(f"{base_hash}|{canonical_json(extra)}")
