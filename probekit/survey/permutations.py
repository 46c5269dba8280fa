"""Option-order policies. Pure functions: an order is a tuple of canonical option indices, in shown order.

`order[k] = c` means the option shown at position k is canonical option c. Options are never shuffled in
place: the canonical list stays as written and every trial stores its order.
"""

from __future__ import annotations

import hashlib
import itertools
import random
from dataclasses import dataclass

Order = tuple[int, ...]

MAX_ALL_OPTIONS = 6  # 6! = 720 orders per item; beyond that 'all' is never what a user wants


@dataclass(frozen=True)
class Policy:
    """A parsed permutation policy."""

    name: str
    count: int = 0
    """K for random:K."""
    alpha: float = 0.05
    """Fraction of items run in all cyclic rotations for pride."""


def parse_policy(text: str) -> Policy:
    """Parse 'identity | reversed | cyclic | all | random:K | pride[:alpha]' (raises ValueError with the fix)."""
    name, _, arg = text.strip().partition(":")
    if name in {"identity", "reversed", "cyclic", "all"}:
        if arg:
            raise ValueError(f"policy {name!r} takes no argument; write just '{name}'")
        return Policy(name)
    if name == "random":
        if not arg.isdigit() or int(arg) < 1:
            raise ValueError("write random:K with K a positive whole number, e.g. random:3")
        return Policy(name, count=int(arg))
    if name == "pride":
        alpha = 0.05
        if arg:
            try:
                alpha = float(arg)
            except ValueError:
                raise ValueError("write pride:ALPHA with ALPHA in (0, 1], e.g. pride:0.05") from None
        if not 0 < alpha <= 1:
            raise ValueError("pride's alpha must be in (0, 1], e.g. pride:0.05")
        return Policy(name, alpha=alpha)
    raise ValueError(
        f"unknown permutation policy {text!r}; use identity, reversed, cyclic, all, random:K or pride[:alpha]"
    )


def cyclic_orders(n: int) -> list[Order]:
    """The n rotations: every option appears once in every position."""
    return [tuple((start + k) % n for k in range(n)) for start in range(n)]


def _stable_unit(seed: int, key: str) -> float:
    """A deterministic number in [0, 1) for (seed, key), independent of Python's hash randomisation."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def pride_calibration_item(item_id: str, alpha: float, seed: int) -> bool:
    """Whether an item belongs to PriDe's calibration fraction (all rotations)."""
    return _stable_unit(seed, f"pride:{item_id}") < alpha


def orders_for(n: int, policy: Policy, *, seed: int, item_id: str, fixed: bool = False) -> list[Order]:
    """All shown orders for one item with n options. `fixed` items (position dependent) keep identity."""
    identity: Order = tuple(range(n))
    if fixed or n < 2 or policy.name == "identity":
        return [identity]
    if policy.name == "reversed":
        return [identity, tuple(reversed(identity))]
    if policy.name == "cyclic":
        return cyclic_orders(n)
    if policy.name == "all":
        if n > MAX_ALL_OPTIONS:
            raise ValueError(f"'all' orders of {n} options is {n}! prompts per form; use cyclic or random:K")
        return list(itertools.permutations(range(n)))
    if policy.name == "random":
        rng = random.Random(f"{seed}:{item_id}")
        chosen: list[Order] = [identity]
        all_orders = [o for o in itertools.permutations(range(n))] if n <= MAX_ALL_OPTIONS else None
        while len(chosen) < min(policy.count, len(all_orders) if all_orders else policy.count):
            if all_orders is not None:
                candidate = rng.choice(all_orders)
            else:
                shuffled = list(range(n))
                rng.shuffle(shuffled)
                candidate = tuple(shuffled)
            if candidate not in chosen:
                chosen.append(candidate)
        return chosen
    if policy.name == "pride":
        if pride_calibration_item(item_id, policy.alpha, seed):
            return cyclic_orders(n)
        return [identity]
    raise ValueError(f"unknown policy {policy.name}")


def invert(order: Order) -> Order:
    """Inverse permutation: position of each canonical option in the shown order."""
    inverse = [0] * len(order)
    for position, canonical in enumerate(order):
        inverse[canonical] = position
    return tuple(inverse)


def to_canonical(shown_values: list[float], order: Order) -> list[float]:
    """Map per-position values (shown order) to canonical option order."""
    canonical = [0.0] * len(order)
    for position, canonical_index in enumerate(order):
        canonical[canonical_index] = shown_values[position]
    return canonical
