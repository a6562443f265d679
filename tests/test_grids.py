"""The pocket grids: the many-class and open-set tasks, the declared schedules, and the rules read off curves."""

import math
from dataclasses import replace

import pandas as pd
import pytest
import torch

from gce import data, noise, schedule
from gce.book import experiments
from gce.book.store import run_id
from gce.train import RunConfig, train_many


def _rows(images):
    return {bytes(x.flatten().tolist()) for x in images}


# --------------------------------------------------------------------------- digit_pairs


def test_digit_pairs_shapes_classes_and_counts():
    ds = data.load("digit_pairs")
    assert ds.num_classes == 100 and ds.classes[7] == "07" and ds.classes[42] == "42"
    per_class = data.DIGIT_PAIRS_TRAIN_PER_CLASS + data.DIGIT_PAIRS_VAL_PER_CLASS
    assert ds.train.images.shape == (100 * per_class, 1, 8, 16)
    assert len(ds.val_ids) == 100 * data.DIGIT_PAIRS_VAL_PER_CLASS
    assert ds.test.images.shape == (100 * data.DIGIT_PAIRS_TEST_PER_CLASS, 1, 8, 16)
    assert ds.train.images.dtype == torch.uint8
    assert torch.equal(torch.bincount(ds.train.labels, minlength=100), torch.full((100,), per_class))
    assert torch.equal(torch.bincount(ds.train.labels[ds.val_ids], minlength=100),
                       torch.full((100,), data.DIGIT_PAIRS_VAL_PER_CLASS))
    assert torch.equal(torch.bincount(ds.test.labels, minlength=100),
                       torch.full((100,), data.DIGIT_PAIRS_TEST_PER_CLASS))


def test_digit_pairs_halves_are_real_digits_of_the_label_from_the_same_split_only():
    digits, pairs = data.load("digits"), data.load("digit_pairs")
    for part in ("train", "test"):
        src, split = getattr(digits, part), getattr(pairs, part)
        by_digit = [_rows(src.images[src.labels == d]) for d in range(10)]
        for img, y in zip(split.images, split.labels.tolist()):
            a, b = divmod(y, 10)
            assert bytes(img[:, :, :8].flatten().tolist()) in by_digit[a]
            assert bytes(img[:, :, 8:].flatten().tolist()) in by_digit[b]
    # the two splits are built from disjoint digit images
    halves = {part: _rows(torch.cat([getattr(pairs, part).images[:, :, :, :8],
                                     getattr(pairs, part).images[:, :, :, 8:]]))
              for part in ("train", "test")}
    assert not halves["train"] & halves["test"]
    # and the validation pairs from digit images that no training pair uses
    train_ids, val_ids = data.validation_split(pairs, experiments.POCKET_VAL_FRACTION, torch.Generator())
    tr, va = pairs.train.images[train_ids], pairs.train.images[val_ids]
    assert not _rows(torch.cat([tr[..., :8], tr[..., 8:]])) & _rows(torch.cat([va[..., :8], va[..., 8:]]))
    with pytest.raises(ValueError, match="fixed validation split of 0.200"):
        data.validation_split(pairs, 0.1, torch.Generator())


def test_digit_pairs_is_deterministic():
    a, b = data.load("digit_pairs"), data.load("digit_pairs")
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.test.labels, b.test.labels)


def test_digit_pairs_next_class_follows_a_fixed_random_order_of_the_classes():
    flips = noise.flip_map("digit_pairs")
    assert sorted(flips) == list(range(100)) and sorted(flips.values()) == list(range(100))
    # one cycle through all 100 classes, as CIFAR-100's "next class circularly"
    seen, c = [], 0
    while c not in seen:
        seen.append(c)
        c = flips[c]
    assert len(seen) == 100
    # mostly unrelated pairs: few flips keep a digit in place (about 18 of 100 for a random order; 100 for a+1)
    shared = sum(a // 10 == b // 10 or a % 10 == b % 10 for a, b in flips.items())
    assert shared < 30
    T = noise.transition_matrix("class_dependent", "digit_pairs", 0.3)
    assert T[0, flips[0]] == pytest.approx(0.3) and T[5, 5] == pytest.approx(0.7)
    assert noise.flip_map("cifar100")[9] == 10  # CIFAR-100 keeps the paper's order


# --------------------------------------------------------------------------- open-set split


def test_open_set_split_labels_and_outside_images():
    digits, inset, outside = data.load("digits"), data.load("digits_0to4"), data.load("digits_5to9")
    assert inset.num_classes == outside.num_classes == 5
    assert inset.classes == ("0", "1", "2", "3", "4") and outside.classes == ("5", "6", "7", "8", "9")
    for part in ("train", "test"):
        d, i, o = (getattr(x, part) for x in (digits, inset, outside))
        assert len(i) + len(o) == len(d)
        assert torch.equal(i.images, d.images[d.labels < 5]) and torch.equal(i.labels, d.labels[d.labels < 5])
        assert torch.equal(o.images, d.images[d.labels >= 5]) and torch.equal(o.labels, d.labels[d.labels >= 5] - 5)
    splits = data.open_set_splits(inset, outside.train.images, 0.4, seed=3)
    replaced = splits.train.ood_index >= 0
    assert 0.35 < replaced.float().mean() < 0.45
    outside_rows = _rows(outside.train.images)
    assert all(bytes(x.flatten().tolist()) in outside_rows for x in splits.train.images[replaced])
    assert set(splits.train.noisy_labels.tolist()) <= set(range(5))
    # no outside image is an image of the in-set test split
    assert not _rows(splits.train.images[replaced]) & _rows(inset.test.images)


def test_table2_pocket_uses_the_same_domain_outside_images():
    exp = experiments.spec("table2", "pocket")
    assert {c.dataset for c in exp.configs} == {"digits_0to4"}
    assert {c.ood for c in exp.configs} == {"digits_5to9"}
    assert {c.noise for c in exp.configs} == {"open_set", "uniform"}


# --------------------------------------------------------------------------- memorisation onset


def test_onset_is_the_last_epoch_before_the_first_rise_above_the_running_minimum():
    curve = [0.10, 0.08, 0.06, 0.05, 0.05, 0.06, 0.08, 0.11, 0.20]
    assert schedule.memorisation_onset(curve, rise=0.05) == 7        # 0.11 >= 0.05 + 0.05 after 8 epochs
    assert schedule.memorisation_onset(curve, rise=0.02) == 6        # 0.08 >= 0.05 + 0.02 after 7 epochs
    assert schedule.memorisation_onset(curve, rise=0.2) == len(curve)  # never rises that much
    assert schedule.memorisation_onset([0.01, 0.02, 0.04, 0.1], rise=0.02) == 2  # 100 classes: rises from 1/c


def test_onset_ignores_wiggles_smaller_than_rise():
    curve = [0.3, 0.2, 0.23, 0.15, 0.18, 0.1, 0.16, 0.3, 0.01, 0.5]
    assert schedule.memorisation_onset(curve, rise=0.05) == 6  # low 0.1, then 0.16
    assert schedule.memorisation_onset(curve, rise=0.1) == 7   # 0.3 >= 0.1 + 0.1; 0.03 and 0.06 wiggles ignored


@pytest.mark.parametrize("bad, err", [([], "empty"), ([0.1, math.nan], "NaN")])
def test_onset_rejects_bad_histories(bad, err):
    with pytest.raises(ValueError, match=err):
        schedule.memorisation_onset(bad)


def test_plateau_epoch_is_where_the_loss_stops_improving_by_one_percent():
    falling = [1.0 / (e + 1) for e in range(30)]
    assert schedule.plateau_epoch(falling, patience=5) is None or schedule.plateau_epoch(falling) > 20
    flat_after_8 = [1.0, 0.8, 0.6, 0.5, 0.45, 0.42, 0.41, 0.405] + [0.404] * 10
    # after 13 epochs the last 5 (0.404) are not 1 % below the best before them (0.405); after 12 they were
    # (0.404 < 0.41 - 0.0041)
    assert schedule.plateau_epoch(flat_after_8, patience=5, min_delta=0.01) == 13
    rising = [0.5, 0.4, 0.35, 0.36, 0.4, 0.5, 0.6, 0.7]
    assert schedule.plateau_epoch(rising, patience=5) == 8
    assert schedule.plateau_epoch([1.0, 0.9], patience=5) is None
    with pytest.raises(ValueError, match="patience"):
        schedule.plateau_epoch(rising, patience=0)


def test_has_fitted_asks_for_a_level_curve_above_chance():
    level = [0.1 + 0.8 * min(1, e / 10) for e in range(40)]
    assert schedule.has_fitted(level, 40, chance=0.1)
    climbing = [0.1 + 0.02 * e for e in range(40)]      # +10 points between the last two windows
    assert not schedule.has_fitted(climbing, 40, chance=0.1)
    falling = [0.9 - 0.01 * e for e in range(40)]       # memorising: falls, counts as fitted
    assert schedule.has_fitted(falling, 40, chance=0.1)
    assert not schedule.has_fitted([0.012] * 80, 80, chance=0.01)  # flat at chance
    # 100 classes: flat, then +0.8 points in the last 5 epochs at about 5 % (what L_q did on digit_pairs)
    crawling = [0.02] * 60 + [0.02 + 0.0016 * e for e in range(1, 21)]
    assert not schedule.has_fitted(crawling, 80, chance=0.01)
    assert schedule.has_fitted(crawling[:70] + [crawling[69]] * 10, 80, chance=0.01)  # levelled at 3.6 %
    with pytest.raises(ValueError, match="drop"):
        schedule.has_fitted(level, 5)


def test_the_engine_starts_pruning_at_the_runs_own_validation_plateau():
    cfg = experiments.spec("table2", "pocket").configs
    trunc = [c for c in cfg if c.method == "trunc_lq" and c.seed == 0][0]
    assert trunc.prune_rule == "plateau" and trunc.prune_epochs() == []
    from dataclasses import replace
    res = train_many([replace(trunc, epochs=40)])[0]
    kept = res.history["kept"]
    first = next(e for e, k in enumerate(kept) if k < 1)
    start = schedule.plateau_epoch(res.history["val_loss"][:first])
    assert start == first  # the first pruning step came right after the epoch at which the plateau was seen
    assert all(kept[e] == kept[first] for e in range(first, min(first + 10, 40)))  # then every 10 epochs


def test_measured_onsets_reads_the_seed_averaged_curve():
    runs = pd.DataFrame({"run_id": ["a", "b"], "dataset": "digits", "noise": "uniform", "eta": 0.4})
    a = [0.1, 0.05, 0.04, 0.2]
    b = [0.1, 0.05, 0.06, 0.0]   # mean curve: 0.1, 0.05, 0.05, 0.1 -> low 0.05, rise of 0.05 at index 3
    hist = pd.DataFrame({"run_id": ["a"] * 4 + ["b"] * 4, "epoch": [1, 2, 3, 4] * 2, "softmax_noisy": a + b})
    out = experiments.measured_onsets(runs, hist, rise=0.04)
    assert out.to_dict("records") == [{"dataset": "digits", "noise": "uniform", "eta": 0.4, "seeds": 2,
                                       "onset": 3, "rule": True}]


# --------------------------------------------------------------------------- grids


def test_every_paper_table1_block_has_a_pocket_block():
    exp = experiments.spec("table1", "pocket")
    covered = {p for d in exp.datasets for p in experiments.PAPER_ANALOGUE[d]}
    assert covered == {"fashionmnist", "cifar10", "cifar100"}
    assert set(exp.datasets) == {"digits", "digit_pairs"}
    for d in exp.datasets:
        n = sum(c.dataset == d for c in exp.configs)
        assert n == len(experiments.TABLE1_NOISE) * len(experiments.TABLE1_METHODS) * \
            experiments.POCKET_TABLE1_SEEDS[d]


def test_pocket_schedules_are_the_papers_literal_epochs_for_every_method():
    t1 = experiments.spec("table1", "pocket")
    for d, paper in (("digits", "cifar10"), ("digit_pairs", "cifar100")):
        want = schedule.PAPER_SCHEDULES[paper]
        got = {(c.epochs, c.milestones, c.prune_start, c.prune_every, c.lr, c.val_fraction)
               for c in t1.configs if c.dataset == d}
        assert got == {(want["epochs"], want["milestones"], want["prune_start"], want["prune_every"],
                        experiments.POCKET_LR, experiments.POCKET_VAL_FRACTION)}
    t2 = experiments.spec("table2", "pocket")
    assert {(c.epochs, c.milestones, c.prune_rule, c.prune_every) for c in t2.configs} == {(100, (), "plateau", 10)}


def test_the_sensitivity_grid_moves_only_the_first_drop():
    exp = experiments.spec("sensitivity", "pocket")
    firsts = sorted({c.milestones[0] for c in exp.configs})
    assert firsts == [13, 27, 60]  # the declared drop (40) is Table 1's own runs
    for c in exp.configs:
        assert c.prune_start == c.milestones[0] and c.epochs == 120 and c.dataset == "digits"
        assert c.milestones == ((c.milestones[0], 2 * c.milestones[0]) if 2 * c.milestones[0] < 120
                                else (c.milestones[0],))
    assert {c.method for c in exp.configs} == set(experiments.SENSITIVITY_METHODS)
    t1 = experiments.spec("table1", "pocket").configs
    declared = [replace(c, milestones=(40, 80), prune_start=40) for c in exp.configs if c.milestones[0] == 13]
    assert {run_id(c) for c in declared} <= {run_id(c) for c in t1}
    with pytest.raises(ValueError, match="outside"):
        experiments.sensitivity_schedule(3.0)


def test_grid_sizes_and_unchanged_figure_designs():
    sizes = {n: len(experiments.spec(n, "pocket").configs) for n in experiments.EXPERIMENTS}
    assert sizes == {"onset": 18, "fig1": 30, "fig2": 90, "table1": 384, "table2": 50, "sensitivity": 120,
                     "human": 0, "later": 256}
    fig1 = experiments.spec("fig1", "pocket")
    assert {(c.dataset, c.epochs) for c in fig1.configs} == {("digits", 120), ("digit_pairs", 150)}
    assert {c.optimizer for c in fig1.configs} == {"adam"}
    assert {c.epochs for c in experiments.spec("fig2", "pocket").configs} == {120}


def test_the_later_grid_is_table1s_cells_for_each_later_loss():
    table1 = experiments.spec("table1", "pocket").configs
    later = experiments.spec("later", "pocket").configs
    cells = {replace(c, method="cce") for c in table1}
    assert {replace(c, method="cce") for c in later} == cells
    assert {c.method for c in later} == set(experiments.LATER_METHODS)
    cpu = experiments.spec("later", "cpu").configs  # the cpu scale: its uniform-noise settings only
    assert {c.noise for c in cpu} == {"uniform"} and len(cpu) == 4 * 4 * 3


def test_the_onset_probe_has_no_learning_rate_drop_and_tracks_the_softmax():
    exp = experiments.spec("onset", "pocket")
    assert all(c.method == "cce" and c.milestones == () and c.track_train_softmax for c in exp.configs)
    for d, (kind, eta) in experiments.ONSET_NOISE.items():
        assert any(c.dataset == d and (c.noise, c.eta) == (kind, eta) for c in exp.configs)


def test_grid_flops_counts_an_mlp_run_by_hand():
    cfg = RunConfig(dataset="digits", model="mlp", model_kwargs=(("hidden", (256,)),), epochs=2,
                    track_train_softmax=False, method="cce")
    n_val = round(0.1 * 1198)
    fwd = 2 * (64 * 256 + 256 * 10)
    assert experiments.grid_flops([cfg]) == fwd * 2 * (3 * (1198 - n_val) + n_val + 599)
    with pytest.raises(ValueError, match="resnet34"):
        experiments.grid_flops([RunConfig(dataset="digits", model="resnet34")])


def test_kept_by_class_finds_a_class_dropped_whole():
    frame = pd.DataFrame({"run": 0, "noise": "open_set", "eta": 0.4, "seed": 0,
                          "noisy_label": [0, 0, 0, 1, 1, 1],
                          "clean": [True, True, False, True, True, False],
                          "kept": [True, False, False, False, False, True]})
    out = experiments.kept_by_class(frame).set_index("noisy_label")
    assert out.loc[0, "n"] == 3 and out.loc[0, "kept"] == pytest.approx(1 / 3)
    assert out.loc[0, "clean_kept"] == pytest.approx(0.5) and out.loc[1, "clean_kept"] == 0.0
    with pytest.raises(ValueError, match="clean"):
        experiments.kept_by_class(frame.drop(columns=["clean"]))


def test_plot_memorisation_onset_draws_one_panel_per_rule_dataset():
    import matplotlib
    matplotlib.use("Agg")
    from gce.book import plots
    runs = pd.DataFrame({"run_id": ["a", "b", "c"], "dataset": ["digits", "digits", "digit_pairs"],
                         "noise": "uniform", "eta": [0.4, 0.2, 0.4]})
    hist = pd.DataFrame({"run_id": [r for r in "abc" for _ in range(4)], "epoch": [1, 2, 3, 4] * 3,
                         "softmax_clean": 0.5, "softmax_noisy": [0.1, 0.05, 0.06, 0.2] * 3})
    onsets = experiments.measured_onsets(runs, hist)
    fig = plots.plot_memorisation_onset(runs, hist, onsets)
    titles = sorted(ax.get_title() for ax in fig.axes)
    assert titles == ["digit_pairs", "digits"]
