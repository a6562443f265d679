import numpy as np
import pandas as pd
import pytest

from gce.book import analysis


def test_pruning_quality_counts_precision_and_recall_per_run():
    samples = pd.DataFrame({"noise": ["uniform"] * 6, "seed": [0, 0, 0, 1, 1, 1],
                            "clean": [True, True, False, True, False, False],
                            "kept": [True, False, True, False, False, False]})
    q = analysis.pruning_quality(samples)
    r0 = q.loc[("uniform", 0)]
    assert r0["correct"] == pytest.approx(2 / 3) and r0["kept"] == pytest.approx(2 / 3)
    assert r0["precision"] == pytest.approx(1 / 2) and r0["recall"] == pytest.approx(1 / 2)
    r1 = q.loc[("uniform", 1)]
    assert np.isnan(r1["precision"]) and r1["recall"] == 0.0 and r1["kept"] == 0.0


def test_pruning_quality_names_a_missing_column():
    with pytest.raises(ValueError, match="kept"):
        analysis.pruning_quality(pd.DataFrame({"noise": ["u"], "seed": [0], "clean": [True]}))
