"""Helpers of the chapter "Noisy labels and noise models" (``book/noise.ipynb``): checks on the pocket tasks the
chapter builds from scikit-learn's digits."""

from __future__ import annotations

import torch

from ... import data

__all__ = ["image_keys", "pair_halves"]


def image_keys(images: torch.Tensor) -> set[bytes]:
    """The images of ``images`` (N, C, H, W) as a set of byte strings: equal keys mean identical pixels."""
    return {bytes(image.contiguous().numpy()) for image in images}


def pair_halves(digits: data.Dataset, pairs: data.Dataset) -> dict[str, dict[str, int | bool]]:
    """Where the halves of ``digit_pairs`` come from, pixel for pixel, per split (``"train"``, ``"test"``):
    ``within`` (every half of the split's pairs is a digit image of the same split), ``halves`` (distinct halves),
    ``digits`` (distinct digit images of that split) and ``shared_with_train`` (halves identical to a *training*
    digit image; 0 for the test split means no test pair reuses a training image)."""
    digit_keys = {part: image_keys(getattr(digits, part).images) for part in ("train", "test")}
    out = {}
    for part in ("train", "test"):
        images = getattr(pairs, part).images
        width = images.shape[-1] // 2
        halves = image_keys(torch.cat([images[..., :width], images[..., width:]]))
        out[part] = {"within": halves <= digit_keys[part], "halves": len(halves), "digits": len(digit_keys[part]),
                     "shared_with_train": len(halves & digit_keys["train"])}
    return out
