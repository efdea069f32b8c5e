"""What each ``symglep`` command does with an array model (the CLI dispatches here)."""

from __future__ import annotations

import json
import os

from ..errors import SymglepError


def derive_report(model, fmt: str) -> str:
    from .derive import derive, render

    return render(derive(model), fmt)


def residuals_report(model, bc: str, fmt: str) -> str:
    from .derive import derive

    res = derive(model)["residuals"]
    if bc != "all":
        res = {bc: res[bc]}
    if fmt == "json":
        return json.dumps({"model": model.name, "kind": "array", "residuals": res}, indent=2,
                          ensure_ascii=False) + "\n"
    if fmt not in ("text", "markdown"):
        raise SymglepError(f"array models are reported as text, markdown or json, not {fmt}")
    lines = [f"{model.name} (array model): boundary residuals in index form (theory §3)"]
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


def check(model, steps, dt, beta, seed, params_file, integrator, tolerance, fmt, bc):
    """``symglep check`` of an array model: (report dict, rendered text)."""
    from .check import render_text, run_check

    if bc is not None:
        raise SymglepError("check --bc is not supported for array models yet (see `symglep residuals`)")
    if params_file:
        raise SymglepError("check --params is not supported for array models yet (parameters are drawn from --seed)")
    if integrator not in ("auto", "leapfrog"):
        raise SymglepError("array models use the leapfrog integrator (--integrator auto)")
    report = run_check(model, steps=steps, dt=dt, beta=beta, seed=seed, tolerance=tolerance)
    return report, (json.dumps(report, indent=2) if fmt == "json" else render_text(report))
