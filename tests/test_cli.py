"""The training command line: options generated from the Configs, help, clear errors with exit status 2, Ctrl-C and
closed pipes, the JSON summary, the benchmark table, start-up without torch."""
import dataclasses
import importlib
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field

import numpy as np
import pytest

from lecturekit import algos
from lecturekit.course import cli
from lecturekit.course.cli import bench_rows, main, markdown_table, parse_overrides
from lecturekit.evaluation import History, Monitor, Run, TrainingDiverged, evaluate

KEYS = {"algo", "env", "seed", "env_steps", "wall_s", "eval_return_mean", "eval_return_std", "solved",
        "solved_at_steps", "solved_at_s"}


def run(*args):
    return subprocess.run([sys.executable, "-m", "lecturekit", *args], capture_output=True, text=True, timeout=300)


def test_help_lists_algorithms():
    out = run("--help")
    assert out.returncode == 0
    for name in ("reinforce", "a2c", "ppo", "cem"):
        assert name in out.stdout


@pytest.mark.parametrize("args, words", [
    (["train", "ppo2"], "Unknown algorithm 'ppo2'. Available:"),
    (["train"], "train needs an algorithm: one of a2c,"),
    (["train", "reinforce", "--env", "NoSuchEnv-v0"], "Unknown environment 'NoSuchEnv-v0'"),
    (["train", "reinforce", "--set", "no_such_field=1"], "has no field 'no_such_field'"),
    (["train", "ppo", "--no-such-field", "1"], "ppo's Config has no field 'no_such_field'"),
    (["train", "ppo", "--clip-eps", "x"], "argument --clip-eps: invalid float value: 'x'"),
    (["train", "ppo", "--gae-lambda", "2"], "ppo's Config: gae_lambda must be in [0, 1]"),
    (["train", "ppo", "--steps", "0"], "argument --steps: must be a positive integer, got '0'"),
    (["train", "ppo", "--eval-every", "0"], "argument --eval-every: must be a positive integer"),
    (["train", "ppo", "--eval-episodes", "0"], "argument --eval-episodes: must be a positive integer"),
    (["train", "ppo", "--target", "nan"], "argument --target: must be a finite number, got 'nan'"),
    (["bench", "nope"], "Unknown algorithm 'nope'"),
    (["bench", "--seeds", "0"], "argument --seeds: must be a positive integer"),
])
def test_bad_input_is_one_clear_line_and_exit_2(args, words, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0]


def test_train_prints_progress_on_stderr_and_json_last():
    out = run("train", "cem", "--env", "CartPole-v1", "--steps", "3000", "--seed", "1", "--eval-every", "1000",
              "--eval-episodes", "3")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert KEYS <= summary.keys()
    assert summary["algo"] == "cem" and summary["seed"] == 1 and summary["env_steps"] >= 3000
    assert "step" in out.stderr


def test_parse_overrides_converts_types():
    from dataclasses import dataclass

    @dataclass
    class C:
        lr: float = 1e-3
        n: int = 4
        norm: bool = True
        hidden: tuple = (64, 64)

    c = parse_overrides(C, ["lr=0.01", "n=8", "norm=false", "hidden=32,32"])
    assert (c.lr, c.n, c.norm, c.hidden) == (0.01, 8, False, (32, 32))


def test_bench_rows_median_and_worst_with_an_unsolved_seed():
    runs = [{"algo": "x", "env": "E", "target": 1.0, "solved": s, "solved_at_steps": n, "solved_at_s": t}
            for s, n, t in [(True, 100, 1.0), (True, 300, 3.0), (False, None, None)]]
    (row,) = bench_rows(runs)
    assert row["solved"] == 2 and row["median_steps"] == 300 and row["worst_steps"] == float("inf")
    assert "2/3" in markdown_table([row]) and "not reached" in markdown_table([row])


def test_monitor_stops_on_nan_with_a_message():
    mon = Monitor("demo", "CartPole-v1", Run(seed=0, steps=100, eval_episodes=2))
    with pytest.raises(TrainingDiverged, match="'loss' became nan at env step 7"):
        mon.log(7, loss=float("nan"))


def test_monitor_target_budget_and_stop_button():
    always_left = lambda obs: np.zeros(len(obs), dtype=np.int64)  # noqa: E731
    mon = Monitor("demo", "CartPole-v1", Run(seed=0, steps=100, target=1.0, eval_every=10, eval_episodes=2))
    assert mon.should_stop(10, always_left) and mon.finish().stopped == "target"
    mon = Monitor("demo", "CartPole-v1", Run(seed=0, steps=20, target=1e9, eval_every=10, eval_episodes=2))
    assert not mon.should_stop(10, always_left) and mon.should_stop(20, always_left)
    h = mon.finish()
    assert h.stopped == "budget" and not h.solved and len(h.evals) == 2
    mon = Monitor("demo", "CartPole-v1", Run(seed=0, steps=100, eval_every=10, eval_episodes=2, callback=lambda e: False))
    assert mon.should_stop(10, always_left) and mon.finish().stopped == "user"


def test_evaluate_is_deterministic_and_counts_one_episode_per_env():
    always_left = lambda obs: np.zeros(len(obs), dtype=np.int64)  # noqa: E731
    m1, s1 = evaluate(always_left, "CartPole-v1", 5, seed=3)
    m2, s2 = evaluate(always_left, "CartPole-v1", 5, seed=3)
    assert (m1, s1) == (m2, s2) and 5 <= m1 < 20  # pushing left always drops the pole in a few steps


def test_history_summary_keys():
    h = History("a", "E", 0, evals=[(10, 0.5, 3.0, 1.0)], env_steps=10, wall_s=0.5)
    assert KEYS <= h.summary().keys()


# -- options generated from the Configs -----------------------------------------------------------------------------
@dataclass
class Base:
    lr: float = 1e-3            # step size
    # a comment line of its own belongs to no field
    hidden: tuple = (64, 64)    # hidden sizes, 100 % of them


@dataclass
class Toy(Base):
    """A docstring: lr: float = 2  # not a field."""

    n: int = 4                  # how many
    norm: bool = True           # normalise?
    target_entropy: float | None = None  # None: -act_dim
    mode: str = "a"             # a or b
    extra: float = field(default=0.5, metadata={"help": "from the metadata"})

    def __post_init__(self):
        x: int = 3  # noqa: F841  (inside a method: not a field)
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")


def test_field_comments_come_from_the_source_and_the_base_classes():
    assert cli.field_comments(Toy) == {"lr": "step size", "hidden": "hidden sizes, 100 % of them", "n": "how many",
                                       "norm": "normalise?", "target_entropy": "None: -act_dim", "mode": "a or b",
                                       "extra": "from the metadata"}


def parse_toy(*words):
    p = cli.Parser(prog="t")
    cli.add_config_options(p, Toy, "Toy")
    ns = p.parse_args(list(words))
    return cli.make_config(Toy, cli._grouped(ns)["cfg"])


def test_config_options_of_every_kind():
    assert parse_toy() == Toy()
    c = parse_toy("--lr", "inf", "--hidden", "32", "16", "--n", "1e2", "--no-norm", "--target-entropy", "-2",
                  "--mode", "b", "--extra", "-0.25")
    assert (c.lr, c.hidden, c.n, c.norm, c.target_entropy, c.mode, c.extra) == (float("inf"), (32, 16), 100, False,
                                                                                  -2.0, "b", -0.25)
    assert parse_toy("--hidden", "8,8").hidden == (8, 8) and parse_toy("--hidden").hidden == ()
    assert parse_toy("--target-entropy", "none", "--norm").target_entropy is None
    with pytest.raises(cli.UsageError, match="Toy: n must be >= 1"):
        parse_toy("--n", "0")
    with pytest.raises(cli.UsageError, match="invalid int value: '2.5'"):
        parse_toy("--n", "2.5")


def test_set_is_the_same_as_the_option():
    assert parse_overrides(Toy, ["hidden=32,16", "norm=false", "target_entropy=none", "lr=inf"]) == \
        parse_toy("--hidden", "32", "16", "--no-norm", "--lr", "inf")


def test_train_help_lists_every_field_with_its_default_and_comment():
    for name in ("ppo", "sac", "a3c", "cem"):
        algo = algos.get(name)
        text = " ".join(cli.train_parser(algo).format_help().split())
        for f in cli.field_options(algo.config):
            assert f.comment, f"{algo.config.__qualname__}.{f.name} has no comment"
            assert f"{f.comment} (default:" in text and f.flag in text, (name, f.name)
        assert "--steps N environment-step budget (default: 100000)" in text  # Run's default, stated in Run


def test_config_fields_never_collide_with_the_train_options():
    reserved = {"help", "env", "set", "quiet", *cli.RUN_OPTIONS}
    for algo in algos.registry().values():
        assert not reserved & {f.name for f in dataclasses.fields(algo.config)}, algo.name


def test_run_options_are_the_fields_of_run():
    assert set(cli.RUN_OPTIONS) == {f.name for f in dataclasses.fields(Run)} - {"callback"}


def test_the_full_command_reaches_config_and_run(monkeypatch, capsys):
    seen = {}

    def fake_train_one(algo, env, cfg, run):
        seen.update(algo=algo.name, env=env, cfg=cfg, run=run)
        return History(algo.name, env, run.seed, evals=[(run.steps, 0.1, 1.0, 0.0)], env_steps=run.steps)

    monkeypatch.setattr(cli, "train_one", fake_train_one)
    rc = main(["train", "ppo", "--gamma", "0.9", "--clip-eps", "0.1", "--env", "CartPole-v1", "--steps", "50000",
               "--seed", "1", "--target", "475", "--eval-every", "2048", "--eval-episodes", "10", "--quiet"])
    assert rc == 0 and json.loads(capsys.readouterr().out)["env_steps"] == 50_000
    ppo = importlib.import_module("lecturekit.algos.ppo")
    assert seen["cfg"] == ppo.Config(gamma=0.9, clip_eps=0.1)
    r = seen["run"]
    assert (r.steps, r.seed, r.target, r.eval_every, r.eval_episodes) == (50_000, 1, 475.0, 2048, 10)
    main(["train", "sac", "--quiet"])  # no --env, no run option: the benchmark task and Run's defaults
    assert seen["env"] == "Pendulum-v1" and (seen["run"].steps, seen["run"].eval_episodes) == (Run().steps, 20)


def test_call_train_passes_the_run():
    got = []

    def train(env_id, cfg=None, run=None, *, update=None):
        got.append((env_id, cfg, run.steps, run.seed))

    algos.call_train(train, "E", "c", Run(steps=7, seed=3))
    algos.call_train(train, "E", "c")  # no run: Run's defaults
    assert got == [("E", "c", 7, 3), ("E", "c", Run().steps, Run().seed)]


def test_bench_run_takes_the_algo_entry_and_run_defaults():
    a = algos.get("ppo")
    r = a.bench_run(seed=2)
    assert (r.steps, r.seed, r.target, r.eval_every, r.eval_episodes) == (a.bench_steps, 2, a.bench_target,
                                                                         a.eval_every, Run().eval_episodes)


# -- start-up: listing the algorithms imports neither torch nor Gymnasium -------------------------------------------
def test_catalog_matches_every_modules_algos():
    for module in algos.MODULES:
        entries = importlib.import_module(f"lecturekit.algos.{module}").ALGOS
        listed = {n: s for n, (m, s) in algos.CATALOG.items() if m == module}
        assert {a.name: a.summary for a in entries} == listed, module
    assert list(algos.registry()) == algos.names()


def test_help_and_argument_errors_import_neither_torch_nor_gymnasium():
    code = """if 1:
        import contextlib, io, sys
        from lecturekit.course import cli
        for argv in (["--help"], ["train", "--help"], ["train", "ppo2"], ["train"], ["bench", "nope"],
                     ["train", "ppo", "--steps", "0"], ["train", "ppo", "--target", "nan"]):
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                try:
                    cli.main(argv)
                except SystemExit:
                    pass
        print(sorted({"torch", "gymnasium"} & set(sys.modules)))
    """
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr


def test_a_stray_word_and_an_unknown_environment_are_said_before_torch_is_imported():
    code = """if 1:
        import contextlib, io, sys
        from lecturekit.course import cli
        for argv in (["train", "ppo", "NoSuchEnv-v0"], ["train", "sac", "--env", "NoSuchEnv-v0", "--steps", "10"]):
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                print(cli.main(argv), err.getvalue().strip())
        print("torch" in sys.modules)
    """
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    stray, env, torch_imported = out.stdout.strip().splitlines()
    assert stray == "2 error: unexpected argument 'NoSuchEnv-v0' (see python -m lecturekit train ppo --help)", stray
    assert env.startswith("2 error: Unknown environment 'NoSuchEnv-v0'. Examples: CartPole-v1"), env
    assert torch_imported == "False", out.stderr


def test_with_several_mistakes_the_first_one_said_is_the_same_as_before(capsys):
    # the early environment check must not jump ahead of an unknown option or a bad --set value
    assert main(["train", "ppo", "--env", "NoSuchEnv-v0", "--bogus"]) == 2
    assert "ppo's Config has no field 'bogus'" in capsys.readouterr().err
    assert main(["train", "ppo", "--env", "NoSuchEnv-v0", "--set", "lr=abc"]) == 2
    assert "cannot read 'abc' as a value for lr" in capsys.readouterr().err
    assert main(["train", "ppo", "NoSuchEnv-v0", "--help"]) == 0  # --help wins, as before
    assert "--clip-eps" in capsys.readouterr().out


# -- the edges: missing packages, Ctrl-C, closed pipes ----------------------------------------------------------------
def test_an_environment_whose_package_is_missing_names_what_to_install(capsys):
    try:
        import Box2D  # noqa: F401
        pytest.skip("Box2D is installed here")
    except ImportError:
        pass
    assert main(["train", "ppo", "--env", "LunarLander-v3"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "LunarLander-v3 needs a package that is not installed" in line and "pip install box2d==2.3.10" in line


@pytest.mark.parametrize("algo", ["ppo", "a3c"])  # a3c: its worker processes get Ctrl-C too
def test_ctrl_c_prints_the_run_so_far_and_exits_130(algo):
    # a terminal sends Ctrl-C to every process of the job: do the same with a process group of our own
    p = subprocess.Popen([sys.executable, "-m", "lecturekit", "train", algo, "--steps", "10000000", "--eval-every",
                          "512", "--eval-episodes", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    try:
        assert p.stderr.readline().startswith("training")
        assert "step" in p.stderr.readline()  # the first evaluation: training is under way
        os.killpg(p.pid, signal.SIGINT)
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    assert p.returncode == 130, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert KEYS <= summary.keys() and summary["stopped"] == "user" and summary["env_steps"] >= 512
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err


@pytest.mark.parametrize("args", [["--help"], ["train", "cem", "--steps", "500", "--eval-episodes", "2", "--quiet"]])
def test_a_closed_pipe_ends_quietly(args):
    read, write = os.pipe()
    os.close(read)  # the reader is gone, as after `| head -1`
    try:
        out = subprocess.run([sys.executable, "-m", "lecturekit", *args], stdout=write, stderr=subprocess.PIPE,
                             text=True, timeout=300)
    finally:
        os.close(write)
    assert out.returncode in (0, 141) and "Error" not in out.stderr and "Traceback" not in out.stderr, out.stderr


def test_markdown_table_with_columns():
    rows = [{"algo": "ppo", "steps": 1234.0}, {"algo": "sac", "steps": float("inf")}]
    table = markdown_table(rows, [("algorithm", "algo"), ("steps", lambda r: cli.fmt_number(r["steps"]))])
    assert table.splitlines() == ["| algorithm | steps |", "|---|---|", "| ppo | 1,234 |", "| sac | not reached |"]


# -- dependencies as declared ------------------------------------------------------------------------------------------
def _norm(name: str) -> str:
    return name.lower().replace("_", "-")


def _pins() -> tuple[dict, dict, dict]:
    import re
    import tomllib
    from pathlib import Path

    root = Path(cli.__file__).resolve().parents[2]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    split = lambda reqs: dict(_norm(r).split("==") for r in reqs)  # noqa: E731
    runtime, test = split(project["dependencies"]), split(project["optional-dependencies"]["test"])
    conda = dict(re.findall(r"^  - ([\w.-]+)=([\w.]+)", (root / "environment.yml").read_text(), re.M))
    conda = {_norm({"pytorch": "torch"}.get(k, k)): v for k, v in conda.items() if k != "python"}
    return runtime, test, conda


def test_every_import_of_the_package_is_a_pinned_dependency():
    import ast
    import importlib.metadata
    import tomllib
    from pathlib import Path

    runtime, test, conda = _pins()
    assert all(runtime.values()) and "pytest" not in runtime and {"pytest", "nbval", "pytest-xdist"} == set(test)
    assert conda == {**runtime, **test}  # environment.yml: the same packages and versions
    dists = importlib.metadata.packages_distributions()
    imported = set()
    for path in Path(cli.__file__).resolve().parents[1].rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module.split(".")[0])
    third_party = {m for m in imported if m in dists and m != "lecturekit"}
    # Dask: the optional group 'cluster', imported only inside lecturekit/course/cluster.py's functions (--cluster)
    optional = tomllib.loads((Path(cli.__file__).resolve().parents[2] / "pyproject.toml").read_text())
    cluster = {_norm(r.split("[")[0].split("==")[0]) for r in optional["project"]["optional-dependencies"]["cluster"]}
    missing = {m for m in third_party if not {_norm(d) for d in dists[m]} & (set(runtime) | cluster)}
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def test_ctrl_c_during_bench_prints_the_table_of_the_finished_runs():
    p = subprocess.Popen([sys.executable, "-m", "lecturekit", "bench", "cem", "--seeds", "1000"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert "cem seed 0:" in p.stderr.readline()
        os.killpg(p.pid, signal.SIGINT)
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    assert p.returncode == 130 and "Traceback" not in err, err
    assert "| cem | CartPole-v1 (475) |" in out


def test_main_leaves_the_ctrl_c_handler_as_it_found_it(capsys):
    before = signal.getsignal(signal.SIGINT)
    assert main(["train", "ppo2"]) == 2 and signal.getsignal(signal.SIGINT) is before
