"""The networks of Zhang & Sabuncu (2018), Sec. 4, and small models for CPU runs.

Every model maps a float image batch ``(N, C, H, W)`` to logits ``(N, c)``
(no softmax: the losses in :mod:`gce.losses` take logits).  Images stored as
``uint8`` by :mod:`gce.data` must be converted to float (and normalised)
before they reach a model.

=============  ====================================  =============================  ==========
name           used for                              architecture                   parameters
=============  ====================================  =============================  ==========
``resnet34``   CIFAR-10/100 (Sec. 4.1-4.2, Table 1)  CIFAR ResNet-34, [3, 4, 6, 3]  21,282,122
``resnet18``   FASHION-MNIST (Sec. 4.2, Table 1)     CIFAR ResNet-18, [2, 2, 2, 2]  11,172,810
``wang_cnn``   CIFAR-10 open-set noise (Table 2)     6 conv + 2 dense layers        1,639,794
``mlp``        the offline ``digits`` (8x8)          one hidden layer of 128 ReLUs  9,610
``small_cnn``  the offline ``digits`` (8x8)          2 conv layers + linear head    21,386
=============  ====================================  =============================  ==========

The counts are for the configuration the table names: 10 classes, three
input channels for ``resnet34`` and ``wang_cnn``, one for the others
(``resnet34`` on CIFAR-100 has 21,328,292).  :func:`count_parameters`
recomputes them.

The paper's networks (Sec. 4.2) are ResNet-34 for CIFAR and ResNet-18 for
FASHION-MNIST :cite:p:`he2016deep`, and for the open-set experiment of
Table 2 the shallow CNN of :cite:t:`wang2018iterative`.  The two
small models are not in the paper: they let the book's "pocket" experiments
run on a CPU in seconds.  They contain no batch normalisation and no buffers,
so several independently initialised copies can be trained at once with
:func:`torch.func.stack_module_state`, :func:`torch.func.functional_call` and
:func:`torch.func.vmap` (running statistics of batch normalisation are
buffers that a ``vmap``-ed forward pass cannot update).

What the module provides:

- :func:`resnet34`, :func:`resnet18` -- the CIFAR-style residual networks
  (:class:`ResNet` built from :class:`BasicBlock`).
- :func:`wang_cnn` -- the shallow CNN of the open-set noise experiment.
- :func:`mlp`, :func:`small_cnn` -- BatchNorm-free models for the pocket scale.
- :func:`build` -- a model by name from :data:`MODELS`.
- :func:`count_parameters` -- the number of parameters of a model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

__all__ = [
    "BasicBlock",
    "ResNet",
    "resnet34",
    "resnet18",
    "WangCNN",
    "wang_cnn",
    "mlp",
    "small_cnn",
    "MODELS",
    "build",
    "count_parameters",
]


# --------------------------------------------------------------------------
# argument checks


def _check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {name}={value}")
    return value


def _image_hw(image_size) -> tuple[int, int]:
    """``image_size`` (an int for square images, or ``(H, W)``) as ``(H, W)``."""
    if isinstance(image_size, int) and not isinstance(image_size, bool):
        hw = (image_size, image_size)
    elif isinstance(image_size, Sequence) and len(image_size) == 2:
        hw = tuple(image_size)
    else:
        raise ValueError(
            f"image_size must be an int or a pair (H, W), got image_size={image_size!r}"
        )
    for side in hw:
        _check_positive_int("image_size", side)
    return hw  # type: ignore[return-value]


# --------------------------------------------------------------------------
# ResNet (He et al. 2016), CIFAR variant


class BasicBlock(nn.Module):
    """The two-layer residual block of He et al. (2016), Fig. 2 (left).

    ``relu(bn(conv3x3(relu(bn(conv3x3(x))))) + shortcut(x))``.  The first
    convolution carries the ``stride``.  The shortcut is the identity when the
    shape is unchanged, else a strided 1x1 convolution followed by batch
    normalisation (projection shortcut, "option B" of He et al.).  The
    convolutions have no bias: the batch normalisation after each one has it.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        if stride != 1 or in_channels != out_channels:
            self.shortcut: nn.Module = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        """The block's output, ``(N, out_channels, H / stride, W / stride)``."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """A residual network for small images (He et al. 2016), as used in Sec. 4.2.

    Layout::

        stem    3x3 conv, widths[0] channels, stride 1 -> BN -> ReLU   (no max-pool)
        stage i blocks[i] BasicBlocks of widths[i] channels; the first block
                of stage i has stride 1 for i = 0 and 2 otherwise
        head    global average pool -> linear layer to num_classes logits

    This differs from the ImageNet ResNet of ``torchvision`` only in the stem:
    a 3x3 stride-1 convolution and no max-pool instead of a 7x7 stride-2
    convolution and a max-pool, which would shrink a 32x32 image to 8x8
    before the first residual block.  The stage widths and block counts are
    those of the ImageNet ResNet-18/34 of He et al. (their Table 1), not
    those of the thin CIFAR ResNets of their Sec. 4.2 (16, 32, 64 channels);
    the paper does not spell out its variant, and this one is the usual
    reading of "ResNet-34 on CIFAR".  With ``widths=(64, 128, 256, 512)``
    a 32x32 input reaches the head at 4x4 and a 28x28 one at 4x4 too
    (28 -> 14 -> 7 -> 4).

    Initialisation, following He et al.: convolutions are Kaiming-normal
    (``mode="fan_out"``, gain for ReLU, as in ``torchvision``), batch
    normalisation starts at weight 1 and bias 0; the final linear layer keeps
    PyTorch's default initialisation.

    Args:
        blocks: number of :class:`BasicBlock` per stage, e.g. ``(3, 4, 6, 3)``.
        widths: channels per stage, same length as ``blocks``.
        num_classes: number of logits.
        in_channels: channels of the input images.
    """

    def __init__(
        self,
        blocks: Sequence[int],
        widths: Sequence[int] = (64, 128, 256, 512),
        num_classes: int = 10,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if len(blocks) != len(widths) or len(blocks) == 0:
            raise ValueError(
                f"blocks and widths must be non-empty and of equal length, "
                f"got blocks={tuple(blocks)}, widths={tuple(widths)}"
            )
        for b in blocks:
            _check_positive_int("blocks[i]", b)
        for w in widths:
            _check_positive_int("widths[i]", w)
        _check_positive_int("num_classes", num_classes)
        _check_positive_int("in_channels", in_channels)
        self.blocks = tuple(blocks)
        self.widths = tuple(widths)

        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        stages = []
        channels = widths[0]
        for i, (n_blocks, width) in enumerate(zip(blocks, widths)):
            stride = 1 if i == 0 else 2
            stage = [BasicBlock(channels, width, stride)]
            stage += [BasicBlock(width, width, 1) for _ in range(n_blocks - 1)]
            stages.append(nn.Sequential(*stage))
            channels = width
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def features(self, x: Tensor) -> Tensor:
        """The pooled representation before the linear head, shape ``(N, widths[-1])``."""
        return torch.flatten(self.pool(self.stages(self.stem(x))), 1)

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``(N, num_classes)`` for images ``(N, in_channels, H, W)``."""
        return self.fc(self.features(x))


def resnet34(num_classes: int = 10, in_channels: int = 3) -> ResNet:
    """ResNet-34 for 32x32 images, the network of the CIFAR-10/100 experiments (Sec. 4.1-4.2).

    Stages of ``[3, 4, 6, 3]`` :class:`BasicBlock` with 64, 128, 256, 512
    channels and strides 1, 2, 2, 2 after a 3x3 stride-1 stem without
    max-pool (He et al. 2016; see :class:`ResNet`).  21,282,122 parameters
    for CIFAR-10, 21,328,292 for CIFAR-100.
    """
    return ResNet((3, 4, 6, 3), (64, 128, 256, 512), num_classes, in_channels)


def resnet18(num_classes: int = 10, in_channels: int = 1) -> ResNet:
    """ResNet-18 of the same family, the network of the FASHION-MNIST experiments (Sec. 4.2).

    Stages of ``[2, 2, 2, 2]`` :class:`BasicBlock` (see :class:`ResNet`).
    The default is one input channel for 28x28 FASHION-MNIST images:
    11,172,810 parameters, which is 2 x 64 x 9 = 1,152 fewer than the
    11,173,962 of the three-channel CIFAR variant (only the stem differs).
    """
    return ResNet((2, 2, 2, 2), (64, 128, 256, 512), num_classes, in_channels)


# --------------------------------------------------------------------------
# the shallow CNN of Wang et al. (2018), Table 2


class WangCNN(nn.Module):
    """The shallow CNN of the open-set noise experiment (Table 2); see :func:`wang_cnn`."""

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 3,
        image_size: int | tuple[int, int] = 32,
        fc_bn_relu: bool = True,
    ) -> None:
        super().__init__()
        _check_positive_int("num_classes", num_classes)
        _check_positive_int("in_channels", in_channels)
        h, w = _image_hw(image_size)
        if h < 8 or w < 8:
            raise ValueError(
                f"image_size must be at least 8 (three 2x2 max-pools), got image_size={image_size!r}"
            )

        def conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]

        layers: list[nn.Module] = []
        channels = in_channels
        for width in (64, 128, 196):
            layers += conv_bn_relu(channels, width) + conv_bn_relu(width, width)
            layers.append(nn.MaxPool2d(2))
            channels = width
        self.convs = nn.Sequential(*layers, nn.Flatten())
        flat = 196 * (h // 8) * (w // 8)
        fc1: list[nn.Module] = [nn.Linear(flat, 256)]
        if fc_bn_relu:
            fc1 += [nn.BatchNorm1d(256), nn.ReLU(inplace=True)]
        self.fc1 = nn.Sequential(*fc1)
        self.fc2 = nn.Linear(256, num_classes)

    def features(self, x: Tensor) -> Tensor:
        """The 256-unit representation before the linear head, shape ``(N, 256)``."""
        return self.fc1(self.convs(x))

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``(N, num_classes)`` for images ``(N, in_channels, H, W)``."""
        return self.fc2(self.features(x))


def wang_cnn(
    num_classes: int = 10,
    in_channels: int = 3,
    image_size: int | tuple[int, int] = 32,
    fc_bn_relu: bool = True,
) -> WangCNN:
    """The shallow CNN of Wang et al. (2018) used for the open-set noise experiment (Table 2).

    Zhang & Sabuncu repeat the CIFAR-10 setup of
    :cite:t:`wang2018iterative` and call its network "a shallow CNN without
    data augmentation" (Sec. 4.3) without listing its layers.  The layers here
    follow the public code of Wang et al. (repository ``YisenWang/ONL``,
    ``util.py``, Keras) and of the same group's D2L code
    (``xingjunm/dimensionality-driven-learning``, ``models.py``, CIFAR-10)::

        [conv3x3(64)  -> BN -> ReLU] x 2 -> max-pool 2x2
        [conv3x3(128) -> BN -> ReLU] x 2 -> max-pool 2x2
        [conv3x3(196) -> BN -> ReLU] x 2 -> max-pool 2x2
        flatten (196 x 4 x 4 = 3136 for 32x32 inputs)
        dense(256) -> BN -> ReLU          (fc_bn_relu=True, the default)
        dense(num_classes)                logits

    Convolutions use ``padding=1`` ("same") and have biases, as in the Keras
    originals.  1,639,794 parameters for CIFAR-10.

    Known differences and uncertainties:

    - ``fc_bn_relu``: in the public ONL code the 256-unit dense layer is
      *linear* (no BN, no ReLU) and the 10-way softmax layer follows it
      directly; the D2L code of the same group puts BN and ReLU after it.  The
      default follows D2L, which agrees with Sec. 4's statement that all
      networks used ReLUs in their hidden layers; ``fc_bn_relu=False`` gives
      the ONL layout (1,639,282 parameters).  Which one Zhang & Sabuncu ran is
      not stated.  The ONL repository lists TensorFlow 2.4 and Keras 2.4 as
      requirements, which postdate the paper, so even it may differ from the
      code that produced Table 2.
    - Both originals put an L2 penalty of 0.01 on the 256-unit layer's weights
      and bias; that is a training choice, not part of this module.
    - Initialisation and batch normalisation keep PyTorch's defaults (Kaiming
      uniform, momentum 0.1, eps 1e-5), not Keras's (Glorot uniform or
      He normal, momentum 0.99 i.e. 0.01 in PyTorch terms, eps 1e-3).

    Args:
        num_classes: number of logits.
        in_channels: channels of the input images.
        image_size: side of the (square) input, or ``(H, W)``; sets the input
            size of the 256-unit layer, ``196 * (H // 8) * (W // 8)``.
        fc_bn_relu: batch normalisation and ReLU after the 256-unit layer.
    """
    return WangCNN(num_classes, in_channels, image_size, fc_bn_relu)


# --------------------------------------------------------------------------
# pocket-scale models: no batch normalisation, no buffers (vmap-friendly)


def mlp(num_classes: int = 10, in_features: int = 64, hidden: Sequence[int] = (128,)) -> nn.Sequential:
    """A multilayer perceptron for the offline ``digits`` (8 x 8 = 64 pixels); not in the paper.

    ``flatten -> [linear -> ReLU] per entry of hidden -> linear``.  The input
    may be images ``(N, C, H, W)`` with ``C * H * W == in_features`` or
    vectors ``(N, in_features)``.  ``hidden=()`` gives multinomial logistic
    regression.  PyTorch's default initialisation.  No batch normalisation,
    so copies can be stacked and ``vmap``-ed (see the module docstring).
    9,610 parameters with the defaults.
    """
    _check_positive_int("num_classes", num_classes)
    _check_positive_int("in_features", in_features)
    widths = tuple(hidden)
    for width in widths:
        _check_positive_int("hidden[i]", width)
    layers: list[nn.Module] = [nn.Flatten()]
    prev = in_features
    for width in widths:
        layers += [nn.Linear(prev, width), nn.ReLU()]
        prev = width
    layers.append(nn.Linear(prev, num_classes))
    return nn.Sequential(*layers)


def small_cnn(num_classes: int = 10, in_channels: int = 1, width: int = 32) -> nn.Sequential:
    """A two-layer CNN for the offline ``digits`` (8x8 images); not in the paper.

    ::

        conv3x3(width)   -> ReLU -> max-pool 2x2      8x8 -> 4x4
        conv3x3(2 width) -> ReLU -> average-pool to 2x2
        flatten (2 width x 2 x 2) -> linear(num_classes)

    Convolutions use ``padding=1``; the adaptive average pool makes the head
    independent of the image size (any input of at least 2x2 works).
    PyTorch's default initialisation.  No batch normalisation, so copies can
    be stacked and ``vmap``-ed (see the module docstring).  21,386 parameters
    with the defaults.
    """
    _check_positive_int("num_classes", num_classes)
    _check_positive_int("in_channels", in_channels)
    _check_positive_int("width", width)
    return nn.Sequential(
        nn.Conv2d(in_channels, width, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(2 * width * 4, num_classes),
    )


# --------------------------------------------------------------------------
# registry


MODELS: dict[str, Callable[..., nn.Module]] = {
    "resnet34": resnet34,
    "resnet18": resnet18,
    "wang_cnn": wang_cnn,
    "mlp": mlp,
    "small_cnn": small_cnn,
}
"""The model factories by name; :func:`build` looks names up here."""


def build(
    name: str,
    num_classes: int,
    in_channels: int,
    image_size: int | tuple[int, int] | None = None,
    **kwargs,
) -> nn.Module:
    """Build the model ``name`` of :data:`MODELS` for images ``(in_channels, H, W)`` and ``num_classes`` classes.

    ``image_size`` (an int for square images, or ``(H, W)``) is needed by
    ``"mlp"`` (its input size is ``in_channels * H * W``) and used by
    ``"wang_cnn"`` (default 32); the other models accept any image size and
    ignore it.  Other keyword arguments go to the factory, e.g.
    ``build("mlp", 10, 1, 8, hidden=(256, 256))``.

    Raises ``ValueError`` for an unknown ``name`` (listing the known ones) and
    for ``"mlp"`` without ``image_size``.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model name={name!r}; known models: {', '.join(MODELS)}")
    _check_positive_int("num_classes", num_classes)
    _check_positive_int("in_channels", in_channels)
    hw = None if image_size is None else _image_hw(image_size)
    if name == "mlp":
        if hw is None and "in_features" not in kwargs:
            raise ValueError(
                "model 'mlp' needs image_size (an int or (H, W)) to know its input size "
                "in_channels * H * W"
            )
        if hw is not None:
            in_features = in_channels * hw[0] * hw[1]
            if kwargs.setdefault("in_features", in_features) != in_features:
                raise ValueError(
                    f"in_features={kwargs['in_features']} contradicts in_channels * H * W = {in_features}"
                )
        return mlp(num_classes, **kwargs)
    if name == "wang_cnn" and hw is not None:
        kwargs["image_size"] = hw
    return MODELS[name](num_classes=num_classes, in_channels=in_channels, **kwargs)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """The number of parameters (entries of all parameter tensors) of ``model``.

    Buffers such as batch-normalisation running statistics are not counted.
    With ``trainable_only=True`` only parameters with ``requires_grad``.
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
