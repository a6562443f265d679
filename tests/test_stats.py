"""gce.book.stats: paired and summary effects, one-sided p-values, Holm's adjustment (against scipy and by hand)."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from gce.book import stats


def test_paired_effect_equals_a_one_sample_t_on_the_differences():
    a, b = [90.1, 91.0, 89.5, 92.2, 90.7], [88.0, 90.2, 88.9, 90.1, 89.9]
    e = stats.paired(a, b)
    d = np.subtract(a, b)
    assert e.mean == pytest.approx(d.mean()) and e.se == pytest.approx(d.std(ddof=1) / math.sqrt(5)) and e.df == 4
    want = scipy_stats.ttest_rel(a, b, alternative="greater").pvalue
    assert stats.p_above(e) == pytest.approx(want)
    with pytest.raises(ValueError, match="one value per seed"):
        stats.paired(a, b[:4])
    with pytest.raises(ValueError, match="finite"):
        stats.paired([1.0, float("nan")], [1.0, 2.0])


def test_summary_effect_is_welch_with_conservative_degrees_of_freedom():
    e = stats.from_summary(92.58, 0.11, 5, 92.09, 0.18, 5)
    assert e.mean == pytest.approx(0.49) and e.se == pytest.approx(math.sqrt((0.11 ** 2 + 0.18 ** 2) / 5))
    assert e.df == 4
    with pytest.raises(ValueError, match="n_b"):
        stats.from_summary(1, 1, 5, 1, 1, 0)


def test_pooled_averages_effects_and_adds_their_variances():
    e = stats.pooled([stats.Effect(1.0, 0.3, 4), stats.Effect(3.0, 0.4, 2)])
    assert (e.mean, e.se, e.df) == (pytest.approx(2.0), pytest.approx(0.25), 2)


def test_p_above_edge_cases():
    assert stats.p_above(stats.Effect(1.0, 0.0, 4)) == 0.0
    assert stats.p_above(stats.Effect(-1.0, 0.0, 4)) == 1.0
    assert math.isnan(stats.p_above(stats.Effect(1.0, 0.0, 0)))  # one seed: no decision
    assert stats.p_above(stats.Effect(1.0, 0.5, 4), 0.5) == pytest.approx(scipy_stats.t.sf(1.0, 4))


def test_holm_matches_the_step_down_definition():
    p = [0.01, 0.04, 0.03, float("nan"), 0.2]
    # sorted 0.01, 0.03, 0.04, 0.2 (m = 4): 0.04, 0.09, 0.09 (monotone), 0.2
    assert stats.holm(p)[:3] == pytest.approx([0.04, 0.09, 0.09])
    assert math.isnan(stats.holm(p)[3]) and stats.holm(p)[4] == pytest.approx(0.2)
    assert stats.holm([]) == []
