"""Writes docs/residuals.md: every boundary condition's estimator against its true gradient.

Run: python docs/residuals_page.py   (about 5 minutes on 2 cores once the kernels are compiled;
each model compiles in tens of seconds the first time)
"""

import os
import platform
import sys

import numpy as np

import symglep
from symglep.bc_check import BCS, run_bc_check

HERE = os.path.dirname(os.path.abspath(__file__))
STEPS, CBVP_STEPS, BETA = 300, 40, 1e-4
RESULT = {None: "biased (expected)", True: "≤ 1e-6 ✓", False: "FAIL"}


def scalar_examples() -> list:
    """Every bundled example that defines a scalar ``model`` (array models and stacks have their own pages)."""
    names = []
    for file in sorted(os.listdir(os.path.join(HERE, "..", "examples"))):
        if file.endswith(".py"):
            system = symglep.load_system(os.path.join(HERE, "..", "examples", file))
            if isinstance(system, symglep.Model):
                names.append(file[:-3])
    return names


def _result(row) -> str:
    if row["passed"] is None:
        return row.get("note") or RESULT[None]
    return RESULT[row["passed"]] + (f" ({row['note']})" if row.get("note") else "")


def main() -> None:
    lines = [
        "# Boundary conditions, measured",
        "",
        "Produced by `python docs/residuals_page.py` (symglep "
        f"{symglep.__version__}, numpy {np.__version__}, Python {platform.python_version()}).",
        f"Each row is one estimator of dC/dθ on one seeded instance (`symglep check MODEL --bc all --steps {STEPS}`): "
        f"K = {STEPS} steps of dt = 0.01 (CBVP: K = {CBVP_STEPS}), β = {BETA}, float64, "
        f"six conditions ({', '.join(BCS)}). "
        "Errors are ‖estimate − true‖/‖true‖. The true gradient is BPTT of the same discrete integrator "
        "for the initial-value problems (CIVP, PFVP) and central differences of the corresponding solve "
        "for the others; for the shooting problems (CFVP, periodic, mixed q(0), p(T)) it is confirmed by "
        "BPTT plus the implicit-function theorem (last line of each model). CBVP uses the centred ±β "
        "contrast; CIVP, PFVP and the shooting problems the four-nudge ±β, ±2β (Richardson) contrast, "
        "whose ±β part alone has, for the shooting problems, the error in the column \"±β alone\" (theory §2–§3, "
        "`symglep residuals MODEL` for the symbolic residuals).",
        "",
    ]
    for name in scalar_examples():
        model = symglep.load_model(os.path.join(HERE, "..", "examples", f"{name}.py"))
        r = run_bc_check(model, steps=STEPS, cbvp_steps=CBVP_STEPS, beta=BETA)
        lines += [f"## {name} ({r['integrator']})", "",
                  "| estimate | rel. error | ±β alone | reference | passes | memory | result |",
                  "|---|---:|---:|---|---|---|---|"]
        for row in r["estimates"]:
            err = "n/a" if row["error"] is None else f"{row['error']:.2e}"
            centred = f"{row['centred_error']:.2e}" if "centred_error" in row else ""
            lines.append(f"| {row['estimate']} | {err} | {centred} | {row['reference']} | {row['passes'] or '-'} | "
                         f"{row['memory']} | {_result(row)} |")
        lines.append("")
        if "symbolic_residual_error" in r:
            lines.append(f"Symbolic CIVP residual (from `symglep residuals`) evaluated with the tangent sensitivities, "
                         f"against bulk − true: relative error {r['symbolic_residual_error']:.2e}"
                         + ("." if r["variational"] else " (not exact: non-variational Rayleigh force, theory §7)."))
        if r["reference_errors"]:
            checks = ", ".join(f"{bc} {e:.1e}" for bc, e in r["reference_errors"].items())
            lines.append(f"True gradients of the shooting problems, central differences against BPTT + "
                         f"implicit-function theorem: {checks}.")
        lines += ["", f"Overall: {'passed' if r['passed'] else 'FAILED'}.", ""]
        print(f"{name}: {'passed' if r['passed'] else 'FAILED'}", file=sys.stderr)
    with open(os.path.join(HERE, "residuals.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    main()
