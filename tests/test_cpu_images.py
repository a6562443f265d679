"""Whether the cpu scale's images are here (gce.features.images_available) and what a reader is told if not."""

from __future__ import annotations

import pytest

from gce import data, features


def test_the_jpeg_copy_is_available_only_where_its_file_is(tmp_path, monkeypatch):
    monkeypatch.delenv("GCE_CPU_SOURCE", raising=False)
    monkeypatch.setenv("GCE_DATA", str(tmp_path))
    assert not features.images_available()
    (tmp_path / data.CIFAR10_JPEG_FILE).write_bytes(b"")
    assert features.images_available()
    assert not features.images_available("cifar10_jpeg", root=tmp_path / "elsewhere")


def test_torchvisions_cifar10_counts_as_available_once_chosen(tmp_path, monkeypatch):
    monkeypatch.setenv("GCE_DATA", str(tmp_path))
    monkeypatch.setenv("GCE_CPU_SOURCE", "cifar10")
    assert features.images_available()  # the reader asked for the download
    with pytest.raises(ValueError, match="source='imagenet'"):
        features.images_available("imagenet")


def test_the_missing_message_is_one_line_naming_both_ways(monkeypatch):
    monkeypatch.delenv("GCE_CPU_SOURCE", raising=False)
    text = features.missing_images_message()
    assert "\n" not in text and text.startswith(data.CIFAR10_JPEG_LABEL)
    assert "GCE_DATA" in text and "GCE_CPU_SOURCE=cifar10" in text and data.CIFAR10_JPEG_FILE in text
