"""CIFAR-10N / CIFAR-100N human labels: safe loading and its checks on tiny official-format files, the shipped
count matrices (recomputed from ../shared/data/cifar-n/ when present), the analysis, and the engine's human noise."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision import datasets as tv

from gce import data, human_noise, noise
from gce.book.store import ResultStore, run_id
from gce.classes import class_names
from conftest import patch_cifar_md5s, write_cifar10

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cifar-n"


def write_human_file(path: Path, clean, rng, c=10, keys=None) -> dict:
    """A label file in the official format: a dict of int64 numpy arrays saved with torch.save."""
    clean = np.asarray(clean, dtype=np.int64)
    keys = keys or ("aggre_label", "worse_label", "random_label1", "random_label2", "random_label3")
    labels = {"clean_label": clean}
    for k in keys:
        flip = rng.random(len(clean)) < 0.3
        labels[k] = np.where(flip, rng.integers(0, c, len(clean)), clean).astype(np.int64)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(labels, path)
    return labels


@pytest.fixture
def tiny_cifar10n(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    folder, _, train_y, _, _ = write_cifar10(tmp_path, rng, n_per_batch=12, n_test=6)
    patch_cifar_md5s(monkeypatch, tv.CIFAR10, folder)
    labels = write_human_file(human_noise.cifar_n_path("cifar10", tmp_path), train_y, rng)
    return tmp_path, labels


# --------------------------------------------------------------------------- loading


def test_tiny_official_file_loads_safely_and_matches(tmp_path):
    rng = np.random.default_rng(1)
    clean = rng.integers(0, 10, 40)
    written = write_human_file(tmp_path / "CIFAR-10_human.pt", clean, rng)
    got = human_noise.load_cifar_n("cifar10", path=tmp_path / "CIFAR-10_human.pt", download=False, train_labels=clean)
    assert set(got) == set(written)
    for k, v in written.items():
        np.testing.assert_array_equal(got[k], v)
        assert got[k].dtype == np.int64


def test_cifar100_file_with_coarse_lists(tmp_path):
    rng = np.random.default_rng(2)
    clean = rng.integers(0, 100, 30)
    path = tmp_path / "CIFAR-100_human.pt"
    labels = write_human_file(path, clean, rng, c=100, keys=("noisy_label",))
    labels["clean_coarse_label"] = [int(k) for k in human_noise.coarse_labels()[clean]]  # lists, as in the real file
    labels["noisy_coarse_label"] = [int(k) for k in human_noise.coarse_labels()[labels["noisy_label"]]]
    torch.save(labels, path)
    got = human_noise.load_cifar_n("cifar100", path=path, download=False, train_labels=clean)
    np.testing.assert_array_equal(got["noisy_label"], labels["noisy_label"])
    np.testing.assert_array_equal(got["clean_coarse_label"], human_noise.coarse_labels()[clean])


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch /tmp/gce_human_noise_pwned",))


def test_a_file_with_code_in_it_is_refused_not_run(tmp_path):
    marker = Path("/tmp/gce_human_noise_pwned")
    marker.unlink(missing_ok=True)
    path = tmp_path / "CIFAR-10_human.pt"
    torch.save({"clean_label": np.zeros(3, dtype=np.int64), "evil": _Payload()}, path)
    with pytest.raises(data.DatasetCorrupt, match="CIFAR-10_human.pt safely.*GLOBAL .*system"):
        human_noise.load_cifar_n("cifar10", path=path, download=False, train_labels=[0, 0, 0])
    assert not marker.exists()


def test_missing_file_is_unavailable_and_names_the_path_and_url(tmp_path):
    with pytest.raises(data.DatasetUnavailable, match="cifar-n/CIFAR-10_human.pt") as err:
        human_noise.load_cifar_n("cifar10", root=tmp_path, download=False)
    assert human_noise.CIFAR_N_URLS["cifar10"] in str(err.value)
    assert err.value.path == tmp_path / "cifar-n" / "CIFAR-10_human.pt"


def test_failed_download_is_unavailable(tmp_path, monkeypatch):
    def fail(url, dst, *a, **kw):
        raise OSError("no network here")
    monkeypatch.setattr(torch.hub, "download_url_to_file", fail)
    with pytest.raises(data.DatasetUnavailable, match="download of https://raw.githubusercontent.com/UCSC-REAL"):
        human_noise.load_cifar_n("cifar100", root=tmp_path, download=True)


def test_download_with_wrong_checksum_is_corrupt_and_removed(tmp_path, monkeypatch):
    def fake(url, dst, *a, **kw):
        Path(dst).write_bytes(b"not the file")
    monkeypatch.setattr(torch.hub, "download_url_to_file", fake)
    with pytest.raises(data.DatasetCorrupt, match="sha256"):
        human_noise.load_cifar_n("cifar10", root=tmp_path, download=True)
    assert not list((tmp_path / "cifar-n").iterdir())


@pytest.mark.parametrize("damage, message", [
    (lambda d: d.pop("worse_label"), "lacks the keys worse_label"),
    (lambda d: d.__setitem__("aggre_label", d["aggre_label"][:-1]), "has 19 labels, expected 20"),
    (lambda d: d.__setitem__("random_label2", d["random_label2"] + 10), r"labels in \[1\d, 1\d\], expected 0..9"),
    (lambda d: d.__setitem__("clean_label", (d["clean_label"] + 1) % 10), "differs from the CIFAR training labels"),
    (lambda d: d.__setitem__("aggre_label", d["aggre_label"].reshape(2, -1)), "expected 1-d integer labels"),
])
def test_damaged_files_are_corrupt_with_a_reason(tmp_path, damage, message):
    rng = np.random.default_rng(3)
    clean = rng.integers(0, 10, 20)
    path = tmp_path / "CIFAR-10_human.pt"
    labels = write_human_file(path, clean, rng)
    damage(labels)
    torch.save(labels, path)
    with pytest.raises(data.DatasetCorrupt, match=message) as err:
        human_noise.load_cifar_n("cifar10", path=path, download=False, train_labels=clean)
    assert str(path) in str(err.value) and err.value.path == path


def test_float_labels_are_refused_by_the_allow_list(tmp_path):
    path = tmp_path / "CIFAR-10_human.pt"
    torch.save({"clean_label": np.zeros(3)}, path)
    with pytest.raises(data.DatasetCorrupt, match="Float64DType"):
        human_noise.load_cifar_n("cifar10", path=path, download=False)


def test_garbage_and_non_dict_files_are_corrupt(tmp_path):
    path = tmp_path / "CIFAR-10_human.pt"
    path.write_bytes(b"\x00garbage")
    with pytest.raises(data.DatasetCorrupt, match="cannot read"):
        human_noise.load_cifar_n("cifar10", path=path, download=False)
    torch.save([1, 2, 3], path)
    with pytest.raises(data.DatasetCorrupt, match="holds a list"):
        human_noise.load_cifar_n("cifar10", path=path, download=False)


def test_length_is_checked_against_50000_without_train_labels(tmp_path):
    rng = np.random.default_rng(4)
    write_human_file(tmp_path / "f.pt", rng.integers(0, 10, 10), rng)
    with pytest.raises(data.DatasetCorrupt, match="expected 50000"):
        human_noise.load_cifar_n("cifar10", path=tmp_path / "f.pt", download=False)


def test_unknown_dataset():
    with pytest.raises(ValueError, match="dataset='mnist'"):
        human_noise.load_cifar_n("mnist", download=False)


# --------------------------------------------------------------------------- shipped counts


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/cifar-n/ is not present")
def test_shipped_counts_equal_the_official_files(tmp_path):
    labels = {d: human_noise.load_cifar_n(d, path=SHARED / f, download=False)
              for d, f in human_noise.CIFAR_N_FILES.items()}
    recomputed = human_noise.count_matrices(labels)
    assert set(recomputed) == set(human_noise.LABEL_SETS)
    for name, C in recomputed.items():
        np.testing.assert_array_equal(human_noise.shipped_counts(name), C)
    coarse = human_noise.coarse_labels()
    np.testing.assert_array_equal(coarse[labels["cifar100"]["clean_label"]], labels["cifar100"]["clean_coarse_label"])
    np.testing.assert_array_equal(coarse[labels["cifar100"]["noisy_label"]], labels["cifar100"]["noisy_coarse_label"])


def test_shipped_noise_rates_are_the_measured_ones():
    rates = {s: round(100 * human_noise.noise_rate(human_noise.shipped_counts(s)), 2)
             for s in ("aggre", "random1", "worse", "noisy")}
    assert rates == {"aggre": 9.01, "random1": 17.23, "worse": 40.21, "noisy": 40.20}
    for s in human_noise.LABEL_SETS:
        C = human_noise.shipped_counts(s)
        assert C.sum() == 50_000 and C.shape == ((100, 100) if s == "noisy" else (10, 10))
        assert (C.sum(axis=1) == 5000 if s != "noisy" else C.sum(axis=1) == 500).all()


def test_coarse_map_has_20_superclasses_of_5():
    coarse = human_noise.coarse_labels()
    assert coarse.shape == (100,) and (np.bincount(coarse) == 5).all()
    # a few facts of CIFAR-100's meta file: apple is a fruit, baby a person, bus a vehicle (vehicles_1)
    names = {n: i for i, n in enumerate(class_names("cifar100"))}
    assert human_noise.CIFAR100_COARSE_NAMES[coarse[names["apple"]]] == "fruit_and_vegetables"
    assert human_noise.CIFAR100_COARSE_NAMES[coarse[names["baby"]]] == "people"
    assert human_noise.CIFAR100_COARSE_NAMES[coarse[names["bus"]]] == "vehicles_1"


# --------------------------------------------------------------------------- analysis


def test_count_and_transition_matrices():
    C = human_noise.count_matrix([0, 0, 1, 1, 1, 2], [0, 1, 1, 1, 2, 2], 3)
    np.testing.assert_array_equal(C, [[1, 1, 0], [0, 2, 1], [0, 0, 1]])
    T = human_noise.transition_from_counts(C)
    torch.testing.assert_close(T, torch.tensor([[0.5, 0.5, 0], [0, 2 / 3, 1 / 3], [0, 0, 1]], dtype=torch.float64))
    assert human_noise.noise_rate(C) == pytest.approx(2 / 6)
    np.testing.assert_allclose(human_noise.class_noise_rates(C), [0.5, 1 / 3, 0])
    with pytest.raises(ValueError, match="0..2"):
        human_noise.count_matrix([0, 3], [0, 0], 3)


def test_distance_from_uniform_is_zero_for_uniform_and_maximal_for_one_target():
    d = human_noise.distance_from_uniform(noise.uniform(10, 0.4))
    np.testing.assert_allclose(d["tv"], 0, atol=1e-12)
    np.testing.assert_allclose(d["effective_targets"], 9)
    assert d["rate_spread"] == pytest.approx(0)
    d = human_noise.distance_from_uniform(noise.class_dependent("cifar10", 0.4))
    flipped = [i for i in range(10) if not np.isnan(d["tv"][i])]
    assert len(flipped) == 5
    np.testing.assert_allclose(d["tv"][flipped], 1 - 1 / 9)
    np.testing.assert_allclose(d["effective_targets"][flipped], 1)


def test_theorem2_margins():
    np.testing.assert_allclose(human_noise.theorem2_margins(noise.uniform(4, 0.6)), 0.4 - 0.2)
    T = noise.class_dependent("cifar10", 0.5)  # a source class then ties with its target
    assert human_noise.theorem2_margins(T).min() == pytest.approx(0)


def test_top_confusions_superclass_and_next_class_shares():
    C = np.diag([10, 10, 10, 10])
    C[0, 1], C[1, 0], C[2, 3] = 5, 3, 2
    top = human_noise.top_confusions(C, 2)
    assert top[["clean", "noisy", "count"]].values.tolist() == [[0, 1, 5], [1, 0, 3]]
    assert top["share"].tolist() == pytest.approx([0.5, 0.3])
    assert human_noise.superclass_share(C, coarse=np.array([0, 0, 1, 1])) == pytest.approx(1.0)
    assert human_noise.superclass_share(C, coarse=np.array([0, 1, 0, 1])) == pytest.approx(0.0)
    assert human_noise.next_class_share(C) == pytest.approx(0.7)
    np.testing.assert_allclose(human_noise.superclass_shares(C, coarse=np.array([0, 0, 1, 1])), [1.0, 1.0])
    np.testing.assert_allclose(human_noise.superclass_shares(C, coarse=np.array([0, 1, 0, 1])), [0.0, 0.0])


# --------------------------------------------------------------------------- noisy splits


def test_human_splits_use_the_file_labels_and_the_twin_the_same_split(tiny_cifar10n):
    root, labels = tiny_cifar10n
    ds = data.load("cifar10", root, download=False)
    human = human_noise.human_noisy_splits(ds, "worse", seed=3, root=root, download=False)
    twin = human_noise.human_noisy_splits(ds, "worse", twin=True, seed=3, root=root, download=False)
    plain = data.noisy_splits(ds, ("uniform", 0.2), seed=3)
    for part in ("train", "val"):
        h, t = getattr(human, part), getattr(twin, part)
        torch.testing.assert_close(h.ids, getattr(plain, part).ids)  # the split of Sec. 4, as for synthetic noise
        torch.testing.assert_close(t.ids, h.ids)
        np.testing.assert_array_equal(h.noisy_labels.numpy(), labels["worse_label"][h.ids.numpy()])
        torch.testing.assert_close(h.flipped, h.noisy_labels != h.labels)
    torch.testing.assert_close(human.T, human_noise.human_transition("worse"))
    torch.testing.assert_close(twin.T, human.T)


def test_twin_noise_follows_the_human_transition_matrix(gen):
    # the twin draws from T; on many samples its realised confusion approaches the human T
    T = human_noise.human_transition("worse")
    clean = torch.arange(10).repeat_interleave(4000)
    noisy = noise.corrupt(clean, T, gen).noisy
    T_real = human_noise.transition_from_counts(human_noise.count_matrix(clean, noisy, 10))
    assert (T_real - T).abs().max() < 0.03


def test_label_set_and_dataset_must_agree(tiny_cifar10n):
    root, _ = tiny_cifar10n
    ds = data.load("cifar10", root, download=False)
    with pytest.raises(ValueError, match="labels cifar100, not cifar10"):
        human_noise.human_noisy_splits(ds, "noisy", twin=True)
    with pytest.raises(ValueError, match="label_set='best'"):
        human_noise.human_noisy_splits(ds, "best")


# --------------------------------------------------------------------------- the engine and the grid


def test_human_grid_is_lite_and_paper_only_and_keeps_old_run_ids():
    from dataclasses import asdict
    import hashlib
    import json

    from gce import train
    from gce.book import experiments

    assert experiments.spec("human", "pocket").configs == ()
    for scale, seeds in (("lite", 1), ("paper", 5)):
        grid = experiments.spec("human", scale).configs
        assert len(grid) == 2 * 2 * 3 * seeds
        assert {(c.noise, c.human_labels) for c in grid} == {(k, s) for k in ("human", "human_twin")
                                                              for s in ("worse", "aggre")}
        assert {c.method for c in grid} == {"cce", "lq", "trunc_lq"}
        assert {c.dataset for c in grid} == {"cifar10"} and {c.eta for c in grid} == {0.0}
        assert len({run_id(c) for c in grid}) == len(grid)
    # a config without human labels keeps the id it had before the field existed
    cfg = experiments.spec("table1", "pocket").configs[0]
    d = cfg.to_dict()
    for key in ("precision", "channels_last", "compile", "human_labels", "prune_rule"):
        d.pop(key)
    assert run_id(cfg) == hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]
    with pytest.raises(ValueError, match="human_labels"):
        train.RunConfig(noise="uniform", eta=0.2, human_labels="worse")
    with pytest.raises(ValueError, match="leave eta=0"):
        train.RunConfig(dataset="cifar10", noise="human", eta=0.2, human_labels="worse")
    with pytest.raises(ValueError, match="human_labels='noisy' is no CIFAR-N label set of cifar10; known: aggre"):
        train.RunConfig(dataset="cifar10", model="resnet34", noise="human_twin", human_labels="noisy")
    with pytest.raises(ValueError, match="known: none"):
        train.RunConfig(noise="human", human_labels="worse")  # digits
    # the twin (labels drawn from T) also fits the JPEG copy of CIFAR-10; the human labels do not (other order)
    train.RunConfig(dataset="cifar10_jpeg", model="resnet18", noise="human_twin", human_labels="aggre")
    with pytest.raises(ValueError, match="no CIFAR-N label set of cifar10_jpeg"):
        train.RunConfig(dataset="cifar10_jpeg", model="resnet18", noise="human", human_labels="aggre")


def test_reproduce_human_at_pocket_scale_trains_nothing(tmp_path, capsys):
    from gce.book.cli import main

    assert main(["reproduce", "human", "--scale", "pocket", "--results", str(tmp_path), "--no-progress"]) == 0
    assert "human: no runs" in capsys.readouterr().out
    assert not list(tmp_path.rglob("*.csv"))


def test_human_and_twin_runs_of_the_lite_grid_train_end_to_end(tiny_cifar10n):
    from dataclasses import replace

    from gce import train
    from gce.book import experiments

    root, labels = tiny_cifar10n
    grid = [c for c in experiments.spec("human", "lite").configs if c.human_labels == "worse"]
    # one epoch of a small BatchNorm-free network: the six runs train as one vmapped group (the grid's ResNet-34
    # takes the one-at-a-time path that tests/test_paper_paths.py covers; the human noise only changes the data)
    cfgs = [replace(c, model="small_cnn", epochs=1, milestones=(), prune_start=1, prune_every=1, batch_size=16)
            for c in grid]
    assert len(train.split_groups(cfgs, 256)) == 1
    results = train.train_many(cfgs, root=root)
    human_T = human_noise.human_transition("worse").tolist()
    for res in results:
        assert res.epochs == 1 and all(np.isfinite(res.history["val_loss"]))
        assert res.T_used is None  # only forward correction records T
    human = [r for r in results if r.config.noise == "human"][0]
    ds = data.load("cifar10", root, download=False)
    splits = human_noise.human_noisy_splits(ds, "worse", seed=human.config.seed, root=root, download=False)
    assert human.flip_rate_train == pytest.approx(splits.train.flip_rate)
    twin = human_noise.human_noisy_splits(ds, "worse", twin=True, seed=0)
    assert twin.T.tolist() == human_T
    store = ResultStore(root / "results", "lite", "human")
    store.add(results, {"commit": "test"}, "lite")
    table = human_noise.results_table(store.runs)
    assert table.shape == (2, 3) and set(table.columns) == {"cce", "lq", "trunc_lq"}


def test_chapter_figures_fit_the_column_with_10pt_text():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gce.book import plots

    plots.use_book_style()
    T = human_noise.human_transition("worse")
    figs = [plots.plot_transition_grid({"uniform": noise.uniform(10, 0.4), "worse": T}, [str(i) for i in range(10)]),
            plots.plot_class_noise_rates({"worse": human_noise.class_noise_rates(human_noise.shipped_counts("worse"))},
                                         [str(i) for i in range(10)]),
            plots.plot_superclass_confusions(human_noise.human_transition("noisy"), human_noise.coarse_labels())]
    for fig in figs:
        assert fig.get_size_inches()[0] == pytest.approx(7.2)
        fig.canvas.draw()
        sizes = [t.get_fontsize() for t in fig.findobj(matplotlib.text.Text) if t.get_text() and t.get_visible()]
        assert min(sizes) >= 10
        plt.close(fig)
    with pytest.raises(ValueError, match="matrices is empty"):
        plots.plot_transition_grid({}, [])


def test_truncated_lq_prunes_on_human_labels(tiny_cifar10n):
    from dataclasses import replace

    from gce import train
    from gce.book import experiments

    root, _ = tiny_cifar10n
    cfg = [c for c in experiments.spec("human", "lite").configs
           if c.human_labels == "aggre" and c.noise == "human" and c.method == "trunc_lq"][0]
    res = train.train(replace(cfg, model="small_cnn", epochs=2, milestones=(1,), prune_start=1, prune_every=1,
                              batch_size=16), root=root)
    assert res.epochs == 2 and res.history["kept"][0] == 1.0 and 0 <= res.history["kept"][1] <= 1


def test_twin_runs_on_the_jpeg_copy_of_cifar10_without_label_files(tmp_path):
    from dataclasses import replace

    from gce import train
    from gce.book import experiments
    from conftest import write_jpeg_npz

    write_jpeg_npz(tmp_path, n_train=40, n_test=10)
    cfg = [c for c in experiments.spec("human", "lite").configs
           if c.human_labels == "worse" and c.noise == "human_twin" and c.method == "lq"][0]
    res = train.train(replace(cfg, dataset="cifar10_jpeg", model="small_cnn", epochs=1, milestones=(),
                              batch_size=16), root=tmp_path)  # no cifar-n/ folder: the twin needs only T
    assert res.epochs == 1 and np.isfinite(res.history["val_loss"][0])
    assert not (tmp_path / "cifar-n").exists()
