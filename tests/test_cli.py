"""The command line fails clearly: one line, a non-zero exit code, before any work; `claims` prints the verdicts."""

import subprocess
import sys

import pytest
import torch

from gce.book import cli
from gce import train
from gce.book import experiments, store
from gce.book.experiments import Experiment
from gce.train import RunConfig

FAST = dict(dataset="digits", model="mlp", model_kwargs=(("hidden", (16,)),), epochs=2, lr=0.05,
            track_train_softmax=False)


@pytest.fixture
def no_training(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("training started before the error was found")
    monkeypatch.setattr(train, "train_many", refuse)


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_help_shows_every_default_and_no_rst(capsys, monkeypatch):
    monkeypatch.setenv("GCE_SCALE", "lite")
    with pytest.raises(SystemExit) as ex:
        cli.main(["reproduce", "--help"])
    assert ex.value.code == 0
    out = capsys.readouterr().out
    assert "(default: lite)" in out  # $GCE_SCALE, as in the notebooks
    flat = " ".join(out.split())
    for flag in ("--results", "--device", "--data-root", "--engine", "--address", "--gpus-per-run", "--no-progress"):
        assert "(default:" in flat.split(flag + " ", 2)[-1].split(" --")[0], flag
    assert "(default: local)" in flat and "(default: 0.0)" in flat
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    top = capsys.readouterr().out
    assert "``" not in top and "``" not in out


def test_gce_scale_is_the_default_scale(monkeypatch, tmp_path, capsys):
    seen = {}

    def fake_run(name, scale, **kw):
        seen["scale"] = scale
        raise ValueError("stop here")
    monkeypatch.setattr(experiments, "run", fake_run)
    monkeypatch.setenv("GCE_SCALE", "paper")
    assert cli.main(["reproduce", "table2", "--results", str(tmp_path)]) == 1
    assert seen["scale"] == "paper"
    assert _one_line(capsys.readouterr().err) == "error: stop here"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_one_line_before_any_work(tmp_path, capsys, no_training):
    assert cli.main(["reproduce", "table1", "--results", str(tmp_path), "--device", "cuda"]) == 1
    line = _one_line(capsys.readouterr().err)
    assert "cuda" in line and "available: cpu" in line
    assert not (tmp_path / "pocket").exists()


def test_an_unknown_device_is_one_line(tmp_path, capsys, no_training):
    assert cli.main(["reproduce", "table1", "--results", str(tmp_path), "--device", "gpu0"]) == 1
    line = _one_line(capsys.readouterr().err)
    assert "unknown device='gpu0'" in line and "available" in line


def test_missing_data_is_one_message_before_training_and_creates_no_folder(tmp_path, capsys, no_training,
                                                                            monkeypatch):
    monkeypatch.setenv("GCE_SCALE", "lite")
    data = tmp_path / "no-data"
    rc = cli.main(["reproduce", "table1", "--results", str(tmp_path / "r"), "--data-root", str(data),
                   "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err
    assert err.count("not found") == 1 and str(data) in err and "download=True" in err
    assert len(err.splitlines()) <= 3
    assert "stored" not in err
    assert not data.exists()


def test_ctrl_c_says_how_many_runs_are_saved_and_exits_130(tmp_path, capsys, monkeypatch):
    cfgs = tuple(RunConfig(**FAST, noise="uniform", eta=0.4, method="cce", seed=s) for s in range(3))
    monkeypatch.setattr(experiments, "spec",
                        lambda name, scale="pocket": Experiment("table1", "pocket", "t", cfgs, ("digits",), "t"))
    real = store.ResultStore.add
    calls = []

    def add_then_interrupt(self, *a, **k):
        real(self, *a, **k)
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
    monkeypatch.setattr(store.ResultStore, "add", add_then_interrupt)
    rc = cli.main(["reproduce", "table1", "--results", str(tmp_path), "--no-progress"])
    assert rc == 130
    # the second run was stored before the interrupt reached the command line
    assert _one_line(capsys.readouterr().err) == "interrupted; 2 runs saved; run the same command to resume"
    assert len(store.ResultStore(tmp_path, "pocket", "table1").done()) == 2


def test_a_read_only_results_folder_is_one_line_before_training(tmp_path, capsys, no_training):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert cli.main(["reproduce", "table1", "--results", str(blocker)]) == 1
    assert "cannot be created" in _one_line(capsys.readouterr().err)


def test_results_export_and_a_damaged_import(tmp_path, capsys):
    st = store.ResultStore(tmp_path, "pocket", "table1")
    cfg = RunConfig(**FAST, seed=3)
    st.add([train.RunResult(cfg, {"test_acc": [0.1, 0.2]}, 2, 0.2, 0.2, 0.0, 0.0)], {}, "pocket")
    assert cli.main(["results", "export", "--results", str(tmp_path), "--scale", "pocket",
                     "--out", str(tmp_path / "csv")]) == 0
    assert (tmp_path / "csv" / "table1_runs.csv").exists()
    assert cli.main(["results", "import-csv", str(tmp_path / "csv"), "--results", str(tmp_path / "b")]) == 0
    assert store.ResultStore(tmp_path / "b", "pocket", "table1").done() == st.done()
    (tmp_path / "csv" / "table1_history.csv").write_text("run_id,epoch\n")
    capsys.readouterr()
    assert cli.main(["results", "import-csv", str(tmp_path / "csv"), "--results", str(tmp_path / "c")]) == 1
    assert "table1_history.csv" in _one_line(capsys.readouterr().err)


def test_the_module_runs_as_a_program():
    out = subprocess.run([sys.executable, "-m", "gce", "reproduce", "table9"], capture_output=True, text=True)
    assert out.returncode == 2 and "invalid choice" in out.stderr


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "x"])
def test_gpus_per_run_must_be_a_finite_non_negative_number(value, capsys, no_training):
    with pytest.raises(SystemExit) as ex:
        cli.main(["reproduce", "table1", "--engine", "ray", "--gpus-per-run", value])
    assert ex.value.code == 2
    err = capsys.readouterr().err
    assert f"--gpus-per-run: must be a finite number >= 0 (0: CPU), got '{value}'" in err
    assert "convert" not in err and "Traceback" not in err


def test_export_and_compact_of_a_folder_where_the_database_should_be_are_one_line(tmp_path, capsys):
    (tmp_path / "pocket" / store.DB_NAME).mkdir(parents=True)
    for args in (["results", "export"], ["results", "compact"]):
        assert cli.main([*args, "--results", str(tmp_path)]) == 1
        line = _one_line(capsys.readouterr().err)
        assert "is a folder, not a database file" in line, line


def test_a_failing_ray_task_is_one_line_without_colour_codes():
    from gce.book.runners import Failure
    cfg = RunConfig(**FAST, seed=1)
    ray_text = ("\x1b[36mray::_ray_task()\x1b[39m (pid=12, ip=10.0.0.1)\n  File \"x.py\", line 3, in f\n"
                "    raise ValueError('bad width')\n\x1b[31mValueError: bad width\x1b[0m\n")
    f = Failure(cfg, ray_text)
    assert f.summary == "ValueError: bad width"
    assert f.line().startswith(store.run_id(cfg)) and f.line().endswith("seed=1: ValueError: bad width")
    assert "\n" not in f.line() and "\x1b" not in f.line()


def test_jobs_partition_balances_the_pocket_grid_and_rejects_bad_counts():
    from gce.book import parallel

    names = ["onset", "fig1", "fig2", "table1", "table2", "sensitivity"]
    groups = parallel.partition(names, "pocket", 2)
    units = [u for g in groups for u in g]
    assert len(groups) == 2 and sorted(set(n for n, _ in units)) == sorted(names)
    # table1 costs more than half of the whole: it is split in two parts, every other experiment is whole
    assert sorted(u for u in units if u[0] == "table1") == [("table1", (0, 2)), ("table1", (1, 2))]
    assert all(s is None for n, s in units if n != "table1")
    cost = {u: parallel.experiment_cost(u[0], "pocket", u[1]) for u in units}
    loads = sorted(sum(cost[u] for u in g) for g in groups)
    assert loads[1] <= max(cost.values()) + loads[0]  # greedy: no group exceeds the other by more than one item
    assert parallel.partition(["fig1"], "pocket", 1) == [[("fig1", None)]]
    assert parallel.unit_args(("table1", (1, 2))) == ["table1", "--shard", "1/2"]
    with pytest.raises(ValueError, match="jobs"):
        parallel.partition(names, "pocket", 0)


def test_jobs_partition_weighs_autograd_losses_and_splits_what_exceeds_half_a_share():
    from gce.book import parallel

    later = experiments.spec("later", "pocket").configs
    assert parallel.experiment_cost("later", "pocket") == pytest.approx(
        parallel.AUTOGRAD_COST * experiments.grid_flops(later))
    names = list(experiments.EXPERIMENTS)
    costs = {n: parallel.experiment_cost(n, "pocket") for n in names}
    half_share = sum(costs.values()) / 2 / 2
    units = [u for g in parallel.partition(names, "pocket", 2) for u in g]
    for n in names:
        shards = sorted(s for m, s in units if m == n)
        if costs[n] > half_share:
            assert shards == [(0, 2), (1, 2)], n
        elif costs[n] > 0:
            assert shards == [None], n


def test_shards_cover_the_grid_once_and_keep_each_cell_together():
    grid = experiments.spec("table1", "pocket").configs
    parts = [experiments.shard_configs(grid, i, 3) for i in range(3)]
    ids = [store.run_id(c) for p in parts for c in p]
    assert sorted(ids) == sorted(store.run_id(c) for c in grid) and len(set(ids)) == len(ids)
    for p in parts:  # a forward_T_hat run and its CCE twin are trained by the same process
        mine = {store.run_id(c) for c in p}
        assert all(store.run_id(store.cce_twin(c)) in mine for c in p if c.method == "forward_T_hat")
    assert max(map(len, parts)) - min(map(len, parts)) <= len(experiments.TABLE1_METHODS)
    with pytest.raises(ValueError, match="index must be a part number in 0..2"):
        experiments.shard_configs(grid, 3, 3)


def test_reproduce_takes_several_experiments_and_jobs(tmp_path, capsys):
    from gce.book import cli

    code = cli.main(["reproduce", "human", "human", "--scale", "pocket", "--results", str(tmp_path),
                     "--no-progress"])
    assert code == 0 and capsys.readouterr().out.count("human: no runs") == 1
    assert cli.main(["reproduce", "fig1", "--jobs", "0", "--results", str(tmp_path)]) == 1
    assert "--jobs must be a positive number" in capsys.readouterr().err


def test_claims_prints_every_verdict_of_the_stored_pocket_results_grouped_by_outcome(capsys, no_training):
    from gce.book import claims, paths

    results = paths.package_checkout() / "results"
    assert cli.main(["claims", "--scale", "pocket", "--results", str(results)]) == 0
    out = capsys.readouterr().out
    verdicts = claims.evaluate(results, "pocket")
    assert len(verdicts) == len(claims.CLAIMS)
    sections = {}
    for part in out.split("\n== ")[1:]:
        head, _, body = part.partition("\n")
        status, _, count = head.rpartition(": ")
        sections[status] = body
        assert int(count) == int((verdicts["status"] == status).sum())
    assert list(sections) == list(claims.STATUSES)
    for row in verdicts.to_dict("records"):
        body = sections[row["status"]]
        assert f"{row['id']} (Sec. {row['section']}): {row['status']}" in body
        assert " ".join(row["reason"].split()) in " ".join(body.replace("reason:", " ").split())


def test_claims_at_a_scale_without_stored_results_is_one_line(tmp_path, capsys):
    assert cli.main(["claims", "--scale", "lite", "--results", str(tmp_path)]) == 1
    line = _one_line(capsys.readouterr().err)
    assert "'lite'" in line and str(tmp_path) in line and "none" in line
