"""``symglep train``: the acceptance runs on the oscillator chain, Dask, save/resume, data files, errors.

The default ``--task sine`` run is done in full (about a second once the chain's
kernels are compiled): it must lower the loss at least tenfold, and BPTT must
give the same loss curve to 1e-5 relative at every epoch (the one-sided echo,
whose O(β) bias is visible, must not: the comparison can fail).
"""

from __future__ import annotations

import json
import re
import sys

import numpy as np
import pytest
import sympy as sp
from click.testing import CliRunner
from sympy.physics.mechanics import dynamicsymbols

import symglep
from symglep.cli import main
from symglep.errors import SymglepError
from symglep.tasks import load_npz, readout_map, sine_task
from symglep.training import TrainResult, beta_warning, train

from conftest import EXAMPLES

CHAIN = str(EXAMPLES / "oscillator_chain.py")


@pytest.fixture(scope="module")
def chain():
    return symglep.load_model(CHAIN)


@pytest.fixture(scope="module")
def default_runs(chain):
    """The default sine run with each estimator (same seed)."""
    return {est: train(chain, "sine", estimator=est) for est in ("echo", "bptt", "echo-one-sided")}


def rel_curve_error(a, b) -> float:
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b) / np.abs(b)))


def test_default_sine_run_lowers_loss_tenfold(default_runs):
    run = default_runs["echo"]
    assert run.epochs == 100
    assert run.settings["estimator"] == "echo" and run.settings["optimizer"] == "adam"
    assert run.final_loss * 10 <= run.loss_history[0]
    assert all(np.isfinite(run.loss_history))


def test_bptt_gives_the_same_loss_curve(default_runs):
    echo, bptt = default_runs["echo"].loss_history, default_runs["bptt"].loss_history
    assert len(echo) == len(bptt) == 100
    assert rel_curve_error(echo, bptt) <= 1e-5
    assert abs(default_runs["echo"].final_loss - default_runs["bptt"].final_loss) <= 1e-5 * default_runs["bptt"].final_loss


def test_one_sided_echo_is_visibly_biased(chain, default_runs):
    """The curve comparison is sharp enough to tell the O(β) one-sided estimator from the centred one
    at the same β = 1e-4 (the automatic β of the one-sided estimator is far smaller, see the next test)."""
    one_sided = train(chain, "sine", estimator="echo-one-sided", beta=1e-4)
    assert rel_curve_error(one_sided.loss_history, default_runs["bptt"].loss_history) > 1e-5
    centred = train(chain, "sine", estimator="echo", beta=1e-4)
    assert rel_curve_error(centred.loss_history, default_runs["bptt"].loss_history) <= 1e-5


def test_auto_beta_is_saved_and_suits_each_estimator(default_runs):
    """``beta="auto"`` (the default): the chosen β and the pilot's numbers are in the settings; the
    one-sided estimator, with its O(β) bias, gets a much smaller β than the centred one, and with it
    follows BPTT's loss curve too; BPTT has no β."""
    echo, one_sided = default_runs["echo"].settings, default_runs["echo-one-sided"].settings
    assert echo["beta"] == echo["beta_auto"]["beta"] and echo["beta_auto"]["order"] == 2
    assert one_sided["beta_auto"]["order"] == 1 and one_sided["beta"] < echo["beta"] / 100
    assert default_runs["bptt"].settings["beta"] is None and default_runs["bptt"].settings["beta_auto"] is None
    assert rel_curve_error(default_runs["echo-one-sided"].loss_history, default_runs["bptt"].loss_history) <= 1e-5


def test_train_warns_when_even_the_best_beta_leaves_the_echo_unusable():
    """The β line's predicted bias + round-off (theory §5): above 1e-2 relative, one warning line."""
    choice = {"predicted_bias": 1e-1, "predicted_roundoff": 2e-1}
    assert beta_warning(choice).startswith("warning: the echo gradient is predicted 3e-01 off (relative)")
    assert "--estimator echo-complex" in beta_warning(choice)
    assert beta_warning({"predicted_bias": 3e-9, "predicted_roundoff": 1e-8}) == ""


def test_a_diverging_teacher_is_named_as_the_teacher():
    """The sine task's teacher (parameters from the seed) blows up at dt = 5: the error says it is the
    teacher's run, not the trained parameters', and what changes it (exit 3, one line)."""
    res = CliRunner().invoke(main, ["train", CHAIN, "--dt", "5", "--epochs", "1", "--quiet"])
    assert res.exit_code == 3, res.output
    assert res.output.startswith("error: the teacher run of the sine task (its parameters drawn from --seed 0, "
                                 "not those trained or resumed) failed: free phase: overflow")
    assert "try another --seed, a smaller --dt, or give your own DATA.npz" in res.output
    assert res.output.count("\n") == 1


def test_cli_default_run(tmp_path):
    save, plot = tmp_path / "p.json", tmp_path / "loss.png"
    res = CliRunner().invoke(main, ["train", CHAIN, "--task", "sine", "--save", str(save), "--plot", str(plot)])
    assert res.exit_code == 0, res.output
    before, after = map(float, re.search(r"^loss (\S+) -> (\S+) \(x", res.output, re.M).groups())
    assert after * 10 <= before
    data = json.loads(save.read_text())
    assert (data["loss_history"][0], data["final_loss"]) == (pytest.approx(before, rel=1e-6), pytest.approx(after, rel=1e-6))
    assert data["format"] == "symglep-train/1" and set(data["parameters"]) == {"k0", "k1", "k2"}
    assert len(data["loss_history"]) == 100 and data["final_loss"] * 10 <= data["loss_history"][0]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "epoch" in res.stderr and "loss" in res.stderr  # the progress line


def test_save_resume_continues_exactly(chain, tmp_path):
    """3 + 3 epochs through a saved file equal 6 epochs in one go, bit for bit (Adam state, shuffled batches)."""
    whole = train(chain, "sine", epochs=6, batch=3)
    path = tmp_path / "half.json"
    train(chain, "sine", epochs=3, batch=3, save=str(path))
    resumed = train(chain, "sine", epochs=3, batch=3, resume=str(path))
    assert np.array_equal(resumed.theta, whole.theta)
    assert resumed.loss_history == whole.loss_history
    loaded = TrainResult.load(str(path))
    assert loaded.epochs == 3 and loaded.optimizer_state["t"] == 3 * 3  # 3 batches of 3, 3, 2 per epoch


def test_ctrl_c_saves_the_completed_epochs_and_resuming_them_continues_exactly(chain, tmp_path, monkeypatch):
    """New-user probe: Ctrl-C in `train --save` saved nothing, losing every epoch run so far. Now the state after
    the last completed epoch is saved (θ, Adam's moments, the losses) and the run stops as interrupted; resuming it
    gives what the uninterrupted run gives, bit for bit."""
    from symglep import training

    whole = train(chain, "sine", epochs=4, batch=3)
    path = tmp_path / "cut.json"
    update = training.Progress.update

    def ctrl_c_in_epoch_3(self, done, *args):
        if done == 3:  # epoch 3's steps ran: they must not be saved
            raise KeyboardInterrupt
        update(self, done, *args)

    monkeypatch.setattr(training.Progress, "update", ctrl_c_in_epoch_3)
    with pytest.raises(KeyboardInterrupt, match=r"2 completed epoch\(s\) of this run saved to .*cut.json: "
                                                r"continue with --resume"):
        train(chain, "sine", epochs=4, batch=3, save=str(path))
    with pytest.raises(KeyboardInterrupt):
        train(chain, "sine", epochs=4, batch=3)  # without --save there is nothing to keep: a plain Ctrl-C
    monkeypatch.setattr(training.Progress, "update", update)
    saved = TrainResult.load(str(path))
    assert saved.loss_history == whole.loss_history[:2] and saved.settings["epochs_run"] == 2
    resumed = train(chain, "sine", epochs=2, batch=3, resume=str(path))
    assert np.array_equal(resumed.theta, whole.theta) and resumed.loss_history == whole.loss_history
    monkeypatch.setattr(training.Progress, "update", ctrl_c_in_epoch_3)
    out = CliRunner().invoke(main, ["train", CHAIN, "--epochs", "4", "--quiet", "--save", str(path), "--batch", "3",
                                    "--lr", "0.02", "--freeze", "k0"])
    assert out.exit_code == 130 and "interrupted: 2 completed epoch(s) of this run saved to" in out.output
    # the message continues the run as it was started: the task and seed come from the file, the rest is said
    assert out.output.rstrip().endswith(f"continue with --resume {path} --epochs 2 --batch 3 --lr 0.02 --freeze k0")


def test_a_resumed_run_continues_on_its_own_task(chain, tmp_path):
    """New-user probe: `train --resume RUN.json` after a run on DATA.npz trained on the sine task instead (no word)
    and failed there; the resumed run's task is now the default (--task still chooses another)."""
    kernels = symglep.compile(chain)
    data, _ = sine_task(chain, kernels, seed=3)
    npz = tmp_path / "data.npz"
    np.savez(npz, inputs=data.u, targets=data.y, q0=data.q0, p0=next(iter(data.start().values())), dt=data.dt)
    first = tmp_path / "first.json"
    whole = train(chain, str(npz), epochs=4)
    train(chain, str(npz), epochs=2, save=str(first))
    resumed = train(chain, epochs=2, resume=str(first))
    assert resumed.settings["task"] == str(npz) and resumed.loss_history == whole.loss_history
    assert train(chain, "sine", epochs=1, resume=str(first)).settings["task"] != str(npz)
    npz.unlink()
    with pytest.raises(SymglepError, match="the resumed run was trained on the task .*data.npz.*give the task"):
        train(chain, epochs=1, resume=str(first))


def test_a_sine_teacher_that_runs_away_is_named():
    """New-user probe: the sine task's teacher, drawn from the seed with a spring of the wrong sign, reached targets
    of 3e12; training then reported a loss of 5e23 'unchanged', or blamed dt. The task is refused, naming it."""
    x, u, y = dynamicsymbols("x u y")
    k = sp.Symbol("k", positive=True)
    unstable = symglep.Model(x.diff() ** 2 / 2 + k * x**2 / 2 + x * u, [x], [k], inputs=[u], targets=[y],
                             cost=(x - y) ** 2 / 2, name="anti_spring")
    with pytest.raises(SymglepError, match=r"the teacher of the sine task \(its parameters drawn from --seed 0: k = "
                                           r"[0-9.]+\) runs away: its targets reach [0-9.]+e\+\d+"):
        train(unstable, "sine", epochs=1, estimator="bptt")


def test_resuming_other_parameters_names_the_difference(tmp_path):
    """A training file of another model: one line naming what is missing and what the model lacks."""
    from symglep.training import FORMAT

    path = tmp_path / "other.json"
    path.write_text(json.dumps({"format": FORMAT, "model": "other", "parameters": {"k0": 1.0, "k1": 1.0, "a": 2.0}}))
    res = CliRunner().invoke(main, ["train", CHAIN, "--epochs", "1", "--quiet", "--resume", str(path)])
    assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
    assert "; missing: k2; not in the model: a" in res.output


def test_a_parameter_against_its_declared_sign_is_named(tmp_path):
    """k0 is declared positive; a resumed k0 = -1 trains and is named in a warning line (new-user probe:
    a negative mass trained silently)."""
    path = tmp_path / "negative.json"
    path.write_text(json.dumps({"k0": -1.0, "k1": 1.0, "k2": 1.0}))
    res = CliRunner().invoke(main, ["train", CHAIN, "--epochs", "1", "--quiet", "--resume", str(path)])
    assert res.exit_code == 0, res.output
    assert "warning: parameter k0 = -0.95 contradicts its declaration positive=True" in res.output
    assert "warning: parameter k1" not in res.output


def test_resume_keeps_the_saved_seed_and_its_task(chain, tmp_path):
    """A run seeded 5, resumed without --seed, continues on seed 5's task: 2 + 2 epochs equal 4
    epochs in one go; an explicit seed still wins (another task, so another loss)."""
    whole = train(chain, "sine", epochs=4, seed=5)
    path = tmp_path / "seed5.json"
    train(chain, "sine", epochs=2, seed=5, save=str(path))
    resumed = train(chain, "sine", epochs=2, resume=str(path))
    assert resumed.settings["seed"] == 5
    assert resumed.loss_history == whole.loss_history
    other = train(chain, "sine", epochs=2, seed=0, resume=str(path))
    assert other.settings["seed"] == 0 and other.loss_history[2] != whole.loss_history[2]


def test_cli_resume_and_check_read_the_saved_file(tmp_path):
    path = tmp_path / "p.json"
    runner = CliRunner()
    assert runner.invoke(main, ["train", CHAIN, "--epochs", "2", "--quiet", "--save", str(path)]).exit_code == 0
    res = runner.invoke(main, ["train", CHAIN, "--epochs", "2", "--quiet", "--resume", str(path), "--save", str(path)])
    assert res.exit_code == 0, res.output
    assert len(json.loads(path.read_text())["loss_history"]) == 4
    params = tmp_path / "start.json"
    params.write_text(json.dumps({"k0": 1.0, "k1": 1.0, "k2": 1.0}))
    res = runner.invoke(main, ["train", CHAIN, "--epochs", "0", "--quiet", "--resume", str(params)])
    assert res.exit_code == 0 and "k0 = 1\n" in res.output
    assert "(unchanged)" in res.output and "lower" not in res.output  # no epoch ran


def test_data_file_reproduces_the_sine_task(chain, tmp_path):
    """The sine data written to DATA.npz and loaded back trains identically (from the same start)."""
    kernels = symglep.compile(chain)
    data, start = sine_task(chain, kernels, seed=0)
    path = tmp_path / "data.npz"
    np.savez(path, inputs=data.u, targets=data.y, q0=data.q0, p0=data.x0, dt=data.dt)
    loaded = load_npz(str(path), chain)
    assert loaded.u.shape == (8, 401, 1) and loaded.dt == data.dt
    params = tmp_path / "start.json"
    params.write_text(json.dumps(start))
    from_file = train(chain, str(path), epochs=5, resume=str(params))
    builtin = train(chain, "sine", epochs=5)
    assert from_file.loss_history == builtin.loss_history


def test_readout_is_read_off_the_cost(chain):
    f = readout_map(chain)
    q = np.arange(8.0).reshape(2, 4)
    np.testing.assert_array_equal(f(q, np.zeros((2, 1)), np.zeros(2)), q[:, 3:4])


def _bad_npz(tmp_path, **arrays):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return str(path)


GOOD = dict(inputs=np.zeros((2, 5, 1)), targets=np.zeros((2, 5, 1)), dt=0.1)


@pytest.mark.parametrize("arrays, fragment", [
    (dict(inputs=np.zeros((2, 5, 1)), dt=0.1), "no 'targets'"),
    (dict(GOOD, targets=np.zeros((2, 5, 2))), "expected (S, K+1, 1)"),
    (dict(GOOD, inputs=np.zeros((3, 5, 1))), "'inputs' hold 3 sequence(s) of 5 nodes, 'targets' 2 of 5: they must agree"),
    # new-user probe: targets cut to K nodes blamed the inputs' shape
    (dict(GOOD, targets=np.zeros((2, 4, 1))), "'inputs' hold 2 sequence(s) of 5 nodes, 'targets' 2 of 4: they must agree"),
    (dict(GOOD, inputs=np.zeros((2, 5, 2))), "'inputs' has shape (2, 5, 2); model 'oscillator_chain' has 1 input(s)"),
    (dict(GOOD, targets=np.zeros((2, 5))), "'targets' must have 3 dimensions"),
    (dict(GOOD, targets=np.full((2, 5, 1), np.nan)), "NaN"),
    (dict(GOOD, q0=np.zeros((2, 3))), "'q0' has shape (2, 3), expected (2, 4)"),
    (dict(GOOD, p0=np.zeros((2, 4)), v0=np.zeros((2, 4))), "both 'p0' and 'v0'"),
    (dict(inputs=GOOD["inputs"], targets=GOOD["targets"]), "no 'dt'"),
    (dict(GOOD, dt=np.array("0.05")), "'dt' must be a scalar number, got a <U4 value '0.05'"),
    (dict(GOOD, dt=np.array([0.05, 0.1])), "'dt' must be a scalar number, got shape (2,)"),
    (dict(GOOD, weights=np.zeros(3)), "unknown key(s) weights"),
    (dict(GOOD, targets=np.zeros((2, 1, 1)), inputs=np.zeros((2, 1, 1))), "K+1 >= 2"),
])
def test_bad_data_file_is_one_line_exit_2(tmp_path, arrays, fragment):
    path = _bad_npz(tmp_path, **arrays)
    res = CliRunner().invoke(main, ["train", CHAIN, "--task", path, "--quiet"])
    assert res.exit_code == 2, res.output
    assert fragment in res.output
    assert res.output.startswith("error: ") and res.output.count("\n") == 1


def test_data_file_that_is_not_an_archive(tmp_path):
    path = tmp_path / "data.npz"
    path.write_text("not numpy")
    res = CliRunner().invoke(main, ["train", CHAIN, "--task", str(path), "--quiet"])
    assert res.exit_code == 2 and res.output.count("\n") == 1
    assert "is not a numpy .npz archive (not a zip file)" in res.output and "pickle" not in res.output


@pytest.mark.parametrize("args, fragment", [
    (["--batch", "9"], "batch must be between 1 and the number of sequences (8)"),
    (["--beta", "0"], "--beta must be a positive number or 'auto', got 0"),
    (["--lr", "-1"], "learning rate must be a positive number"),
    (["--resume", "missing.json"], "cannot read missing.json"),
])
def test_bad_options(args, fragment):
    res = CliRunner().invoke(main, ["train", CHAIN, "--quiet", "--epochs", "1", *args])
    assert res.exit_code == 2 and fragment in res.output, res.output


@pytest.mark.parametrize("module, args, extra", [
    ("matplotlib", ["--plot", "x.png"], "plot"),
    ("dask.distributed", ["--scheduler", "tcp://127.0.0.1:1"], "dask"),
])
def test_missing_extra_names_it(monkeypatch, tmp_path, module, args, extra):
    monkeypatch.setitem(sys.modules, module, None)  # importing it now raises ImportError
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(main, ["train", CHAIN, "--quiet", "--epochs", "1", *args])
    assert res.exit_code == 2, res.output
    assert f"pip install 'symglep[{extra}]'" in res.output and res.output.count("\n") == 1
    assert not (tmp_path / "x.png").exists()


def test_sine_task_needs_a_readout():
    import sympy as sp
    from sympy.physics.mechanics import dynamicsymbols

    x = dynamicsymbols("x")
    u, y = dynamicsymbols("u y")
    k = sp.Symbol("k", positive=True)
    model = symglep.Model(lagrangian=x.diff() ** 2 / 2 - k * x**2 / 2 + x * u, coordinates=[x], parameters=[k],
                          inputs=[u], targets=[y], cost=sp.cos(x - y), name="periodic_cost")
    with pytest.raises(SymglepError, match="needs a readout: the cost of 'periodic_cost'"):
        readout_map(model)
    with pytest.raises(SymglepError, match="needs a readout: the terminal cost of 'periodic_cost'"):
        readout_map(model, model.cost)


@pytest.mark.parametrize("processes", [False, True])
def test_dask_gives_the_local_parameters(chain, processes):
    """Batches spread over a LocalCluster on loopback give bit-identical parameters and losses."""
    import dask.distributed as distributed  # in the test extra
    local = train(CHAIN, "sine", epochs=3, batch=5)
    # dashboard on a free port: the two test workers may run a cluster at once (8787 taken)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=processes, protocol="tcp://",
                                  host="127.0.0.1", dashboard_address=":0") as cluster:
        spread = train(CHAIN if processes else chain, "sine", epochs=3, batch=5, scheduler=cluster.scheduler_address)
    assert np.array_equal(spread.theta, local.theta)
    assert spread.loss_history == local.loss_history


def test_unreachable_scheduler_is_a_user_error():
    from symglep.distributed import connect

    with pytest.raises(SymglepError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        connect("tcp://127.0.0.1:9", timeout=1)


def test_auto_beta_of_the_richardson_estimator(chain, default_runs):
    """echo4 (bias O(β⁴)): the pilot measures a fourth-order bias and allows a larger β than the centred echo."""
    run = train(chain, "sine", estimator="echo4", epochs=2)
    assert run.settings["beta_auto"]["order"] == 4 and run.settings["beta"] > default_runs["echo"].settings["beta"]


def test_resumed_auto_run_keeps_its_beta(chain, tmp_path):
    """A resumed run continues with the β it was trained with, not a new pilot at the new parameters."""
    first = train(chain, "sine", epochs=3, save=str(tmp_path / "p.json"))
    again = train(chain, "sine", epochs=2, resume=str(tmp_path / "p.json"))
    assert again.settings["beta"] == first.settings["beta"] and again.settings["beta_auto"] is None


def test_substeps_outside_classification_is_refused():
    res = CliRunner().invoke(main, ["train", CHAIN, "--substeps", "4", "--epochs", "1", "--quiet"])
    assert res.exit_code == 2 and "--substeps is for classification tasks" in res.output, res.output


def test_resuming_with_the_initial_state_learned_starts_the_optimizer_afresh(tmp_path):
    """Train θ, then learn the start from the trained θ: the saved Adam moments (θ only) no longer fit the
    learned vector, and the resumed run restarts them instead of refusing."""
    save = tmp_path / "theta.json"
    first = CliRunner().invoke(main, ["train", CHAIN, "--epochs", "2", "--quiet", "--save", str(save)])
    assert first.exit_code == 0, first.output
    learned = tmp_path / "start.json"
    again = CliRunner().invoke(main, ["train", CHAIN, "--epochs", "2", "--quiet", "--learn-initial-state",
                                      "--resume", str(save), "--save", str(learned)])
    assert again.exit_code == 0, again.output
    # resumed without the flag, the learned start is dropped: said, not silent (new-user probe)
    third = CliRunner().invoke(main, ["train", CHAIN, "--epochs", "1", "--resume", str(learned)])
    assert third.exit_code == 0 and "warning: the resumed file holds a learned initial state, which this run " \
        "neither uses nor saves" in third.output, third.output
    fourth = CliRunner().invoke(main, ["train", CHAIN, "--epochs", "1", "--resume", str(save)])
    assert fourth.exit_code == 0 and "learned initial state" not in fourth.output
    assert ", 1 epoch (3 in all), " in fourth.output  # this run's epochs; the history holds the resumed ones
    one = CliRunner().invoke(main, ["train", CHAIN, "--epochs", "1", "--quiet"])
    assert one.exit_code == 0 and ", 1 epoch, " in one.output  # not "1 epochs"


def test_the_sine_task_starts_a_scalar_model_at_its_initial_positions():
    """A spherical pendulum in polar angles declares initial_positions away from sin θ = 0; the sine task's
    sequences start there, as an array model's do (new-user probe: they started at q = 0, where the
    teacher's Newton solve failed at step 0). A stack's scalar unit does too."""
    from types import SimpleNamespace

    from symglep.learners import ScalarLearner, StackLearner

    th, ph = dynamicsymbols("theta phi")
    u, y = dynamicsymbols("u y")
    g = sp.Symbol("g", positive=True)
    model = symglep.Model(lagrangian=(th.diff() ** 2 + sp.sin(th) ** 2 * ph.diff() ** 2) / 2 + g * sp.cos(th) + u * th,
                          coordinates=[th, ph], parameters=[g], inputs=[u], targets=[y], cost=(th - y) ** 2 / 2,
                          initial_positions=lambda rng: [1.0 + 0.1 * rng.uniform(), 0.0], name="spherical")
    q0, p0 = ScalarLearner(model, SimpleNamespace(integrator="midpoint")).rest(3)
    want = 1.0 + 0.1 * np.random.default_rng(0).uniform()
    assert q0.shape == (3, 2) and np.all(q0[:, 0] == want) and np.all(q0[:, 1] == 0) and not p0.any()
    x, d = dynamicsymbols("x d")
    k = sp.Symbol("k", positive=True)
    bottom = symglep.Model(lagrangian=x.diff() ** 2 / 2 - k * x**2 / 2 + x * d, coordinates=[x], parameters=[k],
                           inputs=[d], name="bottom")
    stack = symglep.Stack([bottom, model], readouts=[[x]])
    q0, _ = StackLearner(stack, SimpleNamespace(integrator="leapfrog", nq=3, n_x=0, n_y=1)).rest(2)
    assert np.all(q0[:, 0] == 0) and np.all(q0[:, 1] == want) and np.all(q0[:, 2] == 0)
    # a stack names a unit's parameter that ended against its declared sign (the glue declares none)
    learner = StackLearner(stack, SimpleNamespace(integrator="leapfrog", nq=3, n_x=0, n_y=1))
    values = dict(zip(stack.parameter_names, np.ones(len(stack.parameter_names))))
    assert learner.sign_warnings(values) == []
    values["unit0.k"] = -0.5
    assert [w[:38] for w in learner.sign_warnings(values)] == ["unit 0: parameter k = -0.5 contradicts"]


def test_the_loss_change_reads_the_same_whatever_the_values():
    from symglep.training import _change

    assert _change(2.0, 1.0) == "(x2 lower)" and _change(1.0, 4.0) == "(x4 higher)"
    assert _change(0.0, 0.0) == "(unchanged)" and _change(3.0, 0.0) == "(to zero)" and _change(0.0, 1.0) == "(+1)"


def test_train_names_the_route_a_scalar_model_takes():
    """The charged particle learns by the flipped-parameter echo (B -> -B, theory §4): `train` said only 'echo
    gradient' (new-user probe); it names the route, and saves it. The chain's plain echo adds nothing."""
    res = CliRunner().invoke(main, ["train", str(EXAMPLES / "charged_particle.py"), "--epochs", "1", "--quiet"])
    assert res.exit_code == 0, res.output
    assert "charged_particle: echo gradient (route: flipped-parameter echo), adam" in res.output
    res = CliRunner().invoke(main, ["train", CHAIN, "--epochs", "1", "--quiet"])
    assert ": echo gradient, adam" in res.output


def test_a_diverged_run_is_named():
    """A final loss 1e3 times the first, or not finite, is a warning with the learning rate (new-user probe: a
    loss x2e21 higher read as an ordinary result); an ordinary rise or fall is not."""
    from symglep.training import _divergence_warning

    assert _divergence_warning(1.0, 2e3, 0.05) == ("the loss grew x2e+03: training diverged; lower the learning "
                                                   "rate (--lr, now 0.05)")
    assert "is not finite" in _divergence_warning(1.0, float("nan"), 0.05)
    assert _divergence_warning(1.0, 900.0, 0.05) is None and _divergence_warning(1.0, 0.1, 0.05) is None


def test_a_task_with_nothing_to_learn_is_named(tmp_path):
    """A loss of exactly 0 from the start (a readout that stays at rest, new-user probe) printed only
    '(unchanged)'; a warning now says nothing is learned."""
    data = tmp_path / "rest.npz"
    np.savez(data, inputs=np.zeros((2, 11, 1)), targets=np.zeros((2, 11, 1)), dt=0.1)
    res = CliRunner().invoke(main, ["train", CHAIN, "--task", str(data), "--epochs", "2", "--quiet"])
    assert res.exit_code == 0, res.output
    assert "(unchanged)" in res.output and "warning: the loss is exactly 0: the model already gives" in res.output


def test_an_overflow_after_an_update_names_the_learning_rate(tmp_path):
    """--lr 1e6 carried the chain's parameters to an overflowing run, and the error said only 'Reduce dt'
    (new-user probe): after an update, a kernel failure names the epoch, the updates and the learning rate.
    (The chain's springs declared without a sign: training keeps declared signs, which held them here.)"""
    source = (EXAMPLES / "oscillator_chain.py").read_text()
    assert 'ks = sp.symbols(f"k0:{N - 1}", positive=True)' in source
    unsigned = tmp_path / "oscillator_chain.py"
    unsigned.write_text(source.replace('ks = sp.symbols(f"k0:{N - 1}", positive=True)',
                                       'ks = sp.symbols(f"k0:{N - 1}")'))
    res = CliRunner().invoke(main, ["train", str(unsigned), "--epochs", "3", "--lr", "1e6", "--quiet"])
    assert res.exit_code == 3, res.output
    assert res.output.startswith("error: epoch 2, after 1 update(s) at lr 1e+06: ")
    assert res.output.rstrip().endswith("(a learning rate too large can carry the parameters there; try a smaller --lr)")


def test_a_failure_after_an_update_keeps_the_completed_epochs_in_save(tmp_path, monkeypatch):
    """A run that diverged in epoch 4 exited without writing --save, losing three epochs (new-user probe): the
    epochs completed before the failure are saved, and the error says how to continue, with a smaller --lr.
    Here the kernels fail at the fifth gradient call (epoch 3 of two mini-batches each)."""
    from symglep.diagnose import NumericalError
    from symglep.training import LocalGradient

    calls = []
    real = LocalGradient.__call__

    def failing(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            raise NumericalError("free phase: overflow (inf) first appears at step 3 of sequence 0", "free", 0, 3)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(LocalGradient, "__call__", failing)
    data = tmp_path / "data.npz"
    rng = np.random.default_rng(0)
    np.savez(data, inputs=rng.normal(size=(4, 21, 1)), targets=rng.normal(size=(4, 21, 1)) * 0.1, dt=0.1)
    save = tmp_path / "run.json"
    args = ["train", CHAIN, "--task", str(data), "--epochs", "4", "--batch", "2", "--lr", "0.01", "--beta", "1e-4",
            "--quiet"]
    res = CliRunner().invoke(main, [*args, "--save", str(save)])
    assert res.exit_code == 3, res.output
    assert res.output.startswith("error: epoch 3, after 4 update(s) at lr 0.01: free phase: overflow"), res.output
    assert f"-- the 2 epoch(s) completed before it were saved to {save}: continue with --resume {save} --epochs 2 " \
           "--batch 2 --beta 0.0001 --lr 0.0025 (a quarter of this run's learning rate)" in res.output, res.output
    saved = json.loads(save.read_text())
    assert saved["settings"]["epochs_run"] == 2 and len(saved["loss_history"]) == 2
    # without --save the error is the kernels' own
    calls.clear()
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 3 and "saved to" not in res.output, res.output


def test_a_model_without_an_exact_echo_is_refused_with_what_train_offers():
    """A non-uniform Rayleigh force: the refusal pointed at --naive-echo, an option of check, not of train
    (new-user probe); it names the reason and --estimator bptt."""
    res = CliRunner().invoke(main, ["train", str(EXAMPLES / "damped_chain_nonuniform.py"), "--epochs", "1", "--quiet"])
    assert res.exit_code != 0 and res.output.count("\n") == 1, res.output
    assert "no echo is exact for it (theory §7)" in res.output and "train with --estimator bptt" in res.output
    assert "--naive-echo" not in res.output


# -- session 32: beta chosen again during training, paths checked first, messages -------------------------

def test_auto_beta_is_chosen_again_during_training_and_resumes_deterministically(chain, tmp_path, monkeypatch):
    """beta="auto" is chosen again every repilot_interval epochs at the parameters of the time (a β chosen once
    leaves its fixed bias while the gradient shrinks: a probe measured echo vs BPTT 4.6e-4 after 60 epochs);
    each choice is saved with its epoch, and a run resumed between two choices continues exactly as one run."""
    from symglep import training

    assert training.repilot_interval(8, 8) == 50 and training.repilot_interval(400, 16) == 2
    assert training.pilot_size(400, None) == 32 and training.pilot_size(400, 16) == 16 and training.pilot_size(3, 1) == 3
    monkeypatch.setattr(training, "REPILOT_SHARE", 1e3)  # a choice every epoch
    whole = train(chain, "sine", epochs=3)
    history = whole.settings["beta_history"]
    assert [row[0] for row in history] == [0, 1, 2] and whole.settings["beta"] == history[-1][1]
    assert len({row[1] for row in history}) == 3  # each pilot measured its own parameters
    assert all(row[2] <= max(1e-6, 100 * row[3]) for row in history)  # measured against BPTT as predicted
    train(chain, "sine", epochs=2, save=str(tmp_path / "two.json"))
    more = train(chain, "sine", epochs=1, resume=str(tmp_path / "two.json"))
    assert more.loss_history == whole.loss_history and np.array_equal(more.theta, whole.theta)
    # the resumed run keeps the saved choices (they were dropped: new-user probe), then its saved β measured again
    # at its start, then its own choice, the one the whole run made
    resumed = more.settings["beta_history"]
    assert [row[0] for row in resumed] == [0, 1, 2, 2] and resumed[:2] == history[:2] and resumed[-1] == history[-1]
    assert "chosen 3 times" in training._beta_history_text(more.settings)


def test_an_unwritable_save_path_is_refused_before_training(chain):
    """/proc accepts os.access as root but no file: the --save check tries a file there, before any epoch."""
    if not __import__("os").path.isdir("/proc/self"):
        pytest.skip("no /proc")
    res = CliRunner().invoke(main, ["train", CHAIN, "--epochs", "1000", "--save", "/proc/x.json", "--quiet"])
    assert res.exit_code == 2 and "cannot write --save /proc/x.json" in res.output, res.output
    assert "epoch" not in res.output


def test_an_excursion_of_the_loss_is_named_though_the_run_ends_lower():
    from symglep.training import _excursion_warning

    assert _excursion_warning([2.0, 1.0, 5e51, 2.5], 0.8).startswith("the loss reached 5e+51 at epoch 3")
    assert _excursion_warning([2.0, 1.0, 1.5e3, 0.5], 0.8) is None  # below DIVERGED = 1e3 x the start
    assert "at epoch 2" in _excursion_warning([2.0, float("nan"), 1.0], 0.1)


def test_terminal_only_cost_points_to_the_target_task():
    """An array model whose cost is terminal only (a probe's): the sine task's refusal names --task target."""
    from symglep.network import ArrayModel, Coordinates, Inputs, Parameter, Sum, Targets, i, r

    q, u, y = Coordinates("q"), Inputs("u"), Targets("y")
    B = Parameter("B", ("n", "m"))
    model = ArrayModel(lagrangian=Sum(q.dot[i] ** 2 / 2, i) - Sum(q[i] ** 2 / 2, i) + Sum(q[i] * (B @ u)[i], i),
                       cost=Sum(0 * q[r], r), terminal_cost=Sum((q[r] - y[r]) ** 2 / 2, r), coordinates=q,
                       parameters=[B], inputs=u, targets=y, name="terminal_only", size=3, sizes={"m": 1, "r": 1})
    with pytest.raises(SymglepError, match="or --task target, which trains the terminal cost"):
        train(model, "sine", epochs=1)


def test_a_classifier_file_resumed_on_another_kind_of_task_says_so(chain, tmp_path):
    saved = train(chain, "sine", epochs=0)
    names = ["encoder.E[0,0]", "head.b[0]"] + saved.names
    path = tmp_path / "classifier.json"
    TrainResult(chain.name, names, np.concatenate([[0.1, 0.2], saved.theta]), [], 0.0, {}).save(str(path))
    with pytest.raises(SymglepError, match="the resumed file is a classifier's .*, this task is not classification"):
        train(chain, "sine", epochs=1, resume=str(path))


def test_a_choice_of_beta_measured_far_from_its_prediction_is_warned():
    """Each choice of beta="auto" is measured against BPTT on the pilot's sequences; a run trained into an
    unstable region (a probe: a mass trained negative, the echo 1.1 off BPTT) is named, a smooth one is not."""
    from symglep.training import measured_warning

    assert measured_warning([[0, 1e-3, 2e-8, 1e-8], [5, 1e-4, 5e-7, 1e-8]]) is None  # within 100x or 1e-6
    text = measured_warning([[0, 1e-3, 2e-8, 1e-8], [10, 4e-3, 1.1, 1e-8]])
    assert text.startswith("at epoch 11 the echo gradient (beta 0.004) was 1.1e+00 off BPTT")
    assert measured_warning([[3, 1e-3, float("nan"), 1e-8]]) is not None
    # a probe's chaotic network: 87 % off BPTT, predicted 9.75e-3 (under 100x): unusable whatever the prediction
    said = measured_warning([[0, 1e-4, 0.87, 9.75e-3]])
    assert said.startswith("at epoch 1 the echo gradient (beta 0.0001) was 8.7e-01 off BPTT") and "a chaotic run" in said
    assert measured_warning([[0, 1e-4, 0.09, 9.75e-3]]) is None


def test_a_pilot_that_measures_the_echo_far_off_is_said_when_it_is_measured(chain, monkeypatch, capsys):
    """New-user probe: a pilot measured the echo 77 % off BPTT before epoch 1 and the run trained on it, saying so
    only after the last epoch. The progress output now says it at once (the result's warnings still hold it)."""
    from symglep import training

    said = []
    monkeypatch.setattr(training, "measured_warning", lambda rows, damped=None: said.append(rows) or "pilot off")
    result = train(chain, "sine", epochs=2, progress=True)
    err = capsys.readouterr().err
    assert said and err.index("warning: pilot off (the run goes on)") < err.index("epoch     1")
    assert "pilot off" in result.warnings


def test_a_resumed_runs_superseded_measurement_is_not_judged():
    """New-user probe: a resumed run measures its saved β against the prediction of the pilot that chose it, epochs
    ago; where a new choice follows at the same epoch (as in the unbroken run, which warned of nothing) that row
    warned "the run is not smooth or stable". A superseded row is not judged; a current one still is."""
    from symglep.training import measured_warning

    history = [[0, 1e-3, 1e-8, 2e-8], [4, 1e-3, 5.9e-6, 1e-8], [4, 3e-3, 2e-8, 1.5e-8]]
    assert measured_warning(history) is None
    said = measured_warning(history[:2])
    assert said.startswith("at epoch 5 the echo gradient (beta 0.001) was 5.9e-06 off BPTT")


def test_a_dataset_of_lists_trains_as_one_of_arrays():
    """symglep.Dataset(u=[...], ...) made train an AttributeError ('list' object has no attribute 'shape'; new-user
    probe): lists are read as float64 arrays, with the numbers of the same arrays."""
    from symglep.tasks import Dataset

    model = symglep.load_model(CHAIN)
    rng = np.random.default_rng(0)
    u, y = rng.normal(size=(2, 11, 1)), rng.normal(size=(2, 11, 1)) * 0.1
    q0, p0 = rng.normal(size=(2, 4)) * 0.1, np.zeros((2, 4))
    runs = [train(model, Dataset(make(u), make(y), make(q0), make(p0), 0.1), epochs=2, beta=1e-4, progress=False)
            for make in (np.asarray, lambda a: a.tolist())]
    assert runs[0].loss_history == runs[1].loss_history and np.array_equal(runs[0].theta, runs[1].theta)
    with pytest.raises(SymglepError, match="the inputs u must hold real numbers"):
        Dataset([["a"]], y, q0, p0, 0.1)


def test_a_resumed_parameter_of_another_shape_is_named_so(tmp_path):
    """An array model resumed from a file whose k is a scalar said "missing: k[0], k[1], ...; not in the model: k",
    although k is in the model, at another shape (new-user probe)."""
    path = tmp_path / "scalar_k.json"
    TrainResult("other", ["k", "B"], np.array([1.0, 0.5]), [1.0], 1.0, {}).save(str(path))  # a scalar model's run
    res = CliRunner().invoke(main, ["train", str(EXAMPLES / "network_chain.py"), "--resume", str(path),
                                    "--epochs", "1", "--quiet"])
    assert res.exit_code == 2 and "; of another shape: B, k" in res.output, res.output
    assert "missing" not in res.output and "not in the model" not in res.output, res.output


def test_training_keeps_a_declared_positive_parameter_positive(chain, monkeypatch):
    """The optimiser carried a stiffness declared positive below zero (adam at lr 1: k0 0.52 -> -0.48 in one step),
    where the derivation's sign assumptions fail: the step stops at a tenth of k0's value (fraction to the
    boundary), the other entries take the optimiser's step unchanged, and a note names k0."""
    start = train(chain, "sine", epochs=0)
    kept = train(chain, "sine", epochs=1, lr=1.0)
    monkeypatch.setattr(symglep.training, "kept_signs", lambda theta, stepped, signs: (stepped, 0 * signs))
    free = train(chain, "sine", epochs=1, lr=1.0)
    assert free.theta[0] < 0 and any("k0" in w for w in free.warnings)  # without it: against its sign
    assert kept.theta[0] == pytest.approx(0.1 * start.theta[0], rel=1e-15)
    assert np.array_equal(kept.theta[1:], free.theta[1:]) and np.all(kept.theta[1:] > 0.1 * start.theta[1:])
    assert not kept.warnings and len(kept.notes) == 1 and "k0 at 1 step" in kept.notes[0]
    assert "k1" not in kept.notes[0]


@pytest.mark.parametrize("path, expected", [
    ("oscillator_chain.py", {"k0": 1, "k1": 1, "k2": 1}),
    ("network_hru.py", None),
    ("stack_hru.py", None),
])
def test_each_kind_names_the_declared_sign_of_every_theta_entry(path, expected):
    """``declared_signs`` per flat θ entry, for each kind, against the declarations read independently."""
    from symglep.learners import compile_kernels, learner_for
    from symglep.check import declared_sign
    system = symglep.load_system(str(EXAMPLES / path))
    learner = learner_for(system, compile_kernels(system))
    signs = learner.declared_signs()
    assert signs.shape == (len(learner.names),)
    if expected is not None:
        assert dict(zip(learner.names, signs.tolist())) == expected
        return
    for name, sign in zip(learner.names, signs):
        if name.startswith("glue"):  # a stack's glue declares no sign
            assert sign == 0, name
            continue
        unit = system.units[int(name.split(".")[0][4:])] if name.startswith("unit") else system
        element = name.split(".")[-1].split("[")[0]
        declared = {p.name: declared_sign(p) for p in unit.parameters}.get(element)
        assert sign == {"positive": 1, "negative": -1}.get(declared, 0), name
    assert signs.any()  # the example declares some sign (masses, stiffnesses)
