"""Where the stored results are found: $GCE_RESULTS, the checkout of the working directory, the checkout the
package is imported from, else the installed copy (gce.book.paths)."""

from pathlib import Path

from gce.book import experiments, paths

ROOT = Path(__file__).resolve().parents[1]


def test_the_environment_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("GCE_RESULTS", str(tmp_path / "mine"))
    monkeypatch.chdir(ROOT)
    assert experiments.default_results_dir() == tmp_path / "mine"


def test_inside_a_checkout_its_results_are_used(tmp_path, monkeypatch):
    monkeypatch.delenv("GCE_RESULTS", raising=False)
    (tmp_path / "_toc.yml").write_text("root: x\n")
    (tmp_path / "book" / "student").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "book" / "student")
    assert experiments.default_results_dir() == tmp_path.resolve() / "results"


def test_outside_any_checkout_the_package_checkout_is_used(tmp_path, monkeypatch):
    # this test imports gce from the checkout (editable install or PYTHONPATH=src): its results/ are found
    monkeypatch.delenv("GCE_RESULTS", raising=False)
    monkeypatch.chdir(tmp_path)
    assert paths.package_checkout() == ROOT
    assert experiments.default_results_dir() == ROOT / "results"
    assert (experiments.default_results_dir() / "pocket" / "results.sqlite").is_file()


def test_an_installed_package_falls_back_to_its_own_results(tmp_path, monkeypatch):
    monkeypatch.delenv("GCE_RESULTS", raising=False)
    monkeypatch.chdir(tmp_path)
    site = tmp_path / "site-packages" / "gce"
    site.mkdir(parents=True)
    monkeypatch.setattr(paths.resources, "files", lambda package: site)
    assert paths.package_checkout() is None
    assert experiments.default_results_dir() == site / "results" == experiments.installed_results_dir()
