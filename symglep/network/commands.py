"""What each ``symglep`` command does with an array model (the CLI dispatches here)."""

from __future__ import annotations

import json
import os

from ..codegen.output import model_folder_name, write_files
from ..beta import AUTO, FIXED_BETA_NOTE, fixed_or
from ..command_options import CheckOptions, cbvp_steps, require_plain_check
from ..errors import SymglepError
from ..fileio import read_json_object
from ..bc_check import parse_bcs
from ..boundary import condition_names
from .bc_check import run_bc_check
from .bc_check import render_text as render_bc
from .check import load_array_params, render_text, run_check
from .derive import derive, render, render_latex, residuals_latex
from ..training import train_command as train
from .render_c import generate_network_c
from .render_jax import array_jax_source
from .runtime import generate_source


def derive_report(model, fmt: str, simplify: str = "fast") -> str:
    """``symglep derive``: the index-form derivation (docs/networks.md); the element expressions are
    small by construction, so ``simplify`` changes nothing here."""
    return render_latex(model) if fmt == "latex" else render(derive(model), fmt)


def residuals_report(model, bcs: tuple, fmt: str) -> str:
    """``symglep residuals``: the index-form boundary residuals of the conditions ``bcs`` (theory §3)."""
    res = derive(model)["residuals"]
    return render_residuals(model, {bc: res[bc] for bc in condition_names(bcs)}, fmt)


def residuals_data(model, res: dict) -> dict:
    """The JSON object of an array model's residuals ``res`` (boundary condition → index-form text)."""
    return {"model": model.name, "kind": "array", "residuals": res}


def render_residuals(model, res: dict, fmt: str) -> str:
    """An array model's residuals ``res`` in ``fmt`` (its own report, or one unit's in a stack's)."""
    if fmt == "json":
        return json.dumps(residuals_data(model, res), indent=2, ensure_ascii=False) + "\n"
    title = f"{model.name} (array model): boundary residuals in index form (theory §3)"
    if fmt == "latex":
        return residuals_latex(res, title)
    if fmt not in ("text", "markdown"):
        raise SymglepError(f"array models are reported as text, markdown, latex or json, not {fmt}")
    lines = [title]
    lines += [f"{k.upper():<9} {v}" for k, v in res.items()]
    return "\n".join(lines) + "\n"


def write_generated(model, out_dir: str, target: str, integrator: str, force: bool, precision: str) -> list:
    """``OUT/<model>/numba/kernels.py``, ``OUT/<model>/jax/kernels.py`` (docs/jax.md), or the four files
    of ``OUT/<model>/c/`` (docs/c-kernels.md, "Array models"), of an array model; returns the paths written."""
    if target == "c":
        files = generate_network_c(model, precision, integrator)
    elif precision != "float64":
        dtype = "float64" if target == "numba" else "the dtype of its arguments"
        raise SymglepError(f"the {target} target computes in {dtype}; --precision float32 is for --target c")
    elif target == "jax":
        files = {"kernels.py": array_jax_source(model, integrator)}
    else:
        files = {"kernels.py": generate_source(model, integrator=integrator)}
    return write_files(os.path.join(out_dir, model_folder_name(model), target), files, force)


def _trained_units(path: str) -> int | None:
    """The number of units a ``symglep train --save`` file was trained at (``settings.units``), so that
    ``check --params RUN.json`` runs at that n without --size (a probe's n = 20 run was checked at the file's
    default n and refused for its shapes); ``None`` for a plain parameter file."""
    settings = read_json_object(path, "parameters file").get("settings")
    units = settings.get("units") if isinstance(settings, dict) else None
    return units if isinstance(units, int) and not isinstance(units, bool) and units >= 2 else None


def check(model, opts: CheckOptions) -> tuple:
    """``symglep check`` of an array model: (report dict, rendered text).

    ``opts.size``: the run-time number of units (default: the model's size; with ``bc``, 3 —
    the boundary-condition check runs on the model expanded element by element).
    """
    require_plain_check(opts, "array models (the study reads a scalar model's learning integrals)")
    if opts.size is not None and opts.size < 2:
        raise SymglepError(f"--size must be at least 2 units (a network, as ArrayModel(size=) requires), got "
                           f"{opts.size}")
    params = load_array_params(opts.params_file, model) if opts.params_file else None
    size = opts.size if opts.size is not None or not opts.params_file else _trained_units(opts.params_file)
    if opts.bc is not None:
        report = run_bc_check(model, parse_bcs(opts.bc), n=size, params=params,
                              steps=opts.steps, dt=opts.dt, beta=fixed_or(opts.beta), seed=opts.seed,
                              cbvp_steps=cbvp_steps(opts), tolerance=opts.tolerance)
        text = render_bc(report) + (f"note: {FIXED_BETA_NOTE}\n" if opts.beta == AUTO else "")
        return report, (json.dumps(report, indent=2) if opts.fmt == "json" else text)
    report = run_check(model, steps=opts.steps, dt=opts.dt, beta=opts.beta, seed=opts.seed, n=size,
                       tolerance=opts.tolerance, params=params, integrator=opts.integrator)
    return report, (json.dumps(report, indent=2) if opts.fmt == "json" else render_text(report))

__all__ = ["derive_report", "residuals_report", "write_generated", "check", "train"]  # symglep.commands
