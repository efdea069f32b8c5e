"""Classification by the cotangent-driven echo (theory §12): encoder → physical model → mean-pool head.

The head's loss couples every step of a sequence; its cotangents drive the echo through the
linear readout cost. The gradient of the whole pipeline must equal BPTT through the same discrete
stack plus the head, and central finite differences of the head's loss.
"""

import importlib.util
import json
import pathlib
import runpy
import subprocess
import sys

import numpy as np
import pytest
import sympy as sp

import symglep
from symglep import classification
from symglep.classification import ClassifierLearner, Normalisation, linear_readout_of, series_dataset
from symglep.errors import SymglepError
from symglep.heads import head_pass, pool
from symglep.learners import learner_for
from symglep.loader import load_system
from symglep.stack.codegen import render_stack

ROOT = pathlib.Path(__file__).resolve().parents[1]
HSSM = ROOT / "examples" / "stack_hssm.py"
HAS_SKTIME = importlib.util.find_spec("sktime") is not None


@pytest.fixture(scope="module")
def hssm():
    """The HSSM's generated kernels run as plain Python (jit=False): the same code, a second to run
    instead of half a minute of compiling; the compiled kernels run in the CLI test below and the
    compiled stacked echo of array units is checked against BPTT in test_stack_arrays."""
    stack = load_system(str(HSSM))
    return stack, learner_for(stack, symglep.compile(stack, dt=0.1, jit=False))


def toy(inner, readout, rng, lengths=(12, 7, 9), channels=3, classes=4, substeps=2):
    series = [rng.normal(size=(n, channels)) for n in lengths]
    labels = rng.integers(0, classes, len(lengths))
    learner = ClassifierLearner(inner, readout, channels, classes)
    data = series_dataset(series, labels, [str(c) for c in range(classes)], Normalisation.of(series), learner,
                          0.1, substeps, "toy")
    return learner, data, series, labels


def rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


def test_cotangent_echo_equals_bptt_through_stack_and_head(hssm):
    """theory §12: the echo nudged by the head's cotangents gives the head loss's gradient for every
    parameter (units, glue, encoder, head), as BPTT through the stack plus the head does."""
    stack, inner = hssm
    rng = np.random.default_rng(1)
    learner, d, _, _ = toy(inner, linear_readout_of(stack), rng)
    theta = learner.flat(learner.draw(rng))
    bptt = learner.gradients("bptt", None, theta, d.u, d.y, d.q0, d.x0, False, d.dt)
    for estimator, beta, tol in (("echo", 1e-4, 1e-6), ("echo4", 1e-3, 1e-9)):
        loss, grad = learner.gradients(estimator, beta, theta, d.u, d.y, d.q0, d.x0, False, d.dt)
        np.testing.assert_array_equal(loss, bptt[0])  # the head's loss, from the same free pass
        assert rel(grad, bptt[1]) < tol, estimator
    assert np.all(np.abs(bptt[1][:, -learner.sizes[-1]:]).sum(axis=1) > 0)  # the head's bias learns


def test_bptt_of_the_pipeline_equals_finite_differences(hssm):
    stack, inner = hssm
    rng = np.random.default_rng(2)
    learner, d, _, _ = toy(inner, linear_readout_of(stack), rng)
    theta = learner.flat(learner.draw(rng))
    grad = learner.gradients("bptt", None, theta, d.u, d.y, d.q0, d.x0, False, d.dt)[1].sum(axis=0)
    total = lambda t: learner.losses(t, d.u, d.y, d.q0, d.x0, d.dt).sum()  # noqa: E731
    n = theta.size
    index = np.concatenate([rng.choice(learner.n_model, 8, replace=False), np.arange(learner.n_model, n, 37)])
    eps = 1e-6
    fd = np.array([(total(theta + eps * np.eye(n)[i]) - total(theta - eps * np.eye(n)[i])) / (2 * eps)
                   for i in index])
    assert np.abs(fd - grad[index]).max() < 1e-7 * np.abs(grad[index]).max() + 1e-9


def test_head_gradients_equal_finite_differences():
    rng = np.random.default_rng(3)
    b, nodes, nr, classes = 3, 9, 5, 4
    readouts = rng.normal(size=(b, nodes, nr))
    mask = np.ones((b, nodes))
    mask[1, 6:] = 0
    labels = np.array([0, 3, 1])
    W, bias = rng.normal(size=(classes, nr)), rng.normal(size=classes)
    r_bar, total = pool(readouts, mask)
    hp = head_pass(W, bias, r_bar, total, mask, labels, 0.1)
    eps = 1e-6
    for i in range(classes):
        for j in range(nr):
            dW = np.zeros_like(W)
            dW[i, j] = eps
            fd = (head_pass(W + dW, bias, r_bar, total, mask, labels, 0.1).loss
                  - head_pass(W - dW, bias, r_bar, total, mask, labels, 0.1).loss) / (2 * eps)
            np.testing.assert_allclose(hp.dW[:, i, j], fd, rtol=1e-8, atol=1e-9)  # FD round-off ~1e-16 / eps
    # the cotangents: d loss / d r_k, the pooled readout's gradient spread over the masked nodes
    dr = np.zeros_like(readouts)
    dr[1, 2, 3] = eps
    fd = (head_pass(W, bias, *pool(readouts + dr, mask), mask, labels, 0.1).loss[1]
          - head_pass(W, bias, *pool(readouts - dr, mask), mask, labels, 0.1).loss[1]) / (2 * eps)
    omega = 0.1  # node 2 is interior: weight h
    assert abs(hp.cotangent[1, 2, 3] * omega - fd) < 1e-9
    assert np.all(hp.cotangent[1, 6:] == 0)


def test_pooling_in_chunks_equals_one_recorded_pass(hssm, monkeypatch):
    """The head's readouts are pooled over free passes of CHUNK nodes, each continuing from the last
    one's end state (O(1) memory in K); the result is the pooled recorded trajectory."""
    stack, inner = hssm
    rng = np.random.default_rng(4)
    learner, d, _, _ = toy(inner, linear_readout_of(stack), rng)
    th, E, e, _, _ = learner.split(learner.flat(learner.draw(rng)))
    u = learner.encode(E, e, d.u)
    mask = learner.decode(d.y)[0]
    q, seen = inner.readout_run(th, u, d.q0, d.x0, d.dt)
    reference = pool(learner.readout(q, seen, None), mask)[0]
    monkeypatch.setattr(classification, "CHUNK", 5)
    chunked = learner.pooled(th, u, mask, d.q0, d.x0, d.dt)[0]
    assert rel(chunked, reference) < 1e-12


def test_padding_a_short_series_changes_nothing(hssm):
    """Variable-length series are padded and masked, not truncated: a short sequence's loss and
    gradient are those of the same sequence run alone at its own length."""
    stack, inner = hssm
    rng = np.random.default_rng(5)
    learner, d, series, labels = toy(inner, linear_readout_of(stack), rng)
    theta = learner.flat(learner.draw(rng))
    alone = series_dataset(series[1:2], labels[1:2], [str(c) for c in range(4)], Normalisation.of(series), learner,
                           0.1, 2, "alone")
    assert alone.u.shape[1] == 7 * 2 + 1 < d.u.shape[1]
    assert d.y[1].sum() == 7 * 2 and np.all(d.u[1, 7 * 2 + 1:] == 0)
    for estimator, beta, tol in (("bptt", None, 1e-12), ("echo", 1e-4, 1e-6)):
        padded = learner.gradients(estimator, beta, theta, d.u[1:2], d.y[1:2], d.q0[:1], d.x0[:1], False, d.dt)
        own = learner.gradients(estimator, beta, theta, alone.u, alone.y, alone.q0, alone.x0, False, alone.dt)
        assert abs(padded[0][0] - own[0][0]) < 1e-13
        assert rel(padded[1], own[1]) < tol, estimator


def scalar_classifier_model():
    """Two coupled oscillators driven by one input; the cost reads x1 linearly."""
    t = sp.Symbol("t")
    x1, x2, u, y = (sp.Function(s)(t) for s in ("x1", "x2", "u", "y"))
    k, g, c = sp.symbols("k g c")
    L = (x1.diff(t) ** 2 + x2.diff(t) ** 2) / 2 - k * (x1 ** 2 + x2 ** 2) / 2 - g * sp.log(sp.cosh(x1 - x2)) + c * u * x2
    return symglep.Model(L, [x1, x2], [k, g, c], inputs=[u], targets=[y], cost=y * sp.tanh(x1),
                         name="classifier_pair")


@pytest.mark.parametrize("kind", ["scalar", "array"])
def test_every_kind_classifies_by_the_echo(kind):
    """The head runs on any kind: a scalar model and an array model (its generated code run as plain
    Python, jit=False, to keep the suite fast) give echo = BPTT of the whole pipeline."""
    if kind == "scalar":
        model = scalar_classifier_model()
    else:
        model = runpy.run_path(str(HSSM))["diagonal_hru"]("classifier_layer", 2)
    kernels = symglep.compile(model, dt=0.1, jit=False)
    inner = learner_for(model, kernels)
    rng = np.random.default_rng(6)
    learner, d, _, _ = toy(inner, linear_readout_of(model), rng, lengths=(5, 3), classes=3, substeps=1)
    theta = learner.flat(learner.draw(rng))
    bptt = learner.gradients("bptt", None, theta, d.u, d.y, d.q0, d.x0, False, d.dt)
    echo = learner.gradients("echo4", 1e-3, theta, d.u, d.y, d.q0, d.x0, False, d.dt)
    assert rel(echo[1], bptt[1]) < 1e-9


def test_a_cost_not_linear_in_the_targets_is_refused():
    stack = load_system(str(ROOT / "examples" / "stack_hru.py"))  # cost (q - y)^2 / 2
    with pytest.raises(SymglepError, match="linear in the targets"):
        linear_readout_of(stack)


def test_labelled_npz_is_a_classification_set(tmp_path, hssm):
    stack, inner = hssm
    rng = np.random.default_rng(7)
    path = tmp_path / "series.npz"
    np.savez(path, inputs=rng.normal(size=(4, 6, 2)), labels=np.array([0, 1, 2, 1]), lengths=np.array([6, 3, 5, 6]),
             test_inputs=rng.normal(size=(2, 8, 2)), test_labels=np.array([2, 0]), dt=0.2)
    data = classification.labelled_npz(str(path), inner, None, 2)
    assert data.classes == ["0", "1", "2"] and data.dt == 0.2
    assert data.u.shape == (4, 8 * 2 + 1, 2) and data.test.u.shape == (2, 17, 2)
    np.testing.assert_array_equal(data.y.sum(axis=(1, 2)), [12, 6, 10, 12])
    # normalised with the training split's statistics, which are saved (new-user probe: the docs said it was
    # used as stored, and a saved classifier could not be run on new series)
    series = np.concatenate([np.load(path)["inputs"][s, :n] for s, n in enumerate([6, 3, 5, 6])])
    np.testing.assert_allclose(data.info["normalisation"]["mean"], series.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(data.info["normalisation"]["std"], series.std(axis=0), rtol=1e-12)
    np.savez(tmp_path / "bad.npz", inputs=rng.normal(size=(4, 6, 2)), labels=np.array([0.5, 1, 2, 1]))
    with pytest.raises(SymglepError, match="integers >= 0; got float64 values such as \\[0.5, 1.0, 2.0\\]"):
        classification.labelled_npz(str(tmp_path / "bad.npz"), inner, None, 1)
    # labels stored as floats or booleans are class indices too; NaN padding past 'lengths' (sktime's
    # convention for unequal lengths) is never read (new-user probe: both were refused)
    padded = rng.normal(size=(4, 6, 2))
    padded[1, 3:] = np.nan
    np.savez(tmp_path / "floats.npz", inputs=padded, labels=np.array([0.0, 1.0, 2.0, 1.0]), lengths=[6, 3, 5, 6], dt=0.2)
    again = classification.labelled_npz(str(tmp_path / "floats.npz"), inner, None, 2)
    assert again.classes == data.classes and np.all(np.isfinite(again.u))
    np.savez(tmp_path / "bools.npz", inputs=padded[:, :3], labels=np.array([False, True, True, False]))
    assert classification.labelled_npz(str(tmp_path / "bools.npz"), inner, 0.2, 1).classes == ["0", "1"]
    np.savez(tmp_path / "nan.npz", inputs=padded, labels=np.array([0, 1, 2, 1]))  # no lengths: NaN is read
    with pytest.raises(SymglepError, match=r"NaN or infinite values \(series 1\) and there is no 'lengths': for "
                                           r"series padded with NaN to a common length, give 'lengths'"):
        classification.labelled_npz(str(tmp_path / "nan.npz"), inner, 0.2, 1)  # (it blamed 'lengths' not given)
    np.savez(tmp_path / "nan_in.npz", inputs=padded, labels=np.array([0, 1, 2, 1]), lengths=[6, 4, 6, 6])
    with pytest.raises(SymglepError, match=r"NaN or infinite values within 'lengths' \(series 1\)"):
        classification.labelled_npz(str(tmp_path / "nan_in.npz"), inner, 0.2, 1)


def test_a_labelled_npz_may_name_its_classes(tmp_path, hssm):
    """New-user probe: an npz copy of a uea: set could not carry its class names, so a classifier trained on one
    could not be resumed on the other ("trained on the classes Standing, ... this data set has 0, 1, ...")."""
    _, inner = hssm
    rng = np.random.default_rng(3)
    names = np.array(["Standing", "Running", "Walking"])
    path = tmp_path / "named.npz"
    np.savez(path, inputs=rng.normal(size=(4, 6, 2)), labels=np.array([2, 1, 2, 1]), classes=names)
    assert classification.labelled_npz(str(path), inner, 0.2, 1).classes == ["Running", "Walking"]
    for bad, message in ((np.array(["a", "a", "b"]), "distinct class names"), (np.array([1.0, 2.0, 3.0]), "strings"),
                         (np.array(["a", "b"]), "label 2 has no name: 'classes' holds 2")):
        np.savez(tmp_path / "bad.npz", inputs=rng.normal(size=(4, 6, 2)), labels=np.array([2, 1, 2, 1]), classes=bad)
        with pytest.raises(SymglepError, match=message):
            classification.labelled_npz(str(tmp_path / "bad.npz"), inner, 0.2, 1)



def test_a_labelled_npz_may_hold_text_labels(tmp_path, hssm):
    """Labels as class names (as .ts files spell them) were refused ("must hold class indices"; new-user probe):
    they are looked up in 'classes', or the sorted distinct names of both splits name the classes."""
    _, inner = hssm
    rng = np.random.default_rng(4)
    path = tmp_path / "text.npz"
    np.savez(path, inputs=rng.normal(size=(4, 6, 2)), labels=np.array(["walk", "run", "walk", "run"]),
             test_inputs=rng.normal(size=(2, 6, 2)), test_labels=np.array(["run", "walk"]))
    data = classification.labelled_npz(str(path), inner, 0.2, 1)
    assert data.classes == ["run", "walk"]
    assert data.y[:, -1].argmax(axis=1).tolist() == [1, 0, 1, 0] and data.test.y[:, -1].argmax(axis=1).tolist() == [0, 1]
    np.savez(path, inputs=rng.normal(size=(4, 6, 2)), labels=np.array(["walk", "run", "walk", "run"]),
             classes=np.array(["walk", "stand", "run"]))
    assert classification.labelled_npz(str(path), inner, 0.2, 1).classes == ["walk", "run"]
    np.savez(path, inputs=rng.normal(size=(4, 6, 2)), labels=np.array(["walk", "jog", "walk", "run"]),
             classes=np.array(["walk", "run"]))
    with pytest.raises(SymglepError, match="'labels' holds 'jog', not among 'classes'"):
        classification.labelled_npz(str(path), inner, 0.2, 1)

@pytest.mark.parametrize("arrays, message", [
    (dict(test_inputs=np.zeros((2, 6, 3)), test_labels=np.array([0, 1])),
     "'test_inputs' has 3 channel\\(s\\), 'inputs' has 2"),
    (dict(test_labels=np.array([0, 1])), "'test_labels' needs 'test_inputs'"),
    (dict(test_inputs=np.zeros((2, 6, 2)), test_labels=np.array([0, 7])),
     "test series hold class\\(es\\) 7 that no training series has"),
    (dict(labels=np.array([1, 1, 1, 1])), "the training series hold one class only \\(1\\); a classifier needs two"),
    # new-user probe: an empty split was an internal error, complex inputs lost their imaginary part, a
    # negative, zero or array dt trained or failed later with another message
    (dict(inputs=np.ones((0, 6, 2)), labels=np.zeros(0, int)), "'inputs' of shape \\(0, 6, 2\\) holds no series"),
    (dict(inputs=np.ones((4, 0, 2))), "'inputs' of shape \\(4, 0, 2\\) holds series of no samples"),
    (dict(inputs=np.ones((4, 6, 0))), "'inputs' of shape \\(4, 6, 0\\) holds no channels"),
    (dict(test_inputs=np.ones((0, 6, 2)), test_labels=np.zeros(0, int)), "'test_inputs' of shape .* holds no series"),
    (dict(inputs=np.ones((4, 6, 2)) * 1j), "'inputs' must hold real numbers, got dtype complex128"),
    (dict(dt=-0.1), "'dt' must be a positive number, got -0.1"),
    (dict(dt=0.0), "'dt' must be a positive number, got 0.0"),
    (dict(dt=np.array([0.1, 0.2])), "'dt' must be a scalar number, got shape \\(2,\\)"),
])
def test_labelled_npz_refusals_name_the_fault(tmp_path, hssm, arrays, message):
    """Splits that disagree, or classes a head cannot learn, are one-line errors before any run."""
    path = tmp_path / "series.npz"
    np.savez(path, **{"inputs": np.ones((4, 6, 2)), "labels": np.array([0, 1, 2, 1]), **arrays})
    with pytest.raises(SymglepError, match=message):
        classification.labelled_npz(str(path), hssm[1], None, 1)


@pytest.mark.skipif(not HAS_SKTIME, reason="the UEA sets ship with sktime (extra 'uea')")
def test_uea_task_normalises_from_the_training_split_only(hssm):
    from symglep import uea

    stack, inner = hssm
    raw = uea.load("JapaneseVowels")
    data = classification.uea_task("JapaneseVowels", inner, None, 1)
    train = np.concatenate(raw.train.series)
    mean, std = train.mean(axis=0), train.std(axis=0)
    for split, source in ((data, raw.train), (data.test, raw.test)):
        s = int(np.argmin(source.lengths))
        n = source.lengths[s]
        np.testing.assert_allclose(split.u[s, :n], (source.series[s] - mean) / std, rtol=1e-12, atol=1e-12)
        assert split.y[s].sum() == n and split.y[s].sum(axis=0).argmax() == source.labels[s]
    assert data.u.shape[1] == data.test.u.shape[1] == 29 + 1  # the longest series of both splits
    samples = np.concatenate([data.u[s, :n] for s, n in enumerate(raw.train.lengths)])  # nodes 0..L-1 hold x_0..x_L-1
    np.testing.assert_allclose(samples.mean(axis=0), 0, atol=1e-12)  # the training split's statistics
    np.testing.assert_allclose(samples.std(axis=0), 1, rtol=1e-12)


@pytest.mark.skipif(not HAS_SKTIME, reason="the UEA sets ship with sktime (extra 'uea')")
def test_train_two_epochs_on_basic_motions_lowers_the_loss(tmp_path):
    out = tmp_path / "run.json"
    run = subprocess.run([sys.executable, "-m", "symglep", "train", str(HSSM), "--task", "uea:BasicMotions",
                          "--epochs", "2", "--batch", "10", "--lr", "0.01", "--quiet", "--save", str(out)],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert "accuracy train" in run.stdout and "test" in run.stdout
    saved = json.loads(out.read_text())
    assert len(saved["scores"]) == 2 and set(saved["scores"][0]) == {"train", "test"}
    assert saved["final_loss"] < saved["loss_history"][0]
    assert saved["settings"]["classes"] == ["Standing", "Running", "Walking", "Badminton"] or \
        len(saved["settings"]["classes"]) == 4
    assert saved["parameters"]["head.W"] and len(saved["parameters"]["encoder.E"][0]) == 6
    more = tmp_path / "more.json"
    run = subprocess.run([sys.executable, "-m", "symglep", "train", str(HSSM), "--task", "uea:BasicMotions",
                          "--epochs", "1", "--batch", "10", "--quiet", "--resume", str(out), "--save", str(more)],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    resumed = json.loads(more.read_text())
    assert len(resumed["scores"]) == 3 and resumed["scores"][:2] == saved["scores"]


def test_an_unknown_uea_set_is_one_line():
    run = subprocess.run([sys.executable, "-m", "symglep", "train", str(HSSM), "--task", "uea:NoSuchSet",
                          "--epochs", "1"], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert "NoSuchSet" in run.stderr and ("available" in run.stderr or "sktime" in run.stderr)


def test_generated_hssm_is_up_to_date():
    stack = load_system(str(HSSM))
    committed = ROOT / "generated" / stack.name / "numba" / "kernels.py"
    assert committed.read_text(encoding="utf-8") == render_stack(stack), (
        "regenerate: symglep generate examples/stack_hssm.py --out generated")


def test_resuming_a_classifier_on_another_set_names_the_classes(hssm):
    """A classifier trained for 3 classes resumed on a 2-class set: the message says the head and encoder do
    not fit (3 classes from 3 channels vs 2 from 3), not that the parameters are another model's (new-user
    probe: two near-identical name lists)."""
    from symglep.training import TrainResult, _resume_state

    stack, inner = hssm
    three, two = (ClassifierLearner(inner, "coordinates", 3, c) for c in (3, 2))
    saved = TrainResult(stack.name, three.names, np.zeros(len(three.names)), [], 0.0, {}, layout=three.layout)
    with pytest.raises(SymglepError, match="the resumed classifier does not fit this data set: it was trained for "
                                           "3 classes from 3 channel\\(s\\), this data set needs 2 classes from 3"):
        _resume_state(saved, two)


def test_the_classes_are_the_labels_that_occur(tmp_path, hssm):
    """Labels {1, 2} (or {0, 2}) make two classes named '1', '2', not a three-class head with a class no series
    has (new-user probe); test labels follow the same map; half-integer lengths are refused."""
    rng = np.random.default_rng(3)
    path = tmp_path / "from1.npz"
    np.savez(path, inputs=rng.normal(size=(4, 6, 2)), labels=np.array([1, 2, 2, 1]),
             test_inputs=rng.normal(size=(2, 6, 2)), test_labels=np.array([2, 1]))
    data = classification.labelled_npz(str(path), hssm[1], None, 1)
    assert data.classes == ["1", "2"] and data.test.classes == ["1", "2"]
    np.savez(path, inputs=rng.normal(size=(4, 6, 2)), labels=np.array([0, 1, 2, 1]), lengths=np.array([6, 2.5, 4, 6]))
    with pytest.raises(SymglepError, match="'lengths' must be \\(S,\\) integers in 1..6"):
        classification.labelled_npz(str(path), hssm[1], None, 1)


def test_the_plot_numbers_epochs_from_one_in_both_panels(monkeypatch, tmp_path):
    """The running loss, the end-of-epoch losses and the accuracies of epoch e sit at x = e in both panels
    (new-user probe: the loss panel drew them at e − 1, the accuracy panel at e)."""
    pytest.importorskip("matplotlib")
    from symglep import plotting

    drawn = {}
    monkeypatch.setattr(plotting, "save_figure", lambda fig, path: drawn.update(
        {line.get_label(): list(line.get_xdata()) for ax in fig.axes for line in ax.get_lines()}))
    plotting.plot_loss({"echo": [3.0, 2.0, 1.0], "train loss": [2.5, 1.5, 0.5], "train accuracy": [0.5, 0.7, 0.9]},
                       str(tmp_path / "p.png"))
    assert drawn == {"echo": [1, 2, 3], "train loss": [1, 2, 3], "train accuracy": [1, 2, 3]}


def test_resuming_a_classifier_on_other_classes_is_refused():
    """A GunPoint classifier resumed on a copy whose header lists the classes as '2 1' swapped its predictions
    silently (new-user probe): the saved classes, in order, must be the data set's."""
    from symglep.training import require_same_classes

    require_same_classes(["1", "2"], ["1", "2"])
    require_same_classes(None, ["1", "2"])  # a plain parameters file names no classes
    with pytest.raises(SymglepError, match=r"trained on the classes 1, 2 \(in that order\), this data set has 2, 1"):
        require_same_classes(["1", "2"], ["2", "1"])


def test_a_resumed_classifier_reads_new_data_as_it_was_trained(tmp_path):
    """--resume RUN.json --epochs 0 on another file is an evaluation: it printed the saved run's last scores
    and normalised the new file by its own statistics (new-user probe). Now the saved normalisation is kept
    and the scores are those of the new file: the first run's test split, given as a file of its own, scores
    exactly as it did inside the first run."""
    from symglep.training import train

    model = scalar_classifier_model()
    rng = np.random.default_rng(9)
    xa, xt = rng.normal(size=(6, 8, 1)), 3.0 + 2.0 * rng.normal(size=(4, 8, 1))
    la, lt = np.array([0, 1, 0, 1, 0, 1]), np.array([0, 1, 1, 0])
    np.savez(tmp_path / "a.npz", inputs=xa, labels=la, test_inputs=xt, test_labels=lt)
    np.savez(tmp_path / "b.npz", inputs=xt, labels=lt)
    run = str(tmp_path / "run.json")
    first = train(model, str(tmp_path / "a.npz"), epochs=2, save=run, cache=str(tmp_path / "cache"))
    evaluated = train(model, str(tmp_path / "b.npz"), epochs=0, resume=run, cache=str(tmp_path / "cache"))
    assert evaluated.settings["normalisation"] == first.settings["normalisation"]
    before, after = first.scores[-1]["test"], evaluated.scores[-1]["train"]
    assert before["accuracy"] == after["accuracy"] and abs(before["loss"] - after["loss"]) <= 1e-12 * before["loss"]
    assert first.scores[-1]["train"]["loss"] != after["loss"]  # not the saved run's own train score
