"""The benchmarks against the peers' own code (experiments/gpt_shakespeare/benchmark.py,
benchmarks/ppo_cartpole_vs_cleanrl.py): they refuse a missing or wrong checkout / interpreter with
a message naming the flag, and read the peers' logs as the READMEs say. No peer code runs here:
the checkouts are fakes with the right file names, the logs are written by hand in the peers'
formats (nanoGPT's train.py, CleanRL's ppo.py under gymnasium 0.29)."""

import importlib.util
import statistics
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(rel: str, name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / rel)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_path = list(sys.path)
gpt_bench = _load("experiments/gpt_shakespeare/benchmark.py", "gpt_shakespeare_benchmark")
ppo_bench = _load("benchmarks/ppo_cartpole_vs_cleanrl.py", "ppo_cartpole_vs_cleanrl")
peers = sys.modules["peers"]
sys.path[:] = _path          # the scripts put benchmarks/ first on sys.path: not for other tests


def _fake_checkout(root: Path, files) -> Path:
    for f in files:
        (root / f).parent.mkdir(parents=True, exist_ok=True)
        (root / f).write_text("# not the real file\n")
    return root


@pytest.fixture
def nanogpt(tmp_path):
    return _fake_checkout(tmp_path / "nanoGPT", peers.NANOGPT_FILES)


@pytest.fixture
def cleanrl(tmp_path):
    return _fake_checkout(tmp_path / "cleanrl", peers.CLEANRL_FILES)


def _refused(parse, argv, capsys) -> str:
    with pytest.raises(SystemExit) as e:
        parse(argv)
    assert e.value.code == 2
    return capsys.readouterr().err


# ------------------------------------------------------------------------------ nanoGPT
def test_nanogpt_paths_are_required(capsys):
    err = _refused(gpt_bench.parse_args, [], capsys)
    assert "--nanogpt" in err and "--nanogpt-python" in err


def test_nanogpt_missing_checkout(tmp_path, capsys):
    err = _refused(gpt_bench.parse_args, ["--nanogpt", str(tmp_path / "nowhere"),
                                          "--nanogpt-python", sys.executable], capsys)
    assert "--nanogpt:" in err and "does not exist" in err and "PEERS.md" in err


def test_nanogpt_wrong_checkout(tmp_path, capsys):
    (tmp_path / "train.py").write_text("")
    err = _refused(gpt_bench.parse_args, ["--nanogpt", str(tmp_path),
                                          "--nanogpt-python", sys.executable], capsys)
    assert "is not a checkout of https://github.com/karpathy/nanoGPT" in err
    assert "config/train_shakespeare_char.py" in err and "model.py" in err
    assert "it has no train.py" not in err      # train.py is there


def test_nanogpt_checkout_is_a_file(tmp_path, capsys):
    f = tmp_path / "nanoGPT.zip"
    f.write_text("")
    err = _refused(gpt_bench.parse_args, ["--nanogpt", str(f), "--nanogpt-python", sys.executable],
                   capsys)
    assert "is not a directory" in err


def test_nanogpt_missing_python(nanogpt, tmp_path, capsys):
    err = _refused(gpt_bench.parse_args, ["--nanogpt", str(nanogpt), "--nanogpt-python",
                                          str(tmp_path / "venv" / "bin" / "python")], capsys)
    assert "--nanogpt-python:" in err and "does not exist" in err


def test_nanogpt_python_not_executable(nanogpt, tmp_path, capsys):
    err = _refused(gpt_bench.parse_args, ["--nanogpt", str(nanogpt), "--nanogpt-python",
                                          str(tmp_path)], capsys)
    assert "--nanogpt-python:" in err and "not an executable file" in err
    f = tmp_path / "python"
    f.write_text("")
    f.chmod(0o644)
    err = _refused(gpt_bench.parse_args, ["--nanogpt", str(nanogpt), "--nanogpt-python", str(f)],
                   capsys)
    assert "not an executable file" in err


def test_nanogpt_bad_override(nanogpt, capsys):
    err = _refused(gpt_bench.parse_args, ["--nanogpt", str(nanogpt), "--nanogpt-python",
                                          sys.executable, "--nano-override=eval_interval"], capsys)
    assert "--nano-override" in err


def test_nanogpt_good_paths_parse(nanogpt):
    a = gpt_bench.parse_args(["--nanogpt", str(nanogpt), "--nanogpt-python", sys.executable,
                              "--threads", "2", "--nano-override=--eval_interval=10"])
    assert a.nanogpt == nanogpt.resolve() and a.threads == 2
    assert a.nano_override == ["--eval_interval=10"]


def test_nanogpt_log_parsing():
    """Training time = nanoGPT's per-iteration times minus its evaluations (timed from the line
    before each ``step N`` line to that line)."""
    lines = [(2.0, "Overriding config with config/train_shakespeare_char.py:"),
             (3.0, "using fused AdamW: False"),
             (4.5, "step 0: train loss 4.1676, val loss 4.1649"),        # 1.5 s evaluation
             (4.6, "iter 0: loss 4.1828, time 1600.00ms, mfu -100.00%"),
             (4.7, "iter 1: loss 4.1373, time 100.00ms, mfu -100.00%"),
             (5.7, "step 2: train loss 3.9, val loss 3.95"),             # 1.0 s evaluation
             (5.71, "saving checkpoint to OUT"),
             (5.8, "iter 2: loss 3.8, time 1100.00ms, mfu 0.02%")]
    log = gpt_bench.parse_nanogpt_log(lines)
    assert log["iterations"] == 3
    assert log["loop_s"] == pytest.approx(2.8)
    assert log["eval_s"] == pytest.approx(2.5)
    assert log["train_s"] == pytest.approx(0.3)
    assert [e["val_loss"] for e in log["evals"]] == [4.1649, 3.95]
    assert log["evals"][1]["train_s_before"] == pytest.approx(0.2)
    assert log["first_line_s"] == 2.0 and log["last_train_loss"] == 3.8


# ------------------------------------------------------------------------------ CleanRL
def test_cleanrl_paths_are_required(capsys):
    err = _refused(ppo_bench.parse_args, [], capsys)
    assert "--cleanrl" in err and "--cleanrl-python" in err


def test_cleanrl_wrong_checkout(tmp_path, capsys):
    err = _refused(ppo_bench.parse_args, ["--cleanrl", str(tmp_path), "--cleanrl-python",
                                          sys.executable], capsys)
    assert "--cleanrl:" in err and "is not a checkout of https://github.com/vwxyzjn/cleanrl" in err
    assert "cleanrl/ppo.py" in err


def test_cleanrl_missing_checkout_and_python(cleanrl, tmp_path, capsys):
    err = _refused(ppo_bench.parse_args, ["--cleanrl", str(tmp_path / "nowhere"),
                                          "--cleanrl-python", sys.executable], capsys)
    assert "--cleanrl:" in err and "does not exist" in err
    err = _refused(ppo_bench.parse_args, ["--cleanrl", str(cleanrl), "--cleanrl-python",
                                          str(tmp_path / "nope")], capsys)
    assert "--cleanrl-python:" in err and "does not exist" in err


def test_cleanrl_good_paths_parse(cleanrl):
    a = ppo_bench.parse_args(["--seeds", "3", "4", "--cleanrl", str(cleanrl),
                              "--cleanrl-python", sys.executable, "trainer.max_steps=5"])
    assert a.cleanrl == cleanrl.resolve() and a.seeds == [3, 4]
    assert a.extra == ["trainer.max_steps=5"] and a.total_timesteps is None


def test_solve_rule_is_genmodels():
    assert ppo_bench.solve_rule() == (100, 475.0)


def test_solve_tracker_applies_genmodels_rule():
    """Solved on the first episode after which ≥ 100 episodes have ended and the last 100 average
    ≥ 475 (genmodels.rl.task_ppo); CleanRL's start_time from its SPS lines."""
    tr = ppo_bench.SolveTracker(window=100, target=475.0, batch=512)
    t, solved_at = 1.0, None
    assert not tr.feed(t, "global_step=60, episodic_return=[15.]")       # first line, t = 1
    returns = [500.0] * 98 + [450.0] + [500.0] * 30
    for i, r in enumerate(returns):
        t += 0.01
        step = 100 + 4 * i
        if i % 10 == 9:
            k = len(tr.start_estimates) + 1
            # printed k iterations after a start_time at t = 0.5 on our clock
            tr.feed(t, f"SPS: {int(k * 512 / (t - 0.5))}")
        if tr.feed(t, f"global_step={step}, episodic_return=[{r}]") and solved_at is None:
            solved_at = (step, t, tr.episodes)
    # windows: episodes 1..100 hold 15 and 450 → mean 494.65 ≥ 475: solved at the 100th episode
    assert tr.episodes == 1 + len(returns)
    assert solved_at is not None and solved_at[2] == 100
    assert tr.solved["global_step"] == solved_at[0]
    times = tr.times()
    assert times["solve_s_from_spawn"] == pytest.approx(solved_at[1], abs=0.01)
    assert times["solve_s_from_first_line"] == pytest.approx(solved_at[1] - 1.0, abs=0.01)
    assert statistics.median(tr.start_estimates) == pytest.approx(0.5, abs=0.01)
    assert times["solve_s_own_clock"] == pytest.approx(solved_at[1] - 0.5, abs=0.02)


def test_solve_tracker_needs_a_full_window():
    tr = ppo_bench.SolveTracker(window=100, target=475.0)
    assert not any(tr.feed(0.1 * i, f"global_step={4 * i}, episodic_return=[500.0]")
                   for i in range(99))
    assert tr.feed(10.0, "global_step=400, episodic_return=[500.0]")
    assert not tr.feed(10.1, "global_step=404, episodic_return=[500.0]")   # only the first
    assert tr.solved["episodes"] == 100


def test_scrub_names_no_machine_path(tmp_path):
    text = f'{{"cmd": "{tmp_path}/venv/bin/python {tmp_path}/ck/train.py", "o": "{tmp_path}"}}'
    out = peers.scrub(text, {tmp_path: "ROOT", tmp_path / "ck": "CHECKOUT",
                             tmp_path / "venv" / "bin" / "python": "PYTHON"})
    assert out == '{"cmd": "PYTHON CHECKOUT/train.py", "o": "ROOT"}'
