"""What each ``symglep`` command does with a scalar :class:`~symglep.Model` (dispatched by :mod:`symglep.commands`)."""

from __future__ import annotations

import json

from .bc_check import parse_bcs, run_bc_check
from .beta import AUTO, FIXED_BETA_NOTE, fixed_or
from .bc_check import render_text as render_bc_check
from .boundary import condition_names, latex_names, shown_residuals
from .check import load_params, render_text, run_check
from .codegen.output import write_generated as write_model_files
from .codegen.render_c import missing_gradient_note
from .command_options import CheckOptions, cbvp_steps, require_plain_check
from .derivation import derive
from .discrete import discretise
from .model import Model
from .report import render as render_derivation
from .residual_report import render as render_residuals
from .routes import short_label
from .training import train_command as train


def derive_report(model: Model, fmt: str, simplify: str = "fast") -> str:
    """``symglep derive``: the derivation of theory §1–§5 (readable forms, theory §11) in ``fmt``."""
    return render_derivation(derive(model, simplify=simplify), fmt)


def residuals_report(model: Model, bcs: tuple, fmt: str) -> str:
    """``symglep residuals``: the boundary residual of each boundary condition of ``bcs`` (theory §2–§3), each
    expression in the smallest form found within ``derive``'s ``fast`` budget (theory §11)."""
    derivation = derive(model, simplify="none")
    shown = shown_residuals(derivation, condition_names(bcs))
    return render_residuals(model, shown, fmt, latex_names(derivation))


def write_generated(model: Model, out_dir: str, target: str, integrator: str, force: bool, precision: str) -> list:
    """``symglep generate``: the kernel files of ``target``; returns the paths written."""
    return write_model_files(model, out_dir, target, integrator, force, precision)


def generate_notes(model: Model, target: str, integrator: str) -> list:
    """What ``generate`` leaves out of ``target``'s files for this model, and why (one line each)."""
    if target != "c":
        return []
    d = derive(model, simplify="none")
    exact = [short_label(r["route"]) for r in d.routes if r["available"] and r["exact"]]
    note = missing_gradient_note(discretise(d, integrator), exact)
    return [note] if note else []


def check(model: Model, opts: CheckOptions) -> tuple:
    """``symglep check``: ``(report, text)``; ``report["passed"]`` decides the exit code."""
    params = load_params(opts.params_file, model) if opts.params_file else None
    if opts.bc is not None:
        require_plain_check(opts)
        report = run_bc_check(model, parse_bcs(opts.bc), steps=opts.steps, dt=opts.dt,
                              beta=fixed_or(opts.beta), seed=opts.seed, params=params,
                              cbvp_steps=cbvp_steps(opts), integrator=opts.integrator,
                              tolerance=opts.tolerance)
        text = render_bc_check(report) + (f"note: {FIXED_BETA_NOTE}\n" if opts.beta == AUTO else "")
        return report, json.dumps(report, indent=2) if opts.fmt == "json" else text
    report = run_check(model, steps=opts.steps, dt=opts.dt, beta=opts.beta, seed=opts.seed, params=params,
                       integrator=opts.integrator, tolerance=opts.tolerance, route=opts.route,
                       naive_echo=opts.naive_echo, noise=opts.noise)
    return report, json.dumps(report, indent=2) if opts.fmt == "json" else render_text(report)

__all__ = ["derive_report", "residuals_report", "write_generated", "check", "train"]  # symglep.commands
