"""Hardening: numerical failures located, broken caches rebuilt, concurrent compiles, interrupted writes, limits.

Each test here fails when the protection it names is removed (see the
docstrings); the fuzzing of random models is in tests/test_fuzz.py.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest
import sympy as sp
from click.testing import CliRunner
from sympy.physics.mechanics import dynamicsymbols

import symglep
from symglep import cache as kernel_cache
from symglep.check import run_check
from symglep.cli import main
from symglep.diagnose import NumericalError
from symglep.limits import ENV_VAR, MAX_MODEL_SIZE, check_size, model_size

ROOT = pathlib.Path(__file__).resolve().parents[1]
OSCILLATOR = str(ROOT / "examples" / "harmonic_oscillator.py")
UNSTABLE_DT = 2.5          # leapfrog on x'' = -x is unstable for dt > 2: the state grows until it overflows


@pytest.fixture(scope="module")
def oscillator():
    return symglep.compile(symglep.load_model(OSCILLATOR), dt=0.01)


def _blow_up_problem(steps=2000):
    """Two sequences: sequence 0 rests at 0 (stays finite), sequence 1 starts displaced (overflows)."""
    q0 = np.array([[0.0], [0.2]])
    p0 = np.zeros((2, 1))
    u = np.zeros((2, steps + 1, 1))
    y = np.zeros((2, steps + 1, 1))
    return q0, p0, u, y


def _raw_free(kern, th, q0, p0, u, y, m, dt):
    """The compiled free kernel over the first m steps of sequence 1, without symglep's checks."""
    return kern.module.free(th, q0[1:], p0[1:], False, u[1:, :m + 1], y[1:, :m + 1], dt, 0.0, False)[:3]


# -- numerics: NaN and overflow located (protection: Kernels' output checks + symglep.diagnose) ------------
@pytest.mark.parametrize("call", ["free", "gradient", "bptt_gradient", "nudged", "tangent"])
def test_overflow_in_a_forward_pass_names_the_step_and_the_state(oscillator, call):
    """Without the checks the kernels return NaN silently; with them the error names the first bad step."""
    q0, p0, u, y = _blow_up_problem()
    th = oscillator.theta({"k": 1.0, "m": 1.0})
    args = dict(p0=p0, u=u, y=y, dt=UNSTABLE_DT)
    with pytest.raises(NumericalError) as info:
        if call == "nudged":
            oscillator.nudged(th, q0, [0.0], **args)
        else:
            getattr(oscillator, call)(th, q0, **args)
    err = info.value
    assert err.sequence == 1 and err.step is not None
    assert f"at step {err.step} of sequence 1" in str(err)
    assert "q = [" in str(err) and "p = [" in str(err)
    if call in ("free", "gradient", "bptt_gradient"):   # the definition of "first": m - 1 steps finite, m not
        m = err.step
        before = _raw_free(oscillator, th, q0, p0, u, y, m - 1, UNSTABLE_DT)
        after = _raw_free(oscillator, th, q0, p0, u, y, m, UNSTABLE_DT)
        assert all(np.all(np.isfinite(a)) for a in before)
        assert not all(np.all(np.isfinite(a)) for a in after)
        np.testing.assert_array_equal(err.state["q_before"], before[0][0])
        np.testing.assert_array_equal(err.state["p_before"], before[1][0])


def test_overflow_in_the_echo_phase_is_located_backward_in_time(oscillator):
    """A huge nudge overflows the echo while the free run is fine: the echo phase is named, with its node."""
    steps = 400
    q0, p0, u, y = _blow_up_problem(steps)
    y += 1.0
    th = oscillator.theta({"k": 1.0, "m": 1.0})
    with pytest.raises(NumericalError, match=r"echo phase: .* from node \d+ to node \d+ of sequence 0") as info:
        oscillator.gradient(th, q0, p0=p0, u=u, y=y, beta=1e305)
    assert 0 <= info.value.step < steps
    assert np.all(np.isfinite(info.value.state["q_before"]))


def test_adjoint_failure_is_located_by_bisection(oscillator, monkeypatch):
    """The BPTT adjoint runs backward: the last node whose suffix fails is the one reported."""
    steps, bad_from = 50, 17
    q0, p0, u, y = _blow_up_problem(steps)
    q0[1] = 0.1
    th = oscillator.theta({"k": 1.0, "m": 1.0})
    real = oscillator.module

    class AdjointOverflowsBeforeNode17:
        """The real kernels, except that BPTT over nodes j..K gives NaN for j < 17 (an adjoint overflow)."""

        def __getattr__(self, name):
            return getattr(real, name)

        @staticmethod
        def bptt_gradient(th, q0, x0, sv, u, y, h, t0):
            out = list(real.bptt_gradient(th, q0, x0, sv, u, y, h, t0))
            if u.shape[1] - 1 > steps - bad_from:   # the run starts before node 17
                out[1] = out[1] * np.nan
            return tuple(out)

    monkeypatch.setattr(oscillator, "module", AdjointOverflowsBeforeNode17())
    with pytest.raises(NumericalError, match=r"BPTT, adjoint pass: NaN first appears at the step from node 17 "
                                             r"to node 16 of sequence 0") as info:
        oscillator.bptt_gradient(th, q0, p0=p0, u=u, y=y)
    assert info.value.step == bad_from - 1


def test_non_finite_inputs_are_refused(oscillator):
    q0, p0, u, y = _blow_up_problem(10)
    u[0, 3, 0] = np.nan
    with pytest.raises(symglep.SymglepError, match=r"inputs u holds a non-finite value \(first at index \(0, 3, 0\)\)"):
        oscillator.free([1.0, 1.0], q0, p0=p0, u=u, y=y)
    with pytest.raises(symglep.SymglepError, match="q0 holds a non-finite value"):
        oscillator.free([1.0, 1.0], np.array([[np.inf], [0.0]]), p0=p0, u=np.zeros_like(y), y=y)


def test_cli_check_reports_overflow_with_exit_code_3():
    result = CliRunner().invoke(main, ["check", OSCILLATOR, "--dt", "2.5", "--steps", "2000"])
    assert result.exit_code == 3, result.output
    assert "first appears at step" in result.output and "Traceback" not in result.output


# -- symglep check warnings (protection: check.warnings) ------------------------------------------------
def test_check_warns_when_beta_is_too_large():
    """Richardson estimate of the centred estimator's beta error (beta vs 2 beta) above the tolerance."""
    model = symglep.load_model(OSCILLATOR)
    large = run_check(model, steps=300, beta=0.05)
    assert any("too large for this model's curvature" in w for w in large["warnings"])
    # the estimate is a measurement of the real error: it matches echo-vs-BPTT within a factor 2
    assert 0.5 < large["centred_error_estimate"] / large["rel_err_echo_vs_bptt"] < 2
    small = run_check(model, steps=300, beta=1e-4)
    assert not any("beta" in w for w in small["warnings"])
    assert small["one_sided_vs_centred"] > 1e3 * small["centred_error_estimate"]   # first vs second order


def test_check_names_round_off_at_a_small_fixed_beta():
    """New-user probe: at a fixed β small enough that round-off dominates (a stiff chain at β = 2e-9), check said
    "beta is too large ... try --beta 1e-10", which made it worse. It now measures the contrast again at β/10:
    where it moves more than the β error estimate, it names round-off and suggests a larger β, which passes."""
    model = symglep.load_model(OSCILLATOR)
    tiny = run_check(model, steps=300, beta=1e-12)
    assert tiny["centred_error_estimate"] > 1e-6
    (w,) = [w for w in tiny["warnings"] if "beta" in w]
    assert w.startswith("beta = 1e-12 is so small that round-off dominates") and "--beta 1e-11" in w, w
    assert run_check(model, steps=300, beta=1e-4)["passed"]

def test_check_warns_of_an_energy_drift_near_the_stability_limit():
    """New-user probe: at ω dt = 1.9999 the undriven run's energy drifted by 2.8 of its scale and check passed
    without a word. A drift above 10 % now names the stability limit; at ω dt = 0.01 nothing is said."""
    model = symglep.load_model(OSCILLATOR)
    near = run_check(model, steps=300, dt=1.9999, params={"k": 1.0, "m": 1.0})
    assert near["energy_drift"] > 1.0
    assert any("drifts by" in w and "stability limit" in w for w in near["warnings"]), near["warnings"]
    normal = run_check(model, steps=300, dt=0.01, params={"k": 1.0, "m": 1.0})
    assert normal["energy_drift"] < 1e-3 and not any("drifts by" in w for w in normal["warnings"])

def test_check_warns_when_the_round_trip_exceeds_the_tolerance():
    model = symglep.load_model(OSCILLATOR)
    strict = run_check(model, steps=300, tolerance=1e-17)
    assert strict["roundtrip_error"] > 1e-17
    assert any("not reversible to the gradient tolerance" in w for w in strict["warnings"])
    normal = run_check(model, steps=300)
    assert not any("reversible" in w for w in normal["warnings"])
    result = CliRunner().invoke(main, ["check", OSCILLATOR, "--steps", "300", "--beta", "0.05"])
    assert "warning: beta = 0.05 is too large" in result.output


def test_an_unreachable_tolerance_is_named_not_blamed_on_beta():
    """When even the automatic β's optimum leaves bias + round-off above the tolerance (a chaotic elastic
    pendulum: 2.1e-5 + 4.2e-5), a smaller β cannot help: the warning says the tolerance is out of reach
    instead of 'too large, try --beta ...' (new-user probe: following that advice made the error worse)."""
    from types import SimpleNamespace

    from symglep.check import warnings

    error = {"centred": 7.3e-6, "one_sided": 3e-4}
    hopeless = SimpleNamespace(predicted_bias=2.1e-5, predicted_roundoff=4.2e-5)
    (w,) = warnings(1e-12, 1.4e-6, error, 1e-6, 2, True, hopeless)
    assert w.startswith("the tolerance 1e-06 is not reachable on this instance in float64") and "--beta" not in w
    reachable = SimpleNamespace(predicted_bias=1e-8, predicted_roundoff=1e-9)
    for choice in (reachable, None):  # a fixed --beta, or a pilot that promised the tolerance
        (w,) = warnings(1e-12, 1.4e-6, error, 1e-6, 2, True, choice)
        assert "is too large for this model's curvature" in w and "try --beta" in w


def test_initial_positions_choose_the_checked_start():
    """A model may declare where `symglep check` starts (a polar radius away from r = 0): check_instance draws
    q0 from it; a bad function or a wrong length is a one-line model error."""
    from symglep.check import check_instance

    x = dynamicsymbols("x")
    k = sp.Symbol("k", positive=True)
    model = symglep.Model(x.diff() ** 2 / 2 - k * x**2 / 2, [x], [k], name="start_here",
                          initial_positions=lambda rng: [1.0 + rng.uniform(0.0, 0.1)])
    kernels = symglep.compile(model, jit=False)
    q0 = check_instance(model, kernels, 10, 0.01, seed=3)[1]
    assert q0.shape == (1, 1) and 1.0 <= q0[0, 0] <= 1.1
    model.initial_positions = lambda rng: [1.0, 2.0]
    with pytest.raises(symglep.errors.ModelError, match="initial_positions of 'start_here' must return 1 finite"):
        check_instance(model, kernels, 10, 0.01, seed=3)
    with pytest.raises(symglep.errors.ModelError, match="initial_positions must be a function"):
        symglep.Model(x.diff() ** 2 / 2, [x], initial_positions=[1.0])


def test_check_warns_when_the_instance_runs_away():
    """A negative stiffness makes the oscillator grow like e^{1.4 t}: the check says the instance is unstable
    (it amplifies every finite difference) and, for given parameters, to choose bounded ones."""
    model = symglep.load_model(OSCILLATOR)
    unstable = run_check(model, steps=1000, params={"k": -2.0, "m": 1.0})
    (warning,) = [w for w in unstable["warnings"] if "this instance is unstable" in w]
    assert "give --params with values that keep the system bounded" in warning
    (sign,) = [w for w in unstable["warnings"] if "contradicts" in w]  # k is declared positive
    assert sign.startswith("parameter k = -2 contradicts its declaration positive=True")
    assert not any("unstable" in w for w in run_check(model, steps=300)["warnings"])


# -- cache entries (protection: cache.valid_entry's checksum) ------------------------------------------
def _forget(kernels):
    """Drop what this process holds of a compiled entry, as a new process would start."""
    kernel_cache.forget_loaded()
    sys.modules.pop(kernels.module.__name__, None)


@pytest.mark.parametrize("damage", ["truncate", "edit", "checksum"])
def test_damaged_cache_entry_is_detected_and_rebuilt(tmp_path, damage):
    model = symglep.load_model(OSCILLATOR)
    kern = symglep.compile(model, cache=str(tmp_path), jit=False)
    path = pathlib.Path(kern.module.__file__)
    original = path.read_bytes()
    assert kern.generated_source
    if damage == "truncate":
        path.write_bytes(original[: len(original) // 2])
    elif damage == "edit":       # still valid Python with the right hash line: only the checksum tells
        path.write_bytes(original.replace(b"NEWTON_MAXIT = 50", b"NEWTON_MAXIT = 1"))
    else:
        (path.parent / "kernels.py.sha256").write_text("0" * 64 + "\n")
    _forget(kern)
    again = symglep.compile(model, cache=str(tmp_path), jit=False)
    assert again.generated_source
    assert path.read_bytes() == original
    _forget(again)
    third = symglep.compile(model, cache=str(tmp_path), jit=False)
    assert not third.generated_source            # an intact entry is reused
    _forget(third)


CONCURRENT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import symglep
    kern = symglep.compile(symglep.load_model(sys.argv[1]), dt=0.01)
    q0 = np.array([[0.2], [-0.1]]); p0 = np.zeros((2, 1))
    u = np.zeros((2, 301, 1)); y = 0.1 * np.ones((2, 301, 1))
    run = kern.free([1.1, 0.9], q0, p0=p0, u=u, y=y)     # the cheapest kernel: the entry's lock is the point
    misses = sum(kern.module.free.stats.cache_misses.values())
    print(json.dumps({"generated": kern.generated_source, "misses": misses, "run": [a.tolist() for a in run]}))
""")


def test_concurrent_compiles_share_one_entry_and_survive_broken_numba_files(tmp_path):
    """Two processes start compiling the same model into an empty cache at once (protection: the entry's
    lock): one generates and compiles, the other waits and loads; both succeed with identical results.
    Then Numba's own cache files are truncated: a third process still succeeds with the same numbers."""
    env = dict(os.environ, SYMGLEP_CACHE_DIR=str(tmp_path / "cache"))
    script = tmp_path / "compile_one.py"
    script.write_text(CONCURRENT)
    procs = [subprocess.Popen([sys.executable, str(script), OSCILLATOR], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        outs.append(json.loads(out.strip().splitlines()[-1]))
    assert sorted(o["generated"] for o in outs) == [False, True]
    # one process compiles the kernel (under the entry's lock), the other loads what it wrote
    assert sorted(o["misses"] for o in outs)[0] == 0
    assert outs[0]["run"] == outs[1]["run"]
    entries = [p for p in (tmp_path / "cache").iterdir() if p.is_dir()]
    assert len(entries) == 1
    kernel_file = entries[0] / "kernels.py"
    digest = kernel_cache.HASH_LINE.search(kernel_file.read_text()).group(1)
    assert kernel_cache.valid_entry(str(kernel_file), digest)
    for data in (entries[0] / "__pycache__").glob("*.nbc"):
        data.write_bytes(data.read_bytes()[:64])
    third = subprocess.run([sys.executable, str(script), OSCILLATOR], env=env, capture_output=True, text=True,
                           timeout=600)
    assert third.returncode == 0, third.stderr
    assert json.loads(third.stdout.strip().splitlines()[-1])["run"] == outs[0]["run"]


# -- interrupted generation (protection: fileio.write_atomic) --------------------------------------------
KILLED = textwrap.dedent("""
    import sys
    import symglep.codegen.output as output
    def huge_source(*args, **kwargs):   # a slow write, so that the kill lands in the middle of it
        return "# Generated by symglep (interrupted)\\n" + "#" * 150_000_000 + "\\n", None
    output.generate_source = huge_source
    from symglep.cli import main
    main(["generate", sys.argv[1], "--out", sys.argv[2]])
""")


def test_generation_killed_in_the_middle_leaves_the_previous_file_intact(tmp_path):
    out = tmp_path / "generated"
    assert CliRunner().invoke(main, ["generate", OSCILLATOR, "--out", str(out)]).exit_code == 0
    target = out / "harmonic_oscillator" / "numba" / "kernels.py"
    before = target.read_bytes()
    folder = target.parent
    listing = sorted(os.listdir(folder))
    script = tmp_path / "killed.py"
    script.write_text(KILLED)
    proc = subprocess.Popen([sys.executable, str(script), OSCILLATOR, str(out)], stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:     # wait until the write has begun
        if sorted(os.listdir(folder)) != listing or target.stat().st_size != len(before):
            break
        time.sleep(0.002)
    assert proc.poll() is None, "the generation finished before it could be interrupted"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert target.read_bytes() == before


def test_written_files_get_the_usual_permissions(tmp_path):
    """A new file gets 0666 less the umask (a temporary file alone would be the owner's only); a replaced
    file keeps its mode."""
    from symglep.fileio import write_atomic

    old = os.umask(0o022)
    try:
        write_atomic(str(tmp_path / "new.txt"), "a")
        assert (tmp_path / "new.txt").stat().st_mode & 0o777 == 0o644
        kept = tmp_path / "kept.txt"
        kept.write_text("x")
        kept.chmod(0o640)
        write_atomic(str(kept), "b")
        assert kept.stat().st_mode & 0o777 == 0o640 and kept.read_text() == "b"
    finally:
        os.umask(old)


# -- limits (protection: symglep.limits.check_size) ---------------------------------------------------------
def _big_chain(n=128):
    xs = dynamicsymbols(f"x0:{n}")
    ks = sp.symbols(f"k0:{n - 1}", positive=True)
    lagrangian = (sum(x.diff() ** 2 for x in xs) / 2 - sum(x**2 / 2 + x**4 / 4 for x in xs)
                  - sum(k * (xs[i + 1] - xs[i]) ** 2 / 2 for i, k in enumerate(ks)))
    return symglep.Model(lagrangian=lagrangian, coordinates=list(xs), parameters=list(ks), name="chain128")


def test_model_past_the_size_limit_is_refused_at_once(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    model = _big_chain()
    assert model_size(model) > MAX_MODEL_SIZE
    start = time.perf_counter()
    with pytest.raises(symglep.ModelError, match=r"too large for the scalar method.*array model \(symglep.network.ArrayModel.*"
                                                 + ENV_VAR):
        symglep.derive(model)
    assert time.perf_counter() - start < 5          # the full derivation takes minutes
    monkeypatch.setenv(ENV_VAR, str(10 * MAX_MODEL_SIZE))
    check_size(model)                                # raised limit: accepted
    monkeypatch.setenv(ENV_VAR, "lots")
    with pytest.raises(symglep.ModelError, match=f"{ENV_VAR} must be a whole number"):
        check_size(model)


def test_cli_refuses_a_too_large_model_in_one_line(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    path = tmp_path / "big.py"
    path.write_text(textwrap.dedent("""
        import sympy as sp
        from sympy.physics.mechanics import dynamicsymbols
        import symglep
        xs = dynamicsymbols("x0:128")
        model = symglep.Model(lagrangian=sum(x.diff() ** 2 / 2 - sp.cos(x) - x**4 for x in xs)
                              + sum(sp.cos(a - b) for a, b in zip(xs, xs[1:])), coordinates=list(xs))
    """))
    result = CliRunner().invoke(main, ["derive", str(path)])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "too large for the scalar method" in result.output


# -- inert generated code: what reaches the file system from a model name (protection: names.encode) ------
def test_model_name_cannot_escape_the_output_folder(tmp_path):
    x = dynamicsymbols("x")
    model = symglep.Model(lagrangian=x.diff() ** 2 / 2 - x**2 / 2, coordinates=[x], name="../../escaped/evil")
    from symglep.codegen.output import write_generated

    paths = write_generated(model, str(tmp_path / "out"))
    assert paths
    for path in paths:
        assert (tmp_path / "out").resolve() in pathlib.Path(path).resolve().parents
    assert not (tmp_path / "escaped").exists()


def test_drawn_parameters_keep_their_declared_sign():
    """A negative=True parameter is drawn in [-1.5, -0.5] (it was drawn in [-1, 1], against its declaration,
    which check's sign warning would then report); positive ones in [0.5, 1.5], the rest in [-1, 1]."""
    from symglep.parameter_values import draw_parameters

    x = sp.Function("x")(sp.Symbol("t"))
    a, b, c = sp.Symbol("a", positive=True), sp.Symbol("b", negative=True), sp.Symbol("c")
    model = symglep.Model(x.diff() ** 2 / 2 - a * x**2 / 2 + b * x**4 / 4 + c * x, [x], [a, b, c])
    for seed in range(20):
        drawn = draw_parameters(model, np.random.default_rng(seed))
        assert 0.5 <= drawn["a"] <= 1.5 and -1.5 <= drawn["b"] <= -0.5 and -1 <= drawn["c"] <= 1


def test_a_failed_render_leaves_no_cache_entry(tmp_path):
    """A refusal inside the entry's render (the leapfrog on a non-separable model) leaves no empty entry folder
    behind (only the lock file); the next valid request builds the entry normally."""
    def refused():
        raise symglep.errors.ModelError("refused while rendering")

    with pytest.raises(symglep.errors.ModelError, match="refused while rendering"):
        kernel_cache.load_module("refused", "0" * 64, refused, cache=str(tmp_path))
    with pytest.raises(symglep.errors.ModelError, match="refused while rendering"):
        kernel_cache.load("refused", "1" * 64, refused, cache=str(tmp_path), jit=False)
    assert not [p for p in tmp_path.iterdir() if p.is_dir()]
    model = symglep.load_model(str(ROOT / "examples" / "double_pendulum.py"))
    with pytest.raises(symglep.errors.SymglepError, match="leapfrog integrator needs a separable model"):
        symglep.compile(model, cache=str(tmp_path), jit=False, integrator="leapfrog")
    assert not [p for p in tmp_path.iterdir() if p.is_dir()]


def test_a_division_by_zero_in_a_kernel_is_a_numerical_error():
    """A compiled kernel runs Python's error model: a learned off-diagonal mass c = 1 (det M = 1 − c² = 0)
    raised ZeroDivisionError out of `free`, an 'internal error' at the command line (new-user probe). Any
    ArithmeticError of a public kernel is a NumericalError (exit code 3) naming the kernel and the likely
    singular mass matrix. (NumPy's arrays, as jit=False runs them, give inf instead: the overflow report.)"""
    import types

    from symglep.diagnose import NumericalError
    from symglep.kernel_module import KernelModule

    module = types.SimpleNamespace(BATCHED={"free": (0,)}, free=lambda q: 1 / 0)
    kernels = KernelModule(module, jit=False)
    with pytest.raises(NumericalError, match="free: .*division by zero inside the kernel.*det M = 0") as info:
        kernels.free(np.zeros(0))
    assert info.value.exit_code == 3 and info.value.phase == "free"


def test_check_params_reads_a_classifiers_training_file(tmp_path):
    """A classifier's saved file holds the model's parameters and the encoder's and head's: check --params
    reads the model's and passes over the rest (new-user probe: 'names unknown parameter(s): encoder.E, ...');
    a plain parameters file with an unknown name is still refused."""
    from symglep.check import load_params

    model = symglep.load_model(OSCILLATOR)
    saved = tmp_path / "clf.json"
    saved.write_text(json.dumps({"format": 1, "parameters": {"k": 1.5, "m": 0.7, "encoder.E": [[1.0]],
                                                             "encoder.e": [0.0], "head.W": [[1.0]], "head.b": [0.0]}}))
    assert load_params(str(saved), model) == {"k": 1.5, "m": 0.7}
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"k": 1.5, "m": 0.7, "head.W": 1.0}))
    with pytest.raises(symglep.errors.SymglepError, match="unknown parameter"):
        load_params(str(plain), model)


@pytest.mark.parametrize("bad", [True, "1.5", None, [1.0, "2"], float("nan")])
def test_a_parameter_value_must_be_a_json_number(tmp_path, bad):
    """`true` read as 1.0 and `"1.5"` as 1.5 (new-user probe): a quoted or boolean value is a mistake in the
    file, so every kind's --params refuses it, naming the parameter; numbers and nested lists pass."""
    from symglep.parameter_values import read_parameter_file

    path = tmp_path / "p.json"
    path.write_text(json.dumps({"k": bad, "m": [[0.5, 2]]}))
    with pytest.raises(symglep.errors.SymglepError, match=r"p.json: k = .* is not a finite number"):
        read_parameter_file(str(path), ["k", "m"])
    path.write_text(json.dumps({"k": 1, "m": [[0.5, 2]]}))
    assert read_parameter_file(str(path), ["k", "m"]) == {"k": 1, "m": [[0.5, 2]]}


def test_writing_under_a_regular_file_names_the_file(tmp_path):
    """`-o afile/out.txt` where `afile` is a regular file said "File exists" (makedirs' words; new-user probe);
    the message now names the file standing where a folder should be."""
    from symglep.fileio import write_atomic

    (tmp_path / "afile").write_text("")
    target = tmp_path / "afile" / "sub" / "out.txt"
    with pytest.raises(symglep.errors.SymglepError, match=r"afile is a file, not a folder"):
        write_atomic(str(target), "x")


def test_a_free_run_through_a_singular_set_is_named():
    """A Kepler orbit in polar coordinates fell through r = 0 (det M = m² r²) and the check ended in a Newton
    failure of the echo with no word on why (new-user probe). singular_crossing finds the sign change of the
    factor r between two nodes; a run that stays at r > 0, or a constant M, gives nothing."""
    import sympy as sp
    from sympy.physics.mechanics import dynamicsymbols

    from symglep.check import singular_crossing

    r, phi = dynamicsymbols("r phi")
    k, m = sp.symbols("k m", positive=True)
    kepler = symglep.Model(lagrangian=m * (r.diff() ** 2 + r**2 * phi.diff() ** 2) / 2 + k / r, coordinates=[r, phi],
                           parameters=[k, m], name="kepler")
    through = np.stack([np.linspace(1.0, -1.1, 11), np.zeros(11)], axis=1)  # r = -0.05 at node 5
    message = singular_crossing(kepler, [1.0, 2.0], through, 0.1)
    assert message.startswith("the free run crosses r (a factor of det M) = 0 between steps 4 and 5 (t = 0.4)")
    assert singular_crossing(kepler, [1.0, 2.0], np.abs(through) + 0.1, 0.1) is None
    assert singular_crossing(symglep.load_model(OSCILLATOR), [1.0, 1.0], np.zeros((3, 1)), 0.1) is None
    # a mass 1 + e cos(1.7 t) that a drawn e = 1.45 takes through zero at t ≈ 1.38: check passed in silence
    # (new-user probe); e < 1 keeps it positive
    x = dynamicsymbols("x")
    e = sp.Symbol("e", positive=True)
    pumped = symglep.Model((1 + e * sp.cos(1.7 * dynamicsymbols._t)) * x.diff() ** 2 / 2 - k * x ** 2 / 2, [x],
                           parameters=[e, k], name="pumped")
    still = np.full((201, 1), 0.2)
    message = singular_crossing(pumped, [1.45, 1.0], still, 0.01)
    assert message.startswith("the free run crosses e*cos(1.7*t) + 1 (a factor of det M) = 0 between steps 137 and "
                              "138 (t = 1.37): at these parameters M is singular at that time"), message
    assert singular_crossing(pumped, [0.9, 1.0], still, 0.01) is None
    # a start where M is singular (a zero mass given by --params) is refused before anything is measured: it
    # printed numpy warnings, a finite difference of 2.7e306 and FAILED (new-user probe)
    from symglep.check import singular_start

    assert singular_start(kepler, [1.0, 2.0], [0.0, 0.3]).startswith("the mass matrix M is singular at the checked start")
    assert singular_start(kepler, [1.0, 0.0], [1.0, 0.3]).startswith("the mass matrix M is singular")
    assert singular_start(kepler, [1.0, 2.0], [1.0, 0.3]) is None


def test_check_at_a_singular_parameter_is_a_numerical_error():
    """check --params with c = 1 of H = (p1² + p2²)/2 + c p1 p2 (det M = 0 everywhere there) was an internal error:
    ZeroDivisionError out of the start momentum (new-user probe). It is a NumericalError naming the start."""
    import sympy as sp
    from sympy.physics.mechanics import dynamicsymbols

    from symglep.check import check_instance
    from symglep.diagnose import NumericalError

    q1, q2, p1, p2 = dynamicsymbols("q1 q2 p1 p2")
    c = sp.Symbol("c")
    model = symglep.Model.from_hamiltonian(hamiltonian=(p1**2 + p2**2) / 2 + c * p1 * p2 + (q1**2 + q2**2) / 2,
                                           coordinates=[q1, q2], momenta=[p1, p2], parameters=[c], name="coupled")
    kernels = symglep.compile(model, dt=0.1, jit=False)
    with pytest.raises(NumericalError, match=r"the start momentum p0 = dL/dv\(q0, v0\) of the checked instance"):
        check_instance(model, kernels, 10, 0.1, 0, {"c": 1.0})
    assert np.all(np.isfinite(check_instance(model, kernels, 10, 0.1, 0, {"c": 0.5})[2]))


def test_a_located_echo_failure_shows_one_row_per_lane():
    """The echoes at ±β run as lanes of one pass: the located NaN showed their states run together, four numbers
    for a two-coordinate model (new-user probe); each lane is now one row."""
    from symglep.diagnose import backward_failure

    state = lambda j: (np.full((2, 2), float(j)), np.full((2, 2), -float(j)))  # noqa: E731
    run = lambda j: (np.array([np.nan]),) if j < 3 else (np.zeros(1),)  # noqa: E731
    error = backward_failure("echo gradient, echo phase", 0, 5, 0.1, 0.0, run, state)
    assert "one row per nudged echo" in str(error) and "q = [[3, 3]; [3, 3]]" in str(error)


# -- run arguments: dt and steps are checked by every kind's kernels (symglep/run_arguments.py) ------------------
@pytest.mark.parametrize("dt", [-0.01, 0.0, np.nan, "0.01", True])
def test_every_kernel_call_refuses_a_time_step_that_is_not_positive(oscillator, dt):
    """New-user probe: dt = -0.01 returned a loss, and dt = 0 silently ran the compiled default step."""
    q0, p0, u, y = _blow_up_problem(10)
    for call in (oscillator.free, oscillator.gradient, oscillator.bptt_gradient):
        with pytest.raises(symglep.SymglepError, match="dt must be a positive number"):
            call([1.0, 1.0], q0, p0=p0, u=u, y=y, dt=dt)
    with pytest.raises(symglep.SymglepError, match="dt must be a positive number"):
        symglep.compile(oscillator.model, dt=dt)  # refused also when the kernels are already loaded


@pytest.mark.parametrize("t0, beta, message", [(np.nan, 1e-4, "t0 must be a finite number"),
                                               ("abc", 1e-4, "t0 must be a finite number"),
                                               (0.0, "1e-4", "beta must be a finite non-zero number"),
                                               (0.0, 0.0, "beta must be a finite non-zero number")])
def test_kernel_calls_refuse_a_bad_start_time_or_nudge(oscillator, t0, beta, message):
    """New-user probe: beta="1e-4" was a NumPy TypeError, t0 = NaN a Newton failure at step 0."""
    q0, p0, u, y = _blow_up_problem(10)
    with pytest.raises(symglep.SymglepError, match=message):
        oscillator.gradient([1.0, 1.0], q0, p0=p0, u=u, y=y, t0=t0, beta=beta)
    assert np.isfinite(oscillator.free([1.0, 1.0], q0, p0=p0, u=u, y=y, t0=np.asarray(0.5))[2]).all()


def test_steps_must_be_positive_and_agree_with_the_series(oscillator):
    q0, p0, u, y = _blow_up_problem(50)
    with pytest.raises(symglep.SymglepError, match=r"steps=10 but the inputs u given have K = 50 steps"):
        oscillator.free([1.0, 1.0], q0, p0=p0, u=u, y=y, steps=10)
    for steps in (-3, 0, 2.5):
        with pytest.raises(symglep.SymglepError, match="steps must be a positive integer"):
            oscillator.free([1.0, 1.0], q0, p0=p0, steps=steps)
    with pytest.raises(symglep.SymglepError, match=r"kernels take \(theta, q0, p0, v0, u, y, ...\): pass u= and y="):
        oscillator.free([1.0, 1.0], q0, p0, u, y)  # the array models' positional order: u lands on v0
    loss = oscillator.free([1.0, 1.0], q0, p0=p0, u=u, y=y, steps=50)[2]
    assert np.array_equal(loss, oscillator.free([1.0, 1.0], q0, p0=p0, u=u, y=y)[2])


@pytest.mark.parametrize("theta, q0, u, message", [
    ("abc", None, None, "the parameter values must hold real numbers, got 'abc'"),
    ({"k": 1 + 1j, "m": 1.0}, None, None, "parameter k must hold real numbers, got complex values"),
    ({"k": [1.0, 2.0], "m": 1.0}, None, None, r"parameter k takes one number, got shape \(2,\)"),
    ([1.0, 1.0], np.zeros((0, 1)), None, r"q0 holds no sequence \(B = 0\)"),
    ([1.0, 1.0], None, "complex", "inputs u must hold real numbers, got complex values"),
    ([1.0, 1.0], None, "text", "inputs u must hold real numbers, got an array of <U1")])
def test_kernel_calls_refuse_arguments_that_are_not_real_numbers(oscillator, theta, q0, u, message):
    """New-user probe: a string θ was NumPy's "could not convert", a complex input lost its imaginary part with
    only NumPy's warning, an empty batch was a reshape error."""
    start, p0, inputs, y = _blow_up_problem(10)
    q0 = start if q0 is None else q0
    p0 = p0[:q0.shape[0]]
    if u == "complex":
        inputs = inputs + 1j
    elif u == "text":
        inputs = np.full(inputs.shape, "a")
    with pytest.raises(symglep.SymglepError, match=message):
        oscillator.gradient(theta, q0, p0=p0, u=inputs, y=y[:q0.shape[0]] if q0.shape[0] else y, beta=1e-4)


@pytest.mark.parametrize("option, message", [({"epochs": 1.5}, "epochs must be an integer >= 0, got 1.5"),
                                             ({"seed": -1}, "seed must be an integer >= 0, got -1"),
                                             ({"lr": "a"}, "the learning rate must be a positive number"),
                                             ({"batch": 0}, "batch must be an integer >= 1, got 0"),
                                             ({"dt": "0.1"}, "dt must be a positive number")])
def test_train_refuses_bad_arguments_before_it_compiles(option, message):
    """New-user probe: epochs=1.5 ran, seed=-1 and lr="a" were NumPy's own errors."""
    with pytest.raises(symglep.errors.ArgumentError, match=message) as caught:
        symglep.train(symglep.load_model(OSCILLATOR), "sine", **option)
    assert isinstance(caught.value, ValueError)


def test_energy_refuses_trajectories_of_the_wrong_shape(oscillator):
    """New-user probe: traj_p of another shape than traj_q crashed the interpreter (segmentation fault)."""
    q0, p0, u, y = _blow_up_problem(10)
    _, _, _, tq, tp = oscillator.free([1.0, 1.0], q0, p0=p0, u=u, y=y, record=True)
    with pytest.raises(symglep.SymglepError, match=r"traj_p must have the shape of traj_q, \(2, 11, 1\), got \(2, 2, 1\)"):
        oscillator.energy([1.0, 1.0], tq, tp[:, :2])
    with pytest.raises(symglep.SymglepError, match=r"traj_q must have shape \(B, K\+1, 1\)"):
        oscillator.energy([1.0, 1.0], np.repeat(tq, 3, axis=2), np.repeat(tp, 3, axis=2))
    energy = oscillator.energy([1.0, 1.0], tq, tp)
    assert energy.shape == (2, 11)
    np.testing.assert_allclose(energy[:, 0], 0.5 * tp[:, 0, 0] ** 2 + 0.5 * tq[:, 0, 0] ** 2, rtol=1e-14)


def test_ctrl_c_inside_a_kernel_is_an_interrupt_not_a_damaged_cache():
    """New-user probe: Ctrl-C during a compiled call reaches Python as a SystemError around the
    KeyboardInterrupt; the first call took it for a damaged cache (deleted and recompiled the entry, and the run
    went on), later ones printed 'internal error: SystemError'. Now it is a KeyboardInterrupt, and no reload."""
    import types
    from symglep.kernel_module import KernelModule, interrupted_by_user

    def free(x):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise SystemError("CPUDispatcher(<function free>) returned a result with an exception set") from exc

    reloads = []
    fake = types.SimpleNamespace(free=free, BATCHED={"free": []})
    module = KernelModule(fake, jit=False, reimport=lambda: reloads.append(1) or fake)
    with pytest.raises(KeyboardInterrupt):
        module.free(np.zeros(1))       # the first call (compile / cache load)
    module.kernels["free"].compiled = True
    with pytest.raises(KeyboardInterrupt):
        module.free(np.zeros(1))       # a later call
    assert reloads == []
    assert not interrupted_by_user(SystemError("no interrupt here"))


def test_cli_reports_a_wrapped_ctrl_c_as_interrupted(monkeypatch):
    def wrapped(*args, **kwargs):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise SystemError("returned a result with an exception set") from exc

    monkeypatch.setattr("symglep.cli.load_system", wrapped)
    result = CliRunner().invoke(main, ["derive", OSCILLATOR])
    assert result.exit_code == 130 and "interrupted" in result.output and "internal error" not in result.output


def test_a_runaway_with_a_negative_kinetic_energy_names_it():
    """New-user probe: a network with Sum(-x.dot[i]**2/2) ran away, and check blamed the unsigned input matrix B.
    The growth warning now names the negative mass at the start (scalar: M's least eigenvalue)."""
    from symglep.check import growth_warning, least_mass
    x = dynamicsymbols("x")
    k, m = sp.symbols("k m", positive=True)
    model = symglep.Model(lagrangian=-m * x.diff() ** 2 / 2 - k * x**2 / 2, coordinates=[x], parameters=[k, m],
                          cost=x**2 / 2, name="negative_mass")
    assert least_mass(model, [1.0, 2.0], [[0.3]]) == pytest.approx(-2.0, rel=1e-14)
    q0, p0, qT = np.array([[0.3]]), np.zeros((1, 1)), np.array([[5e4]])
    (warning,) = growth_warning(model, q0, p0, qT, p0, True, least_mass=-2.0)
    assert "the kinetic energy is negative at the start (M has the eigenvalue -2)" in warning
    assert "carry no sign assumption" not in warning
    assert "the kinetic energy is negative" not in growth_warning(model, q0, p0, qT, p0, True, least_mass=1.0)[0]


def test_energy_names_inputs_that_disagree_with_the_trajectories(oscillator):
    """New-user probe: energy(..., u=u[:, :10]) said 'steps=10 but the inputs u given have K = 9', naming a steps=
    nobody passed."""
    q0, p0, u, y = _blow_up_problem(10)
    _, _, _, tq, tp = oscillator.free([1.0, 1.0], q0, p0=p0, u=u, y=y, record=True)
    with pytest.raises(symglep.SymglepError, match=r"inputs u have 10 time nodes but the trajectories 11"):
        oscillator.energy([1.0, 1.0], tq, tp, u=u[:, :10])


def test_an_echo_that_does_not_retrace_its_free_run_is_refused(tmp_path):
    """New-user probe: a spherical pendulum swinging near its pole at dt = 0.02 (midpoint rule): a Newton solve took
    another root (θ jumped to −2.96), the echo never came back to the start, and `gradient` and
    `complex_step_gradient` returned dC/dθ ~300x off BPTT (which equals finite differences) with no word. The echoes'
    mean end now has to meet the start (O(β²)); a miss raises, naming the cause. At dt = 0.005 both pass."""
    th, ph, y = dynamicsymbols("theta phi y")
    m, l, g = sp.symbols("m l g", positive=True)
    L = m * l**2 * (th.diff() ** 2 + sp.sin(th) ** 2 * ph.diff() ** 2) / 2 + m * g * l * sp.cos(th)
    model = symglep.Model(L, [th, ph], [m, l], constants={g: 9.81}, targets=[y], cost=(th - y) ** 2 / 2,
                          name="spherical_near_pole")
    theta, q0, p0 = np.array([0.83425967, 0.8947242]), np.array([[0.90063723, 0.04929722]]), \
        np.array([[-0.24352281, -0.04012384]])
    for h, retraces in ((0.02, False), (0.005, True)):
        K = int(round(1.2 / h))
        kern = symglep.compile(model, dt=h, cache=str(tmp_path))
        y_ = 0.3 * np.sin(np.linspace(0.0, 4.0, K + 1))[None, :, None]
        u = np.zeros((1, K + 1, 0))
        bptt = kern.bptt_gradient(theta, q0, p0=p0, u=u, y=y_).dtheta[0]
        for run in (lambda: kern.gradient(theta, q0, p0=p0, u=u, y=y_, beta=1e-4),
                    lambda: kern.complex_step_gradient(theta, q0, p0=p0, u=u, y=y_)):
            if retraces:
                assert np.max(np.abs(run().dtheta[0] - bptt)) <= 1e-4 * np.max(np.abs(bptt))
            else:
                with pytest.raises(NumericalError, match="did not retrace the free run .* Newton took another one"):
                    run()
        if not retraces:  # the measurement itself is still there for `symglep check`
            kern.gradient(theta, q0, p0=p0, u=u, y=y_, beta=1e-4, retrace=False)


def test_an_echo_past_the_leapfrogs_stability_limit_is_refused(oscillator):
    """New-user probe: at ω dt ≈ 2.5 both ±β echoes grew to 1e54 together, so their mean end missed the start by as
    much as they spread and the retrace test passed: `gradient` returned 1e111 against BPTT's 1e59, silently. A
    spread wider than the state is now no excuse for a miss. Below the limit (ω dt ≈ 1.7) the echo agrees. The
    one-sided echo (order 1; a later probe: 5e41x off, silently) is held to the same test: its single echo misses the
    start by its O(β) spread, so only a miss beyond the state's size is caught, and past the limit it is."""
    rng = np.random.default_rng(2)
    u, y = rng.normal(0, 0.3, (1, 51, 1)), rng.normal(0, 0.3, (1, 51, 1))
    theta = [0.9, 1.3]  # k, m: omega = 0.83
    for dt in (2.4, 3.0):
        for order in (1, 2, 4):
            with pytest.raises(NumericalError, match="did not retrace the free run.*the leapfrog's stability limit"):
                oscillator.gradient(theta, [[0.2]], p0=[[-0.1]], u=u, y=y, dt=dt, order=order)
    bptt = oscillator.bptt_gradient(theta, [[0.2]], p0=[[-0.1]], u=u, y=y, dt=2.0).dtheta[0]
    echo = oscillator.gradient(theta, [[0.2]], p0=[[-0.1]], u=u, y=y, dt=2.0, order=4).dtheta[0]
    assert np.max(np.abs(echo - bptt)) <= 1e-8 * np.max(np.abs(bptt))
    one_sided = oscillator.gradient(theta, [[0.2]], p0=[[-0.1]], u=u, y=y, dt=2.0, order=1, beta=1e-7).dtheta[0]
    assert np.max(np.abs(one_sided - bptt)) <= 1e-5 * np.max(np.abs(bptt))  # O(β) bias


def test_a_retrace_miss_that_falls_with_beta_squared_names_beta(oscillator):
    """New-user probe: a 1e-6 kg, 1e-6 N/m oscillator at β = 1e-10 raised "did not retrace ... dt past the
    stability limit", although its run is stable and the echo was 3e-8 off BPTT: the echoes' mean end missed the
    start by the nudge's own O(β²) effect (7e-3 relative). On a failure the guard now measures again at β/10 and
    β/100, and names the first β that passes; that β agrees with BPTT."""
    from symglep.check import check_instance

    kern = oscillator
    th, q0, p0, u, y = check_instance(kern.model, kern, 1000, 0.01, 0, {"k": 1e-6, "m": 1e-6})
    with pytest.raises(NumericalError, match=r"did not retrace the free run linearly in beta at beta = 1.0e-10 \(their "
                                             r"mean end misses the start by 7.0e-03 relative, the nudge's own non-linear "
                                             r"effect\), so the contrast carries a large beta bias; at beta = 1.0e-11 "
                                             r"they do") as err:
        kern.gradient(th, q0, p0=p0, u=u, y=y, beta=1e-10)
    advised = float(str(err.value).split("use beta <= ")[1].split(" ")[0])
    assert 1e-12 < advised < 1e-10
    bptt = kern.bptt_gradient(th, q0, p0=p0, u=u, y=y).dtheta[0]
    echo = kern.gradient(th, q0, p0=p0, u=u, y=y, beta=advised).dtheta[0]
    assert np.max(np.abs(echo - bptt)) <= 1e-8 * np.max(np.abs(bptt))

def test_the_api_warns_of_an_anti_damped_echo_that_check_and_train_report_themselves():
    """New-user probe: a damped oscillator's `gradient` at γT = 40 was 66 % off BPTT with no word from the Python
    API (check and train said e^(γT) = 2e17). The kernels now warn (AntiDampingWarning); check and train, which
    report it in their own words, do not repeat it."""
    from symglep.dissipation import AntiDampingWarning

    kern = symglep.compile(symglep.load_model(str(ROOT / "examples/damped_oscillator.py")), dt=0.05)
    rng = np.random.default_rng(0)
    short, long = (rng.normal(0, 0.3, (1, K + 1, 1)) for K in (200, 8000))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kern.gradient([0.9, 1.3], [[0.2]], p0=[[-0.1]], u=short, y=short)  # gamma T = 1: nothing to say
    with pytest.warns(AntiDampingWarning, match=r"e\^\(gamma T\) = 2\.4e\+17"):
        kern.gradient([0.9, 1.3], [[0.2]], p0=[[-0.1]], u=long, y=long)
    with warnings.catch_warnings():
        warnings.simplefilter("error", AntiDampingWarning)
        result = symglep.train(symglep.load_model(str(ROOT / "examples/damped_oscillator.py")), "sine", epochs=1,
                               dt=0.5, beta=1e-4)
    assert any("anti-damped" in w or "e^(gamma T)" in w for w in result.warnings), result.warnings


def test_outputs_never_destroy_the_inputs_or_special_files(tmp_path):
    """New-user probe: `derive m.py -o m.py` replaced the model's source, `train --save DATA.npz` the data set,
    `--plot F --save F` lost the save, `-o` onto a symbolic link replaced the link and onto a FIFO or a device
    replaced the node with a regular file. Each is refused in one line, or written through."""
    import shutil
    import threading

    model = tmp_path / "osc.py"
    shutil.copy(OSCILLATOR, model)
    source = model.read_text()
    runner = CliRunner()
    out = runner.invoke(main, ["derive", str(model), "-o", str(model)])
    assert out.exit_code == 2 and "is the model file: writing there would destroy it" in out.output
    assert model.read_text() == source
    data = tmp_path / "d.npz"
    np.savez(data, u=np.zeros((2, 11, 1)), y=np.zeros((2, 11, 1)), q0=np.zeros((2, 1)), p0=np.zeros((2, 1)))
    before = data.read_bytes()
    out = runner.invoke(main, ["train", str(model), "--task", str(data), "--epochs", "1", "--save", str(data)])
    assert out.exit_code == 2 and "is the data set" in out.output and data.read_bytes() == before
    same = tmp_path / "same.out"
    out = runner.invoke(main, ["train", str(model), "--epochs", "1", "--save", str(same), "--plot", str(same)])
    assert out.exit_code == 2 and "is the --plot file" in out.output and not same.exists()
    # a link is written through: the link stays, the file it names gets the report
    target, link = tmp_path / "report.txt", tmp_path / "link.txt"
    target.write_text("old")
    link.symlink_to(target)
    assert runner.invoke(main, ["derive", str(model), "-o", str(link)]).exit_code == 0
    assert link.is_symlink() and target.read_text().startswith("model harmonic_oscillator")
    # a FIFO is written into, not replaced
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo).read()))
    reader.start()
    assert runner.invoke(main, ["derive", str(model), "-o", str(fifo)]).exit_code == 0
    reader.join(30)
    assert got and got[0].startswith("model harmonic_oscillator") and fifo.is_fifo()


def test_a_refused_model_names_why_it_stops_its_neighbours_in_the_file(tmp_path):
    """New-user probe: a file holding a good model and a refused one said only the refusal when asked for
    `file.py:good` (loading runs the whole file); a parameter listed twice read "used twice: as parameter and as
    parameter"."""
    path = tmp_path / "two.py"
    path.write_text(textwrap.dedent("""\
        import sympy as sp
        from sympy.physics.mechanics import dynamicsymbols
        import symglep
        x = dynamicsymbols("x")
        k = sp.Symbol("k", positive=True)
        good = symglep.Model(lagrangian=x.diff()**2 / 2 - k * x**2 / 2, coordinates=[x], parameters=[k], name="good")
        bad = symglep.Model(lagrangian=x.diff()**2 / 2 - k * x**2 / 2, coordinates=[x], parameters=[k, k], name="bad")
        """))
    out = CliRunner().invoke(main, ["derive", f"{path}:good"])
    assert out.exit_code == 2 and out.output.count("\n") == 1
    assert "parameter 'k' is listed twice; list it once" in out.output
    assert "builds every object in it, so this stops good too" in out.output
    plain = CliRunner().invoke(main, ["derive", str(path)])
    assert plain.exit_code == 2 and "listed twice" in plain.output and "stops" not in plain.output


def test_model_specs_with_colons_and_damaged_resume_files_are_one_line_errors(tmp_path):
    """New-user probe: a model file whose name holds a colon was split at it ("model file not found: m/we"),
    `file.py:` said "not found"; damaged save files ("settings": "x", a null optimizer state, a string
    beta_auto) ended in internal errors; a save of another format version was read as plain parameters; a save of
    another model with the same parameter names was taken silently; --steps 1e20 was an internal error."""
    import shutil

    odd = tmp_path / "we:ird.py"
    shutil.copy(OSCILLATOR, odd)
    runner = CliRunner()
    assert runner.invoke(main, ["derive", str(odd)]).exit_code == 0
    plain = tmp_path / "osc.py"
    shutil.copy(OSCILLATOR, plain)
    out = runner.invoke(main, ["derive", f"{plain}:"])
    assert out.exit_code == 2 and "no NAME after ':'" in out.output
    save = tmp_path / "run.json"
    assert runner.invoke(main, ["train", str(plain), "--epochs", "1", "--save", str(save)]).exit_code == 0
    good = json.loads(save.read_text())
    for key, value, said in (("settings", "x", "must be JSON objects"), ("optimizer_state", None, "must be JSON objects"),
                             ("settings", {**good["settings"], "beta_auto": "x"}, "beta_auto must be an object"),
                             ("format", "symglep-train/99", "format 'symglep-train/99'")):
        damaged = tmp_path / f"bad_{key}.json"
        damaged.write_text(json.dumps({**good, key: value}))
        out = runner.invoke(main, ["train", str(plain), "--epochs", "1", "--resume", str(damaged)])
        assert out.exit_code == 2 and said in out.output and "internal error" not in out.output, (key, out.output)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**good, "model": "another_model"}))
    out = runner.invoke(main, ["train", str(plain), "--epochs", "1", "--resume", str(other)])
    assert out.exit_code == 0 and "trained on the model 'another_model', this is 'harmonic_oscillator'" in out.output
    out = runner.invoke(main, ["check", str(plain), "--steps", "99999999999999999999"])
    assert out.exit_code == 2 and "not enough memory for this run" in out.output


def test_boundary_conditions_are_read_in_any_case_and_a_singular_newton_step_is_named():
    """`check --bc ALL` was read as all and `residuals --bc Civp` refused (new-user probe); a Newton step stopped by
    a singular Jacobian said "did not converge (residual 0.000e+00)"."""
    from symglep.runtime import Kernels

    runner = CliRunner()
    assert runner.invoke(main, ["residuals", OSCILLATOR, "--bc", "Civp"]).exit_code == 0
    assert runner.invoke(main, ["residuals", OSCILLATOR, "--bc", "ALL"]).exit_code == 0
    with pytest.raises(NumericalError, match="its Jacobian is singular there"):
        Kernels._check(None, np.array([3]), np.array([0.0]), "free")
    with pytest.raises(NumericalError, match=r"\(residual 1\.000e-02\)"):
        Kernels._check(None, np.array([3]), np.array([0.01]), "free")


def test_a_kinked_model_checks_at_a_small_beta_when_the_automatic_choice_fails(tmp_path):
    """A one-sided wall, c·Max(0, x − 0.2)²/2 (new-user probe): the automatic β (Richardson, 3.5e-4) measured
    3.9e-3 against BPTT, FAILED, and blamed "a strongly curved or chaotic run", though --beta 1e-6 gave 5.9e-10.
    Across a kink the contrast is not smooth in β; check now falls back to the centred contrast at 1e-6 and
    says why."""
    x, u, y = dynamicsymbols("x u y")
    k, c = sp.symbols("k c")
    model = symglep.Model(x.diff() ** 2 / 2 - k * x**2 / 2 - c * sp.Max(0, x - 0.2) ** 2 / 2 + x * u, [x], [k, c],
                          inputs=[u], targets=[y], cost=(x - y) ** 2 / 2, name="wall")
    report = run_check(model, cache=str(tmp_path))
    assert report["passed"] and report["rel_err_echo_vs_bptt"] <= 1e-8, report
    assert report["beta"] == 1e-6 and "the model has a kink" in report["beta_auto"]["note"]
    from symglep.check import warnings

    said = warnings(0.0, 3e-4, {"centred": 3e-3, "one_sided": 1e-2}, 1e-6, kinked=["Max(0, x - 0.2)"])
    assert said and said[0].startswith("the model has a kink (Max(0, x - 0.2))") and "chaotic" not in said[0]


def test_finite_differences_step_a_tiny_parameter_by_a_small_fraction_of_it():
    """A mass of 1e-6 (SI units) was stepped by half its value, and the Richardson half step was capped to the same
    step: check FAILed BPTT vs finite differences at 1.7e3 (new-user probe). Below SMALL_PARAMETER the step is
    relative to the parameter; the differences of m³ then match its derivative at every scale."""
    from symglep.check import FD_STEP, SMALL_PARAMETER, central_differences, finite_differences

    cube = lambda t: float(t[0] ** 3)  # noqa: E731
    for m in (1e-6, -1e-9, 3e-5, SMALL_PARAMETER, 0.2, 2.0, 0.0):
        theta = np.array([m])
        plain = central_differences(cube, theta, FD_STEP)
        assert abs(plain[0] - 3 * m**2) <= 1e-5 * 3 * m**2 + 1e-12, (m, plain)
        half = central_differences(cube, theta, FD_STEP / 2)
        assert m == 0 or half[0] != plain[0]  # the Richardson step is a step of its own
    fd, rule = finite_differences(cube, np.array([1e-6]), np.array([3e-12]))
    assert rule == "" and np.allclose(fd, [3e-12], rtol=1e-5)


def test_a_check_that_compared_only_zeros_says_so(tmp_path):
    """A wall k·Max(0, x − a)² that the seeded run never reaches: echo, BPTT and the finite differences are all
    exactly 0, and check printed "0.000e+00 ok ... passed" with no word (new-user probe)."""
    from symglep.check import zero_gradient_warning

    assert zero_gradient_warning(np.zeros(2), np.zeros(2))[0].startswith("every parameter's gradient is exactly 0")
    assert zero_gradient_warning(np.array([0.0, 1e-30]), np.zeros(2)) == []
    assert zero_gradient_warning(np.zeros(0), np.zeros(0))[0].startswith("the model has no parameters")
    path = tmp_path / "wall.py"
    path.write_text(
        "import sympy as sp\nfrom sympy.physics.mechanics import dynamicsymbols\nimport symglep\n"
        "x = dynamicsymbols('x'); u, y = dynamicsymbols('u y')\nk, a = sp.symbols('k a', positive=True)\n"
        "model = symglep.Model(x.diff()**2/2 - x**2/2 - k*sp.Max(0, x - a)**2/2 + x*u, [x], parameters=[k, a],\n"
        "    inputs=[u], targets=[y], cost=(x - y)**2/2, constants={}, name='wall')\n")
    params = tmp_path / "far.json"
    params.write_text(json.dumps({"k": 2.0, "a": 50.0}))  # the wall far beyond the run's reach
    res = CliRunner().invoke(main, ["check", str(path), "--params", str(params), "--steps", "50"])
    assert res.exit_code == 0 and "warning: every parameter's gradient is exactly 0 on this instance" in res.output, \
        res.output


def test_a_failed_finite_difference_comparison_names_the_inaccurate_side():
    """Probe r3 (session 37): on chaotic runs check read "BPTT vs finite diff. 2.0 FAIL", pointing at the
    derivation, while the complex-step echo met BPTT to 3e-8. Where the differences miss BPTT, check runs the
    complex step; where it meets BPTT within the tolerance and a hundred times closer, a warning says the
    differences are the inaccurate side. A complex step that cannot run, or disagrees, says nothing."""
    from symglep.check import complex_step_agreement, fd_side_warning
    from symglep.errors import SymglepError

    (w,) = fd_side_warning(0.28, 3.8e-7)
    assert w.startswith("BPTT and the complex-step echo, two exact routes to the discrete gradient, agree to 3.8e-07")
    assert fd_side_warning(0.28, 1e-4) == [] and fd_side_warning(1e-6, 1e-12) == [] and fd_side_warning(0.2, None) == []
    assert fd_side_warning(5e-5, 1e-6) == []  # not a hundred times closer

    def refused():
        raise SymglepError("not analytic")

    assert complex_step_agreement(refused, np.ones(2)) is None
    assert complex_step_agreement(lambda: np.array([1.0, 2.0 + 2e-9]), np.array([1.0, 2.0])) < 1e-9


def test_the_retrace_guard_takes_a_fixed_large_beta_whose_gradient_is_good():
    """Probe s1 (session 37): with a stricter linearity ratio the guard refused `train --estimator echo4 --beta 0.1`
    on the damped chain's sine task, whose echo was 2.8e-6 off BPTT (and the centred echo at 0.03, 6.7e-5 off):
    large fixed betas are what docs/noise.md recommends under noise. Those pass now and meet BPTT; a beta that
    makes the response plainly non-linear (0.3 centred, 1.5e-2 off on the double pendulum) is still refused."""
    from symglep.tasks import SineTask, sine_task

    for name, cases in (("damped_chain", ((4, 0.1, 1e-5), (2, 0.03, 1e-4))),
                        ("double_pendulum", ((4, 0.1, 1e-4), (2, 0.1, 3e-3)))):
        model = symglep.load_model(str(ROOT / "examples" / f"{name}.py"))
        kern = symglep.compile(model, dt=SineTask().dt)
        data, theta = sine_task(model, kern, seed=0)
        args = dict(p0=data.x0, u=data.u, y=data.y)
        bptt = kern.bptt_gradient(theta, data.q0, **args).dtheta_total
        for order, beta, tol in cases:
            echo = kern.gradient(theta, data.q0, beta=beta, order=order, **args).dtheta_total
            assert np.linalg.norm(echo - bptt) <= tol * np.linalg.norm(bptt), (name, order, beta)
    with pytest.raises(NumericalError, match="did not retrace the free run linearly in beta at beta = 3.0e-01"):
        kern.gradient(theta, data.q0, beta=0.3, order=2, **args)
