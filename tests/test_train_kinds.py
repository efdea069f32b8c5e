"""One trainer for every kind (issue #16): ``symglep train`` on an array model and on a stack.

The same properties as tests/test_train.py asserts for scalar models: the sine task lowers the
loss, the echo and BPTT give the same loss curve to 1e-5 relative, a saved run resumes exactly,
DATA.npz trains and a bad one is one line; and the learners' per-sequence gradients are the
kernels' own numbers (docs/training.md, symglep/learners.py).
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from click.testing import CliRunner

import symglep
from symglep.cli import main
from symglep.errors import SymglepError
from symglep.learners import learner_for
from symglep.network.check import draw_instance
from symglep.tasks import SineTask, sine_task
from symglep.training import TrainResult, train

from conftest import EXAMPLES

NETWORK = EXAMPLES / "network_chain.py"
STACK = EXAMPLES / "stack_chain_hru.py"
UNITS = 6
ARRAY_TASK = SineTask(steps=200)
STACK_TASK = SineTask(sequences=4, steps=100)


def rel_curve_error(a, b) -> float:
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b) / np.abs(b)))


@pytest.fixture(scope="module")
def network():
    model = symglep.load_system(str(NETWORK))
    model.size = UNITS
    return model


@pytest.fixture(scope="module")
def network_file(tmp_path_factory):
    """examples/network_chain.py at 6 units, as a model file for the command line."""
    path = tmp_path_factory.mktemp("net") / "chain6.py"
    path.write_text(f"import runpy\nmodel = runpy.run_path({str(NETWORK)!r})['model']\nmodel.size = {UNITS}\n")
    return str(path)


@pytest.fixture(scope="module")
def stack():
    return symglep.load_system(str(STACK))


@pytest.fixture(scope="module")
def array_runs(network):
    return {est: train(network, ARRAY_TASK, epochs=20, estimator=est) for est in ("echo", "bptt")}


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


# -- array model -------------------------------------------------------------------------------

def test_array_sine_task_lowers_the_loss(array_runs):
    run_ = array_runs["echo"]
    assert run_.epochs == 20 and run_.settings["units"] == UNITS
    assert run_.final_loss * 10 <= run_.loss_history[0], (run_.loss_history[0], run_.final_loss)
    assert run_.names[:2] == ["k[0]", "k[1]"] and "B[5,0]" in run_.names
    assert len(run_.names) == (UNITS - 1) + UNITS  # k on the 5 edges, B (6, 1)


def test_array_echo_and_bptt_give_the_same_loss_curve(array_runs):
    echo, bptt = array_runs["echo"], array_runs["bptt"]
    assert rel_curve_error(echo.loss_history, bptt.loss_history) <= 1e-5
    assert abs(echo.final_loss - bptt.final_loss) <= 1e-5 * bptt.final_loss


def test_array_cli_minibatch_run_saves_nested_lists(network_file, tmp_path):
    save = tmp_path / "net.json"
    code, out = run("train", network_file, "--task", "sine", "--epochs", "20", "--batch", "2", "--quiet",
                    "--save", save)
    assert code == 0, out
    before, after = map(float, re.search(r"^loss (\S+) -> (\S+) \(x", out, re.M).groups())
    assert after * 5 <= before, out
    data = json.loads(save.read_text())
    assert data["model"] == "network_chain" and data["settings"]["batch"] == 2
    assert len(data["parameters"]["k"]) == UNITS - 1
    assert np.shape(data["parameters"]["B"]) == (UNITS, 1)
    loaded = TrainResult.load(str(save))
    assert loaded.names[0] == "k[0]" and loaded.theta.size == 2 * UNITS - 1


def test_array_save_resume_continues_exactly(network, tmp_path):
    whole = train(network, ARRAY_TASK, epochs=4, batch=3)
    path = tmp_path / "half.json"
    train(network, ARRAY_TASK, epochs=2, batch=3, save=str(path))
    resumed = train(network, ARRAY_TASK, epochs=2, batch=3, resume=str(path))
    assert np.array_equal(resumed.theta, whole.theta)
    assert resumed.loss_history == whole.loss_history


def test_array_data_file_trains_at_the_size_of_its_start(network, tmp_path):
    """DATA.npz written here: the sine data of 3 sequences at 6 units; and a start of 8 units sets n = 8."""
    kernels = symglep.compile(network)
    data, _ = sine_task(network, kernels, seed=3, config=SineTask(sequences=3, steps=100))
    path = tmp_path / "data.npz"
    np.savez(path, inputs=data.u, targets=data.y, q0=data.q0, p0=data.x0, dt=data.dt)
    fitted = train(network, str(path), epochs=15)
    assert fitted.settings["units"] == UNITS and fitted.settings["sequences"] == 3
    assert fitted.final_loss < 0.5 * fitted.loss_history[0]
    wider = tmp_path / "wide.npz"
    np.savez(wider, inputs=data.u, targets=data.y, q0=np.zeros((3, 8)), dt=data.dt)
    eight = train(network, str(wider), epochs=1)
    assert eight.settings["units"] == 8 and len(eight.grouped["k"]) == 7
    moving = tmp_path / "velocity.npz"  # velocity starts (theory §5): echo and BPTT give the same curve
    np.savez(moving, inputs=data.u, targets=data.y, q0=data.q0, v0=np.full_like(data.x0, 0.1), dt=data.dt)
    echo = train(network, str(moving), epochs=5)
    bptt = train(network, str(moving), epochs=5, estimator="bptt")
    assert echo.final_loss < echo.loss_history[0]
    np.testing.assert_allclose(echo.loss_history, bptt.loss_history, rtol=1e-5)


@pytest.mark.parametrize("arrays, fragment", [
    (dict(inputs=np.zeros((2, 5, 1)), targets=np.zeros((2, 5, 2)), dt=0.1), "expected (S, K+1, 1)"),
    (dict(inputs=np.zeros((2, 5, 1)), targets=np.zeros((2, 5, 1)), v0=np.zeros((2, 6)), p0=np.zeros((2, 6)),
          dt=0.1), "holds both 'p0' and 'v0'"),
    (dict(inputs=np.zeros((2, 5, 1)), targets=np.zeros((2, 5, 1)), q0=np.zeros((2, 6)), p0=np.zeros((2, 5)),
          dt=0.1), "'p0' has shape (2, 5), expected (2, 6)"),
])
def test_array_bad_data_file_is_one_line_exit_2(network_file, tmp_path, arrays, fragment):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    code, out = run("train", network_file, "--task", path, "--quiet", "--epochs", "1")
    assert code == 2 and fragment in out and out.startswith("error: ") and out.count("\n") == 1, out


def test_array_learner_gradients_are_the_kernels_numbers(network):
    kernels = symglep.compile(network)
    theta, q0, p0, u, y = draw_instance(network, kernels, UNITS, 2, 150, 0.01, np.random.default_rng(5))
    learner = learner_for(network, kernels, UNITS)
    flat = learner.flat(theta)
    echo = kernels.gradient(theta, q0, p0, u, y, dt=0.01, beta=1e-4)
    loss, dtheta, dq0, dp0 = learner.gradients("echo", 1e-4, flat, u, y, q0, p0, False, 0.01, with_start=True)
    assert np.array_equal(loss, echo.loss) and np.array_equal(dtheta, echo.flat)
    assert np.array_equal(dq0, echo.dq0) and np.array_equal(dp0, echo.dp0)
    bptt = kernels.bptt_gradient(theta, q0, p0, u, y, dt=0.01)
    loss, dtheta = learner.gradients("bptt", 1e-4, flat, u, y, q0, p0, False, 0.01)
    assert np.array_equal(loss, bptt.loss) and np.array_equal(dtheta, bptt.flat)
    one_sided = kernels.gradient(theta, q0, p0, u, y, dt=0.01, beta=1e-4, centred=False)
    assert np.array_equal(learner.gradients("echo-one-sided", 1e-4, flat, u, y, q0, p0, False, 0.01)[1],
                          one_sided.flat)
    assert np.array_equal(dtheta[:, :UNITS - 1], bptt.dtheta["k"])  # θ's layout: k first, then B


# -- stack --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def stack_runs(stack):
    return {est: train(stack, STACK_TASK, epochs=10, estimator=est) for est in ("echo", "bptt")}


def test_stack_echo_and_bptt_give_the_same_loss_curve(stack_runs):
    echo, bptt = stack_runs["echo"], stack_runs["bptt"]
    assert echo.final_loss < echo.loss_history[0]
    assert rel_curve_error(echo.loss_history, bptt.loss_history) <= 1e-5
    assert abs(echo.final_loss - bptt.final_loss) <= 1e-5 * bptt.final_loss


def test_stack_save_resume_continues_exactly(stack, tmp_path):
    whole = train(stack, STACK_TASK, epochs=4, batch=3)
    path = tmp_path / "half.json"
    train(stack, STACK_TASK, epochs=2, batch=3, save=str(path))
    resumed = train(stack, STACK_TASK, epochs=2, batch=3, resume=str(path))
    assert np.array_equal(resumed.theta, whole.theta)
    assert resumed.loss_history == whole.loss_history


def test_stack_cli_trains_on_a_data_file_in_minibatches(stack, tmp_path):
    kernels = symglep.compile(stack)
    data, _ = sine_task(stack, kernels, seed=2, config=STACK_TASK)
    path, save = tmp_path / "data.npz", tmp_path / "run.json"
    np.savez(path, inputs=data.u, targets=data.y, dt=data.dt)
    code, out = run("train", STACK, "--task", path, "--batch", "2", "--epochs", "5", "--quiet", "--save", save)
    assert code == 0, out
    saved = json.loads(save.read_text())
    assert saved["settings"]["batch"] == 2 and saved["settings"]["sequences"] == 4
    assert len(saved["parameters"]) == 18 and saved["final_loss"] < saved["loss_history"][0]


def test_a_stack_that_diverges_while_training_names_the_epoch_and_the_learning_rate():
    """New-user probe: a stack that a large --lr carried out of its domain said only "the stacked echo produced a
    non-finite value (... reduce dt)", exit 2, where an array model's run names the epoch and suggests a smaller
    --lr; a failure of the loss after the last update was the same bare message. Both now say so, exit 3."""
    code, out = run("train", EXAMPLES / "stack_hru.py", "--task", "sine", "--epochs", "10", "--lr", "5", "--quiet")
    assert code == 3 and out.count("\n") == 1, out
    assert re.search(r"error: epoch \d+, after \d+ update\(s\) at lr 5: (the )?stacked echo", out), out
    assert "try a smaller --lr" in out, out


def test_stack_learner_gradients_are_the_kernels_numbers(stack):
    kernels = symglep.compile(stack)
    data, start = sine_task(stack, kernels, seed=1, config=SineTask(sequences=2, steps=80))
    learner = learner_for(stack, kernels)
    rng = np.random.default_rng(0)
    q0, p0 = rng.uniform(-0.2, 0.2, (2, learner.n)), rng.uniform(-0.2, 0.2, (2, learner.n))
    loss, g = learner.gradients("echo", 1e-4, start, data.u, data.y, q0, p0, False, data.dt)
    ref = kernels.gradient(start, data.u, data.y, q0, p0, dt=data.dt, beta=1e-4)
    assert np.array_equal(loss, ref[0]) and np.array_equal(g, ref[1])
    loss, g = learner.gradients("bptt", 1e-4, start, data.u, data.y, q0, p0, False, data.dt)
    ref = kernels.bptt_gradient(start, data.u, data.y, q0, p0, dt=data.dt)
    assert np.array_equal(loss, ref[0]) and np.array_equal(g, ref[1])


def test_array_dask_gives_the_local_parameters(network):
    """Dask ships the array model and compiles it on the worker (symglep.compile): bit-identical."""
    import dask.distributed as distributed  # in the test extra
    local = train(network, ARRAY_TASK, epochs=2, batch=3)
    # dashboard on a free port: the two test workers may run a cluster at once (8787 taken)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp://",
                                  host="127.0.0.1", dashboard_address=":0") as cluster:
        spread = train(network, ARRAY_TASK, epochs=2, batch=3, scheduler=cluster.scheduler_address)
    assert np.array_equal(spread.theta, local.theta)
    assert spread.loss_history == local.loss_history


def test_array_learns_its_initial_state(network):
    """The array kernels return dC/dq0 and dC/dp0: the shared start is learned, by echo as by BPTT."""
    task = SineTask(sequences=3, steps=100)
    echo = train(network, task, epochs=5, learn_initial_state=True)
    bptt = train(network, task, epochs=5, learn_initial_state=True, estimator="bptt")
    assert rel_curve_error(echo.loss_history, bptt.loss_history) <= 1e-5
    assert echo.final_loss < 0.2 * echo.loss_history[0]
    assert len(echo.initial_state["q0"]) == len(echo.initial_state["p0"]) == UNITS
    frozen = train(network, task, epochs=2, learn_initial_state=True, freeze_parameters=True)
    assert np.array_equal(frozen.theta, train(network, task, epochs=0).theta)
    assert frozen.loss_history[1] < frozen.loss_history[0]


def test_frozen_parameters_and_elements_keep_their_start_values(network, network_file, tmp_path):
    """--freeze keeps named parameters (B) or single elements (k[2]) at their start values while the others
    learn (a fixed input matrix, a mask of couplings); the run's other entries move exactly as a run whose
    gradient of those entries is zero, and the summary says which entries were fixed."""
    start = train(network, ARRAY_TASK, epochs=0)
    frozen = train(network, ARRAY_TASK, epochs=3, freeze=["B", "k[2]"])
    fixed = [i for i, n in enumerate(frozen.names) if n.startswith("B[") or n == "k[2]"]
    free = [i for i in range(len(frozen.names)) if i not in fixed]
    assert np.array_equal(frozen.theta[fixed], start.theta[fixed])
    assert np.all(frozen.theta[free] != start.theta[free])
    assert frozen.settings["frozen"] == ["k[2]"] + [f"B[{i},0]" for i in range(UNITS)]
    code, out = run("train", network_file, "--task", "sine", "--epochs", "1", "--quiet", "--freeze", "k[2], B")
    assert code == 0, out
    assert re.search(r"^  k = .* \(1 of 5 entries fixed\)$", out, re.M) and re.search(r"^  B = .* \(fixed\)$", out, re.M)
    code, out = run("train", network_file, "--task", "sine", "--epochs", "1", "--freeze", "kk")
    assert code == 2 and "no parameter or element 'kk'; the parameters are k, B" in out
    code, out = run("train", network_file, "--task", "sine", "--epochs", "1", "--freeze", "k,B")
    assert code == 2 and "nothing is left to learn" in out


def test_a_stack_freezes_one_unit_while_the_others_learn(stack):
    """--freeze on a stack: the named parameters of one unit keep their start values, the rest move."""
    start = train(stack, STACK_TASK, epochs=0)
    names = start.names
    fixed = names[:2]
    frozen = train(stack, STACK_TASK, epochs=2, freeze=",".join(fixed))
    assert np.array_equal(frozen.theta[:2], start.theta[:2])
    assert np.all(frozen.theta[2:] != start.theta[2:])


def test_freeze_names_a_whole_parameter_unit_or_glue_of_a_stack():
    """A stack lists an array unit's parameters element by element (unit1.A[0,1]) and its glue's as glue0.W2_5:
    --freeze unit1.A was refused ("no parameter or element"; new-user probe) though the same array model alone
    takes --freeze A. A whole parameter, a unit (unit1) or a glue matrix (glue0.W) now freeze all their elements."""
    from types import SimpleNamespace

    from symglep.training import frozen_entries

    names = symglep.load_system(str(EXAMPLES / "stack_hru.py")).parameter_names
    learner = SimpleNamespace(names=names, layout=[(n, ()) for n in names])
    picked = lambda mask: [n for n, f in zip(names, mask) if f]  # noqa: E731
    assert picked(frozen_entries(learner, "unit1.A")) == [n for n in names if n.startswith("unit1.A[")]
    assert len(picked(frozen_entries(learner, "unit1.A"))) == 64
    assert picked(frozen_entries(learner, "unit0")) == [n for n in names if n.startswith("unit0.")]
    assert picked(frozen_entries(learner, "glue0.W")) == [f"glue0.W{i}_{j}" for i in range(8) for j in range(8)]
    assert set(picked(frozen_entries(learner, "glue0.b, unit1.m[3]"))) == {f"glue0.b{i}" for i in range(8)} | \
        {"unit1.m[3]"}
    assert picked(frozen_entries(learner, ["unit0.A[0, 1]"])) == ["unit0.A[0,1]"]  # numpy's spacing
    # a glue entry in the bracket spelling the refusal suggested (new-user probe: refused)
    assert picked(frozen_entries(learner, "glue0.W[0,7], glue0.b[3]")) == ["glue0.W0_7", "glue0.b3"]
    heads = ", ".join(dict.fromkeys(n.split("[")[0] for n in names if not n.startswith("glue")))
    assert heads == "unit0.A, unit0.B, unit0.b, unit0.m, unit1.A, unit1.B, unit1.b, unit1.m"
    with pytest.raises(SymglepError, match=r"no parameter or element 'unit1\.Q'; the parameters are ") as refused:
        frozen_entries(learner, "unit1.Q")
    listed = str(refused.value).split("the parameters are ")[1].split(" (an element")[0].split(", ")
    assert sorted(listed) == sorted(heads.split(", ") + ["glue0.W", "glue0.b"])


def test_train_takes_an_array_models_size_and_check_reads_it_back(network_file, tmp_path):
    """New-user probe: `train` had no --size (an array model at another n needed a copy of its file, and a cold
    compile though the kernels do not depend on n), and `check --params RUN.json` of a run at n = 20 was refused
    for its shapes at the file's n. train --size N runs at N units; check reads settings.units back."""
    save = tmp_path / "n4.json"
    code, out = run("train", network_file, "--size", "4", "--epochs", "1", "--quiet", "--save", save)
    assert code == 0, out
    saved = json.loads(save.read_text())
    assert saved["settings"]["units"] == 4 and len(saved["parameters"]["B"]) == 4
    code, out = run("check", network_file, "--params", save, "--steps", "100")
    assert code == 0 and out.splitlines()[1].startswith("model network_chain (array model, n = 4 units"), out
    # the run's own dt and steps where none is given (a probe: trained at dt = 0.05, checked at 0.01)
    saved["settings"].update(dt=0.02, steps=60)
    save.write_text(json.dumps(saved))
    code, out = run("check", network_file, "--params", save, "--dt", "0.01")
    first, second = out.splitlines()[:2]
    assert code == 0 and first == f"note: --steps 60 from the training run recorded in {save} (give them to override)"
    assert "K = 60 steps of dt = 0.01" in second, out
    code, out = run("check", network_file, "--params", save)
    assert out.startswith("note: --dt 0.02, --steps 60 from the training run") and "K = 60 steps of dt = 0.02" in out
    code, out = run("train", network_file, "--size", "4", "--epochs", "1", "--scheduler", "tcp://127.0.0.1:1")
    assert code == 2 and "--size with --scheduler" in out
