"""The JAX target (docs/jax.md): the echo VJPs of the generated module against JAX autodiff of the same
discrete steps (BPTT) and against the Numba kernels' echo; jit, vmap, float32; memory; training."""

import pathlib

import numpy as np
import pytest
import sympy as sp
from click.testing import CliRunner
from sympy.physics.mechanics import dynamicsymbols

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

import symglep  # noqa: E402
import symglep.jax as sj  # noqa: E402
from symglep.cli import main  # noqa: E402
from symglep.codegen.render_jax import jax_source  # noqa: E402
from symglep.errors import SymglepError  # noqa: E402

jax.config.update("jax_enable_x64", True)

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCALAR_EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.py") if not p.name.startswith(("network_", "stack_")))
DT, K = 0.05, 80


def _relative(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def _instance(n_theta, n, n_u, n_y, seed=0, steps=K):
    rng = np.random.default_rng(seed)
    return (rng.uniform(0.6, 1.4, n_theta), 0.3 * rng.normal(size=(steps + 1, n_u)),
            0.3 * rng.normal(size=(steps + 1, n_y)), 0.3 * rng.normal(size=n), 0.3 * rng.normal(size=n))


def coupled_model(gyroscopic=False):
    """Two coordinates, a coupling, an input and a cost linear in its target (r = tanh(z + u));
    `gyroscopic`: plus a Coriolis term of fixed rate, odd in velocity, so that the exact route is the
    digital PFVP (theory sec. 4; as examples/gyroscope.py)."""
    x, z = dynamicsymbols("x z")
    u, y = dynamicsymbols("u y")
    k, m, c, w = sp.symbols("k m c w", positive=True)
    L = m * x.diff() ** 2 / 2 + z.diff() ** 2 / 2 - k * x ** 2 / 2 - z ** 2 / 2 - c * sp.cos(x - z) + x * u
    if gyroscopic:
        L += w * (x * z.diff() - z * x.diff())
    return symglep.Model(lagrangian=L, coordinates=[x, z], parameters=[k, m, c], inputs=[u], targets=[y],
                         cost=y * sp.tanh(z + u), constants={w: 0.7} if gyroscopic else {},
                         name="coupled_gyroscopic" if gyroscopic else "coupled_linear_readout")


# -- the model's loss: echo VJP = autodiff = Numba echo -------------------------------------------------
# "auto" picks each model's integrator (asserted below: the midpoint rule where the model is not
# separable), so the Numba kernels are the ones the other test files compile under the same key
LOSS_CASES = [("harmonic_oscillator", "auto"), ("harmonic_oscillator_terminal", "auto"), ("damped_oscillator", "auto"),
              ("double_pendulum", "auto"), ("charged_particle", "auto"), ("gyroscope", "auto")]
MIDPOINT = {"damped_oscillator", "double_pendulum", "charged_particle", "gyroscope"}


@pytest.mark.parametrize("name,integrator", LOSS_CASES, ids=[c[0] for c in LOSS_CASES])
def test_loss_echo_vjp_equals_autodiff_and_numba(name, integrator):
    """Centred (β = 1e-4) and Richardson (β = 1e-3) echo VJPs of the loss against jax.grad of the same
    steps (≤ 1e-6, ≤ 1e-9 relative) for θ, u, q0, p0 (and y, read off the lanes), and the Richardson one
    against the Numba kernels' echo (≤ 1e-10); the flipped echo on the charged
    particle and the digital PFVP on the gyroscope (theory §4)."""
    model = symglep.load_model(str(ROOT / "examples" / f"{name}.py"))
    reference = jax.jit(jax.grad(sj.loss(model, DT, integrator=integrator, estimator="bptt"), argnums=range(5)))
    kernels = symglep.compile(model, dt=DT, integrator=integrator)
    assert kernels.integrator == ("midpoint" if name in MIDPOINT else "leapfrog")
    mod = sj.module(model, integrator)
    th, u, y, q0, p0 = _instance(mod.N_THETA, mod.N, mod.N_U, mod.N_Y)
    exact = reference(th, u, y, q0, p0)
    for order, beta, tol in ((2, 1e-4, 1e-6), (4, 1e-3, 1e-9)):
        echo = jax.jit(jax.grad(sj.loss(model, DT, integrator=integrator, beta=beta, order=order), argnums=range(5)))
        got = echo(th, u, y, q0, p0)
        for what, a, b in zip(("theta", "u", "y", "q0", "p0"), got, exact):
            assert _relative(a, b) <= tol, (what, order, _relative(a, b))
        if beta < 1e-3:
            continue   # XLA contracts a*b + c into one FMA: 1e-16 differences, which 1/beta amplifies
        numba = kernels.gradient(th, q0[None], p0[None], u=u[None], y=y[None], beta=beta, order=order,
                                 learn_inputs=True)
        for what, a, b in (("theta", got[0], numba.dtheta[0]), ("u", got[1], numba.du[0]),
                           ("q0", got[3], numba.dq0[0]), ("p0", got[4], numba.dx0[0])):
            assert _relative(a, b) <= 1e-10, (what, order, _relative(a, b))


# -- the layer: cotangent-driven echo = autodiff ------------------------------------------------------------
LAYER_CASES = [("leapfrog", "coordinates", False), ("leapfrog", "cost", False), ("midpoint", "coordinates", False),
               ("midpoint", "cost", False), ("midpoint", "cost", True)]


@pytest.mark.parametrize("integrator,readout,gyroscopic", LAYER_CASES,
                         ids=[f"{i}-{r}" + ("-digital" if g else "") for i, r, g in LAYER_CASES])
def test_layer_echo_vjp_equals_autodiff(integrator, readout, gyroscopic):
    """A nonlinear loss of every readout and of the final state: the layer's echo VJP (centred β = 1e-4,
    Richardson β = 1e-3) against jax.grad of the same steps for θ, the input sequence and the start;
    on a gyroscopic model through the digital PFVP."""
    model = coupled_model(gyroscopic)
    exact_layer = sj.layer(model, DT, integrator=integrator, readout=readout, estimator="bptt")
    th, u, _, q0, p0 = _instance(3, 2, 1, 1, seed=1)
    rng = np.random.default_rng(2)
    W = rng.normal(size=(K + 1, exact_layer.n_readout))
    wq, wp = rng.normal(size=2), rng.normal(size=2)

    def grads(layer):
        def head(th, u, q0, p0):
            r, qT, pT = layer(th, u, q0, p0)
            return jnp.sum(jnp.sin(r) * W) + jnp.sum(wq * qT ** 2) + jnp.dot(wp, pT)
        return jax.jit(jax.grad(head, argnums=range(4)))(th, u, q0, p0)

    exact = grads(exact_layer)
    for order, beta, tol in ((2, 1e-4, 1e-6), (4, 1e-3, 1e-8)):
        got = grads(sj.layer(model, DT, integrator=integrator, readout=readout, beta=beta, order=order))
        for what, a, b in zip(("theta", "u", "q0", "p0"), got, exact):
            assert _relative(a, b) <= tol, (what, order, _relative(a, b))


def test_layer_runs_under_jit_vmap_and_in_float32():
    """A batch through jax.vmap equals the sequences one by one (to round-off); float32 arguments stay
    float32 and give the float64 gradient to float32 accuracy, the default β following the dtype (1e-2 in
    float32, 1e-4 in float64)."""
    layer = sj.layer(coupled_model(), DT, readout="coordinates")
    th, u, _, q0, p0 = _instance(3, 2, 1, 1, seed=3)
    U = np.stack([u, 0.5 * u, -u])

    def loss(th, u, q0, p0):
        r, qT, _ = layer(th, u, q0, p0)
        return jnp.sum(r ** 2) + jnp.sum(qT)

    grad = jax.jit(jax.grad(loss))
    batched = jax.jit(jax.vmap(jax.grad(loss), in_axes=(None, 0, None, None)))(th, U, q0, p0)
    for b in range(3):   # equal up to round-off (XLA fuses a batch differently), which 1/beta amplifies
        assert _relative(batched[b], grad(th, U[b], q0, p0)) <= 1e-10
    f32 = [jnp.asarray(a, jnp.float32) for a in (th, u, q0, p0)]

    def grad32():
        layer32 = sj.layer(coupled_model(), DT, readout="coordinates")

        def loss32(th, u, q0, p0):
            r, qT, pT = layer32(th, u, q0, p0)
            return jnp.sum(r ** 2) + jnp.sum(qT), (r, qT, pT)

        return jax.jit(jax.grad(loss32, has_aux=True))(*f32)

    # the default nudge follows the dtype: 1e-2 in float32 (1e-4 would leave the round-off eps/beta ~ 1e-3)
    g32, outputs = grad32()
    assert all(a.dtype == jnp.float32 for a in (g32, *outputs))
    # measured 1.0e-5; at beta = 1e-4 (the float64 default, which the float64 tests' 1e-6 bounds hold) 9.0e-4
    assert _relative(g32, grad(th, u, q0, p0)) <= 1e-4


def test_a_midpoint_layer_runs_in_float32():
    """The midpoint rule's Newton solve asked float32 for the float64 tolerance 1e-13, never reached it, and
    returned NaN for every node after the first, silently (new-user probe: double_pendulum, network_beads). It
    now solves to NEWTON_TOL_FLOAT32 in float32: finite, float32, the float64 gradient to float32 accuracy."""
    model = coupled_model()
    th, u, _, q0, p0 = _instance(3, 2, 1, 1, seed=3)

    def gradient(*args):
        layer = sj.layer(model, DT, integrator="midpoint", readout="coordinates")

        def loss(th, u, q0, p0):
            r, qT, _ = layer(th, u, q0, p0)
            return jnp.sum(r ** 2) + jnp.sum(qT)
        return jax.jit(jax.grad(loss))(*args)

    g64 = gradient(th, u, q0, p0)
    g32 = gradient(*[jnp.asarray(a, jnp.float32) for a in (th, u, q0, p0)])
    assert g32.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(g32)))
    assert _relative(g32, g64) <= 1e-3, _relative(g32, g64)


def test_echo_keeps_nothing_of_length_k_but_the_inputs():
    """The residuals JAX saves for the backward pass: the echo's do not grow with K beyond the input
    sequence, autodiff's do (the trajectory); XLA's scratch memory of a θ-gradient of the loss is flat
    in K for the echo (no input gradient is built when u carries no derivative), linear for autodiff;
    that θ-gradient equals the θ part of the full one."""
    model = coupled_model()

    def saved(estimator, steps):
        layer = sj.layer(model, DT, readout="coordinates", estimator=estimator)
        th, u, _, q0, p0 = _instance(3, 2, 1, 1, steps=steps)
        _, pullback = jax.vjp(lambda th, u, q0, p0: jnp.sum(layer(th, u, q0, p0)[0]), th, u, q0, p0)
        return sum(leaf.size for leaf in jax.tree_util.tree_leaves(pullback)) - u.size

    assert saved("echo", 400) == saved("echo", 100)
    assert saved("bptt", 400) >= saved("bptt", 100) + 300 * 2

    def scratch(estimator, steps):
        args = _instance(3, 2, 1, 1, steps=steps)
        grad = jax.jit(jax.grad(sj.loss(model, DT, estimator=estimator)))
        return grad.lower(*args).compile().memory_analysis().temp_size_in_bytes

    assert scratch("echo", 400) == scratch("echo", 100)
    assert scratch("bptt", 400) >= scratch("bptt", 100) + 300 * 2 * 8
    args = _instance(3, 2, 1, 1)
    loss = sj.loss(model, DT)
    assert _relative(jax.jit(jax.grad(loss))(*args), jax.jit(jax.grad(loss, argnums=range(5)))(*args)[0]) == 0


def test_a_small_jax_model_with_a_symglep_layer_trains_with_optax():
    """Encoder -> harmonic-oscillator layer -> linear head, trained end to end under jit with optax's Adam on
    a teacher's sine responses (the sine task's setting): the loss falls at least tenfold."""
    optax = pytest.importorskip("optax")
    model = symglep.load_model(str(ROOT / "examples" / "harmonic_oscillator.py"))
    layer = sj.layer(model, 0.1, readout="coordinates")
    t = np.arange(61) * 0.1
    drive = np.sin(1.3 * t[None, :] + np.linspace(0, 3, 8)[:, None])[:, :, None]
    zeros = jnp.zeros(1)

    def predict(params, drive):
        th = jnp.exp(params["log_theta"])
        r, _, _ = layer(th, params["gain"] * drive, zeros, zeros)
        return r[:, 0] * params["w"] + params["b"]

    teacher = {"log_theta": jnp.log(jnp.array([2.0, 0.7])), "gain": 1.5, "w": 0.8, "b": 0.1}
    targets = jax.vmap(predict, (None, 0))(teacher, drive)
    params = {"log_theta": jnp.zeros(2), "gain": 0.5, "w": 0.3, "b": 0.0}

    def loss(params):
        return jnp.mean((jax.vmap(predict, (None, 0))(params, drive) - targets) ** 2)

    opt = optax.adam(0.05)
    state = opt.init(params)

    @jax.jit
    def step(params, state):
        value, grad = jax.value_and_grad(loss)(params)
        updates, state = opt.update(grad, state)
        return optax.apply_updates(params, updates), state, value

    first = float(loss(params))
    for _ in range(150):
        params, state, _ = step(params, state)
    assert float(loss(params)) <= first / 10


# -- refusals and the generated files -------------------------------------------------------------------------
def test_refusals_name_their_reason(tmp_path):
    """A damped model has no exact echo; the cost readout needs a cost linear in the targets; the CLI refuses
    float32 for the JAX target (it computes in its arguments' dtype). Stacks: tests/test_jax_array.py."""
    runner = CliRunner()
    out = runner.invoke(main, ["generate", str(ROOT / "examples/harmonic_oscillator.py"), "--target", "jax",
                               "--precision", "float32", "--out", str(tmp_path)])
    assert out.exit_code != 0 and "computes in the dtype of its arguments" in out.output
    damped = symglep.load_model(str(ROOT / "examples/damped_chain_nonuniform.py"))
    with pytest.raises(SymglepError, match="no exact echo"):
        sj.loss(damped, DT)
    assert sj.loss(damped, DT, estimator="bptt") is not None
    with pytest.raises(SymglepError, match="not linear in the targets"):
        sj.layer(symglep.load_model(str(ROOT / "examples/harmonic_oscillator.py")), DT, readout="cost")
    with pytest.raises(SymglepError, match="dt must be a positive number"):
        sj.layer(coupled_model(), 0.0)


def test_bad_shapes_and_dtypes_of_a_call_are_one_line_errors():
    """A θ one entry short, targets two nodes short, an extra input column, a start of the wrong size, a batch
    without vmap: one-line errors naming the expected shape, before any step runs (before, a short θ read a
    clamped index and returned a wrong loss). Integer starts are cast to the parameters' float."""
    model = symglep.load_model(str(ROOT / "examples/harmonic_oscillator.py"))
    run, apply = sj.loss(model, DT), sj.layer(model, DT)
    K = 10
    theta, u, y = jnp.array([1.0, 0.8]), jnp.zeros((K + 1, 1)), jnp.zeros((K + 1, 1))
    q0, p0 = jnp.array([0.2]), jnp.array([0.1])
    cases = [((theta[:1], u, y, q0, p0), r"theta must have shape \(2,\) \(one sequence; jax.vmap over a batch\), "
                                          r"got \(1,\)"),
             ((theta, u, y[:-2], q0, p0), r"y must have shape \(11, 1\)"),
             ((theta, jnp.zeros((K + 1, 2)), y, q0, p0), r"u must have shape \(11, 1\)"),
             ((theta, u, y, jnp.zeros(2), p0), r"q0 must have shape \(1,\)"),
             ((theta, u[None], y, q0, p0), r"u must have shape \(K\+1, 1\) \(one sequence; jax.vmap over a batch\)"),
             ((theta, None, y, q0, p0), "u is missing: a model without inputs takes u of shape")]
    for args, message in cases:
        with pytest.raises(SymglepError, match=message):
            run(*args)
    with pytest.raises(SymglepError, match=r"theta must have shape \(2,\)"):
        apply(theta[:1], u, q0, p0)
    at_float = run(theta, u, y, jnp.array([0.0]), jnp.array([0.0]))
    assert float(run(theta, u, y, jnp.array([0]), jnp.array([0]))) == float(at_float)
    g = jax.grad(run)(theta, u, y, jnp.array([0]), jnp.array([0]))
    assert g.shape == (2,) and bool(jnp.all(jnp.isfinite(g)))
    assert sj.layer(model, np.float32(DT)).dt == pytest.approx(DT)  # NumPy scalars are numbers too


@pytest.mark.parametrize("path", SCALAR_EXAMPLES, ids=lambda p: p.stem)
def test_generated_jax_files_are_up_to_date(path):
    """generated/<model>/jax/kernels.py is exactly what `symglep generate --target jax` writes today."""
    model = symglep.load_model(str(path))
    committed = ROOT / "generated" / model.name / "jax" / "kernels.py"
    hint = f"regenerate with: symglep generate {path.relative_to(ROOT)} --target jax"
    assert committed.exists(), hint
    assert committed.read_text(encoding="utf-8") == jax_source(model), f"{committed} is stale; {hint}"


def test_traced_settings_and_a_loss_without_targets_are_one_line():
    """dt built from a traced value (the layer made inside jit) failed deep in JAX with ConcretizationTypeError;
    loss(theta, u, None, q0, p0) with 'None is not a valid value for jnp.array' (new-user probe)."""
    model = coupled_model()
    th, u, y, q0, p0 = _instance(3, 2, 1, 1, seed=3)

    @jax.jit
    def built_inside(dt):
        return sj.layer(model, dt)(th, u, q0, p0)[1]

    with pytest.raises(symglep.errors.SymglepError, match="dt is a traced JAX value .* build the layer outside jit"):
        built_inside(DT)
    with pytest.raises(symglep.errors.SymglepError, match=r"y is missing: the loss reads the targets, y of shape "
                                                          r"\(K\+1, 1\)"):
        sj.loss(model, DT)(th, u, None, q0, p0)


def test_a_model_whose_names_are_the_readout_cotangents_is_served():
    """The readout VJP named its cotangents a0, a1, ...: a model with a coordinate a0 got the printed line
    's_a0 = q[0]; s_a0 = a[0]' and a layer gradient exactly twice the true one (new-user probe; a stack's units
    below the top run as layers, so its gradient was wrong too). Internal names now avoid the model's."""
    a0, a1, y = dynamicsymbols("a0 a1 y")
    k = sp.Symbol("k", positive=True)
    model = symglep.Model(a0.diff() ** 2 / 2 - k * a0**2 / 2 + a0 * a1, [a0], [k], inputs=[a1], targets=[y],
                          cost=(a0 - y) ** 2 / 2, name="named_a0")
    th, u, _, q0, p0 = _instance(1, 1, 1, 1, seed=4)

    def grads(layer):
        return jax.grad(lambda *args: jnp.sum(layer(*args)[0] ** 2), argnums=(0, 1, 2, 3))(th, u, q0, p0)

    echo = grads(sj.layer(model, DT, readout="coordinates", order=4, beta=1e-3))
    exact = grads(sj.layer(model, DT, readout="coordinates", estimator="bptt"))
    for what, a, b in zip(("theta", "u", "q0", "p0"), echo, exact):
        assert _relative(a, b) <= 1e-8, (what, _relative(a, b))


def test_half_precision_a_dict_theta_and_an_infinite_step_are_refused():
    """float16/bfloat16 ran silently wrong (a probe: an echo 85 % off, bfloat16 zero; a midpoint run NaN); a
    {name: value} θ is pointed to layer.theta; dt = inf ran NaN."""
    model = symglep.load_model(str(pathlib.Path(__file__).resolve().parents[1] / "examples" / "harmonic_oscillator.py"))
    layer = sj.layer(model, DT)
    u, q0, p0 = jnp.zeros((5, 1)), jnp.zeros(1), jnp.zeros(1)
    for dtype in (jnp.float16, jnp.bfloat16):
        with pytest.raises(SymglepError, match=f"the layer runs in float32 or float64, got {jnp.dtype(dtype).name}"):
            layer(jnp.ones(2, dtype), u.astype(dtype), q0.astype(dtype), p0.astype(dtype))
    with pytest.raises(SymglepError, match=r"theta is the flat parameter vector: build it .* layer.theta"):
        layer({"k": 1.0, "m": 1.0}, u, q0, p0)
    for dt in (float("inf"), float("nan")):
        with pytest.raises(SymglepError, match="dt must be a positive number"):
            sj.layer(model, dt)


def test_a_generated_flipped_echo_module_takes_a_numpy_theta_and_a_layer_refuses_a_nan_start():
    """New-user probe: the generated module of the charged particle (flipped echo) raised AttributeError 'at' when
    jax.grad was called, without jit, on a NumPy θ (the flip used th.at[...]); sj.layer(model, dt, t0=nan) returned
    NaN states where the Numba kernels refuse the start time."""
    model = symglep.load_model(str(ROOT / "examples" / "charged_particle.py"))
    mod = sj.module(model, "auto")
    assert mod.ECHO_FLIP
    th, u, y, q0, p0 = _instance(mod.N_THETA, mod.N, mod.N_U, mod.N_Y, steps=30)
    loss = mod.make_loss(DT)
    got = jax.grad(loss)(np.asarray(th), u, y, q0, p0)
    # the same steps; NumPy and XLA round a*b + c apart (1e-16), which the echo's 1/beta amplifies
    assert _relative(got, jax.grad(loss)(jnp.asarray(th), u, y, q0, p0)) <= 1e-9
    assert _relative(got, jax.grad(mod.make_loss(DT, estimator="bptt"))(jnp.asarray(th), u, y, q0, p0)) <= 1e-6
    for t0 in (float("nan"), float("inf")):
        with pytest.raises(SymglepError, match="t0 must be a finite number"):
            sj.layer(model, DT, t0=t0)


def test_an_echo_that_does_not_retrace_gives_nan_not_a_wrong_gradient():
    """The Numba kernels raise where the echoes do not retrace the free run (docs/robustness.md); a JAX VJP cannot
    raise, and returned the contrast silently (a probe: the one-sided echo 5e41x off past the stability limit).
    It now gives NaN there, for every order and for the layer: the harmonic oscillator at ω dt = 2.0 and 2.5 (BPTT
    finite), and the double pendulum started near inverted (chaotic, K = 1000). Below the limit, and from a
    mild start, the echo is autodiff's."""
    rng = np.random.default_rng(2)
    u, y = rng.normal(0, 0.3, (51, 1)), rng.normal(0, 0.3, (51, 1))
    oscillator = symglep.load_model(str(ROOT / "examples" / "harmonic_oscillator.py"))
    theta, q0, p0 = jnp.array([0.9, 1.3]), jnp.array([0.2]), jnp.array([-0.1])  # omega = 0.83
    for dt in (0.05, 2.4, 3.0):
        bptt = jax.grad(sj.loss(oscillator, dt=dt, estimator="bptt"))(theta, u, y, q0, p0)
        assert np.all(np.isfinite(bptt))
        for order in (1, 2, 4):
            echo = jax.grad(sj.loss(oscillator, dt=dt, order=order))(theta, u, y, q0, p0)
            if dt == 0.05:
                assert _relative(echo, bptt) < (1e-4 if order == 1 else 1e-8)
            else:
                assert np.all(np.isnan(echo)), (dt, order, echo)
        grads = [jax.grad(lambda th: jnp.sum(layer(th, u, q0, p0)[0] ** 2))(theta)
                 for layer in (sj.layer(oscillator, dt=dt), sj.layer(oscillator, dt=dt, estimator="bptt"))]
        if dt == 3.0:  # past the limit; at 2.4 (omega dt = 1.997) the layer's relative nudge may still retrace
            assert np.all(np.isnan(grads[0]))
        elif not np.all(np.isnan(grads[0])):
            assert _relative(*grads) < 1e-6, (dt, grads)
    pendulum = symglep.load_model(str(ROOT / "examples" / "double_pendulum.py"))
    u, y = rng.normal(0, 0.3, (1001, 1)), rng.normal(0, 0.3, (1001, 1))
    for start, retraces in ((1.0, True), (2.8, False)):
        args = (jnp.ones(4), u, y, jnp.array([start, -start]), jnp.zeros(2))
        echo = jax.grad(sj.loss(pendulum, dt=0.01))(*args)
        if retraces:
            assert _relative(echo, jax.grad(sj.loss(pendulum, dt=0.01, estimator="bptt"))(*args)) < 1e-6
        else:
            assert np.all(np.isnan(echo))
