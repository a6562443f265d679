"""Helpers of the noise chapter (gce.book.chapters.noise)."""

import torch

from gce import data
from gce.book.chapters import noise as chapter


def test_image_keys_are_equal_for_equal_pixels():
    a = torch.zeros(3, 1, 2, 2, dtype=torch.uint8)
    a[1, 0, 0, 0] = 7
    assert len(chapter.image_keys(a)) == 2


def test_pair_halves_of_the_pocket_task():
    got = chapter.pair_halves(data.load("digits"), data.load("digit_pairs"))
    assert got["train"]["within"] and got["test"]["within"]
    assert got["test"]["shared_with_train"] == 0
    assert got["train"]["shared_with_train"] == got["train"]["halves"]
