"""benchmarks/cpu_rebuild.py: it times each step's processes, and it refuses a folder that already holds results."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def rebuild():
    spec = importlib.util.spec_from_file_location("cpu_rebuild", ROOT / "benchmarks" / "cpu_rebuild.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_folder_with_cpu_results_is_refused(rebuild, tmp_path):
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "results.sqlite").write_bytes(b"")
    with pytest.raises(SystemExit, match="already holds cpu results"):
        rebuild.main(["--results", str(tmp_path)])


def test_a_step_records_wall_and_cpu_time_of_its_processes(rebuild, tmp_path, monkeypatch):
    calls = []

    def fake_run(cmd):
        calls.append(cmd)
        return type("Done", (), {"returncode": 0})()

    monkeypatch.setattr(rebuild.subprocess, "run", fake_run)
    got = rebuild.step(("fig1",), str(tmp_path), 2)
    assert calls[0][:3] == [sys.executable, "-m", "gce"] and "--jobs" in calls[0]
    assert got["command"] == "python -m gce reproduce fig1 --scale cpu --jobs 2"
    assert got["wall_s"] >= 0 and got["cpu_s"] >= 0 and len(got["load_start"]) == 3
    monkeypatch.setattr(rebuild.subprocess, "run", lambda cmd: type("Done", (), {"returncode": 3})())
    with pytest.raises(SystemExit, match="exited with code 3"):
        rebuild.step(("fig1",), str(tmp_path), 2)


def test_the_pocket_scale_is_one_step_of_the_whole_grid(rebuild, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(rebuild.subprocess, "run",
                        lambda cmd: calls.append(cmd) or type("Done", (), {"returncode": 0})())
    out = tmp_path / "rec.json"
    assert rebuild.main(["--scale", "pocket", "--results", str(tmp_path / "r"), "--out", str(out)]) == 0
    assert len(calls) == 1 and calls[0][4:7] == ["all", "--scale", "pocket"]
    import json

    rec = json.loads(out.read_text())
    assert rec["scale"] == "pocket" and rec["steps"][0]["command"].startswith("python -m gce reproduce all")
    (tmp_path / "r" / "pocket").mkdir(parents=True)
    (tmp_path / "r" / "pocket" / "results.sqlite").write_bytes(b"")
    with pytest.raises(SystemExit, match="already holds pocket results"):
        rebuild.main(["--scale", "pocket", "--results", str(tmp_path / "r")])
