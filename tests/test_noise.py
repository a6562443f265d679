"""Tests of gce.noise: the paper's noise models (Sec. 3.1, 4.2) and their sampling."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import binom

from gce import losses as L
from gce import noise
from gce.classes import CLASSES, class_index, class_names


def idx(dataset, name):
    return class_index(dataset, name)


# --------------------------------------------------------------------------
# transition matrices


@pytest.mark.parametrize("c,eta", [(2, 0.3), (10, 0.0), (10, 0.4), (100, 0.8)])
def test_uniform_entries(c, eta):
    T = noise.uniform(c, eta)
    assert T.shape == (c, c) and T.dtype == torch.float64
    assert torch.equal(T.diagonal(), torch.full((c,), 1 - eta, dtype=torch.float64))
    off = T[~torch.eye(c, dtype=torch.bool)]
    assert torch.equal(off, torch.full_like(off, eta / (c - 1)))
    torch.testing.assert_close(T.sum(dim=1), torch.ones(c, dtype=torch.float64))


PAPER_FLIPS = {
    "cifar10": [("truck", "automobile"), ("bird", "airplane"), ("deer", "horse"),
                ("cat", "dog"), ("dog", "cat")],
    "fashionmnist": [("Ankle boot", "Sneaker"), ("Sneaker", "Sandal"), ("Pullover", "Shirt"),
                     ("Coat", "Dress"), ("Dress", "Coat")],
    "digits": [("2", "7"), ("3", "8"), ("7", "1"), ("5", "6"), ("6", "5")],
}


@pytest.mark.parametrize("dataset", sorted(PAPER_FLIPS))
def test_class_dependent_hits_the_named_classes(dataset):
    eta = 0.3
    T = noise.class_dependent(dataset, eta)
    c = len(class_names(dataset))
    expected = torch.eye(c, dtype=torch.float64)
    for src, dst in PAPER_FLIPS[dataset]:
        expected[idx(dataset, src), idx(dataset, src)] = 1 - eta
        expected[idx(dataset, src), idx(dataset, dst)] = eta
    assert torch.equal(T, expected)
    sources = {idx(dataset, s) for s, _ in PAPER_FLIPS[dataset]}
    for i in range(c):
        assert (T[i, i] == 1.0) == (i not in sources)


def test_cifar10_class_order_is_torchvisions():
    assert CLASSES["cifar10"][1] == "automobile" and CLASSES["cifar10"][9] == "truck"
    assert CLASSES["fashionmnist"][9] == "Ankle boot" and CLASSES["fashionmnist"][7] == "Sneaker"
    assert len(CLASSES["cifar100"]) == len(set(CLASSES["cifar100"])) == 100
    assert CLASSES["cifar100"][0] == "apple" and CLASSES["cifar100"][99] == "worm"


def test_cifar100_flips_each_class_to_the_next_circularly():
    eta = 0.4
    T = noise.class_dependent("cifar100", eta)
    for i in range(100):
        assert T[i, i] == 1 - eta and T[i, (i + 1) % 100] == eta
        assert T[i].count_nonzero() == 2
    assert T[99, 0] == eta


def test_transition_matrix_dispatch():
    assert torch.equal(noise.transition_matrix("uniform", "cifar100", 0.2), noise.uniform(100, 0.2))
    assert torch.equal(noise.transition_matrix("class_dependent", "fashionmnist", 0.2),
                       noise.class_dependent("fashionmnist", 0.2))


def test_custom_flip_dict():
    T = noise.class_dependent({0: 1}, 0.25, c=3)
    assert T.tolist() == [[0.75, 0.25, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]


def test_expected_flip_rate_is_eta_over_two_for_cifar10_class_dependent():
    assert noise.expected_flip_rate(noise.uniform(10, 0.4)) == pytest.approx(0.4)
    assert noise.expected_flip_rate(noise.class_dependent("cifar10", 0.4)) == pytest.approx(0.2)
    assert noise.expected_flip_rate(noise.class_dependent("cifar100", 0.4)) == pytest.approx(0.4)
    prior = torch.tensor([0.5, 0.5, 0.0])
    assert noise.expected_flip_rate(noise.class_dependent({0: 1}, 0.4, c=3), prior) == pytest.approx(0.2)


@pytest.mark.parametrize("eta", [-0.1, 1.0, 1.5, float("nan")])
def test_bad_eta_raises(eta):
    with pytest.raises(ValueError, match=r"eta \(the noise rate\) must be in \[0, 1\)"):
        noise.uniform(10, eta)
    with pytest.raises(ValueError, match="eta"):
        noise.class_dependent("cifar10", eta)


def test_bad_noise_arguments_raise():
    with pytest.raises(ValueError, match="no class-dependent flip map for 'mnist'"):
        noise.class_dependent("mnist", 0.2)
    with pytest.raises(ValueError, match="unknown noise kind 'pairflip'"):
        noise.transition_matrix("pairflip", "cifar10", 0.2)
    with pytest.raises(ValueError, match="unknown dataset 'svhn'"):
        noise.transition_matrix("uniform", "svhn", 0.2)
    with pytest.raises(ValueError, match="bad flip"):
        noise.class_dependent({0: 0}, 0.2, c=3)
    with pytest.raises(ValueError, match="bad flip"):
        noise.class_dependent({0: 5}, 0.2, c=3)
    with pytest.raises(ValueError, match="c .* is needed"):
        noise.class_dependent({0: 1}, 0.2)
    with pytest.raises(ValueError, match="c must be an integer >= 2"):
        noise.uniform(1, 0.2)
    with pytest.raises(TypeError, match="eta must be a real number"):
        noise.uniform(10, "0.2")


# --------------------------------------------------------------------------
# sampling


def balanced_labels(c, per_class):
    return torch.arange(c).repeat_interleave(per_class)


@pytest.mark.parametrize("kind,dataset,eta", [
    ("uniform", "cifar10", 0.2), ("uniform", "cifar10", 0.8),
    ("class_dependent", "cifar10", 0.4), ("class_dependent", "fashionmnist", 0.1),
    ("uniform", "cifar100", 0.6), ("class_dependent", "cifar100", 0.3),
])
def test_corrupt_reaches_the_target_within_sampling_error(kind, dataset, eta):
    """Every count of the realised (true, noisy) table is binomial with T's probability.

    Exact two-sided binomial tests, Bonferroni-corrected over all cells and the
    overall rate: the family-wise false-alarm probability is below 1e-6.
    """
    T = noise.transition_matrix(kind, dataset, eta)
    c = T.shape[0]
    per_class = 20_000 if c == 10 else 2_000
    clean = balanced_labels(c, per_class)
    out = noise.corrupt(clean, T, generator=7)
    assert torch.equal(out.flipped, out.noisy != clean)
    counts = (noise.empirical_transition(clean, out.noisy, c) * per_class).round().numpy()
    assert (counts[T.numpy() == 0] == 0).all()  # impossible flips never happen
    n_flips = int(out.flipped.sum())
    expected = noise.expected_flip_rate(T)
    p_cells = two_sided_binomial_p(counts, per_class, T.numpy())
    p_rate = two_sided_binomial_p(n_flips, len(clean), expected)
    alpha = 1e-6 / (T.count_nonzero().item() + 1)
    assert p_rate > alpha, (out.rate, expected)
    assert p_cells[T.numpy() > 0].min() > alpha


def two_sided_binomial_p(k, n, p):
    k, p = np.asarray(k, dtype=float), np.asarray(p, dtype=float)
    lower = binom.cdf(k, n, p)
    upper = binom.sf(k - 1, n, p)
    return np.minimum(1.0, 2 * np.minimum(lower, upper))


def test_corrupt_is_reproducible_from_its_seed():
    clean = balanced_labels(10, 500)
    T = noise.uniform(10, 0.5)
    a = noise.corrupt(clean, T, generator=3)
    b = noise.corrupt(clean, T, generator=3)
    c = noise.corrupt(clean, T, generator=4)
    assert torch.equal(a.noisy, b.noisy)
    assert not torch.equal(a.noisy, c.noisy)
    g1, g2 = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    assert torch.equal(noise.corrupt(clean, T, g1).noisy, noise.corrupt(clean, T, g2).noisy)


def test_corrupt_with_zero_noise_changes_nothing():
    clean = balanced_labels(10, 100)
    out = noise.corrupt(clean, noise.uniform(10, 0.0), generator=0)
    assert torch.equal(out.noisy, clean) and out.rate == 0.0


def test_class_dependent_noise_flips_only_sources_to_their_targets():
    clean = balanced_labels(10, 2000)
    out = noise.corrupt(clean, noise.class_dependent("cifar10", 0.4), generator=1)
    fmap = noise.flip_map("cifar10")
    for i in range(10):
        changed = out.noisy[(clean == i) & out.flipped]
        if i in fmap:
            assert changed.numel() > 0 and (changed == fmap[i]).all()
        else:
            assert changed.numel() == 0


def test_corrupt_rejects_bad_input():
    with pytest.raises(ValueError, match="row-stochastic"):
        noise.corrupt(torch.tensor([0, 1]), torch.full((3, 3), 0.5))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\]"):
        noise.corrupt(torch.tensor([0, 3]), noise.uniform(3, 0.1))
    with pytest.raises(ValueError, match="1-d integer tensor"):
        noise.corrupt(torch.tensor([0.0, 1.0]), noise.uniform(3, 0.1))
    with pytest.raises(TypeError, match="generator"):
        noise.corrupt(torch.tensor([0, 1]), noise.uniform(3, 0.1), generator="seed")


def test_empirical_transition_by_hand():
    clean = torch.tensor([0, 0, 0, 0, 1, 1])
    noisy = torch.tensor([0, 1, 1, 1, 1, 0])
    emp = noise.empirical_transition(clean, noisy, 3)
    assert emp[:2].tolist() == [[0.25, 0.75, 0.0], [0.5, 0.5, 0.0]]
    assert torch.isnan(emp[2]).all()  # no sample of class 2
    assert noise.flip_rate(clean, noisy) == pytest.approx(4 / 6)


# --------------------------------------------------------------------------
# noisy risk (Sec. 3.1)


def test_noisy_risk_of_a_symmetric_loss_is_affine_in_the_clean_risk(gen):
    """Ghosh et al.: for sum_j L(f, j) = C and uniform noise, R^eta = (1 - eta c/(c-1)) R + eta C/(c-1)."""
    c, eta = 10, 0.4
    logits = 3 * torch.randn(500, c, generator=gen, dtype=torch.float64)
    y = torch.randint(0, c, (500,), generator=gen)
    losses = L.loss_matrix(L.mae, logits)
    risk = losses.gather(1, y.unsqueeze(1)).mean()
    noisy_risk = noise.expected_noisy_risk(losses, y, noise.uniform(c, eta))
    C = 2 * c - 2
    torch.testing.assert_close(noisy_risk, (1 - eta * c / (c - 1)) * risk + eta * C / (c - 1))


def test_expected_noisy_risk_agrees_with_sampled_labels(gen):
    c = 10
    logits = torch.randn(200, c, generator=gen, dtype=torch.float64)
    y = torch.randint(0, c, (200,), generator=gen)
    T = noise.class_dependent("cifar10", 0.4)
    losses = L.loss_matrix(L.cce, logits)
    exact = noise.expected_noisy_risk(losses, y, T)
    draws = torch.stack([
        losses.gather(1, noise.corrupt(y, T, generator=s).noisy.unsqueeze(1)).mean() for s in range(400)
    ])
    assert abs(draws.mean() - exact) <= 5 * draws.std() / math.sqrt(len(draws))


# --------------------------------------------------------------------------
# open-set noise (Table 2)


def make_open_set(rate=0.4, n=1000, seed=0):
    g = torch.Generator().manual_seed(123)
    images = torch.randint(0, 200, (n, 3, 4, 4), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, 10, (n,), generator=g)
    ood = torch.randint(200, 256, (800, 3, 4, 4), generator=g, dtype=torch.uint8)  # disjoint pixel range
    return images, labels, ood, noise.open_set(images, labels, ood, rate, 10, generator=seed)


def test_open_set_replaces_the_stated_fraction_with_ood_images():
    images, labels, ood, out = make_open_set()
    assert int(out.is_open_set.sum()) == 400
    # replaced images are exactly the OOD images they claim to be, all distinct
    src = out.source_index[out.is_open_set]
    assert torch.equal(out.images[out.is_open_set], ood[src])
    assert len(set(src.tolist())) == 400
    assert (out.source_index[~out.is_open_set] == -1).all()
    # everything else untouched; the inputs are not modified
    assert torch.equal(out.images[~out.is_open_set], images[~out.is_open_set])
    assert torch.equal(out.labels[~out.is_open_set], labels[~out.is_open_set])
    assert (out.images[out.is_open_set] >= 200).all() and (images < 200).all()


def test_open_set_labels_are_uniform_in_set_labels():
    _, _, _, out = make_open_set(rate=0.8, n=1000)
    new = out.labels[out.is_open_set]
    counts = torch.bincount(new, minlength=10).double()
    assert new.min() >= 0 and new.max() <= 9
    # chi-square goodness of fit, 9 degrees of freedom: 99.9% quantile is 27.88
    expected = len(new) / 10
    assert ((counts - expected) ** 2 / expected).sum() < 27.88


def test_open_set_is_reproducible():
    *_, a = make_open_set(seed=5)
    *_, b = make_open_set(seed=5)
    *_, c = make_open_set(seed=6)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.is_open_set, c.is_open_set)


def test_open_set_rejects_bad_input():
    images = torch.zeros(10, 1, 2, 2)
    labels = torch.zeros(10, dtype=torch.long)
    with pytest.raises(ValueError, match="eta"):
        noise.open_set(images, labels, torch.zeros(10, 1, 2, 2), 1.2, 10)
    with pytest.raises(ValueError, match="same per-sample shape"):
        noise.open_set(images, labels, torch.zeros(10, 3, 2, 2), 0.2, 10)
    with pytest.raises(ValueError, match="only 1 given"):
        noise.open_set(images, labels, torch.zeros(1, 1, 2, 2), 0.5, 10)
    with pytest.raises(ValueError, match="differ in number"):
        noise.open_set(images, labels[:5], torch.zeros(10, 1, 2, 2), 0.2, 10)


def test_flip_rate_and_corrupt_edge_cases_are_clear():
    with pytest.raises(ValueError, match=r"differ in shape: \(2,\) vs \(3,\)"):
        noise.flip_rate([0, 1], [0, 1, 2])
    with pytest.raises(ValueError, match=r"seed must lie in \[-2\*\*63, 2\*\*64\), got 18446744073709551616"):
        noise.corrupt(torch.tensor([0, 1]), noise.uniform(3, 0.1), 2 ** 64)
    out = noise.corrupt([], noise.uniform(3, 0.1), 0)
    assert out.noisy.numel() == 0 and out.rate == 0.0


def test_one_generator_helper():
    g = torch.Generator()
    assert noise.generator(g) is g and noise.generator(None) is None
    assert torch.equal(torch.rand(3, generator=noise.generator(5)), torch.rand(3, generator=noise.generator(5)))
    with pytest.raises(TypeError, match="seed or generator"):
        noise.generator(None, allow_none=False)


def test_a_flip_dict_with_labels_that_are_not_integers_is_one_clear_error():
    with pytest.raises(ValueError, match=r"bad flip 0.5 -> 2: labels must be integers in \[0, 2\]"):
        noise.class_dependent({0.5: 2}, 0.2, c=3)
    with pytest.raises(ValueError, match=r"bad flip True -> 2"):
        noise.class_dependent({True: 2}, 0.2, c=3)


def test_the_realised_transition_of_no_labels_is_an_error_not_nan():
    with pytest.raises(ValueError, match="empty set"):
        noise.empirical_transition([], [], 3)


def test_count_matrix_refuses_fractional_labels():
    from gce.human_noise import count_matrix
    with pytest.raises(ValueError, match="noisy labels must be whole class indices, got 1.7"):
        count_matrix([0, 1], [0.0, 1.7], 3)
    with pytest.raises(ValueError, match="clean labels must be whole class indices, got nan"):
        count_matrix([0.0, float("nan")], [0, 1], 3)
    assert count_matrix([0.0, 1.0], [0, 2], 3).tolist() == [[1, 0, 0], [0, 0, 1], [0, 0, 0]]


@pytest.mark.parametrize("bad", [float("nan"), -0.1, 1.5])
def test_estimate_transition_refuses_values_that_are_no_probabilities(bad):
    from gce.train import estimate_transition
    probs = torch.full((5, 2), 0.5, dtype=torch.float64)
    probs[3, 0] = bad
    with pytest.raises(ValueError, match="probs must be softmax outputs in \\[0, 1\\], found"):
        estimate_transition(probs)
