import pytest
import torch


@pytest.fixture
def gen():
    """A fixed-seed generator, so every test draws the same numbers."""
    return torch.Generator().manual_seed(1234)


@pytest.fixture(autouse=True)
def _tests_may_train(monkeypatch):
    """Tests train their small grids on purpose (gce.budget refuses more than a few runs unless allowed);
    tests/test_budget.py removes this to test the refusal."""
    monkeypatch.setenv("GCE_ALLOW_TRAINING", "1")


@pytest.fixture
def one_thread():
    """One torch thread for the test (tiny tensors: faster, and far faster on a shared machine)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
