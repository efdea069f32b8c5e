"""``symglep check``: measure reversibility and gradient agreement on one seeded instance.

On one sequence it reports (theory §5–§6):

* the round-trip error of free → flip → free (β = 0) back to the start (for digital
  PFVP: free → backward run (β = 0) back to the start);
* the relative energy drift of an undriven run, for autonomous models with a Hamiltonian;
* the β error of the contrastive estimators (one-sided vs centred, and a
  Richardson estimate of the centred one from a second run at 2β), with
  warnings when β or the round-trip error is too large for the tolerance;
* with ``beta="auto"`` (the default) the β chosen by :mod:`symglep.beta` from a pilot
  estimate of the contrast's curvature and round-off (theory §6 "Choosing β"), and what decided it;
* with ``noise=σ`` the study of :mod:`symglep.noise`: Gaussian noise on the learning integrals,
  bias, variance and the best β of the centred and Richardson contrasts (docs/noise.md);
* the contrastive gradient (centred, ±β) by the model's exact route — echo, flipped
  echo or digital PFVP (theory §4) — the BPTT gradient of the same discrete
  integrator, and central finite differences of the discrete loss, with
  their relative errors ``‖a − b‖ / ‖b‖``. With ``naive_echo`` the plain echo
  runs instead; where it is not exact its error is reported as its bias and is
  not a pass criterion (theory §7).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import sympy as sp

from .beta import AUTO, BIAS_TOLERANCE, choose_beta, describe, parse_beta
from .derivation import derive
from .diagnose import NumericalError
from .dissipation import anti_damping_warning, damping_rate_at, reports_anti_damping
from .errors import ModelError, SymglepError
from .model import Model
from .noise import parse_noise, study
from .noise import render_text as render_noise
from .parameter_values import draw_parameters, read_parameter_file
from .routes import LABELS
from .runtime import NoExactRouteError, compile_model
from .symbolic import distinct_factors

ECHO_TOLERANCE = 1e-6
FD_TOLERANCE = 1e-5
#: relative step of the central differences `check` compares BPTT with (``ε = FD_STEP · max(1, |θ_i|)``)
FD_STEP = 1e-6


def rel_err(a, b) -> float:
    """``‖a − b‖ / ‖b‖`` (2-norm over all entries; absolute when ``b`` is zero)."""
    a, b = np.ravel(a), np.ravel(b)
    scale = np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / (scale if scale > 0 else 1.0))


def energy_drift(energies, at_rest) -> float:
    """``max_k |H_k − H_0|`` relative to the run's energy scale: ``|H_0|``, or the largest kinetic part
    ``|H_k − H(q_k, p = 0)|`` when that is larger (a constant or linear term of V can put ``H_0`` near zero)."""
    e, rest = np.asarray(energies), np.asarray(at_rest)
    scale = max(abs(float(e[0])), float(np.max(np.abs(e - rest))), 1e-300)
    return float(np.max(np.abs(e - e[0])) / scale)


#: an undriven run whose energy drifts by more than this fraction of its scale is near the integrator's limit
DRIFT_LIMIT = 0.1


def drift_warning(drift: float | None, integrator: str) -> list:
    """A warning when the undriven run's energy drifts by more than :data:`DRIFT_LIMIT` (a probe: ω dt = 1.9999,
    drift 2.8, no word): the gradient is still the discrete system's, but that system is far from the
    continuous one, and near the leapfrog's limit every perturbation (the nudge, round-off) is amplified."""
    if drift is None or not drift > DRIFT_LIMIT:
        return []
    why = ("dt is close to the leapfrog's stability limit for the fastest mode (omega dt -> 2) or the run is stiff"
           if integrator != "midpoint" else "dt is large for the run's fastest motion")
    return [f"the energy of the undriven run drifts by {drift:.1e} of its scale (> {DRIFT_LIMIT:g}): {why}; the "
            "gradient is that of the discrete system, which is then far from the continuous one: reduce dt"]


#: below this |θ_i| the finite-difference step is relative to θ_i, rel_step·|θ_i| / SMALL_PARAMETER (the two rules
#: meet here): an absolute step of 1e-6 on a mass of 1e-6 kg moved it by half its value
SMALL_PARAMETER = 1e-3


def central_differences(loss, theta: np.ndarray, rel_step: float, entries=None) -> np.ndarray:
    """``(loss(θ + ε e_i) − loss(θ − ε e_i)) / 2ε`` for each parameter, ``ε = rel_step·max(1, |θ_i|)``, and for
    ``0 < |θ_i| <`` :data:`SMALL_PARAMETER` ``ε = rel_step·|θ_i| / SMALL_PARAMETER`` (the same at the boundary): the
    step keeps a parameter's sign and scale (a probe's C2 = 1e-6 under √C2 was stepped to −1e-4 and the free run
    failed; a mass of 1e-6 stepped by half its value gave differences 1.7e3 off, and the Richardson step ε/2 was
    capped to the same ε). ``entries``: only these indices of θ (in their order), by default all."""
    entries = range(theta.size) if entries is None else entries
    out = np.empty(len(entries))
    for n, i in enumerate(entries):
        eps = rel_step * max(1.0, abs(theta[i]))
        if 0 < abs(theta[i]) < SMALL_PARAMETER:
            eps = rel_step * abs(theta[i]) / SMALL_PARAMETER
        hi, lo = theta.copy(), theta.copy()
        hi[i] += eps
        lo[i] -= eps
        out[n] = (loss(hi) - loss(lo)) / (2 * eps)
    return out


def finite_differences(loss, theta: np.ndarray, reference: np.ndarray, step: float = FD_STEP,
                       entries=None) -> tuple:
    """Central differences at the relative ``step`` and, when they miss ``reference`` (BPTT at ``entries``) by
    more than FD_TOLERANCE, Richardson's ``(4 D(ε/2) − D(ε)) / 3``, whose O(ε²) truncation is gone: a loss that
    bends sharply in θ (a run passing close to a singular point, a strongly curved trained network: probes of
    scalar, array and stack checks) makes the plain step's error the larger one, not the gradient's. Every kind's
    check uses it. Returns ``(differences, rule)``, ``rule`` '' for the plain step."""
    plain = central_differences(loss, theta, step, entries)
    if rel_err(reference, plain) <= FD_TOLERANCE:
        return plain, ""
    half = central_differences(loss, theta, step / 2, entries)
    richardson = (4 * half - plain) / 3
    return richardson, f"Richardson differences at steps {step:g}, {step / 2:g}; plain {rel_err(reference, plain):.1e}"


def smooth_signal(rng: np.random.Generator, times: np.ndarray, width: int, amplitude: float) -> np.ndarray:
    """``(K+1, width)``: a sum of three random sines per channel."""
    out = np.zeros((times.size, width))
    for c in range(width):
        for _ in range(3):
            w, phase = rng.uniform(0.5, 3.0), rng.uniform(0, 2 * math.pi)
            out[:, c] += amplitude / 3 * np.sin(w * times + phase)
    return out


def load_params(path: str, model: Model) -> dict:
    """Parameter values from a JSON object ``{name: value}`` (or a training file's ``parameters``)."""
    data = read_parameter_file(path, [s.name for s in model.parameters])
    try:
        return {k: float(v) for k, v in data.items()}
    except (TypeError, ValueError):
        raise SymglepError(f"parameters file {path}: every value must be a number") from None


def require_run_settings(steps: int, dt: float, beta):
    """One-line errors for a check's ``--steps``, ``--dt`` and ``--beta`` (every kind of system);
    returns β: ``"auto"`` or a positive number."""
    if steps < 1:
        raise SymglepError(f"--steps must be at least 1, got {steps}")
    if not (dt > 0 and math.isfinite(dt)):
        raise SymglepError(f"--dt must be a positive number, got {dt}")
    if not math.isfinite(steps * dt * 1e3):
        raise SymglepError(f"--steps x --dt = {steps} x {dt:g} is not a finite time span (the drawn inputs "
                           "and the node times overflow)")
    return parse_beta(beta)


def auto_beta(contrast, tolerance: float, order: int = 2):
    """The :class:`~symglep.beta.BetaChoice` of a check whose echo-vs-BPTT tolerance is ``tolerance``:
    the bias aimed for is ``min(BIAS_TOLERANCE, tolerance / 10)``, so the β error uses a tenth of it."""
    return choose_beta(contrast, order=order, tolerance=min(BIAS_TOLERANCE, tolerance / 10))


def predicted_error(choice) -> float:
    """Bias + round-off the pilot predicts at the chosen β (relative)."""
    return choice.predicted_bias + choice.predicted_roundoff


CONTRASTS = {2: "centred (echoes at ±beta)", 4: "Richardson (echoes at ±beta and ±2 beta, theory §5)"}


def contrast_kind(label: str) -> str:
    """``centred`` or ``Richardson``: the name of a report's contrast label (:data:`CONTRASTS`)."""
    return label.split(" (")[0]


def choose_contrast(contrast, tolerance: float) -> tuple:
    """``(choice, order)`` of ``--beta auto``: the centred contrast's β, or the Richardson contrast's when
    the centred one cannot reach the tolerance in float64 and the O(β⁴) one predicts less error
    (theory §6). ``contrast(b, order=2)`` returns the estimates at nudge ``b``."""
    choice = auto_beta(contrast, tolerance)
    if predicted_error(choice) > choice.tolerance:
        fourth = auto_beta(lambda b: contrast(b, 4), tolerance, order=4)
        if predicted_error(fourth) < predicted_error(choice):
            return fourth, 4
    return choice, 2


def suggested_beta(beta: float, error: float, tolerance: float, order: int) -> float:
    """A β whose bias ``c·β^p``, measured as ``error`` at ``beta``, falls below ``tolerance`` (margin 2)."""
    return beta * (tolerance / error) ** (1 / order) / 2


def start_positions(model: Model, rng) -> np.ndarray:
    """``q0`` ``(1, n)`` of a check: the model's ``initial_positions(rng)`` where it declares them (a start away
    from a singular set), else uniform in [-0.3, 0.3] (the same draws as before the option existed)."""
    if model.initial_positions is None:
        return rng.uniform(-0.3, 0.3, (1, model.n))
    try:
        q0 = np.asarray(model.initial_positions(rng), dtype=np.float64).reshape(-1)
    except Exception as exc:  # the user's function: its failure is a model error, not ours
        raise ModelError(f"initial_positions of {model.name!r} raised {type(exc).__name__}: {exc}") from None
    if q0.shape != (model.n,) or not np.all(np.isfinite(q0)):
        raise ModelError(f"initial_positions of {model.name!r} must return {model.n} finite numbers, got {q0!r}")
    return q0[None]


def check_instance(model: Model, kernels, steps: int, dt: float, seed: int, params: dict | None = None) -> tuple:
    """``(θ, q0, p0, u, y)`` of the seeded instance the check measures: one sequence, started by momentum."""
    rng = np.random.default_rng(seed)
    theta = params if params is not None else draw_parameters(model, rng)
    th = kernels.theta(theta)
    n = model.n
    q0 = start_positions(model, rng)
    v0 = rng.uniform(-0.3, 0.3, (1, n))
    times = np.arange(steps + 1) * dt
    u = smooth_signal(rng, times, len(model.u), 0.2)[None]
    y = smooth_signal(rng, times, len(model.y), 0.3)[None]
    p0 = np.empty((1, n))
    try:
        with np.errstate(divide="raise", invalid="raise", over="raise"):
            kernels.module.f_momentum(q0[0], v0[0], 0.0, u[0, 0], th, p0[0])
    except (ArithmeticError, FloatingPointError) as exc:
        raise NumericalError(f"the start momentum p0 = dL/dv(q0, v0) of the checked instance: {exc} at these "
                             "parameters (a singular point of the model, e.g. det M = 0 there)", "start") from None
    if not np.all(np.isfinite(p0)):
        raise NumericalError("the start momentum p0 = dL/dv(q0, v0) of the checked instance is not finite at these "
                             "parameters (a singular point of the model, e.g. det M = 0 there)", "start")
    return th, q0, p0, u, y


@reports_anti_damping
def run_check(model: Model, steps: int = 1000, dt: float = 0.01, beta=AUTO, seed: int = 0,
              params: dict | None = None, integrator: str = "auto", tolerance: float = ECHO_TOLERANCE,
              cache: str | None = None, route: str = "auto", naive_echo: bool = False,
              noise=None) -> dict:
    """All the measurements of the module docstring, as a JSON-ready dict.

    ``beta``: a positive number or ``"auto"``; ``noise``: σ of the noise study, or a list of them
    (``None``: no study).
    """
    beta = require_run_settings(steps, dt, beta)
    sigmas = None if noise is None else [parse_noise(s) for s in np.atleast_1d(noise)]
    kernels = compile_model(model, integrator=integrator, dt=dt, cache=cache)
    try:
        route = kernels.route(route, naive_echo)
    except NoExactRouteError as exc:  # the check can still measure BPTT against finite differences
        raise NoExactRouteError(f"{str(exc).removesuffix('; use bptt_gradient')}; check --naive-echo measures BPTT "
                                "against finite differences and that echo's bias; train with --estimator bptt") from None
    if route == "bptt":
        raise SymglepError("check compares a contrastive route with BPTT; choose --route auto, echo, "
                           "flipped_echo or digital_pfvp")
    exact = route != "naive_echo" or (kernels.module.TIME_REVERSIBLE and not kernels.module.DAMPED)
    th, q0, p0, u, y = check_instance(model, kernels, steps, dt, seed, params)
    at_start = singular_start(model, th, q0[0])
    if at_start:
        raise NumericalError(at_start, "start")

    singular = None
    try:
        qT, pT, loss = kernels.free(th, q0, p0=p0, u=u, y=y)
        singular = singular_crossing(model, th, lambda: kernels.free(th, q0, p0=p0, u=u, y=y, record=True)[3][0], dt)
        report = _measure(model, kernels, route, exact, th, q0, p0, u, y, qT, pT, loss, steps, dt, beta, seed,
                          params, tolerance, sigmas)
    except NumericalError as exc:
        more = (f"; {singular}" if singular else "") + ("" if params is not None else drawn_note(model, th))
        if not more:
            raise
        raise NumericalError(f"{exc}{more}", exc.phase, exc.sequence, exc.step, exc.state) from None
    report["warnings"] += [singular] if singular else []
    return report


def complex_step_agreement(complex_step, bptt) -> float | None:
    """``rel_err(complex step, BPTT)``, or ``None`` where the complex step cannot run (non-analytic maths, a
    numerical failure): called only where BPTT and the finite differences disagree."""
    try:
        return rel_err(complex_step(), bptt)
    except SymglepError:
        return None


def fd_side_warning(err_fd: float, complex_rel: float | None) -> list:
    """A warning, where BPTT misses the finite differences, that the complex-step echo meets BPTT: two exact
    routes to the discrete gradient agree, so the differences are the inaccurate side (a probe: a chaotic array
    run's check read "BPTT vs finite diff. 2.0 FAIL", which points at the derivation, while the complex step met
    BPTT to 3e-8). They agree when within the differences' tolerance and a hundred times closer than the
    differences (a chaotic run amplifies both exact routes' round-off too: 4e-7 against differences 0.28 off).
    The verdict stays: the gradient was not confirmed by an independent difference quotient."""
    if complex_rel is None or not err_fd > FD_TOLERANCE or not (complex_rel <= FD_TOLERANCE
                                                                and 100 * complex_rel <= err_fd):
        return []
    return [f"BPTT and the complex-step echo, two exact routes to the discrete gradient, agree to {complex_rel:.1e}: "
            f"the finite differences ({err_fd:.1e} off) are the inaccurate side, not the derivation (the loss bends "
            "too sharply over their step, or the run amplifies it: a chaotic or long run); shorten the run (--steps) "
            "to confirm with finite differences"]


def zero_gradient_warning(bptt, fd) -> list:
    """A warning when BPTT and the finite differences are both exactly 0 for every parameter: "0.000e+00 ok"
    then tested nothing (a wall k·Max(0, x − a)² that this instance never reaches, new-user probe)."""
    if np.size(bptt) == 0:
        return ["the model has no parameters: only the start-state gradients (dC/dq0, dC/dp0) were compared"]
    if np.any(np.asarray(bptt) != 0) or np.any(np.asarray(fd) != 0):
        return []
    return ["every parameter's gradient is exactly 0 on this instance (BPTT and the finite differences), so the "
            "comparison tested nothing: the run never reaches where the parameters act (e.g. a wall or a switch it "
            "does not touch); try another --seed, longer --steps or --params"]


def drawn_note(model: Model, th) -> str:
    """The drawn parameters of a failed check, naming those of undeclared sign drawn negative (undeclared
    signs are drawn in [-1, 1], :func:`~symglep.parameter_values.draw_parameters`): a mass or stiffness
    that should be positive then makes an unstable run."""
    values = ", ".join(f"{s.name} = {v:.3g}" for s, v in zip(model.parameters, np.ravel(th)))
    unsigned = [s.name for s, v in zip(model.parameters, np.ravel(th))
                if v < 0 and not any((s.is_positive, s.is_negative, s.is_nonnegative, s.is_nonpositive))]
    hint = (f"; {', '.join(unsigned)}, of no declared sign, drawn negative (undeclared signs are drawn in "
            "[-1, 1]): declare positive=True where the physics needs it" if unsigned else "")
    return f" (at the drawn parameters {values}{hint}; --params FILE.json chooses them, --seed redraws)"


def _measure(model, kernels, route, exact, th, q0, p0, u, y, qT, pT, loss, steps, dt, beta, seed, params, tolerance,
             sigmas) -> dict:
    """The measurements of :func:`run_check` from its free run."""
    gamma = damping_rate_at(model, th)
    if route == "digital_pfvp":
        back_q, back_p, _, _ = kernels.pfvp_backward(th, qT, pT, [0.0], u=u, y=y)
    else:
        sigma, pi, _, _ = kernels.echo(th, qT, pT, [0.0], u=u, y=y, naive_echo=route == "naive_echo")
        back_q, back_p = sigma, -pi
    scale = max(1.0, float(np.max(np.abs(np.concatenate([q0, p0], axis=1)))))
    roundtrip = float(max(np.max(np.abs(back_q[:, 0] - q0)), np.max(np.abs(back_p[:, 0] - p0))) / scale)

    drift = None
    if not _explicit_time(model) and not kernels.module.DAMPED:  # a damped run loses energy by design
        zero_u = np.zeros_like(u)
        out = kernels.free(th, q0, p0=p0, u=zero_u, y=y, record=True)
        energies = kernels.energy(th, out[3], out[4], u=zero_u)
        if energies is not None:
            at_rest = kernels.energy(th, out[3], np.zeros_like(out[4]), u=zero_u)
            drift = energy_drift(energies[0], at_rest[0])

    naive = route == "naive_echo"
    choice = None
    order = 2
    if beta == AUTO:
        def contrast(b, order=2):
            r = kernels.gradient(th, q0, p0=p0, u=u, y=y, beta=b, order=order, route=route, naive_echo=naive,
                                 retrace=False)  # the check measures the round trip itself
            return [r.dtheta[0], np.concatenate([r.dq0[0], r.dx0[0]])]

        choice, order = choose_contrast(contrast, tolerance)
        beta = choice.beta
    def estimates(beta, order):
        echo = kernels.gradient(th, q0, p0=p0, u=u, y=y, beta=beta, order=order, route=route, naive_echo=naive,
                                retrace=False)
        one_sided = kernels.gradient(th, q0, p0=p0, u=u, y=y, beta=beta, centred=False, route=route,
                                     naive_echo=naive, retrace=False)
        doubled = kernels.gradient(th, q0, p0=p0, u=u, y=y, beta=2 * beta, order=order, route=route,
                                   naive_echo=naive, retrace=False)
        return echo, beta_error_estimates(echo.dtheta[0], one_sided.dtheta[0], doubled.dtheta[0], order)

    echo, beta_error = estimates(beta, order)
    kinked = kinks(model)
    if choice is not None and beta_error["centred"] > tolerance and kinked:
        # across a kink the contrast is not smooth in β and the pilot's laws fail; a β small enough that the
        # nudged runs cross it on the free run's step usually holds (a probe's wall: 3.9e-3 at the choice, 6e-10)
        small = estimates(KINK_BETA, 2)
        if small[1]["centred"] < beta_error["centred"]:
            (echo, beta_error), beta, order = small, KINK_BETA, 2
            choice = dataclasses.replace(choice, beta=KINK_BETA, order=2, predicted_bias=beta_error["centred"],
                                         predicted_roundoff=choice.roundoff / KINK_BETA, note=(
                f"the model has a kink ({', '.join(kinked)}): the pilot's choice measured a beta error "
                f"above the tolerance, so beta = {KINK_BETA:g} (centred), small enough to cross the kink on the "
                "free run's step"))
    roundoff_bound = False
    if choice is None and beta_error["centred"] > tolerance and not kinked:
        # a fixed beta: is the estimate's excess bias (it falls with beta^order) or round-off (it grows)?
        tenth = kernels.gradient(th, q0, p0=p0, u=u, y=y, beta=beta / 10, order=order, route=route,
                                 naive_echo=naive, retrace=False)
        roundoff_bound = rel_err(tenth.dtheta[0], echo.dtheta[0]) > ROUNDOFF_RATIO * beta_error["centred"]
    bptt = kernels.bptt_gradient(th, q0, p0=p0, u=u, y=y)
    fd, fd_rule = finite_differences(lambda t: kernels.free(t, q0, p0=p0, u=u, y=y)[2][0], th, bptt.dtheta[0])
    err_theta = rel_err(echo.dtheta[0], bptt.dtheta[0])
    err_init = rel_err(np.concatenate([echo.dq0[0], echo.dx0[0]]), np.concatenate([bptt.dq0[0], bptt.dx0[0]]))
    err_fd = rel_err(bptt.dtheta[0], fd)
    complex_rel = None
    if err_fd > FD_TOLERANCE and exact:
        complex_rel = complex_step_agreement(lambda: kernels.complex_step_gradient(
            th, q0, p0=p0, u=u, y=y, route=route, retrace=False).dtheta[0], bptt.dtheta[0])
    names = [s.name for s in model.parameters]
    noise_study = None
    if sigmas is not None:
        def integrals(nudges):
            if route == "digital_pfvp":
                return kernels.pfvp_backward(th, qT, pT, nudges, u=u, y=y)[2][0]
            return kernels.echo(th, qT, pT, nudges, u=u, y=y, naive_echo=naive)[2][0]

        noise_study = study(integrals, bptt.dtheta[0], sigmas, seed=seed)
    return {
        "model": model.name,
        "integrator": kernels.integrator,
        "route": route,
        "route_label": LABELS[route],
        "route_exact": bool(exact),
        "steps": steps,
        "dt": dt,
        "beta": beta,
        "beta_auto": None if choice is None else choice.to_json(),
        "contrast": CONTRASTS[order],
        "seed": seed,
        "parameters": dict(zip(names, map(float, th))),
        "loss": float(loss[0]),
        "roundtrip_error": roundtrip,
        "energy_drift": drift,
        "rel_err_echo_vs_bptt": err_theta,
        "rel_err_init_state": err_init,
        "rel_err_bptt_vs_fd": err_fd,
        "tolerance_echo_vs_bptt": tolerance,
        "tolerance_bptt_vs_fd": FD_TOLERANCE,
        "fd_rule": fd_rule,
        "one_sided_vs_centred": beta_error["one_sided"],
        "centred_error_estimate": beta_error["centred"],
        "warnings": warnings(roundtrip, beta, beta_error, tolerance, order, exact, choice, kinked, roundoff_bound)
                    + growth_warning(model, q0, p0, qT, pT, params is None, gamma=gamma, T=steps * dt,
                                     least_mass=least_mass(model, th, q0))
                    + anti_damping_warning(gamma, steps * dt) + drift_warning(drift, kernels.integrator)
                    + sign_warnings(model, th)
                    + zero_gradient_warning(bptt.dtheta[0], fd) + fd_side_warning(err_fd, complex_rel),
        "noise": noise_study,
        "passed": bool((not exact or (err_theta <= tolerance and err_init <= tolerance)) and err_fd <= FD_TOLERANCE),
        "gradients": {
            "echo": dict(zip(names, map(float, echo.dtheta[0]))),
            "bptt": dict(zip(names, map(float, bptt.dtheta[0]))),
            "finite_differences": dict(zip(names, map(float, fd))),
            "echo_dq0": echo.dq0[0].tolist(), "bptt_dq0": bptt.dq0[0].tolist(),
            "echo_dp0": echo.dx0[0].tolist(), "bptt_dp0": bptt.dx0[0].tolist(),
        },
    }


def beta_error_estimates(contrast, one_sided, contrast_2beta, order: int = 2) -> dict:
    """The β (finite-difference) error of each echo estimator, measured from the estimates alone (theory §5).

    The one-sided estimate errs by ``a·β``, the contrast of order p (2 centred, 4 Richardson) by
    ``c·β^p``. Their difference measures the first: ``‖one-sided − contrast‖/‖contrast‖``. The
    contrast's error follows by Richardson from a second estimate at ``2β``: ``G(2β) − G(β) ≈
    (2^p − 1)cβ^p``, so it is ``‖G(2β) − G(β)‖ / (2^p − 1)‖G(β)‖`` (key ``centred``, whichever p).
    """
    return {"one_sided": rel_err(one_sided, contrast), "centred": rel_err(contrast_2beta, contrast) / (2**order - 1)}


#: the centred contrast's β for a model with a kink when the automatic choice fails there (see _measure)
KINK_BETA = 1e-6

#: functions whose derivative jumps: a run crossing one is not smooth in β (the contrast's error model fails)
KINKED = (sp.Max, sp.Min, sp.Abs, sp.Heaviside, sp.Piecewise, sp.sign)


def kinks(model: Model) -> list:
    """The kinked sub-expressions of L and the costs (Max, Abs, Piecewise, ...), as printed, at most three."""
    found = []
    for expr in (model.lagrangian, model.cost, model.terminal_cost):
        found += [str(a) for a in sp.sympify(expr).atoms(*KINKED)]
    return sorted(set(found))[:3]


#: at a fixed beta, the estimate moving this many times its beta error estimate when beta falls tenfold marks a
#: contrast dominated by round-off (a bias falls with beta^order and moves it by about its estimate)
ROUNDOFF_RATIO = 3.0


def warnings(roundtrip: float, beta: float, beta_error: dict, tolerance: float, order: int = 2,
             exact: bool = True, choice=None, kinked: list = (), roundoff_bound: bool = False) -> list:
    """What the measurements say about the trust one can put in the echo gradient (theory §6); ``exact``
    False: the route is the naive echo of a model that is not reversible (theory §4, §7); ``choice``: the
    automatic β's :class:`~symglep.beta.BetaChoice`, when β was chosen (no smaller β can help when even its
    best β leaves bias plus round-off above the tolerance); ``kinked``: the model's kinks (:func:`kinks`), across
    which the contrast is not smooth in β, so that the β laws behind the choice and its estimates do not hold;
    ``roundoff_bound``: at a fixed β, the estimate moved more than :data:`ROUNDOFF_RATIO` times its β error
    estimate when β fell tenfold, so round-off, not bias, dominates it and a larger β helps."""
    out = []
    if not exact:
        out.append(f"the naive echo does not retrace the free run (round-trip error {roundtrip:.1e}): the model "
                   "is not time-reversible in its canonical variables (H(q, -p) differs from H(q, p): a term odd in "
                   "the velocities, a magnetic or a gauge term, which symglep derive names) or not variational "
                   "(damping), so the echo runs a different system by construction "
                   "and its gradient is biased (theory §4, §7); the comparison with BPTT measures that bias")
        return out
    floor = None if choice is None else choice.predicted_bias + choice.predicted_roundoff
    if beta_error["centred"] > tolerance and kinked:
        out.append(f"the model has a kink ({', '.join(kinked)}): where the run crosses it the contrast is not smooth "
                   f"in beta, so the beta error estimate ({beta_error['centred']:.1e}) and the automatic choice do not "
                   "hold there; a small fixed beta usually does (e.g. --beta 1e-6: the nudged runs then cross the kink "
                   "on the same step as the free run)")
    elif beta_error["centred"] > tolerance and floor is not None and floor > tolerance:
        out.append(f"the tolerance {tolerance:.0e} is not reachable on this instance in float64: at the best beta "
                   f"({beta:g}) the predicted beta error is {choice.predicted_bias:.1e} and the round-off "
                   f"{choice.predicted_roundoff:.1e} (theory §6), so neither a smaller nor a larger beta helps; a "
                   "strongly curved or chaotic run: shorten it (--steps), or judge it at a looser --tolerance (the "
                   "complex-step echo, which has no beta error, may reach it: train --estimator echo-complex)")
    elif beta_error["centred"] > tolerance and roundoff_bound:
        out.append(f"beta = {beta:g} is so small that round-off dominates the {contrast_kind(CONTRASTS[order])} "
                   f"echo estimate: its error estimate ({beta_error['centred']:.1e} > tolerance {tolerance:.0e}) "
                   f"grows as beta falls instead of falling with beta^{order}; try a larger beta (--beta "
                   f"{10 * beta:.1g}) or --beta auto")
    elif beta_error["centred"] > tolerance:
        better = suggested_beta(beta, beta_error["centred"], tolerance, order)
        out.append(f"beta = {beta:g} is too large for this model's curvature: the {contrast_kind(CONTRASTS[order])} "
                   f"echo estimate's finite-difference error is about {beta_error['centred']:.1e} (> tolerance "
                   f"{tolerance:.0e}); try --beta {better:.1g}")
    return out + roundtrip_warning(roundtrip, tolerance)


def roundtrip_warning(roundtrip: float, tolerance: float) -> list:
    """A warning when the free run, flipped and run back, misses its start by more than the tolerance."""
    if roundtrip <= tolerance:
        return []
    return [f"the free run is not reversible to the gradient tolerance: round-trip error {roundtrip:.1e} "
            f"> {tolerance:.0e}, so the echo does not retrace the free run closely enough for its gradient "
            "to be trusted to that tolerance (floating-point drift of a long or chaotic run, theory §6); "
            "shorten the sequence or reduce dt"]


#: a final state this many times the start's scale marks an instance that runs away (exponential growth)
RUNAWAY_GROWTH = 1e3


def declared_sign(parameter) -> str | None:
    """``positive``, ``negative`` or ``None``: a SymPy symbol's assumption, an array parameter's ``positive``."""
    if getattr(parameter, "is_positive", None) or getattr(parameter, "positive", False) is True:
        return "positive"
    return "negative" if getattr(parameter, "is_negative", None) else None


def growth_warning(model, q0, p0, qT, pT, drawn: bool, drawn_in: str = "[-1, 1]", gamma: float = 0.0,
                   T: float = 0.0, least_mass: float | None = None) -> list:
    """A warning when the checked run ends :data:`RUNAWAY_GROWTH` times larger than it started: an unstable
    instance amplifies every finite difference (the echo's β error, BPTT vs finite differences). When the
    parameters were drawn, it names those without a sign assumption (drawn in ``drawn_in``). A damped run
    (rate ``gamma``, from t = 0 to ``T``) is judged on ``e^{−γT} p_T``: its canonical momentum
    ``e^{γt} M v`` grows while the motion decays (theory §7; :func:`anti_damping_warning` covers that).
    ``least_mass``: the least eigenvalue of M at the start; a negative one (a negative kinetic energy) is named
    as the likely cause."""
    start = max(1.0, float(np.max(np.abs(np.concatenate([q0, p0], axis=1)))))
    end = float(np.max(np.abs(np.concatenate([qT, np.asarray(pT) * math.exp(-gamma * T)], axis=1))))
    if not end > RUNAWAY_GROWTH * start:
        return []
    unsigned = [s.name for s in model.parameters if declared_sign(s) is None]
    hint = (f"; the kinetic energy is negative at the start (M has the eigenvalue {least_mass:.3g}): against a "
            "confining potential such a system runs away; check the sign of the kinetic term"
            if least_mass is not None and least_mass < 0 else
            f"; {', '.join(unsigned)} carry no sign assumption and were drawn in {drawn_in}: declare "
            "positive=True on those that must be positive, or give --params" if drawn and unsigned
            else "; give --params with values that keep the system bounded")
    return [f"the checked run grows from {start:.1g} to {end:.1e}: this instance is unstable, which amplifies "
            f"every finite difference (the echo's beta error among them){hint}"]


def _mass_of(model: Model, t0: float | None = None, timed: bool = False):
    """M of theory §1 with the constants in (and the time at ``t0``, when given), and ``M(q, θ)`` as a NumPy
    function (``M(q, θ, t)`` when ``timed``); ``None`` when M reads more than the positions and parameters
    (velocities, inputs, and the time unless ``timed``)."""
    mass = derive(model, simplify="none").el.mass_matrix.xreplace(model.constants)
    if t0 is not None:
        mass = mass.xreplace({model.time: t0})
    if not mass.free_symbols <= set(model.q) | set(model.parameters) | ({model.time} if timed else set()):
        return None, None
    return mass, sp.lambdify([*model.q, *model.parameters, *([model.time] if timed else [])], mass, "numpy")


def _start_mass(model: Model, theta, q0) -> np.ndarray | None:
    """M at the start ``q0`` and ``t = 0`` (a Caldirola–Kanai M = e^{γt} M₀ there) as numbers; ``None`` when M
    reads velocities, inputs or time."""
    mass, function = _mass_of(model, 0.0)
    if mass is None:
        return None
    with np.errstate(all="ignore"):
        return np.asarray(function(*np.ravel(q0), *np.ravel(theta)), dtype=np.float64)


def least_mass(model: Model, theta, q0) -> float | None:
    """The least eigenvalue of M at the start (``None`` when M reads velocities, inputs or time)."""
    values = _start_mass(model, theta, q0)
    return float(np.min(np.linalg.eigvalsh(values))) if values is not None and np.all(np.isfinite(values)) else None


def singular_start(model: Model, theta, q0) -> str | None:
    """A message when M is singular at the start ``q0`` (det M = 0 there: a zero mass, a coordinate singularity):
    no equation of motion holds, so nothing a check measures means anything; else ``None``."""
    values = _start_mass(model, theta, q0)
    if values is None:
        return None
    with np.errstate(all="ignore"):
        det = np.linalg.det(values)
    if det != 0 and np.isfinite(det):
        return None
    return (f"the mass matrix M is singular at the checked start (det M = {det:g} at these parameters and q0, "
            "e.g. a zero mass or r = 0 in polar coordinates): no equation of motion holds there")


def singular_crossing(model: Model, theta, traj_q, dt: float, t0: float = 0.0) -> str | None:
    """Where a recorded free run ``traj_q`` ``(K+1, n)`` (or a function that records it, called only where M
    reads the positions) crosses det M = 0 (M of theory §1): a factor of det M that reads the positions changes
    sign between two nodes (r of det M = m² r² in polar coordinates, sin θ of Euler angles; a mass
    1 + e cos(ωt) that a drawn e > 1 takes through zero). The coordinates are singular there and the equations
    of motion do not hold. ``None`` when it does not, or when M reads more than the positions, parameters and
    time."""
    mass, mass_function = _mass_of(model, timed=True)
    moving = set(model.q) | {model.time}
    if mass is None or not mass.free_symbols & moving:
        return None
    traj_q = traj_q() if callable(traj_q) else traj_q
    parts = distinct_factors(mass.det(method="berkowitz")) if mass.rows <= 3 else []
    parts = [f for f in parts if f.free_symbols & moving] or [None]  # None: the numerical det
    values = np.ravel(theta)
    arguments = [*model.q, *model.parameters, model.time]
    for factor in parts:
        function = mass_function if factor is None else sp.lambdify(arguments, factor, "numpy")
        with np.errstate(all="ignore"):
            raw = [np.asarray(function(*q, *values, t0 + k * dt), dtype=np.float64) for k, q in enumerate(traj_q)]
            signs = np.sign([np.linalg.det(r) if factor is None else float(r) for r in raw])
        if not np.all(np.isfinite(signs)) or signs[0] == 0:
            continue
        flips = np.nonzero(signs[1:] != signs[:-1])[0]
        if flips.size:
            k = int(flips[0])
            where = "det M" if factor is None else f"{factor} (a factor of det M)"
            if factor is not None and not factor.free_symbols & set(model.q):
                return (f"the free run crosses {where} = 0 between steps {k} and {k + 1} (t = {t0 + k * dt:.4g}): "
                        "at these parameters M is singular at that time, and the equations of motion do not hold "
                        "there; use --params that keep it regular, or a shorter run")
            return (f"the free run crosses {where} = 0 between steps {k} and {k + 1} (t = {t0 + k * dt:.4g}): M is "
                    "singular there (e.g. r = 0 in polar coordinates) and the equations of motion do not hold; "
                    "start away from that set (Model(initial_positions=...)), or use --params or a shorter run")
    return None


def sign_warnings(model: Model, theta) -> list:
    """A warning per parameter whose value contradicts its declared sign (``positive=True`` or
    ``negative=True``): the derivation assumed that sign (e.g. a mass in a square root)."""
    out = []
    for s, value in zip(model.parameters, np.asarray(theta, dtype=float)):
        if (s.is_positive and not value > 0) or (s.is_negative and not value < 0):
            sign = "positive" if s.is_positive else "negative"
            out.append(f"parameter {s.name} = {value:g} contradicts its declaration {sign}=True: the derivation "
                       "(simplifications, the Legendre transform) assumed that sign")
    return out


def _explicit_time(model: Model) -> bool:
    return model.time in model.lagrangian.free_symbols


#: the heading of the estimate's column in the gradient table, by route
COLUMN = {"flipped_echo": "flipped echo", "digital_pfvp": "digital PFVP", "naive_echo": "naive echo"}


def render_text(r: dict) -> str:
    fmt = lambda x: "n/a" if x is None else f"{x:.3e}"  # noqa: E731
    lines = [
        f"model {r['model']}: {r['integrator']} integrator, K = {r['steps']} steps of dt = {r['dt']}, "
        f"beta = {r['beta']:.3g}, seed {r['seed']}",
        f"route: {r['route_label']}; contrast: {r.get('contrast', CONTRASTS[2])}",
        *([describe(r["beta_auto"])] if r.get("beta_auto") else []),
        "parameters (theta)                " + ", ".join(f"{k} = {v:.6g}" for k, v in r["parameters"].items()),
        f"loss                              {r['loss']:.10g}",
        f"round-trip error (free-flip-free) {fmt(r['roundtrip_error'])}",
        f"energy drift (undriven)           {fmt(r['energy_drift'])}",
        "",
        f"{'parameter':<12} {COLUMN.get(r['route'], 'echo'):>16} {'BPTT':>16} {'finite diff':>16}",
    ]
    g = r["gradients"]
    for name in r["parameters"]:
        lines.append(f"{name:<12} {g['echo'][name]:>16.9e} {g['bptt'][name]:>16.9e} "
                     f"{g['finite_differences'][name]:>16.9e}")
    ok = lambda e, t: "ok" if e <= t else "FAIL"  # noqa: E731
    kind = contrast_kind(r.get("contrast", CONTRASTS[2]))  # the contrast measured
    if not r["route_exact"]:
        ok = lambda e, t: "(bias of a route that is not exact; not a pass criterion)"  # noqa: E731
    estimate = COLUMN.get(r["route"], "echo")
    lines += [
        "",
        f"{f'rel. error {estimate} vs BPTT (theta)':<34} {fmt(r['rel_err_echo_vs_bptt'])}  "
        f"(tolerance {r['tolerance_echo_vs_bptt']:.0e}) {ok(r['rel_err_echo_vs_bptt'], r['tolerance_echo_vs_bptt'])}",
        f"{f'rel. error {estimate} vs BPTT (q0, p0)':<34} {fmt(r['rel_err_init_state'])}  "
        f"(tolerance {r['tolerance_echo_vs_bptt']:.0e}) {ok(r['rel_err_init_state'], r['tolerance_echo_vs_bptt'])}",
        f"rel. error BPTT vs finite diff.    {fmt(r['rel_err_bptt_vs_fd'])}  "
        f"({r['fd_rule'] + '; ' if r.get('fd_rule') else ''}tolerance {r['tolerance_bptt_vs_fd']:.0e}) "
        f"{'ok' if r['rel_err_bptt_vs_fd'] <= r['tolerance_bptt_vs_fd'] else 'FAIL'}",
        f"{'one-sided vs ' + kind + ' echo':<34} {fmt(r['one_sided_vs_centred'])}  "
        + ("(the naive echo does not retrace the free run: its one-sided estimate carries that gap / beta)"
           if r.get("route") == "naive_echo" else "(error of the one-sided estimate at this beta)"),
        f"{kind + ' echo: beta error estimate':<34} {fmt(r['centred_error_estimate'])}  "
        "(from the estimates at beta and 2 beta)",
    ]
    lines += [f"warning: {w}" for w in r["warnings"]]
    if r.get("noise"):
        lines += ["", render_noise(r["noise"]).rstrip("\n"),
                  "(the noise study is a measurement; the pass criterion is the noiseless one above)"]
    verdict = "passed" if r["passed"] else "FAILED"
    if not r["route_exact"]:
        verdict += " (BPTT vs finite differences only: the route is not exact here, its bias is reported above)"
    lines.append(verdict)
    return "\n".join(lines) + "\n"
