"""What each ``symglep`` command does with an array model (the CLI dispatches here)."""

from __future__ import annotations

import json
import os

from ..errors import SymglepError


def derive_report(model, fmt: str) -> str:
    from .derive import derive, render, render_latex

    return render_latex(model) if fmt == "latex" else render(derive(model), fmt)


def residuals_report(model, bc: str, fmt: str) -> str:
    from .derive import derive

    res = derive(model)["residuals"]
    if bc != "all":
        res = {bc: res[bc]}
    if fmt == "json":
        return json.dumps({"model": model.name, "kind": "array", "residuals": res}, indent=2,
                          ensure_ascii=False) + "\n"
    title = f"{model.name} (array model): boundary residuals in index form (theory §3)"
    if fmt == "latex":
        from .derive import residuals_latex

        return residuals_latex(res, title)
    if fmt not in ("text", "markdown"):
        raise SymglepError(f"array models are reported as text, markdown, latex or json, not {fmt}")
    lines = [title]
    lines += [f"{k.upper():<9} {v}" for k, v in res.items()]
    return "\n".join(lines) + "\n"


def write_generated(model, out_dir: str, target: str, integrator: str, force: bool, precision: str) -> list:
    """``OUT/<model>/numba/kernels.py`` of an array model (Numba only)."""
    from ..codegen.output import _refuse_foreign, model_folder_name
    from ..fileio import write_atomic
    from .runtime import generate_source

    if target != "numba" or precision != "float64":
        raise SymglepError("array models are generated for --target numba (float64) only; C kernels of "
                           "networks are not supported yet")
    if integrator not in ("auto", "leapfrog"):
        raise SymglepError("array models are separable: they use the leapfrog integrator (--integrator auto)")
    path = os.path.join(out_dir, model_folder_name(model), "numba", "kernels.py")
    source = generate_source(model)
    if not force:
        _refuse_foreign(path)
    write_atomic(path, source)
    return [path]


def check(model, steps, dt, beta, seed, params_file, integrator, tolerance, fmt, bc, size=None, cbvp_steps=40):
    """``symglep check`` of an array model: (report dict, rendered text).

    ``size``: the run-time number of units (default: the model's size; with ``bc``, 3 —
    the boundary-condition check runs on the model expanded element by element).
    """
    from .check import load_array_params, render_text, run_check

    if integrator not in ("auto", "leapfrog"):
        raise SymglepError("array models use the leapfrog integrator (--integrator auto)")
    if size is not None and size < 1:
        raise SymglepError(f"--size must be a positive number of units, got {size}")
    params = load_array_params(params_file, model) if params_file else None
    if bc is not None:
        from ..bc_check import BCS
        from .bc_check import render_text as render_bc
        from .bc_check import run_bc_check

        report = run_bc_check(model, BCS if bc == "all" else (bc,), n=size, params=params, steps=steps, dt=dt,
                              beta=beta, seed=seed, cbvp_steps=min(cbvp_steps, steps))
        return report, (json.dumps(report, indent=2) if fmt == "json" else render_bc(report))
    report = run_check(model, steps=steps, dt=dt, beta=beta, seed=seed, n=size, tolerance=tolerance, params=params)
    return report, (json.dumps(report, indent=2) if fmt == "json" else render_text(report))
