"""Inputs found by audit-b: each gives one clear line, not a traceback,
a silent misreading or out-of-bounds C code. No kernel is compiled here (fast)."""

import numpy as np
import pytest
import sympy as sp

import symglep
from symglep import uea
from symglep.classification import uea_name
from symglep.errors import ModelError, SymglepError
from symglep.network import ArrayModel, Coordinates, Edges, Inputs, Parameter, Sum, Targets, i, k, r
from symglep.stack.codegen import render_stack
from symglep.training import _change


def chain(default, size=6, sizes=None, name="chain"):
    x = Coordinates("x")
    E = Edges("E", default=default)
    kk = Parameter("k", "e", positive=True)
    B = Parameter("B", ("n", "m"))
    u, y = Inputs("u"), Targets("y")
    return ArrayModel(
        lagrangian=(Sum(x.dot[i] ** 2 / 2, i) - Sum(x[i] ** 2 / 2, i)
                    - Sum(kk[E.e] * (x[E.src] - x[E.dst]) ** 2 / 2, E) + Sum(x[i] * (B @ u)[i], i)),
        cost=Sum((x[r] - y[r]) ** 2 / 2, r), coordinates=x, parameters=[kk, B], inputs=u, targets=y,
        edges=E, name=name, size=size, sizes=sizes)


@pytest.mark.parametrize("default, message", [
    (lambda n: [(a, a + 1) for a in range(n)], r"edge 5 = \(5, 6\) refers to a unit outside 0\.\.5"),
    (lambda n: [(a - 1, a) for a in range(n)], r"edge 0 = \(-1, 0\) refers to a unit outside 0\.\.5"),
    (lambda n: [(a, a + 1, a + 2) for a in range(n - 2)], r"pairs is needed, got an array of shape \(4, 3\)"),
    (lambda n: [(a + 0.5, a + 1) for a in range(n - 1)], "unit indices must be integers"),
    (lambda n: 1 / 0, "the function raised ZeroDivisionError"),
])
def test_bad_default_edges_are_refused_not_reshaped_or_truncated(default, message):
    model = chain(default)
    with pytest.raises(ModelError, match=message):
        model.default_edges(6)
    # the C target (network/render_c.py) reads default_edges at the declared size: before, it wrote these
    # indices into the C edge table (AddressSanitizer: stack-buffer-overflow in force_vjp)
    from symglep.network.runtime import NetworkKernels
    with pytest.raises(ModelError, match=message):
        NetworkKernels(model, module=type("M", (), {"D": 1}), dt=0.01).edges(6)


def test_good_default_edges_and_given_edges():
    model = chain(lambda n: [(a, a + 1) for a in range(n - 1)])
    assert model.default_edges(6).tolist() == [[a, a + 1] for a in range(5)]
    assert model.default_edges(6).dtype == np.int64
    assert chain(lambda n: []).default_edges(6).shape == (0, 2)
    from symglep.network.runtime import NetworkKernels
    kern = NetworkKernels(model, module=type("M", (), {"D": 1}), dt=0.01)
    assert kern.edges(4, [[0, 3], [1, 2]]).tolist() == [[0, 3], [1, 2]]
    with pytest.raises(SymglepError, match="pairs is needed"):
        kern.edges(4, [0, 1, 2])       # was reshape(-1, 2): a ValueError traceback
    with pytest.raises(SymglepError, match="outside 0..3"):
        kern.edges(4, [[0, 4]])


@pytest.mark.parametrize("sizes, message", [
    ({"m": 1, "r": 9}, r"sizes\['r'\] = 9 readout units, not within 1\.\.6"),
    ({"m": 1, "r": 0}, r"sizes\['r'\] = 0 readout units"),
    ({"inputs": 2}, "unknown key"),
    ({"r": "2"}, "must be an integer"),
    ({"m": 0}, "needs m >= 1"),
])
def test_array_model_sizes_are_checked_at_declaration(sizes, message):
    with pytest.raises(ModelError, match=message):
        chain(lambda n: [(a, a + 1) for a in range(n - 1)], sizes=sizes)


def _hru(name, n, m):
    q = Coordinates("q")
    A, B, b = Parameter("A", ("n", "n")), Parameter("B", ("n", "m")), Parameter("b", "n")
    u, y = Inputs("u"), Targets("y")
    return ArrayModel(
        lagrangian=(Sum(q.dot[i] ** 2 / 2, i) - Sum(q[i] ** 2 / 2, i)
                    - Sum(sp.log(sp.cosh((A @ q)[k] + (B @ u)[k] + b[k])), k)),
        cost=Sum(y[r] * q[r], r), coordinates=q, parameters=[A, B, b], inputs=u, targets=y,
        name=name, size=n, sizes={"m": m, "r": n})


@pytest.mark.parametrize("activation", [lambda z: max(z, 0), np.tanh])
def test_non_sympy_activation_is_one_line(activation):
    with pytest.raises(ModelError, match="must map a sympy expression to a sympy expression"):
        symglep.Stack([_hru("a0", 3, 1), _hru("a1", 3, 3)], readouts=["all"], activations=[activation])


@pytest.mark.parametrize("activation, function", [
    (lambda z: z * (1 + sp.erf(z / sp.sqrt(2))) / 2, "erf"),   # GELU, as in examples/stack_hssm.py
    (lambda z: sp.Max(z, 0), "Max"),
])
def test_complex_step_refuses_a_non_analytic_glue_from_an_array_unit(activation, function):
    # the glue of an array unit rendered its activation in complex mode unchecked: Numba then
    # failed with a TypingError (erf(complex128)) after compiling ~50 s, reported as an internal error
    stack = symglep.Stack([_hru("b0", 3, 1), _hru("b1", 3, 3)], readouts=["all"], activations=[activation],
                          name="audit_glue")
    render_stack(stack)  # the real kernels are fine
    with pytest.raises(SymglepError, match=f"the glue activation uses {function}"):
        render_stack(stack, complex_step=True)


def test_empty_uea_name_is_a_uea_task():
    assert uea_name("uea:") == "" and uea_name("uea:BasicMotions") == "BasicMotions" and uea_name("x.npz") is None


def test_percent_comment_lines_are_skipped(tmp_path):
    path = tmp_path / "pct.ts"
    path.write_text("%# a comment, as in sktime's UnitTest set\n%\n@problemName P\n@timeStamps false\n"
                    "@classLabel true 1 2\n@data\n1.0,2.0:1\n3.0,4.0:2\n")
    series, labels, classes = uea.read_ts(str(path))
    assert classes == ["1", "2"] and labels.tolist() == [0, 1] and series[1][:, 0].tolist() == [3.0, 4.0]


def test_shipped_unit_test_set_is_available():
    if uea.data_folder() is None or not __import__("os").path.isdir(
            __import__("os").path.join(uea.data_folder(), "UnitTest")):
        pytest.skip("sktime with its UnitTest set is not installed")
    assert "UnitTest" in uea.available()
    data = uea.load("UnitTest")
    assert data.classes == ["1", "2"] and data.train.channels == 1 and len(data.train.series) == 20


def test_loss_change_wording():
    assert _change(1.0, 0.5) == "(x2 lower)"
    assert _change(2e-3, 2.8e-2) == "(x14 higher)"
    assert _change(0.0, 1.0) == "(+1)" and _change(-0.5, -1.2) == "(-0.7)"  # no ratio of signed losses (probe: x-2.41)
    # within 1 %: a percentage, not "(x1 lower)" (new-user probe)
    assert _change(1.0, 0.996) == "(0.4 % lower)" and _change(1.0, 1.0012) == "(0.12 % higher)"
    # and up to a half either way, so that near-equal changes read alike (probe r1: "x1.01 lower" beside "0.67 %")
    assert _change(1.0, 0.99) == "(1 % lower)" and _change(1.0, 0.7) == "(30 % lower)" and _change(1.0, 1.3) == "(30 % higher)"
