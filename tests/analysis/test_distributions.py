"""Entropy, JSD, GJSD and the MoralChoice decomposition: hand-computed cases and invariants."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from probekit.analysis.distributions import entropy, expected_value, form_uncertainty, gjsd, jsd, normalise
from probekit.analysis.uncertainty import item_uncertainty, trial_table

H_75_25 = 0.8112781244591328  # −0.75·log2 0.75 − 0.25·log2 0.25, by hand: 0.75·0.4150375 + 0.25·2


def test_entropy_by_hand() -> None:
    assert entropy([0.5, 0.25, 0.25]) == pytest.approx(1.5)  # 0.5·1 + 2·0.25·2
    assert entropy([1.0, 0.0]) == 0.0
    assert entropy([0.25] * 4) == pytest.approx(2.0)
    assert entropy([0.75, 0.25]) == pytest.approx(H_75_25)


def test_jsd_by_hand() -> None:
    assert jsd([1, 0], [0, 1]) == pytest.approx(1.0)  # H(½,½) − 0
    assert jsd([1, 0], [0.5, 0.5]) == pytest.approx(H_75_25 - 0.5)  # H(¾,¼) − (0 + 1)/2
    assert jsd([0.3, 0.7], [0.3, 0.7]) == pytest.approx(0.0)


def test_gjsd_three_forms_by_hand() -> None:
    # mixture (2/3, 1/3): H = log2 3 − 2/3; the forms are deterministic, so GJSD = H(mixture)
    assert gjsd([[1, 0], [1, 0], [0, 1]]) == pytest.approx(math.log2(3) - 2 / 3)


def test_normalise_and_expected_value() -> None:
    assert normalise([2.0, 2.0, 4.0]).tolist() == [0.25, 0.25, 0.5]
    assert normalise([0.0, 0.0]).tolist() == [0.5, 0.5]  # no valid mass → uniform (MoralChoice)
    assert expected_value([0, 0, 0.5, 0.5, 0], [1, 2, 3, 4, 5]) == pytest.approx(3.5)


def test_form_uncertainty_by_hand() -> None:
    P = np.array([
        [[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]],   # two opposite forms (third slot absent)
        [[1.0, 0.0], [0.5, 0.5], [0.0, 0.0]],   # certain vs indifferent
        [[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]],   # three forms, one flips
    ])
    mask = np.array([[True, True, False], [True, True, False], [True, True, True]])
    out = form_uncertainty(P, mask)
    assert out["marginal"].tolist()[0] == [0.5, 0.5]
    assert out["entropy"] == pytest.approx([1.0, H_75_25, math.log2(3) - 2 / 3])
    assert out["qf_e"] == pytest.approx([0.0, 0.5, 0.0])
    assert out["gjsd"] == pytest.approx([1.0, H_75_25 - 0.5, math.log2(3) - 2 / 3])
    assert out["qf_c"] == pytest.approx([0.0, 1 - (H_75_25 - 0.5), 0.0])
    assert out["n_forms"].tolist() == [2, 2, 3]


def _forms(dists: list[list[float] | None], n_ok: list[int] | None = None) -> pd.DataFrame:
    n = len(dists)
    return pd.DataFrame({
        "run_id": ["r"] * n, "model": ["m"] * n, "item_id": ["x"] * n, "trial_id": [f"t{i}" for i in range(n)],
        "template_id": ["ab"] * n, "paraphrase_id": ["p0"] * n, "reasoning": ["direct"] * n, "mode": ["logprob"] * n,
        "option_order": [(0, 1)] * n, "n_rows": [1] * n, "n_ok": n_ok or [1] * n, "n_refusal": [0] * n,
        "n_invalid": [0 if d is not None else 1 for d in dists], "n_error": [0] * n, "valid_mass": [0.9] * n,
        "dist": [None if d is None else np.array(d) for d in dists],
    })


def test_item_uncertainty_form_without_answer_is_uniform_and_reported() -> None:
    table = item_uncertainty(_forms([[1.0, 0.0], None], n_ok=[1, 0]))
    row = table.iloc[0]
    assert row["n_forms"] == 2 and row["n_valid_forms"] == 1 and row["valid_fraction"] == 0.5
    assert row["marginal"] == pytest.approx([0.75, 0.25])  # (1,0) and uniform (½,½)
    assert row["qf_e"] == pytest.approx(0.5)


def test_trial_table_entropy_and_rates() -> None:
    table = trial_table(_forms([[0.5, 0.5], None], n_ok=[1, 0]))
    assert table["entropy"].iloc[0] == pytest.approx(1.0)
    assert math.isnan(table["entropy"].iloc[1])
    assert table["invalid_rate"].tolist() == [0.0, 1.0]


dist_strategy = arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(2, 5)),
                       elements=st.floats(0.0, 1.0, allow_nan=False))


@settings(max_examples=60, deadline=None)
@given(dist_strategy)
def test_entropy_decomposes_into_qfe_plus_gjsd(raw: np.ndarray) -> None:
    P = normalise(raw)
    out = form_uncertainty(P)
    assert out["entropy"] == pytest.approx(out["qf_e"] + out["gjsd"], abs=1e-9)
    for i in range(P.shape[0]):
        assert out["gjsd"][i] == pytest.approx(gjsd(P[i]), abs=1e-9)
    assert np.all(out["entropy"] <= math.log2(P.shape[2]) + 1e-9)
    assert np.all((out["qf_c"] >= -1e-12) & (out["qf_c"] <= 1 + 1e-12))


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.integers(2, 6), elements=st.floats(0.0, 1.0, allow_nan=False)), st.integers(1, 7))
def test_qfc_is_one_and_gjsd_zero_when_all_forms_agree(raw: np.ndarray, n_forms: int) -> None:
    p = normalise(raw)
    out = form_uncertainty(np.tile(p, (1, n_forms, 1)))
    assert out["qf_c"][0] == pytest.approx(1.0)
    assert out["gjsd"][0] == pytest.approx(0.0, abs=1e-9)
    assert out["qf_e"][0] == pytest.approx(entropy(p))


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, (2, 4), elements=st.floats(0.0, 1.0, allow_nan=False)))
def test_jsd_symmetric_and_bounded(raw: np.ndarray) -> None:
    p, q = normalise(raw)
    assert jsd(p, q) == pytest.approx(jsd(q, p))
    assert -1e-12 <= jsd(p, q) <= 1 + 1e-12
