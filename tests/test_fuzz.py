"""Fuzzing the whole pipeline: random model → derive → report → generate → echo vs BPTT vs finite differences.

Random Lagrangians in one or two coordinates, built from polynomial,
trigonometric, exponential and logarithmic terms, with random declared and
undeclared symbols, sometimes a term odd in velocity (no time-reversal
symmetry), a velocity coupling or a position-dependent mass (the implicit
midpoint integrator), sometimes nothing the Legendre transform can invert.
Each one must end in one of two ways:

* a correct result: the generated kernels' gradient by the model's exact route
  (echo, flipped echo or digital PFVP, theory §4) agrees with their BPTT gradient
  (theory §6), so does the complex-step echo to round-off (every primitive is
  analytic), BPTT agrees with central differences of the discrete loss, and a
  model without time-reversal symmetry has its plain echo refused; or
* a clear error: a :class:`symglep.SymglepError` with a one-line message.

Anything else (another exception, a wrong gradient) fails. The generated code
runs as plain Python here (``compile(..., jit=False)``: the same source, no Numba
compilation), which keeps 200 examples within a few minutes of CI. Hypothesis
runs with a fixed seed per part (the same examples every run, so CI is
reproducible); set ``SYMGLEP_FUZZ_SEED`` to draw others.
"""

from __future__ import annotations

import collections
import os

import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from sympy.physics.mechanics import dynamicsymbols

import symglep
from symglep.check import central_differences
from symglep.report import render

COORDS = dynamicsymbols("x0 x1")
STRAY = dynamicsymbols("z")                     # a function of time nobody declares
U, Y = dynamicsymbols("u y")
POOL = sp.symbols("a b c", positive=True)       # parameters (declared when used)
G = sp.Symbol("g")                              # declared as parameter, constant, or not at all
STEPS, DT, BETA = 30, 0.02, 1e-4
ECHO_RTOL, FD_RTOL = 1e-6, 1e-5
CS_RTOL = 1e-12                                 # the complex-step echo: the discrete gradient to round-off
EXAMPLES_PER_TEST, TESTS = 50, 4                # 200 examples, spread over the xdist workers

OUTCOMES: collections.Counter = collections.Counter()


def _coefficient(draw):
    return draw(st.sampled_from([*POOL, sp.Rational(1, 2), sp.Integer(1), sp.Integer(2), -sp.Integer(1)]))


@st.composite
def models(draw):
    """Keyword arguments of a random :class:`symglep.Model`."""
    n = draw(st.integers(1, 2))
    xs = COORDS[:n]
    vs = [x.diff() for x in xs]

    mass = draw(st.sampled_from(["unit", "parameter", "position", "coupled", "relativistic", "none"]))
    kinetic = sum(v**2 for v in vs) / 2
    if mass == "parameter":
        kinetic = sum(POOL[0] * v**2 for v in vs) / 2
    elif mass == "position":                    # position-dependent mass: not separable → midpoint
        kinetic = (2 + sp.cos(xs[0])) * vs[0] ** 2 / 2 + sum(v**2 for v in vs[1:]) / 2
    elif mass == "coupled" and n == 2:          # a velocity coupling: not separable → midpoint
        kinetic += vs[0] * vs[1] / 4
    elif mass == "relativistic":
        kinetic = -sp.sqrt(1 - vs[0] ** 2) + sum(v**2 for v in vs[1:]) / 2
    elif mass == "none":                        # L without velocities: singular, must be refused
        kinetic = 0

    primitives = [
        lambda x, z: x**2, lambda x, z: x**4, lambda x, z: sp.cos(x), lambda x, z: sp.sin(x) * z,
        lambda x, z: sp.exp(-x**2), lambda x, z: x * z, lambda x, z: sp.log(1 + x**2), lambda x, z: (x - z) ** 2,
    ]
    potential = 0
    for _ in range(draw(st.integers(0, 3))):
        f = draw(st.sampled_from(primitives))
        i, j = draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))
        potential += _coefficient(draw) * f(xs[i], xs[j])

    extra = draw(st.sampled_from(["none"] * 6 + ["odd", "time", "stray", "g"]))
    odd = 0
    if extra == "odd":                          # a magnetic-like term: breaks time reversal
        odd = _coefficient(draw) * xs[-1] * vs[0]
    elif extra == "time":
        potential += sp.Rational(1, 5) * sp.cos(dynamicsymbols._t) * xs[0] ** 2
    elif extra == "stray":
        potential += STRAY * xs[0]
    elif extra == "g":
        potential += G * xs[0] ** 2 / 2

    driven = draw(st.booleans())
    lagrangian = sp.sympify(kinetic - potential + odd + (xs[0] * U if driven else 0))
    used = [p for p in POOL if lagrangian.has(p)]
    parameters = list(used) + ([POOL[2]] if draw(st.booleans()) and POOL[2] not in used else [])
    constants = {}
    if extra == "g":
        role = draw(st.sampled_from(["parameter", "constant", "undeclared"]))
        if role == "parameter":
            parameters.append(G)
        elif role == "constant":
            constants[G] = 0.5
    tracked = draw(st.booleans())
    return dict(
        lagrangian=lagrangian, coordinates=list(xs), parameters=parameters, constants=constants,
        inputs=[U] if driven else [], targets=[Y] if tracked else [],
        cost=(xs[-1] - Y) ** 2 / 2 if tracked else xs[0] ** 2 / 2, name="fuzz",
    )


def _close(a, b, rtol) -> bool:
    """``‖a − b‖ ≤ rtol·max(‖b‖, 1e-4)``.

    The floor: a gradient that is exactly zero (e.g. ``dC/dm`` of ``m v²/2`` started
    from a velocity, whose trajectory does not depend on ``m``) is estimated by a
    difference quotient whose round-off is ``ε·|G|/β ≈ 1e-12`` at ``β = 1e-4``;
    below ``‖b‖ = 1e-4`` the test is absolute at ``1e-10``.
    """
    a, b = np.ravel(a), np.ravel(b)
    return float(np.linalg.norm(a - b)) <= rtol * max(float(np.linalg.norm(b)), 1e-4)


def run_pipeline(spec: dict, cache: str) -> str:
    """derive → report → generate → echo/BPTT/finite differences; returns the outcome's name."""
    try:
        model = symglep.Model(**spec)
        derivation = symglep.derive(model, simplify="none")  # readable forms: tests/test_readable.py
        assert render(derivation, "text")
        kernels = symglep.compile(model, dt=DT, cache=cache, jit=False)
        rng = np.random.default_rng(0)
        theta = rng.uniform(0.5, 1.5, len(model.parameters))
        q0 = rng.uniform(-0.3, 0.3, (1, model.n))
        v0 = rng.uniform(-0.3, 0.3, (1, model.n))
        u = 0.2 * np.sin(np.linspace(0, 3, STEPS + 1))[None, :, None].repeat(len(model.u), axis=2)
        y = 0.3 * np.cos(np.linspace(0, 2, STEPS + 1))[None, :, None].repeat(len(model.y), axis=2)
        bptt = kernels.bptt_gradient(theta, q0, v0=v0, u=u, y=y)
        fd = central_differences(lambda th: kernels.free(th, q0, v0=v0, u=u, y=y)[2][0], theta, 1e-6)
        assert _close(bptt.dtheta[0], fd, FD_RTOL), (bptt.dtheta[0], fd)
        if not derivation.sym.time_reversible:        # the plain echo is refused, naming the term
            with pytest.raises(symglep.NotReversibleError, match="odd in velocity"):
                kernels.gradient(theta, q0, v0=v0, u=u, y=y, beta=BETA, route="echo")
        # the model's exact route: echo, flipped echo or digital PFVP (theory §4)
        echo = kernels.gradient(theta, q0, v0=v0, u=u, y=y, beta=BETA)
        assert _close(echo.dtheta[0], bptt.dtheta[0], ECHO_RTOL), (echo.route, echo.dtheta[0], bptt.dtheta[0])
        assert _close(np.r_[echo.dq0[0], echo.dx0[0]], np.r_[bptt.dq0[0], bptt.dx0[0]], ECHO_RTOL), echo.route
        # every primitive of the grammar is analytic: the complex-step echo meets BPTT to round-off
        # (absolute 1e-14 below a gradient norm of 1e-2: an exactly zero gradient's round-off)
        cs = kernels.complex_step_gradient(theta, q0, v0=v0, u=u, y=y)
        for mine, ref in ((cs.dtheta[0], bptt.dtheta[0]), (np.r_[cs.dq0[0], cs.dx0[0]], np.r_[bptt.dq0[0], bptt.dx0[0]])):
            gap, scale = np.linalg.norm(mine - ref), max(np.linalg.norm(ref), 1e-2)
            assert gap <= CS_RTOL * scale, (cs.route, gap / scale)
        return f"correct ({kernels.integrator}, {echo.route})"
    except symglep.SymglepError as exc:
        message = str(exc)
        assert message.strip() and "\n" not in message and "Traceback" not in message, message
        return f"clear error: {type(exc).__name__}"


def _fuzz(cache: str, part: int) -> None:
    @seed(int(os.environ.get("SYMGLEP_FUZZ_SEED", "20261126")) + part)
    @settings(max_examples=EXAMPLES_PER_TEST, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(spec=models())
    def property_(spec):
        OUTCOMES[run_pipeline(spec, cache)] += 1

    property_()


@pytest.mark.parametrize("part", range(TESTS))
def test_fuzz_pipeline(part, tmp_path_factory):
    """Every random model gives a correct gradient or a one-line SymglepError; most give a gradient."""
    OUTCOMES.clear()
    _fuzz(str(tmp_path_factory.mktemp(f"fuzz-cache-{part}")), part)
    total = sum(OUTCOMES.values())
    correct = sum(v for k, v in OUTCOMES.items() if k.startswith("correct"))
    print(dict(OUTCOMES))
    assert total >= EXAMPLES_PER_TEST
    assert correct >= total // 2, dict(OUTCOMES)    # the grammar mostly makes valid models
