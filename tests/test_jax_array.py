"""The JAX target for array models (docs/jax.md, "Array models"): the echo VJPs of the generated module
bound to a size, against JAX autodiff of the same leapfrog (BPTT) and against the Numba array kernels'
echo; layers with edges, vector coordinates and a terminal cost; vmap; memory; refusals; goldens."""

import pathlib

import numpy as np
import pytest
import sympy as sp
from click.testing import CliRunner

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

import symglep  # noqa: E402
import symglep.jax as sj  # noqa: E402
from symglep.cli import main  # noqa: E402
from symglep.errors import SymglepError  # noqa: E402
from symglep.network import ArrayModel, Coordinates, Inputs, Parameter, Sum, Targets, i, r  # noqa: E402
from symglep.network.render_jax import array_jax_source  # noqa: E402
from symglep.network.runtime import compile_array_model  # noqa: E402

jax.config.update("jax_enable_x64", True)

ROOT = pathlib.Path(__file__).resolve().parents[1]
# every array example with a JAX module (a position-dependent mass, examples/network_beads.py, has none yet)
ARRAY_EXAMPLES = sorted(p for p in (ROOT / "examples").glob("network_*.py")
                        if symglep.load_model(str(p)).capabilities.supports("target", "jax"))
DT = 0.05


def _relative(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def _example(name):
    return symglep.load_model(str(ROOT / "examples" / f"{name}.py"))


def terminal_model():
    """A tanh network with a running and a terminal cost (theory sec. 10)."""
    q, u, y = Coordinates("q"), Inputs("u"), Targets("y")
    W, B, b = Parameter("W", ("n", "n")), Parameter("B", ("n", "m")), Parameter("b", "n")
    a = sp.Symbol("a", positive=True)
    return ArrayModel(lagrangian=(Sum(q.dot[i] ** 2 / 2, i) - Sum(a * q[i] ** 2 / 2, i)
                                  + Sum(sp.tanh((W @ q)[i] + (B @ u)[i] + b[i]), i)),
                      cost=Sum((q[r] - y[r]) ** 2 / 4, r), terminal_cost=Sum(2 * (q[r] - y[r]) ** 2, r),
                      coordinates=q, parameters=[W, B, b, a], inputs=u, targets=y,
                      name="tanh_network_terminal", size=6, sizes={"m": 2, "r": 2})


def _instance(layer, steps, seed=0):
    """Seeded parameters (masses and stiffnesses positive), inputs, targets and a start."""
    rng = np.random.default_rng(seed)
    mod = layer.module
    values = {name: rng.uniform(0.6, 1.4, shape) if name in ("m", "k", "l", "a") else rng.uniform(-0.3, 0.3, shape)
              for name, shape in mod.parameter_shapes}
    y = 0.5 * rng.normal(size=(steps + 1, mod.N_Y))
    if layer.model.initial_positions is None:
        q0 = rng.uniform(-0.3, 0.3, mod.N)
    else:  # the model's own start (a lattice at rest), the targets about the readout units' positions
        q0 = np.asarray(layer.model.initial_positions(mod.N // mod.D, rng), float).reshape(-1)
        y = y + q0.reshape(-1, mod.D)[mod.readout, 0]
    return values, rng.normal(size=(steps + 1, mod.N_U)), y, q0, 0.3 * rng.normal(size=mod.N)


# -- the model's loss: echo VJP = autodiff = Numba echo ----------------------------------------------------
LOSS_CASES = [("network_hru", 64, 40), ("network_chain", 12, 60), ("network_dense", 10, 60),
              ("network_springs", 9, 60), ("terminal", 6, 60), ("network_beads", 6, 40)]


@pytest.mark.parametrize("name,n,steps", LOSS_CASES, ids=[c[0] for c in LOSS_CASES])
def test_loss_echo_vjp_equals_autodiff_and_numba(name, n, steps):
    """dC/d(theta, u, q0, p0): the echo VJP (centred, beta 1e-4) = jax.grad of the same integrator (the
    leapfrog; the midpoint rule of network_beads' position-dependent mass) to 1e-6
    relative; the Richardson echo (beta 1e-3) = autodiff to 1e-9 and = the Numba kernels' echo to 1e-10."""
    model = terminal_model() if name == "terminal" else _example(name)
    probe = sj.layer(model, DT, size=n)
    values, u, y, q0, p0 = _instance(probe, steps)
    th = probe.theta(values)
    args = (th, jnp.asarray(u), jnp.asarray(y), jnp.asarray(q0), jnp.asarray(p0))
    wrt = (0, 1, 3, 4)

    def grad(**options):
        return jax.jit(jax.grad(sj.loss(model, DT, size=n, **options), wrt))(*args)

    reference = grad(estimator="bptt")
    centred, richardson = grad(beta=1e-4), grad(beta=1e-3, order=4)
    for got, want in zip(centred, reference):
        assert _relative(got, want) <= 1e-6
    for got, want in zip(richardson, reference):
        assert _relative(got, want) <= 1e-9
    # the bundled examples' kernels are compiled by other files too; this file's own terminal model runs its
    # generated source as Python (the array terminal cost is compiled in tests/test_network_cells.py)
    kernels = compile_array_model(model, DT, jit=name != "terminal")
    edges = probe.module.edges if model.edges is not None else None
    numba = kernels.gradient(values, q0[None], p0[None], u[None], y[None], beta=1e-3, order=4, edges=edges,
                             learn_inputs=True)
    for got, want in zip(richardson, (numba.flat[0], numba.du[0], numba.dq0.reshape(-1), numba.dp0.reshape(-1))):
        assert _relative(got, want) <= 1e-10
    assert abs(float(sj.loss(model, DT, size=n)(*args)) - float(numba.loss[0])) <= 1e-12 * abs(float(numba.loss[0]))


@pytest.mark.parametrize("name,n", [("network_chain", 8), ("network_springs", 9), ("network_beads", 5)])
def test_layer_echo_vjp_equals_autodiff(name, n):
    """A nonlinear loss of every readout (all coordinates) and of the final state, through the layer: the
    echo VJP (edges; vector coordinates) = jax.grad of the same steps (1e-6 centred, 1e-8 Richardson)."""
    model = _example(name)
    probe = sj.layer(model, DT, size=n)
    values, u, _, q0, p0 = _instance(probe, 50, seed=1)
    th = probe.theta(values)

    def downstream(layer):
        def f(th, u, q0, p0):
            rs, qT, pT = layer(th, u, q0, p0)
            return jnp.sum(jnp.tanh(rs) * jnp.cos(jnp.arange(rs.size).reshape(rs.shape))) + jnp.sum(qT * pT)
        return jax.jit(jax.grad(f, range(4)))(th, jnp.asarray(u), jnp.asarray(q0), jnp.asarray(p0))

    reference = downstream(sj.layer(model, DT, size=n, estimator="bptt"))
    for options, bound in (({}, 1e-6), ({"beta": 1e-3, "order": 4}, 1e-8)):
        for got, want in zip(downstream(sj.layer(model, DT, size=n, **options)), reference):
            assert _relative(got, want) <= bound


def test_layer_vmaps_and_its_parameters_round_trip():
    """A batch under vmap equals one sequence at a time; float32 runs in float32 (within 1e-2 of float64 at
    beta 1e-2); Layer.theta and Layer.parameters invert each other; the readout units and edges are honoured."""
    model = _example("network_chain")
    layer = sj.layer(model, DT, size=6, readout_units=[0], edges=[(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 0)])
    assert layer.module.N_Y == 1 and layer.module.edges.shape == (6, 2)
    values, u, _, q0, p0 = _instance(layer, 30)
    th = layer.theta(values)
    for name, value in layer.parameters(th).items():
        assert np.array_equal(np.asarray(value), values[name])
    us = jnp.asarray(np.stack([u, 2 * u, -u]))
    q0s, p0s = jnp.asarray(np.stack([q0] * 3)), jnp.asarray(np.stack([p0, -p0, p0]))

    def f(th, u, q0, p0):
        return jnp.sum(layer(th, u, q0, p0)[0] ** 2)

    batch = jax.jit(jax.vmap(jax.grad(f), (None, 0, 0, 0)))(th, us, q0s, p0s)
    one = jax.jit(jax.grad(f))  # compiled once for the three sequences
    for b in range(3):
        assert _relative(batch[b], one(th, us[b], q0s[b], p0s[b])) <= 1e-10
    coarse = sj.layer(model, DT, size=6, readout_units=[0], edges=[(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 0)],
                      beta=1e-2)

    def g(th, u, q0, p0):
        return jnp.sum(coarse(th, u, q0, p0)[0] ** 2)

    single = [jnp.asarray(a, jnp.float32) for a in (th, u, q0, p0)]
    coarse_grad = jax.jit(jax.grad(g))
    g32 = coarse_grad(*single)
    assert g32.dtype == jnp.float32 and _relative(g32, coarse_grad(th, jnp.asarray(u), q0s[0], p0s[0])) <= 1e-2


def test_echo_memory_is_flat_in_k():
    """XLA's scratch memory of a theta-gradient of the loss (network_hru, n = 16): flat in K for the echo,
    growing with K for autodiff."""
    model = _example("network_hru")
    probe = sj.layer(model, DT, size=16)

    def scratch(estimator, steps):
        values, u, y, q0, p0 = _instance(probe, steps)
        grad = jax.jit(jax.grad(sj.loss(model, DT, size=16, estimator=estimator)))
        return grad.lower(probe.theta(values), u, y, q0, p0).compile().memory_analysis().temp_size_in_bytes

    assert scratch("echo", 400) == scratch("echo", 100)
    assert scratch("bptt", 400) >= scratch("bptt", 100) + 300 * 16 * 8


def test_refusals_name_their_reason(tmp_path):
    """The CLI writes an array model's module and refuses a stack's (how to run it instead); sizes, readout
    units, edges and parameters are checked."""
    runner = CliRunner()
    out = runner.invoke(main, ["generate", str(ROOT / "examples/stack_hru.py"), "--target", "jax",
                               "--out", str(tmp_path)])
    assert out.exit_code == 2 and "runs in JAX as its units' layers chained" in out.output
    out = runner.invoke(main, ["generate", str(ROOT / "examples/network_chain.py"), "--target", "jax",
                               "--out", str(tmp_path)])
    written = tmp_path / "network_chain" / "jax" / "kernels.py"
    assert out.exit_code == 0 and written.read_text() == (ROOT / "generated/network_chain/jax/kernels.py").read_text()
    hru = _example("network_hru")
    with pytest.raises(SymglepError, match="size must be a positive integer"):
        sj.layer(hru, DT, size=0)
    with pytest.raises(SymglepError, match="readout_units must list 2 units in 0..7"):
        sj.layer(hru, DT, size=8, readout_units=[1, 8])
    with pytest.raises(SymglepError, match="integrator leapfrog is not supported: .* not separable"):
        sj.layer(_example("network_beads"), DT, integrator="leapfrog")
    with pytest.raises(SymglepError, match="for array models"):
        sj.layer(_example("harmonic_oscillator"), DT, size=4)
    with pytest.raises(SymglepError, match="edge list"):
        sj.layer(_example("network_chain"), DT, size=4, edges=[(0, 7)])
    with pytest.raises(SymglepError, match="'network_hru' has no edge terms"):  # edges were accepted, unused
        sj.layer(hru, DT, size=4, edges=[(0, 1)])
    layer = sj.layer(hru, DT, size=4)
    with pytest.raises(SymglepError, match=r"parameter A must have shape \(4, 4\)"):
        layer.theta({"A": np.zeros((3, 3)), "B": np.zeros((4, 2)), "b": np.zeros(4), "m": np.ones(4)})


@pytest.mark.parametrize("path", ARRAY_EXAMPLES, ids=lambda p: p.stem)
def test_generated_jax_files_are_up_to_date(path):
    """generated/<model>/jax/kernels.py is exactly what `symglep generate --target jax` writes today."""
    model = symglep.load_model(str(path))
    committed = ROOT / "generated" / model.name / "jax" / "kernels.py"
    hint = f"regenerate with: symglep generate {path.relative_to(ROOT)} --target jax"
    assert committed.exists(), hint
    assert committed.read_text(encoding="utf-8") == array_jax_source(model), f"{committed} is stale; {hint}"


@pytest.mark.parametrize("t0", [0.0, 0.6])
def test_damped_model_echo_vjp_equals_autodiff_and_numba(t0):
    """A damped array model (e^{γt} L, theory §7) from a start time t0: the loss's echo VJP = autodiff (1e-6
    centred, 1e-9 Richardson) = the Numba echo (1e-10); the loss = Numba's; the layer's echo VJP of a
    nonlinear downstream loss = autodiff (1e-8 Richardson)."""
    model = _example("network_damped_hru")
    n, steps = 12, 60
    probe = sj.layer(model, DT, size=n)
    values, u, y, q0, p0 = _instance(probe, steps, seed=2)
    args = (probe.theta(values), jnp.asarray(u), jnp.asarray(y), jnp.asarray(q0), jnp.asarray(p0))

    def grad(**options):
        return jax.jit(jax.grad(sj.loss(model, DT, size=n, t0=t0, **options), (0, 1, 3, 4)))(*args)

    reference, richardson = grad(estimator="bptt"), grad(beta=1e-3, order=4)
    for got, want in zip(grad(beta=1e-4), reference):
        assert _relative(got, want) <= 1e-6
    for got, want in zip(richardson, reference):
        assert _relative(got, want) <= 1e-9
    numba = compile_array_model(model, DT).gradient(values, q0[None], p0[None], u[None], y[None], beta=1e-3, order=4,
                                                    learn_inputs=True, t0=t0)
    for got, want in zip(richardson, (numba.flat[0], numba.du[0], numba.dq0.reshape(-1), numba.dp0.reshape(-1))):
        assert _relative(got, want) <= 1e-10
    assert abs(float(sj.loss(model, DT, size=n, t0=t0)(*args)) - numba.loss[0]) <= 1e-12 * abs(numba.loss[0])

    def downstream(layer):
        def f(th, u, q0, p0):
            rs, qT, pT = layer(th, u, q0, p0)
            return jnp.sum(jnp.tanh(rs) * jnp.cos(jnp.arange(rs.size).reshape(rs.shape))) + jnp.sum(qT * pT)
        return jax.jit(jax.grad(f, range(4)))(args[0], args[1], args[3], args[4])

    reference = downstream(sj.layer(model, DT, size=n, t0=t0, estimator="bptt"))
    for got, want in zip(downstream(sj.layer(model, DT, size=n, t0=t0, beta=1e-3, order=4)), reference):
        assert _relative(got, want) <= 1e-8


def test_midpoint_on_request_equals_numba():
    """integrator="midpoint" on a separable array model (network_chain): the JAX loss and its Richardson echo
    VJP equal jax.grad of the same midpoint steps (1e-9) and the Numba midpoint kernels (loss 1e-12, 1e-10).
    The Numba module's source runs as Python (``jit=False``): nothing else compiles this module, and the
    array midpoint passes are compiled and held against BPTT by tests/test_network_midpoint.py."""
    model = _example("network_chain")
    n, steps = 6, 40
    probe = sj.layer(model, DT, size=n, integrator="midpoint")
    values, u, y, q0, p0 = _instance(probe, steps, seed=3)
    args = (probe.theta(values), jnp.asarray(u), jnp.asarray(y), jnp.asarray(q0), jnp.asarray(p0))

    def grad(**options):
        return jax.jit(jax.grad(sj.loss(model, DT, size=n, integrator="midpoint", **options), (0, 1, 3, 4)))(*args)

    reference, richardson = grad(estimator="bptt"), grad(beta=1e-3, order=4)
    for got, want in zip(richardson, reference):
        assert _relative(got, want) <= 1e-9
    kernels = compile_array_model(model, DT, integrator="midpoint", jit=False)
    numba = kernels.gradient(values, q0[None], p0[None], u[None], y[None], beta=1e-3, order=4,
                             edges=probe.module.edges, learn_inputs=True)
    for got, want in zip(richardson, (numba.flat[0], numba.du[0], numba.dq0.reshape(-1), numba.dp0.reshape(-1))):
        assert _relative(got, want) <= 1e-10
    loss = float(sj.loss(model, DT, size=n, integrator="midpoint")(*args))
    assert abs(loss - float(numba.loss[0])) <= 1e-12 * abs(float(numba.loss[0]))


def test_a_zero_running_cost_with_a_terminal_cost():
    """The HEB setting (docs/networks.md): no running cost, a terminal cost only. The cost element is the
    constant 0, and the JAX module summed it as an integer (jax.grad refused it; new-user probe); the loss now
    equals the Numba kernels' and its Richardson echo VJP equals autodiff (1e-9)."""
    q, y = Coordinates("q"), Targets("y")
    c = Parameter("c", "n")
    model = ArrayModel(lagrangian=Sum(q.dot[i] ** 2 / 2, i) - Sum(q[i] ** 2 / 2 + q[i] ** 4 / 8 + c[i] * q[i], i),
                       cost=Sum(0 * q[r], r), terminal_cost=Sum((q[r] - y[r]) ** 2 / 2, r), coordinates=q,
                       parameters=[c], targets=y, name="terminal_only", size=4, sizes={"r": 2})
    n, steps = 4, 40
    rng = np.random.default_rng(4)
    values = {"c": rng.uniform(-0.4, 0.4, n)}
    y_ = rng.uniform(-0.3, 0.3, (steps + 1, 2))
    q0, p0 = rng.uniform(-0.3, 0.3, n), np.zeros(n)
    probe = sj.layer(model, DT, size=n)
    args = (probe.theta(values), jnp.zeros((steps + 1, 0)), jnp.asarray(y_), jnp.asarray(q0), jnp.asarray(p0))

    def grad(**options):
        return jax.grad(sj.loss(model, DT, size=n, **options), (0, 3, 4))(*args)

    for got, want in zip(grad(beta=1e-3, order=4), grad(estimator="bptt")):
        assert _relative(got, want) <= 1e-9
    numba = compile_array_model(model, DT, jit=False).free(values, q0[None], p0[None], np.zeros((1, steps + 1, 0)),
                                                           y_[None])
    assert abs(float(sj.loss(model, DT, size=n)(*args)) - numba[2][0]) <= 1e-12 * abs(numba[2][0])


def test_a_layer_is_jitted_whole_and_its_velocity_start_reads_its_own_t0():
    """New-user probe: jax.jit(layer) of an array model raised "unhashable type: 'types.SimpleNamespace'" (the
    frozen dataclass hashed its fields), and layer.initial_momentum of a layer built at t0 = 0.7 formed m v0, not
    e^{γ t0} m v0 (its t0 defaulted to 0)."""
    model = _example("network_learned_damping")
    layer = sj.layer(model, DT, size=4, t0=0.7)
    values, u, _, q0, p0 = _instance(layer, 30)
    theta = layer.theta(values)
    got = jax.jit(layer)(theta, u, q0, p0)
    want = layer(theta, u, q0, p0)
    assert all(_relative(a, b) <= 1e-14 for a, b in zip(got, want))
    assert hash(layer) != hash(sj.layer(model, DT, size=4, t0=0.7))  # identity, not the fields
    v0 = jnp.linspace(-0.3, 0.4, q0.shape[0])
    gamma = float(values["gamma"])
    at_t0 = layer.initial_momentum(theta, q0, v0, u[0])
    assert _relative(at_t0, layer.initial_momentum(theta, q0, v0, u[0], 0.7)) == 0.0
    assert _relative(at_t0, np.exp(gamma * 0.7) * np.asarray(layer.initial_momentum(theta, q0, v0, u[0], 0.0))) <= 1e-14
