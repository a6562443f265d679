import pytest
import torch


@pytest.fixture
def gen():
    """A fixed-seed generator, so every test draws the same numbers."""
    return torch.Generator().manual_seed(1234)
