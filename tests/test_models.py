"""Tests of gce.models: the networks of Sec. 4 and the vmap-friendly pocket models."""

import copy
import functools
import math

import pytest
import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from gce import models as M

# (name, num_classes, in_channels, image_size, exact parameter count): the paper's
# configurations (Sec. 4.2, Table 1 and 2) and the pocket scale (digits, 8x8).
PAPER_CONFIGS = [
    ("resnet34", 10, 3, 32, 21_282_122),  # CIFAR-10
    ("resnet34", 100, 3, 32, 21_328_292),  # CIFAR-100
    ("resnet18", 10, 1, 28, 11_172_810),  # FASHION-MNIST
    ("wang_cnn", 10, 3, 32, 1_639_794),  # CIFAR-10 open-set noise (Table 2)
    ("mlp", 10, 1, 8, 9_610),  # digits
    ("small_cnn", 10, 1, 8, 21_386),  # digits
]

POCKET = ["mlp", "small_cnn"]


@pytest.fixture(autouse=True)
def _one_thread():
    """These tensors are tiny: one intra-op thread is faster and does not stall on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@functools.lru_cache(maxsize=None)
def _built(name, c, ch, size):
    """One shared model per configuration, in eval mode; tests must not modify it."""
    return M.build(name, c, ch, size).eval()


@pytest.fixture(autouse=True, scope="module")
def _free_shared_models():
    yield
    _built.cache_clear()


def _image_batch(gen, n, c, s):
    return torch.randn(n, c, s, s, generator=gen)


# --------------------------------------------------------------------------
# parameter counts


@pytest.mark.parametrize("name, c, ch, size, expected", PAPER_CONFIGS)
def test_parameter_count_paper_configuration(name, c, ch, size, expected):
    assert M.count_parameters(_built(name, c, ch, size)) == expected


def test_resnet_counts_by_hand():
    """Count the CIFAR ResNets layer by layer, independently of the module code."""

    def conv(c_in, c_out, k):
        return c_in * c_out * k * k

    def bn(c):
        return 2 * c

    def resnet(blocks, in_ch, classes, widths=(64, 128, 256, 512)):
        total = conv(in_ch, 64, 3) + bn(64)
        prev = 64
        for i, (n, w) in enumerate(zip(blocks, widths)):
            for j in range(n):
                c_in = prev if j == 0 else w
                total += conv(c_in, w, 3) + bn(w) + conv(w, w, 3) + bn(w)
                if j == 0 and (i > 0 or c_in != w):
                    total += conv(c_in, w, 1) + bn(w)  # projection shortcut
            prev = w
        return total + 512 * classes + classes

    resnet18_rgb = M.count_parameters(_built("resnet18", 10, 3, 32))
    resnet18_gray = M.count_parameters(_built("resnet18", 10, 1, 28))
    assert resnet((2, 2, 2, 2), 3, 10) == 11_173_962 == resnet18_rgb
    assert resnet((3, 4, 6, 3), 3, 10) == 21_282_122 == M.count_parameters(_built("resnet34", 10, 3, 32))
    # one input channel: the stem loses 2 x 64 x 9 weights
    assert resnet18_rgb - resnet18_gray == 2 * 64 * 9
    assert resnet((2, 2, 2, 2), 1, 10) == resnet18_gray


def test_resnet34_matches_torchvision_up_to_the_stem():
    """torchvision's ImageNet ResNet-34 differs only by its 7x7 stem (and parameter-free max-pool)."""
    torchvision = pytest.importorskip("torchvision")
    tv = torchvision.models.resnet34(num_classes=10)
    tv_count = sum(p.numel() for p in tv.parameters())
    assert tv_count - M.count_parameters(_built("resnet34", 10, 3, 32)) == 64 * 3 * (7 * 7 - 3 * 3)


def test_wang_cnn_counts_by_hand():
    convs = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 196), (196, 196)]
    total = sum(a * b * 9 + b + 2 * b for a, b in convs)  # weights, bias, BN
    total += 196 * 4 * 4 * 256 + 256 + 2 * 256 + 256 * 10 + 10
    assert M.count_parameters(M.wang_cnn()) == total == 1_639_794
    # the ONL layout: the 256-unit layer without BN (and ReLU)
    assert M.count_parameters(M.wang_cnn(fc_bn_relu=False)) == total - 2 * 256


def test_count_parameters_trainable_only():
    model = M.mlp()
    model[1].weight.requires_grad_(False)
    assert M.count_parameters(model) == 9_610
    assert M.count_parameters(model, trainable_only=True) == 9_610 - 64 * 128


# --------------------------------------------------------------------------
# shapes


@pytest.mark.parametrize(
    "name, c, ch, size",
    [
        ("resnet34", 10, 3, 32),
        ("resnet34", 100, 3, 32),
        ("resnet18", 10, 1, 28),
        ("resnet18", 10, 3, 32),
        ("wang_cnn", 10, 3, 32),
        ("wang_cnn", 10, 1, 28),
        ("mlp", 10, 1, 8),
        ("mlp", 10, 1, 28),
        ("small_cnn", 10, 1, 8),
        ("small_cnn", 10, 3, 32),
    ],
)
def test_output_shape(gen, name, c, ch, size):
    model = _built(name, c, ch, size)
    with torch.no_grad():
        out = model(_image_batch(gen, 2, ch, size))
    assert out.shape == (2, c)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()


def test_defaults_match_the_paper_datasets(gen):
    with torch.no_grad():
        # the defaults are the paper's configurations (same counts as the builds above)
        assert M.count_parameters(M.resnet18()) == 11_172_810  # FASHION-MNIST: 1 channel
        assert M.wang_cnn().eval()(_image_batch(gen, 2, 3, 32)).shape == (2, 10)
        assert M.mlp()(_image_batch(gen, 2, 1, 8)).shape == (2, 10)
        assert M.mlp()(torch.randn(2, 64, generator=gen)).shape == (2, 10)
        assert M.small_cnn()(_image_batch(gen, 2, 1, 8)).shape == (2, 10)


def test_train_mode_backward(gen):
    """One training step in train mode (batch norm on batch statistics) gives finite gradients."""
    model = M.wang_cnn().train()
    out = model(_image_batch(gen, 2, 3, 32))
    out.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_features_feed_the_head(gen):
    x = _image_batch(gen, 2, 3, 32)
    for model in (_built("resnet18", 10, 3, 32), _built("wang_cnn", 10, 3, 32)):
        with torch.no_grad():
            feats = model.features(x)
            head = model.fc if isinstance(model, M.ResNet) else model.fc2
            torch.testing.assert_close(head(feats), model(x))
    assert feats.shape == (2, 256)


# --------------------------------------------------------------------------
# ResNet structure (He et al. 2016, CIFAR variant)


@pytest.mark.parametrize("config", [("resnet18", 10, 1, 28), ("resnet34", 10, 3, 32)])
def test_resnet_stem_is_3x3_stride_1_without_maxpool(config):
    model = _built(*config)
    first_conv = model.stem[0]
    assert isinstance(first_conv, nn.Conv2d)
    assert first_conv.kernel_size == (3, 3)
    assert first_conv.stride == (1, 1)
    assert first_conv.out_channels == 64
    assert [type(m) for m in model.stem] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())


def test_resnet_stages():
    for config, blocks in [(("resnet18", 10, 1, 28), (2, 2, 2, 2)), (("resnet34", 10, 3, 32), (3, 4, 6, 3))]:
        model = _built(*config)
        assert tuple(len(stage) for stage in model.stages) == blocks
        assert [stage[0].conv1.stride for stage in model.stages] == [(1, 1), (2, 2), (2, 2), (2, 2)]
        assert [stage[-1].conv2.out_channels for stage in model.stages] == [64, 128, 256, 512]
        assert model.fc.in_features == 512


def test_resnet_spatial_sizes(gen):
    """32x32 reaches the head at 4x4 and 28x28 at 4x4 (28 -> 14 -> 7 -> 4): no early downsampling."""
    for ch, size in [(3, 32), (1, 28)]:
        model = _built("resnet18", 10, ch, size)
        with torch.no_grad():
            h = model.stages(model.stem(_image_batch(gen, 2, ch, size)))
        assert h.shape == (2, 512, 4, 4)


def test_resnet_convs_are_kaiming_normal():
    model = _built("resnet34", 10, 3, 32)
    conv = model.stages[3][1].conv2  # 512 -> 512, 3x3: 2.4 million weights
    expected_std = math.sqrt(2.0 / (512 * 9))  # fan_out mode, ReLU gain
    assert conv.weight.std().item() == pytest.approx(expected_std, rel=0.01)
    assert conv.weight.mean().item() == pytest.approx(0.0, abs=0.01 * expected_std)
    bn = model.stages[3][1].bn2
    assert torch.equal(bn.weight, torch.ones_like(bn.weight))
    assert torch.equal(bn.bias, torch.zeros_like(bn.bias))


def test_resnet_rejects_bad_architecture():
    with pytest.raises(ValueError, match="blocks and widths"):
        M.ResNet((2, 2), (64, 128, 256))
    with pytest.raises(ValueError, match="num_classes"):
        M.resnet34(num_classes=0)


# --------------------------------------------------------------------------
# pocket models: no BatchNorm, vmap over stacked parameters


@pytest.mark.parametrize("name", POCKET)
def test_pocket_models_have_no_batchnorm_and_no_buffers(name):
    model = M.build(name, 10, 1, 8)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    assert list(model.buffers()) == []


@pytest.mark.parametrize("name", POCKET)
def test_vmap_over_stacked_models_equals_each_model(gen, name):
    torch.manual_seed(0)
    models = [M.build(name, 10, 1, 8) for _ in range(3)]
    # independently initialised: the copies differ
    first = [p for p in models[0].parameters()][0]
    second = [p for p in models[1].parameters()][0]
    assert not torch.equal(first, second)

    params, buffers = stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")

    def forward(p, b, x):
        return functional_call(base, (p, b), (x,))

    x = _image_batch(gen, 5, 1, 8)
    batched = vmap(forward, in_dims=(0, 0, None))(params, buffers, x)
    assert batched.shape == (3, 5, 10)
    with torch.no_grad():
        for i, model in enumerate(models):
            torch.testing.assert_close(batched[i], model(x), rtol=1e-5, atol=1e-6)

    # one input batch per model, as in independent training runs
    xs = _image_batch(gen, 3 * 5, 1, 8).reshape(3, 5, 1, 8, 8)
    batched = vmap(forward)(params, buffers, xs)
    with torch.no_grad():
        for i, model in enumerate(models):
            torch.testing.assert_close(batched[i], model(xs[i]), rtol=1e-5, atol=1e-6)


def test_mlp_overfits_random_labels(gen):
    """32 random points with random labels: the mlp memorises them (train accuracy 100%)."""
    torch.manual_seed(0)
    x = torch.randn(32, 1, 8, 8, generator=gen)
    y = torch.randint(0, 10, (32,), generator=gen)
    model = M.mlp()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(200):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    with torch.no_grad():
        accuracy = (model(x).argmax(1) == y).float().mean().item()
    assert accuracy == 1.0


def test_mlp_options():
    assert M.count_parameters(M.mlp(hidden=())) == 64 * 10 + 10  # logistic regression
    model = M.mlp(hidden=(32, 16))
    assert [m.out_features for m in model if isinstance(m, nn.Linear)] == [32, 16, 10]
    with pytest.raises(ValueError, match="hidden"):
        M.mlp(hidden=(0,))


# --------------------------------------------------------------------------
# registry


def test_registry_names():
    assert set(M.MODELS) == {"resnet34", "resnet18", "wang_cnn", "mlp", "small_cnn"}


def test_unknown_name_raises_listing_known_models():
    with pytest.raises(ValueError, match="resnet50") as info:
        M.build("resnet50", 10, 3, 32)
    for name in M.MODELS:
        assert name in str(info.value)


def test_build_mlp_needs_image_size():
    with pytest.raises(ValueError, match="image_size"):
        M.build("mlp", 10, 1)
    assert M.build("mlp", 10, 3, (4, 5))[1].in_features == 60
    with pytest.raises(ValueError, match="in_features"):
        M.build("mlp", 10, 1, 8, in_features=10)


def test_build_passes_image_size_and_kwargs():
    assert M.build("wang_cnn", 10, 1, 28).fc1[0].in_features == 196 * 3 * 3
    assert M.build("small_cnn", 10, 1, 8, width=8)[0].out_channels == 8
    with pytest.raises(ValueError, match="image_size"):
        M.build("wang_cnn", 10, 3, 4)
    with pytest.raises(ValueError, match="image_size"):
        M.build("small_cnn", 10, 1, (8, 8, 8))


def test_build_checks_sizes():
    with pytest.raises(ValueError, match="num_classes"):
        M.build("mlp", 0, 1, 8)
    with pytest.raises(ValueError, match="in_channels"):
        M.build("small_cnn", 10, -1, 8)
    with pytest.raises(TypeError, match="num_classes"):
        M.build("resnet18", 10.0, 1, 28)
