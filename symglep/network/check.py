"""``symglep check`` for array models: echo vs BPTT vs finite differences on one seeded instance.

The same measurements as the scalar check (theory §5–§6) at the model's default size:
round-trip error, energy drift, the centred echo against BPTT of the same integrator (leapfrog, or the
implicit midpoint rule of a position-dependent mass)
(parameters and initial state; the input gradient dC/du; θ and dC/dv0 from a drawn velocity
start) and BPTT against central differences of the discrete loss on a few drawn parameter
entries. A terminal cost is part of the loss (theory §10).
"""

from __future__ import annotations

import math

import numpy as np

from ..beta import AUTO, describe
from ..check import (FD_TOLERANCE, anti_damping_warning, auto_beta, complex_step_agreement, declared_sign,
                     drift_warning, energy_drift, fd_side_warning, finite_differences, growth_warning, rel_err,
                     require_run_settings, roundtrip_warning, smooth_signal)
from ..diagnose import NumericalError
from ..dissipation import reports_anti_damping
from ..parameter_values import read_parameter_file
from ..errors import SymglepError
from .runtime import compile_array_model as compile_network

FD_ENTRIES = 6


def draw_parameters(model, n: int, m: int, ne: int, rng) -> dict:
    """Positive parameters in [0.5, 1.5]; square matrices in ±1/√n; other arrays and scalars in [-0.5, 0.5]."""
    out = {}
    for p in model.parameters:
        shape = model.parameter_shape(p, n, m, ne)
        if getattr(p, "init", None) is not None:
            out[p.name] = rng.uniform(p.init[0], p.init[1], shape)
        elif getattr(p, "positive", False) or getattr(p, "is_positive", False):
            out[p.name] = rng.uniform(0.5, 1.5, shape)
        elif len(shape) == 2 and shape[1] == n:
            out[p.name] = rng.uniform(-1.0, 1.0, shape) / math.sqrt(n)
        else:
            out[p.name] = rng.uniform(-0.5, 0.5, shape)
    return out


def draw_instance(model, kernels, n: int, batch: int, steps: int, dt: float, rng):
    """``(theta, q0, p0, u, y)`` of a seeded instance with n units."""
    m, ny = model.sizes["m"], model.sizes["r"]
    theta = draw_parameters(model, n, m, len(kernels.edges(n)), rng)
    if model.initial_positions is not None:
        q0 = np.stack([np.asarray(model.initial_positions(n, rng), dtype=float).reshape(-1) for _ in range(batch)])
    else:
        q0 = rng.uniform(-0.3, 0.3, (batch, n * model.dim))
    p0 = rng.uniform(-0.3, 0.3, (batch, n * model.dim))
    times = np.arange(steps + 1) * dt
    u = np.stack([smooth_signal(rng, times, m, 0.5) for _ in range(batch)])
    y = np.stack([smooth_signal(rng, times, ny, 0.3) for _ in range(batch)])
    if model.initial_positions is not None:  # targets around where the readout units start
        start = q0.reshape(batch, n, model.dim)[:, n - ny:, 0]
        y += start[:, None, :]
    return theta, q0, p0, u, y


def load_array_params(path: str, model) -> dict:
    """``{name: array}`` from a JSON object of numbers and nested lists (or a training file's ``parameters``)."""
    data = read_parameter_file(path, [p.name for p in model.parameters])
    out = {}
    for k, v in data.items():
        try:
            out[k] = np.asarray(v, dtype=np.float64)
        except (TypeError, ValueError):
            raise SymglepError(f"parameters file {path}: {k} must be a number or a (nested) list of "
                               "numbers") from None
    return out


@reports_anti_damping
def run_check(model, steps=1000, dt=0.01, beta=AUTO, seed=0, n=None, tolerance=1e-6, cache=None,
              params: dict | None = None, integrator: str = "auto") -> dict:
    """The measurements of the module docstring, as a JSON-ready dict.

    ``params``: ``{name: array}`` at ``n`` units instead of the seeded draw (shapes checked);
    ``beta``: a positive number or ``"auto"`` (:mod:`symglep.beta`, as the scalar check); ``integrator``:
    ``auto`` (the model's own) or ``midpoint`` (theory §6).
    """
    beta = require_run_settings(steps, dt, beta)
    n = n or model.size
    kern = compile_network(model, dt=dt, cache=cache, integrator=integrator)
    rng = np.random.default_rng(seed)
    theta, q0, p0, u, y = draw_instance(model, kern, n, 1, steps, dt, rng)
    if params is not None:
        theta = params
    signs = sign_warnings(model, theta)
    try:
        qT, pT, loss = kern.free(theta, q0, p0, u, y)
    except NumericalError as exc:  # a value against its declared sign is the likely cause: say so
        if not signs:
            raise
        raise NumericalError(f"{exc}; {'; '.join(signs)}", exc.phase, exc.sequence, exc.step, exc.state) from None
    sigma, pi, _ = kern.echo(theta, qT, pT, [0.0], u, y)
    scale = max(1.0, float(np.max(np.abs(np.concatenate([q0, p0], axis=1)))))
    roundtrip = float(max(np.max(np.abs(sigma[:, 0] - q0)), np.max(np.abs(pi[:, 0] + p0))) / scale)
    zero_u = np.zeros_like(u)
    args, _ = kern.prepare(theta, q0, p0, zero_u, y)
    _, _, _, tq, tp = kern.module.free(*args, dt, 0.0, True)
    e = kern.module.energy(args[0], args[1], args[2], tq, tp, zero_u, dt, 0.0)[0]
    at_rest = kern.module.energy(args[0], args[1], args[2], tq, np.zeros_like(tp), zero_u, dt, 0.0)[0]
    drift = None if model.explicit_time else energy_drift(e, at_rest)  # H(t) is not conserved
    choice = None
    if beta == AUTO:
        def contrast(b):
            r = kern.gradient(theta, q0, p0, u, y, beta=b, retrace=False)
            return [r.flat[0], np.concatenate([r.dq0.ravel(), r.dp0.ravel()])]

        choice = auto_beta(contrast, tolerance)
        beta = choice.beta
    inputs = u.shape[2] > 0
    echo = kern.gradient(theta, q0, p0, u, y, beta=beta, learn_inputs=inputs, retrace=False)
    bptt = kern.bptt_gradient(theta, q0, p0, u, y, learn_inputs=inputs)
    # a velocity start (its own draw, so the finite-difference entries stay those of the seed):
    # dC/dv0 and the masses' PFVP term (theory §3, §5)
    v0 = np.random.default_rng([seed, 1]).uniform(-0.5, 0.5, q0.shape)
    beta_v = beta
    if choice is not None:  # another instance, other curvature and round-off: its own automatic beta
        def contrast_v(b):
            r = kern.gradient(theta, q0, u=u, y=y, v0=v0, beta=b, retrace=False)
            return [r.flat[0], r.dv0.ravel()]

        beta_v = auto_beta(contrast_v, tolerance).beta
    echo_v = kern.gradient(theta, q0, u=u, y=y, v0=v0, beta=beta_v, retrace=False)
    bptt_v = kern.bptt_gradient(theta, q0, u=u, y=y, v0=v0)
    args, _ = kern.prepare(theta, q0, p0, u, y)
    th = args[0]
    picks = _fd_entries(bptt.flat[0], rng)
    fd, fd_rule = finite_differences(lambda t: kern.module.free(t, *args[1:], dt, 0.0, False)[2][0], th,
                                     bptt.flat[0, picks], entries=picks)
    err_theta = rel_err(echo.flat[0], bptt.flat[0])
    err_init = rel_err(np.concatenate([echo.dq0.ravel(), echo.dp0.ravel()]),
                       np.concatenate([bptt.dq0.ravel(), bptt.dp0.ravel()]))
    err_fd = rel_err(bptt.flat[0, picks], np.array(fd))
    complex_rel = None
    if err_fd > FD_TOLERANCE:
        complex_rel = complex_step_agreement(
            lambda: kern.complex_step_gradient(theta, q0, p0, u, y, retrace=False).flat[0], bptt.flat[0])
    err_inputs = input_error(echo.du, bptt.du, bptt.flat[0]) if inputs else None
    err_velocity = rel_err(np.concatenate([echo_v.flat[0], echo_v.dv0.ravel()]),
                           np.concatenate([bptt_v.flat[0], bptt_v.dv0.ravel()]))
    errors = [err_theta, err_init, err_velocity] + ([err_inputs] if inputs else [])
    gamma = kern.rate(args[0], args[1])  # the drawn value of a learned rate
    return {
        "model": model.name, "units": n, "integrator": kern.module.INTEGRATOR, "steps": steps, "dt": dt, "beta": beta,
        "beta_auto": None if choice is None else choice.to_json(), "seed": seed, "n_theta": int(th.size),
        "loss": float(loss[0]),
        "roundtrip_error": roundtrip, "energy_drift": drift,
        "rel_err_echo_vs_bptt": err_theta, "rel_err_init_state": err_init, "rel_err_bptt_vs_fd": err_fd,
        "rel_err_inputs": err_inputs, "rel_err_velocity_start": err_velocity, "beta_velocity_start": beta_v,
        "inputs_gradient_zero": bool(inputs and not np.any(bptt.du)),
        "terminal_cost": model.terminal is not None, "damping": gamma,
        "fd_entries": [int(i) for i in picks], "fd_rule": fd_rule,
        "warnings": roundtrip_warning(roundtrip, tolerance) + signs
                    + growth_warning(model, q0, p0, qT, pT, params is None, "their init ranges",
                                     gamma=gamma, T=steps * dt,
                                     least_mass=float(np.min(kern.start_masses(args[0], args[1], q0)[0])))
                    + anti_damping_warning(gamma, steps * dt)
                    + drift_warning(None if gamma else drift, kern.module.INTEGRATOR)
                    + fd_side_warning(err_fd, complex_rel),
        "tolerance_echo_vs_bptt": tolerance, "tolerance_bptt_vs_fd": FD_TOLERANCE,
        "passed": bool(max(errors) <= tolerance and err_fd <= FD_TOLERANCE),
    }


#: dC/du below this fraction of |dC/dθ| is round-off: its error is measured against that floor
INPUT_FLOOR = 1e-8


def input_error(echo_du, bptt_du, bptt_theta) -> float:
    """``‖echo − BPTT‖ / ‖BPTT‖`` of dC/du, the norm floored at :data:`INPUT_FLOOR` ``‖dC/dθ‖``: where the
    inputs barely reach the cost (a weakly coupled readout), dC/du is round-off and its relative error
    says nothing."""
    scale = max(float(np.linalg.norm(bptt_du)), INPUT_FLOOR * float(np.linalg.norm(bptt_theta)))
    return float(np.linalg.norm(np.ravel(echo_du) - np.ravel(bptt_du)) / (scale if scale > 0 else 1.0))


def sign_warnings(model, theta: dict) -> list:
    """A warning per parameter with entries against its declared sign (``positive=True``): the derivation
    assumed that sign (a mass, a stiffness)."""
    out = []
    for p in model.parameters:
        sign, values = declared_sign(p), np.asarray(theta[p.name], dtype=float)
        bad = values <= 0 if sign == "positive" else values >= 0 if sign == "negative" else np.zeros(values.shape, bool)
        if np.any(bad):
            out.append(f"parameter {p.name} has {int(np.sum(bad))} of {values.size} entries against its declaration "
                       f"{sign}=True (e.g. {values[bad].flat[0]:g}): the derivation assumed that sign")
    return out


#: an entry whose BPTT gradient is below this fraction of the largest is not drawn for the finite differences
#: while enough others are: at n = 10⁵ most entries are 1e-21 … 1e-78 (units far from the readout), below the
#: differences' round-off, and a check that drew them failed on round-off, not on BPTT (new-user probe)
FD_RELEVANT = 1e-6


def _fd_entries(gradient, rng) -> np.ndarray:
    """The θ entries the finite differences test: drawn among those whose BPTT gradient is at least
    :data:`FD_RELEVANT` of the largest (a probe's disconnected readout drew six exact zeros, and "0.000e+00 ok"
    tested nothing), the rest of the :data:`FD_ENTRIES` among the others only when too few are."""
    size = np.abs(gradient)
    relevant = size >= FD_RELEVANT * size.max(initial=0.0)
    live = np.flatnonzero(relevant & (size > 0))
    dead = np.flatnonzero(~relevant | (size == 0))
    picks = rng.choice(live, size=min(FD_ENTRIES, live.size), replace=False)
    fill = min(FD_ENTRIES - picks.size, dead.size)
    return np.concatenate([picks, rng.choice(dead, size=fill, replace=False)]).astype(np.int64)


def render_text(r: dict) -> str:
    ok = lambda e, t: "ok" if e <= t else "FAIL"  # noqa: E731
    lines = [
        f"model {r['model']} (array model, n = {r['units']} units, {r['n_theta']} parameters): {r['integrator']}, "
        f"K = {r['steps']} steps of dt = {r['dt']}, beta = {r['beta']:.3g}, seed {r['seed']}",
        *([describe(r["beta_auto"])] if r.get("beta_auto") else []),
        f"loss                              {r['loss']:.10g}"
        + ("  (running + terminal cost c_T(q_K), theory §10)" if r["terminal_cost"] else ""),
        f"round-trip error (free-flip-free) {r['roundtrip_error']:.3e}",
        ("energy drift (undriven)           n/a  (explicit time t: the energy is not conserved)"
         if r["energy_drift"] is None else
         f"energy drift (undriven)           {r['energy_drift']:.3e}" if not r.get("damping") else
         f"energy change (undriven)          {r['energy_drift']:.3e}  (damped, gamma = {r['damping']:g}: "
         "the energy decays, theory §7)"),
        f"rel. error echo vs BPTT (theta)   {r['rel_err_echo_vs_bptt']:.3e}  (tolerance "
        f"{r['tolerance_echo_vs_bptt']:.0e}) {ok(r['rel_err_echo_vs_bptt'], r['tolerance_echo_vs_bptt'])}",
        f"rel. error echo vs BPTT (q0, p0)  {r['rel_err_init_state']:.3e}  (tolerance "
        f"{r['tolerance_echo_vs_bptt']:.0e}) {ok(r['rel_err_init_state'], r['tolerance_echo_vs_bptt'])}",
        *([f"rel. error echo vs BPTT (inputs)  {r['rel_err_inputs']:.3e}  (dC/du"
           + ("; BPTT's dC/du is exactly 0: the inputs never reach the cost" if r.get("inputs_gradient_zero") else "")
           + "; tolerance "
           f"{r['tolerance_echo_vs_bptt']:.0e}) {ok(r['rel_err_inputs'], r['tolerance_echo_vs_bptt'])}"]
          if r["rel_err_inputs"] is not None else []),
        f"rel. error echo vs BPTT (v0)      {r['rel_err_velocity_start']:.3e}  (a velocity start: theta, dC/dv0; "
        + (f"beta {r['beta_velocity_start']:.3g}; " if r.get("beta_velocity_start", r["beta"]) != r["beta"] else "")
        + f"tolerance {r['tolerance_echo_vs_bptt']:.0e}) "
        f"{ok(r['rel_err_velocity_start'], r['tolerance_echo_vs_bptt'])}",
        f"rel. error BPTT vs finite diff.   {r['rel_err_bptt_vs_fd']:.3e}  ({len(r['fd_entries'])} entries; "
        f"{r['fd_rule'] + '; ' if r.get('fd_rule') else ''}"
        f"tolerance {r['tolerance_bptt_vs_fd']:.0e}) {ok(r['rel_err_bptt_vs_fd'], r['tolerance_bptt_vs_fd'])}",
        *[f"warning: {w}" for w in r.get("warnings", [])],
        "passed" if r["passed"] else "FAILED",
    ]
    return "\n".join(lines) + "\n"
