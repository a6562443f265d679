"""Class names of the datasets the book uses, in their official label order.

The order is the one torchvision (and scikit-learn, for ``digits``) assigns
to the integer labels, so that ``CLASSES["cifar10"][3] == "cat"``.
"""

from __future__ import annotations

__all__ = ["CLASSES", "class_names", "class_index"]

CIFAR10 = ("airplane", "automobile", "bird", "cat", "deer",
           "dog", "frog", "horse", "ship", "truck")

FASHIONMNIST = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

CIFAR100 = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle",
    "bicycle", "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel",
    "can", "castle", "caterpillar", "cattle", "chair", "chimpanzee", "clock",
    "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
    "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster",
    "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse",
    "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear",
    "pickup_truck", "pine_tree", "plain", "plate", "poppy", "porcupine",
    "possum", "rabbit", "raccoon", "ray", "road", "rocket", "rose", "sea",
    "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider",
    "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank",
    "telephone", "television", "tiger", "tractor", "train", "trout", "tulip",
    "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
)

DIGITS = tuple(str(d) for d in range(10))

CLASSES: dict[str, tuple[str, ...]] = {
    "digits": DIGITS,
    "digit_pairs": tuple(f"{a}{b}" for a in range(10) for b in range(10)),
    "digits_0to4": DIGITS[:5],
    "digits_5to9": DIGITS[5:],
    "fashionmnist": FASHIONMNIST,
    "cifar10": CIFAR10,
    "cifar100": CIFAR100,
}
# CIFAR-10's images in the other forms the library reads them (gce.data, gce.features): the JPEG copy, its pixels
# downsampled, and the cpu scale's features of either source, whole or split into classes 0-4 and 5-9
for _source in ("cifar10_jpeg", "cifar10"):
    CLASSES.update({f"{_source}_features": CIFAR10, f"{_source}_features_0to4": CIFAR10[:5],
                    f"{_source}_features_5to9": CIFAR10[5:]})
CLASSES.update({"cifar10_jpeg": CIFAR10, "cifar10_jpeg_pixels16": CIFAR10, "cifar10_jpeg_features_pca128": CIFAR10,
                "cifar10_jpeg_features_pca256": CIFAR10})


def class_names(dataset: str) -> tuple[str, ...]:
    """The class names of ``dataset`` in label order; ``ValueError`` for an unknown name."""
    try:
        return CLASSES[dataset]
    except KeyError:
        raise ValueError(
            f"unknown dataset {dataset!r}; known datasets: {', '.join(sorted(CLASSES))}"
        ) from None


def class_index(dataset: str, name: str) -> int:
    """The integer label of class ``name`` in ``dataset``."""
    names = class_names(dataset)
    try:
        return names.index(name)
    except ValueError:
        raise ValueError(f"{name!r} is not a class of {dataset!r}; classes: {', '.join(names)}") from None
