"""The verdict display helpers of gce.book.claims: text that fits the book's column, and says what the checks said."""

import numpy as np
import pandas as pd
import pytest

from gce.book import claims


def _numbers():
    return pd.DataFrame({
        "dataset": ["digits", "digits", "digit_pairs"], "noise": ["uniform"] * 3, "eta": [0.2, 0.6, 0.2],
        "lq_mean": [92.42125, 66.7109, 6.54], "lq_se": [0.30111, 2.98649, 0.50512],
        "cce_mean": [95.326, 86.477, 77.2], "forward_T_hat_mean": [94.19, 77.997, 7.68],
        "threshold_q": [0.8, np.nan, 0.0], "wins": [0.0, 1.0, 0.0], "n": [5.0, 5.0, 5.0]})


def test_numbers_text_rounds_shows_whole_numbers_as_integers_and_missing_values_as_a_dash():
    text = claims.numbers_text(_numbers(), width=200)
    lines = text.splitlines()
    assert len(lines) == 4  # header and three rows: no split at this width
    assert "92.421" in text and "92.42125" not in text and "2.986" in text
    header = lines[0].split()
    row = dict(zip(header, lines[2].split()))
    assert row["threshold_q"] == "-" and row["wins"] == "1" and row["n"] == "5" and row["eta"] == "0.6"
    assert "nan" not in text.lower()


@pytest.mark.parametrize("width", [50, 60, 88])
def test_numbers_text_splits_a_wide_table_into_groups_that_repeat_the_key_columns(width):
    text = claims.numbers_text(_numbers(), width=width)
    groups = text.split("\n\n")
    assert len(groups) > 1
    assert all(len(line) <= width for line in text.splitlines())
    for group in groups:
        lines = group.splitlines()
        assert lines[0].split()[:3] == ["dataset", "noise", "eta"]
        assert [line.split()[0] for line in lines[1:]] == ["digits", "digits", "digit_pairs"]
    shown = [name for group in groups for name in group.splitlines()[0].split()[3:]]
    assert shown == [c for c in _numbers().columns if c not in ("dataset", "noise", "eta")]


def test_numbers_text_of_no_numbers_is_empty_and_bad_input_is_named():
    assert claims.numbers_text(pd.DataFrame()) == ""
    with pytest.raises(ValueError, match="width=5"):
        claims.numbers_text(_numbers(), width=5)
    with pytest.raises(ValueError, match="list"):
        claims.numbers_text([1, 2, 3])


def _long_verdict():
    reason = ("eta = 0.2: peak epoch 38.2 -> 61.2, drop 4.07 -> 0.23 points (CCE -> q = 1); eta = 0.6: peak "
              "epoch 19.8 -> 32.0, drop 26.51 -> 4.87 points (CCE -> q = 1)")
    return claims.Verdict(claims.CONTRADICTED, reason, _numbers())


def test_format_check_fits_the_width_and_shows_claim_rule_reason_and_numbers():
    claim = claims.get("larger_q_delays_overfitting")
    text = claims.format_check(claim, _long_verdict(), width=72)
    lines = text.splitlines()
    assert lines[0] == "larger_q_delays_overfitting (Sec. 4.1, fig2): contradicted"
    assert all(len(line) <= 72 for line in lines)
    assert [line.split(":")[0].strip() for line in lines if line.startswith("  ") and ":" in line[:10]] == [
        "claim", "rule", "reason"]
    flat = " ".join(line.strip() for line in lines)
    assert claim.text in flat and claim.rule in flat and _long_verdict().reason in flat
    # "eta = 0.6" and "Fig. 2" are never cut in two by the wrapping
    assert not any(line.rstrip().endswith(("eta", "=", "Fig.")) for line in lines)
    assert "lq_mean" in text and "26.51" in text  # the numbers follow, indented
    assert all(line.startswith("  ") for line in lines[1:] if line)


def test_format_check_takes_an_id_and_leaves_out_an_empty_table():
    verdict = claims.Verdict(claims.NOT_TESTABLE, "no stored runs of table2")
    text = claims.format_check("trunc_best_open_set", verdict)
    assert text.splitlines()[0] == "trunc_best_open_set (Sec. 4.3, table2): not testable"
    assert text.splitlines()[-1] == "  reason: no stored runs of table2"
    with pytest.raises(ValueError, match="unknown claim id"):
        claims.format_check("no_such_claim", verdict)
    with pytest.raises(ValueError, match="Verdict"):
        claims.format_check("trunc_best_open_set", "holds")


def test_format_verdicts_lists_every_row_within_the_width():
    verdicts = pd.DataFrame({
        "id": [c.id for c in claims.CLAIMS[:3]], "section": [c.section for c in claims.CLAIMS[:3]],
        "claim": [c.text for c in claims.CLAIMS[:3]], "status": [claims.HOLDS, claims.CONTRADICTED, claims.NOT_TESTABLE],
        "reason": ["short", _long_verdict().reason, "no clean-label CCE and MAE runs of fig1 are stored"]})
    text = claims.format_verdicts(verdicts, width=60)
    lines = text.splitlines()
    assert all(len(line) <= 60 for line in lines)
    flat = " ".join(line.strip() for line in lines)
    where = [flat.find(f"{c.id} (Sec. {c.section}): {s}") for c, s in zip(claims.CLAIMS[:3], verdicts["status"])]
    assert -1 not in where and where == sorted(where)
    assert [line for line in lines if not line.startswith(" ")][:2] == [
        "mae_slower_clean (Sec. 3.2): holds", "mae_lower_clean (Sec. 3.2): contradicted"]
    assert sum(line.startswith("  reason:") for line in lines) == 3
    only_reason = claims.format_verdicts(verdicts, fields=("reason",))
    assert "claim:" not in only_reason and "reason:" in only_reason


def test_format_verdicts_names_missing_columns_and_bad_widths():
    with pytest.raises(ValueError, match="reason"):
        claims.format_verdicts(pd.DataFrame({"id": ["a"], "section": ["3.2"], "status": ["holds"],
                                             "claim": ["x"]}))
    with pytest.raises(ValueError, match="width=10"):
        claims.format_verdicts(pd.DataFrame(), width=10)


def test_side_by_side_and_changes_compare_two_scales():
    import pandas as pd

    from gce.book import claims
    from gce.book.chapters import claims as page

    ids = [c.id for c in claims.CLAIMS][:3]
    a = pd.DataFrame({"id": ids, "status": [claims.HOLDS, claims.INCONCLUSIVE, claims.NOT_TESTABLE]})
    b = pd.DataFrame({"id": ids[::-1], "status": [claims.NOT_TESTABLE, claims.HOLDS, claims.HOLDS]})
    table = page.side_by_side({"pocket": a, "cpu": b})
    assert list(table.index) == ids and list(table.columns) == ["pocket", "cpu"]
    got = page.changes(table, "pocket", "cpu")
    assert got["same"] == "2" and got["moved"] == f"`{ids[1]}`: {claims.INCONCLUSIVE} → {claims.HOLDS}"
    with pytest.raises(ValueError, match="no verdicts at scale 'lite'"):
        page.changes(table, "pocket", "lite")
