"""What each ``symglep`` command does with a :class:`~symglep.stack.Stack` (the CLI dispatches here).

``derive`` embeds every unit's scalar report (:mod:`symglep.report`) and adds the glue and the
stacked learning rule of theory §9; ``residuals`` embeds every unit's scalar residual report
(:mod:`symglep.residual_report`, theory §2–§3); ``generate`` writes the stack's Numba module or
its C files; ``check`` compares the stacked echo with BPTT through the stack and with central
finite differences of the discrete loss on one seeded instance. JSON schema of ``derive``:
``docs/derive-schema.md`` ("Stacks").
"""

from __future__ import annotations

import json
import os

import numpy as np
import sympy as sp

from .. import __version__
from ..boundary import BOUNDARY_CONDITIONS as BOUNDARY_CONDITIONS_OF_UNITS
from ..boundary import condition_names, latex_names, shown_residuals
from ..beta import AUTO, describe
from ..check import (CONTRASTS, FD_TOLERANCE, anti_damping_warning, choose_contrast, finite_differences,
                     contrast_kind, rel_err, require_run_settings, smooth_signal,
                     suggested_beta)
from ..codegen.output import write_files
from ..command_options import CheckOptions, require_plain_check
from ..derivation import derive
from ..errors import SymglepError
from ..integrators import auto_integrator_reason
from ..model import latex_symbol_names
from ..network.derive import derive as derive_array
from ..network.derive import render as render_array
from ..network.derive import render_latex as render_array_latex
from ..network.commands import render_residuals as render_array_residuals
from ..network.commands import residuals_data as array_residuals_data
from ..report import expr_str
from ..report import render as render_unit
from ..report import to_dict as unit_dict
from ..residual_report import render as render_residuals
from ..residual_report import to_dict as residuals_dict
from ..systems import declares
from .codegen import render_stack
from .codegen_c import render_stack_c
from .model import Stack
from .runtime import compile_stack
from ..training import train_command as train

DERIVE_FORMATS = ("text", "markdown", "latex", "json")
BOUNDARY_CONDITIONS = BOUNDARY_CONDITIONS_OF_UNITS  # each unit reports its own (theory §3)

#: relative step of the central differences in θ (as ``symglep check``) and in the inputs x. A per-node
#: input gradient is O(h) while the loss's round-off is that of a K-term sum, so at 1e-6 the differences
#: in x are round-off bound (2e-6–5e-6 relative at K = 1000, h = 0.01); at 1e-4 they agree with BPTT to
#: 2e-8–5e-8 there, and their truncation error (1e-3 gives 2e-9–5e-9) is still far below the tolerance.
THETA_FD_STEP = 1e-6
INPUT_FD_STEP = 1e-4
#: round-off of the loss per time step, relative to the loss (a few units of float64 round-off: the sums, a midpoint
#: unit's Newton solve): the finite differences' noise floor is this times (K + 1) |loss| / step, and a group whose
#: gradient is smaller than that cannot be judged by them
LOSS_ROUND_OFF_PER_STEP = 1e-15

#: what theory §9 says the stack composition changes in the boundary residuals of its units
COMPOSITION_NOTE = (
    "In a stack (theory §9) symglep runs one boundary condition, the PFVP of every unit: unit i's ±β "
    "echoes start from its own free final state (q_i(T), −p_i(T)), the top unit nudged by its cost and "
    "every lower unit by its linear readout cost ρ·r_i(q), so each unit's ±β echo is the exact echo of "
    "theory §5 for its own problem and R = 0 per unit (the [pfvp] entry of each unit below); the units' "
    "starts (q_i(0), p_i(0)) are data that do not move with θ. The glue u_{i+1} = φ(W_i r_i(q_i) + b_i) "
    "is evaluated at the time nodes and has no dynamics, no momentum and so no boundary term: its "
    "gradient is the sum over the nodes of theory §9. The other boundary conditions are listed per unit "
    "as for a single model; for a stack they are analysed, not run.")

COMPOSITION_LATEX = (
    r"In a stack (theory \S 9) symglep runs one boundary condition, the PFVP of every unit: unit $i$'s "
    r"$\pm\beta$ echoes start from its own free final state $(q^i(T), -p^i(T))$, the top unit nudged by its "
    r"cost and every lower unit by its linear readout cost $\rho \cdot r^i(q)$, so each unit's echo is the exact "
    r"echo of theory \S 5 for its own problem and $R = 0$ per unit (the PFVP entry of each unit below); the "
    r"starts $(q^i(0), p^i(0))$ are data that do not move with $\theta$. The glue "
    r"$u^{i+1} = \varphi(W^i r^i(q^i) + b^i)$ is evaluated at the time nodes and has no dynamics, no momentum "
    r"and so no boundary term. The other boundary conditions are listed per unit as for a single model; for a "
    r"stack they are analysed, not run.")

# --------------------------------------------------------------------------------------------------
# derive
# --------------------------------------------------------------------------------------------------

def _activation_name(link) -> str:
    """``φ`` as an expression of ``z`` (``z`` for the identity)."""
    return expr_str(link.activation(sp.Symbol("z")))


def _fresh(base: str, taken: set) -> sp.Symbol:
    while base in taken:
        base = "_" + base
    return sp.Symbol(base)


def input_gradient_symbols(stack: Stack, i: int) -> list:
    """``dC_d<u>``: the per-node input gradient ``g_{i+1,k}`` of unit ``i+1`` (theory §9), one per input."""
    link = stack.links[i]
    taken = {s.name for s in set(link.q) | set(link.weights) | set(link.bias)}
    taken |= {s.name for e in link.readout for s in e.free_symbols}
    return [_fresh(f"dC_d{u.name}", taken) for u in stack.unit_input_symbols(i + 1)]


def glue_rule(stack: Stack, i: int) -> dict:
    """The symbolic glue of link ``i`` and what the stacked echo accumulates for it (theory §9).

    ``pre``: ``z = W r(q) + b``; ``out``: ``φ(z)``; ``per_node``: for each glue parameter ``w``,
    ``Σ_m g_m ∂φ(z_m)/∂w`` (``dC/dw`` is its sum over the nodes ``k``); ``cotangent``: ``a_j =
    Σ_m g_m ∂φ(z_m)/∂r_j``, the weight of readout ``r_j`` in the linear readout cost of unit ``i``.
    Everything in unit ``i``'s coordinates, the glue symbols and ``g = dC_d<u>``.
    """
    link = stack.links[i]
    R = [sp.Dummy(f"r{j}", real=True) for j in range(len(link.readout))]
    W, bias, back = link.real_weights()  # real while differentiated: |z| has the derivative sign(z)
    pre = [sum((w * r for w, r in zip(row, R)), sp.S.Zero) + b for row, b in zip(W, bias)]
    out = [link.activation(z) for z in pre]
    g = input_gradient_symbols(stack, i)
    pair = sum((gm * om for gm, om in zip(g, out)), sp.S.Zero)
    at_q = {**dict(zip(R, link.readout)), **back}
    per_node = {w: sp.diff(pair, real).xreplace(at_q) for real, w in back.items()}
    cotangent = [sp.diff(pair, r).xreplace(at_q) for r in R]
    return dict(pre=[z.xreplace(at_q) for z in pre], out=[o.xreplace(at_q) for o in out], g=g,
                per_node=per_node, cotangent=cotangent)


def dense_glue_rule(stack: Stack, i: int) -> dict:
    """Link ``i`` from an array unit in index form (its ``W`` may hold thousands of entries): the glue
    ``u_m = φ(z_m)``, ``z_m = Σ_j W_mj r_j + b_m`` with ``r_j = q[s_j]``, and the rule of :func:`glue_rule`
    written once for a generic element (theory §9)."""
    link = stack.links[i]
    z = sp.Symbol("z_m", real=True)
    dphi = expr_str(sp.diff(link.activation(z), z))
    n_out, n_r = len(link.bias), len(link.readout)
    u = stack.units[i + 1]
    inputs = (f"{u.u.name}[m]" if stack.arrays[i + 1] is not None else "u_m")
    return dict(
        readout=[expr_str(r) for r in link.readout],
        pre=f"z_m = Σ_j W_mj r_j + b_m, r_j = {_readout_list(link.readout)} (j = 0..{n_r - 1})",
        out=f"{inputs} = {expr_str(link.activation(z))} (m = 0..{n_out - 1})",
        weights=f"W: {n_out} × {n_r} symbols glue{i}_W<m>_<j>", bias=f"b: {n_out} symbols glue{i}_b<m>",
        per_node={f"glue{i}_W<m>_<j>": f"g_m ({dphi}) r_j", f"glue{i}_b<m>": f"g_m ({dphi})"},
        cotangent=f"a_j = Σ_m g_m ({dphi}) W_mj", g=f"g_m = dC_d{inputs}")


def _readout_list(readout) -> str:
    """The readouts r_j as the report prints them: all of them up to 6, else the first three, "…" and the
    last (a list such as th[0], th[3], th[5] is not a range)."""
    items = [expr_str(r) for r in readout]
    if len(items) <= 6:
        return ", ".join(items)
    return ", ".join(items[:3]) + f", … ({len(items) - 4} more), " + items[-1]


def _parameter_name(symbol) -> str:
    """The packed-vector name of a glue symbol (``glue0_W0_1`` -> ``glue0.W0_1``)."""
    return symbol.name.replace("_", ".", 1)


def _array_unit_rule(stack: Stack, i: int, d: dict) -> dict:
    """:func:`_unit_rule` of an array unit, in index form (its derivation ``d``: symglep.network.derive)."""
    top, a = i == len(stack.units) - 1, stack.arrays[i]
    link = None if top else stack.links[i]
    return {
        "unit": i,
        "model": a.name,
        "integrator": stack.integrators[i],
        "parameters": [name for name, _ in a.layout],
        "integrand": {r["element"]: r["dL"] for r in d["learning_rule"]},
        "nudge": "cost" if top else "readout",
        "nudge_cost": (f"Σ_r {expr_str(a.model.readout.cost)} over the readout units "
                       f"{[int(r) for r in a.readout_units()]}" if top else
                       f"Σ_j readout_weight<j> · r_j, r_j = {_readout_list(link.readout)}"),
        "readout_weights": [] if top else [f"readout_weight{j}" for j in range(len(link.readout))],
        "input_integrand": {f"{a.model.u.name}[j]": "∂V/∂u_j = Σ_i ∂φ_i/∂(B u)_i · B_ij (index form)"},
        "input_cost_gradient": {f"{a.model.u.name}[j]": "0"} if top else None,
        "input_gradient_feeds": "dC/dx (the stack's inputs)" if i == 0 else
                                f"glue {i - 1} (pulled back to unit {i - 1}'s readout weights)",
    }


def _unit_rule(stack: Stack, i: int, d) -> dict:
    """How unit ``i``'s parameters and inputs are learned in the stack (theory §9)."""
    if stack.arrays[i] is not None:
        return _array_unit_rule(stack, i, d)
    unit, top = stack.units[i], i == len(stack.units) - 1
    echo = stack.echo_models[i]
    midpoint = stack.integrators[i] == "midpoint"
    # the input integrand: dV/du at the nodes (leapfrog), or -dL/du at each step's midpoint, half to each of
    # its nodes (midpoint rule, theory §9 "Midpoint units"); a time-weighted (damped) unit has no plain V: its
    # integrand −∂L/∂u = e^{γt} ∂V/∂u (theory §7)
    plain_v = not midpoint and d.sym.potential is not None
    inputs = {u.name: expr_str(sp.diff(d.sym.potential, u) if plain_v else -sp.diff(d.model.lagrangian, u))
              for u in unit.u}
    entry = {
        "unit": i,
        "model": unit.name,
        "integrator": stack.integrators[i],
        "parameters": [s.name for s in unit.parameters],
        "integrand": {th.name: expr_str(e) for th, e in d.learning_rule.items()},
        "nudge": "cost" if top else "readout",
        "nudge_cost": expr_str(unit.cost if top else echo.cost.xreplace(_plain(echo))),
        "readout_weights": [] if top else [s.name for s in echo.y],
        "input_integrand": inputs,
        "input_integrand_at": "each step's midpoint, half to each node" if midpoint else "the nodes",
        "input_cost_gradient": {u.name: expr_str(sp.diff(unit.cost, u)) for u in unit.u} if top else None,
        "input_gradient_feeds": "dC/dx (the stack's inputs)" if i == 0 else
                                f"glue {i - 1} (pulled back to unit {i - 1}'s readout weights)",
    }
    return entry


def _plain(model) -> dict:
    """The model's user objects (functions of t) → its plain symbols."""
    return {v.user: v.symbol for v in model.variables if v.user != v.symbol}


def _stack_dict(stack: Stack, derivations: list) -> dict:
    glue = []
    for i, link in enumerate(stack.links):
        if link.select is not None:
            rule = dense_glue_rule(stack, i)
            glue.append({"link": i, "from_unit": i, "to_unit": i + 1, "form": "dense",
                         "coordinates": rule["readout"], "readout": rule["readout"], "weights": rule["weights"],
                         "bias": rule["bias"], "parameter_names": f"glue{i}.W<m>_<j>, glue{i}.b<m>",
                         "activation": _activation_name(link), "preactivation": rule["pre"], "inputs": rule["out"]})
            continue
        rule = glue_rule(stack, i)
        up = stack.unit_input_symbols(i + 1)
        glue.append({
            "link": i,
            "from_unit": i,
            "to_unit": i + 1,
            "coordinates": [s.name for s in link.q],
            "readout": [expr_str(e) for e in link.readout],
            "weights": [[w.name for w in row] for row in link.W],
            "bias": [b.name for b in link.bias],
            "parameter_names": {s.name: _parameter_name(s) for s in link.weights + link.bias},
            "activation": _activation_name(link),
            "preactivation": [expr_str(z) for z in rule["pre"]],
            "inputs": {u.name: expr_str(o) for u, o in zip(up, rule["out"])},
        })
    units = [_unit_rule(stack, i, d) for i, d in enumerate(derivations)]
    glue_rules = []
    for i, link in enumerate(stack.links):
        if link.select is not None:
            rule = dense_glue_rule(stack, i)
            glue_rules.append({"link": i, "form": "dense", "input_gradients": rule["g"],
                               "per_node": rule["per_node"], "readout_cotangent": rule["cotangent"]})
            continue
        rule = glue_rule(stack, i)
        inputs = stack.unit_input_symbols(i + 1)
        glue_rules.append({
            "link": i,
            "input_gradients": {g.name: inputs[m].name for m, g in enumerate(rule["g"])},
            "per_node": {w.name: expr_str(e) for w, e in rule["per_node"].items()},
            "readout_cotangent": {rho.name: expr_str(a) for rho, a in zip(stack.echo_models[i].y, rule["cotangent"])},
        })
    return {
        "symglep_version": __version__,
        "kind": "stack",
        "stack": stack.name,
        "units": [d if isinstance(d, dict) else unit_dict(d) for d in derivations],
        "glue": glue,
        "parameter_names": list(stack.parameter_names),
        "learning_rule": {
            "loss": ("C = h Σ'_k c(q_top,k, y_k) + c_T(q_top,K, y_K): the top unit's trapezoid sum and its terminal "
                     "cost (theory §10)" if declares(stack.units[-1], "terminal_cost") else
                     "C = h Σ'_k c(q_top,k, y_k): the top unit's trapezoid sum"),
            "units": units,
            "glue": glue_rules,
        },
    }


def _derivations(stack: Stack, simplify: str = "fast") -> list:
    """Per unit: a scalar unit's :class:`~symglep.derivation.Derivation`, an array unit's index-form
    dict (:func:`symglep.network.derive.derive`)."""
    return [derive(u, simplify=simplify) if a is None else derive_array(u) for u, a in zip(stack.units, stack.arrays)]


def _unit_summary(stack: Stack, i: int) -> dict:
    """Coordinates, parameters, inputs, cost and terminal cost (theory §10; ``None`` without one) of
    unit ``i`` in a few words each."""
    u, a = stack.units[i], stack.arrays[i]
    if a is None:
        return dict(q=", ".join(s.name for s in u.q), theta=", ".join(s.name for s in u.parameters) or "none",
                    u=", ".join(s.name for s in u.u), cost=expr_str(u.cost),
                    terminal=expr_str(u.terminal_cost) if u.terminal_cost != 0 else None)
    shapes = ", ".join(f"{name} {tuple(shape)}" if shape else name for name, shape in a.layout)
    over = f"over the units {[int(r) for r in a.readout_units()]}"
    return dict(q=f"{u.q.name}[i], i = 0..{a.size - 1}" + (f" (vectors in R^{a.dim})" if a.dim > 1 else ""),
                theta=shapes or "none", u=f"{u.u.name}[0..{a.m - 1}]",
                cost=f"Σ_r {expr_str(u.readout.cost)} {over}",
                terminal=f"Σ_r {expr_str(u.terminal.cost)} {over}" if u.terminal is not None else None)


def _unit_report(stack: Stack, i: int, d, fmt: str) -> str:
    """Unit ``i``'s own ``symglep derive`` report in ``fmt`` (text, markdown, latex), with a line first where the
    stack steps the unit by another integrator than ``auto`` picks for it alone (a Caldirola–Kanai unit: the
    time-weighted leapfrog, theory §7, §9)."""
    if stack.arrays[i] is None:
        alone, used = auto_integrator_reason(d)[0], stack.integrators[i]
        if alone == used or fmt == "latex":
            return render_unit(d, fmt)
        note = (f"in this stack: stepped by the {used}"
                + (" (weighted in time, theory §7)" if used == "leapfrog" else "")
                + f"; the unit's own report below says what `auto` picks for it alone ({alone})")
        return (f"_{note}._\n\n" if fmt == "markdown" else f"{note}\n") + render_unit(d, fmt)
    return render_array_latex(stack.units[i]) if fmt == "latex" else render_array(d, fmt)


def _structure_lines(stack: Stack) -> list:
    out = []
    for i, u in enumerate(stack.units):
        role = "bottom" if i == 0 else "top" if i == len(stack.units) - 1 else "middle"
        kind = ("" if stack.arrays[i] is None and i not in stack.expanded else
                "array model expanded element by element (the midpoint rule), " if i in stack.expanded else
                f"array model at n = {stack.arrays[i].size}, ")
        unit = _unit_summary(stack, i)
        out.append(f"unit {i} ({u.name}, {kind}{role}, {stack.integrators[i]}): coordinates {unit['q']}; parameters {unit['theta']}; "
                   f"inputs {unit['u']}" + ("" if i else " (the stack's inputs x)")
                   + (f"; cost {unit['cost']}" if i == len(stack.units) - 1 else "")
                   + (f"; terminal cost {unit['terminal']} at t = T" if i == len(stack.units) - 1
                      and unit["terminal"] else ""))
    return out


def _glue_lines(stack: Stack) -> list:
    out = []
    for i, link in enumerate(stack.links):
        if link.select is not None:
            rule = dense_glue_rule(stack, i)
            out += [f"glue {i} (unit {i} -> unit {i + 1}, dense): activation φ(z) = {_activation_name(link)}",
                    f"  {rule['pre']}", f"  {rule['out']}"]
            continue
        rule = glue_rule(stack, i)
        out.append(f"glue {i} (unit {i} -> unit {i + 1}): readout r = ({', '.join(map(expr_str, link.readout))}), "
                   f"activation φ(z) = {_activation_name(link)}")
        out += [f"  {u} = {expr_str(o)}" for u, o in zip(stack.unit_input_symbols(i + 1), rule["out"])]
    return out


def _rule_lines(stack: Stack, data: dict) -> list:
    rule = data["learning_rule"]
    out = ["loss: " + rule["loss"],
           "per unit (theory §9): dC/dθ_i is the centred contrast (±β) of ∂L_i/∂θ_i along unit i's echoes "
           "(its learning rule above), the top unit nudged by its cost, unit i < top by the linear readout cost "
           "ρ·r_i(q) with ρ_k = a_k / (h w_k) (w_k = ½ at k = 0, K, else 1)",
           "per node k, unit i's input gradient: g_i,k = h w_k (∂V_i/∂u(σ₊,k) − ∂V_i/∂u(σ₋,k)) / 2β "
           "(+ h w_k ∂c/∂u on the top unit); a midpoint unit's: the contrast of −h/2 ∂L_i/∂u at the midpoints of "
           "the steps on both sides of node k (theory §9, midpoint units)"]
    for u in rule["units"]:
        at_mid = u.get("integrator") == "midpoint"
        out.append(f"  unit {u['unit']} ({u['model']}, {u.get('integrator', 'leapfrog')}): nudged by {u['nudge_cost']}"
                   f" at the nodes; {'−∂L/∂u (at the midpoints)' if at_mid else '∂V/∂u'}: "
                   + ", ".join(f"{k} -> {v}" for k, v in u["input_integrand"].items())
                   + f"; g_{u['unit']} feeds {u['input_gradient_feeds']}")
    out.append("per glue (theory §9): dC/dw = Σ_k of the per-node term, dC_d<u> being the input gradient g of the "
               "unit above at node k; ρ_j the readout weights of the unit below")
    for g in rule["glue"]:
        out.append(f"  glue {g['link']}:")
        out += [f"    dC/d{w} = Σ_k {e}" for w, e in g["per_node"].items()]
        if g.get("form") == "dense":
            out += [f"    {g['input_gradients']}; readout_weight<j> = {g['readout_cotangent']} / (h w_k)"]
            continue
        out += [f"    {rho} = ({e}) / (h w_k)" for rho, e in g["readout_cotangent"].items()]
    return out


def _demote(markdown: str) -> str:
    """A unit's Markdown report with its headings two levels down, to sit under the stack's."""
    return "\n".join("##" + line if line.startswith("#") else line for line in markdown.splitlines()) + "\n"


def _tex_text(text: str) -> str:
    """Plain text made safe inside ``\\text{}`` / ``\\intertext{}`` / ``\\paragraph{}``."""
    out = text.replace("\\", " ")
    for ch in "&%$#_{}":
        out = out.replace(ch, "\\" + ch)
    return out.replace("^", r"\^{}").replace("~", r"\~{}")


def _glue_latex_names(stack: Stack, i: int) -> dict:
    link = stack.links[i]
    names = latex_symbol_names(stack.units[i]) if stack.arrays[i] is None else {}
    for m, row in enumerate(link.W):
        for j, w in enumerate(row):
            names[w] = rf"W^{{({i})}}_{{{m}{j}}}"
    for m, b in enumerate(link.bias):
        names[b] = rf"b^{{({i})}}_{{{m}}}"
    for u, g in zip(stack.unit_input_symbols(i + 1), input_gradient_symbols(stack, i)):
        names[g] = rf"g_{{{sp.latex(u)}}}"
    return names


RULE_LATEX = (
    r"$C = h \sum'_k c(q^{M-1}_k, y_k)$, the top unit's trapezoid sum. For unit $i$, $dC/d\theta^i$ is the "
    r"centred contrast of $\partial L_i/\partial \theta^i$ along its $\pm\beta$ echoes; the top unit is nudged by "
    r"its cost, a unit $i$ below the top by the linear readout cost $\rho \cdot r^i(q)$ with "
    r"$\rho_k = a_k / (h w_k)$ ($w_k = 1/2$ at $k = 0, K$, else 1). Unit $i$'s input gradient at node $k$: "
    r"$g^i_k = h w_k\,(\partial_u V^i(\sigma_{+,k}) - \partial_u V^i(\sigma_{-,k}))/2\beta$ "
    r"(plus $h w_k\,\partial_u c$ on the top unit); the glue above unit $i$ reads $g = g^{i+1}_k$.")


def _dense_glue_latex(stack: Stack, i: int) -> list:
    """``(left, right)`` LaTeX of a dense link's glue and rule, for generic elements ``m, j`` (theory §9)."""
    link = stack.links[i]
    z = sp.Symbol("z_m", real=True)
    phi, dphi = sp.latex(link.activation(z)), sp.latex(sp.diff(link.activation(z), z))
    sel = link.select
    r = rf"r_j = q_{{s_j}},\ s = ({sel[0]}, \ldots, {sel[-1]})" if len(sel) > 2 else \
        rf"r_j = q_{{s_j}},\ s = ({', '.join(map(str, sel))})"
    return [(r"z_m", rf"\sum_j W^{{({i})}}_{{mj}} r_j + b^{{({i})}}_m, \quad {r}"),
            (r"u^{" + str(i + 1) + r"}_m", phi),
            (rf"\frac{{\partial C}}{{\partial W^{{({i})}}_{{mj}}}}",
             rf"\sum_k \left[g_m \left({dphi}\right) r_j\right]_k"),
            (rf"\frac{{\partial C}}{{\partial b^{{({i})}}_m}}", rf"\sum_k \left[g_m \left({dphi}\right)\right]_k"),
            (rf"\rho^{{({i})}}_{{j, k}}",
             rf"\frac{{1}}{{h w_k}} \left[\sum_m g_m \left({dphi}\right) W^{{({i})}}_{{mj}}\right]_k")]


def _glue_rule_latex(stack: Stack, i: int) -> list:
    """``(left, right)`` LaTeX of link ``i``'s gradient rule and readout weights (theory §9)."""
    if stack.links[i].select is not None:
        return _dense_glue_latex(stack, i)[2:]
    names = _glue_latex_names(stack, i)
    rule = glue_rule(stack, i)
    tex = lambda e: sp.latex(e, symbol_names=names)  # noqa: E731
    rows = [(rf"\frac{{\partial C}}{{\partial {names[w]}}}", rf"\sum_k \left[{tex(e)}\right]_k")
            for w, e in rule["per_node"].items()]
    rows += [(rf"\rho^{{({i})}}_{{{j}, k}}", rf"\frac{{1}}{{h w_k}} \left[{tex(a)}\right]_k")
             for j, a in enumerate(rule["cotangent"])]
    return rows


def _fd_agrees(group: dict) -> bool:
    """BPTT and the finite differences agree to :data:`FD_TOLERANCE`, or within the differences' own round-off."""
    return group["bptt_vs_fd"] <= FD_TOLERANCE or bool(group.get("fd_within_noise"))


def _render_text(stack: Stack, derivations: list, data: dict) -> str:
    out = [f"stack {stack.name}: {len(stack.units)} units, bottom to top: "
           + " -> ".join(u.name for u in stack.units) + " (theory §9)", ""]
    out += _structure_lines(stack) + [""] + _glue_lines(stack) + [""]
    for i, d in enumerate(derivations):
        out.append(f"=== unit {i}: {stack.units[i].name}")
        out.append(_unit_report(stack, i, d, "text"))
    out.append("=== stacked learning rule")
    out += _rule_lines(stack, data)
    return "\n".join(out) + "\n"


def _render_markdown(stack: Stack, derivations: list, data: dict) -> str:
    out = [f"# Derivation of stack `{stack.name}`", "",
           f"{len(stack.units)} units, bottom to top: " + " → ".join(f"`{u.name}`" for u in stack.units)
           + " (theory §9).", "", "## Structure", "",
           "| unit | model | coordinates | parameters | inputs |", "|---|---|---|---|---|"]
    for i, u in enumerate(stack.units):
        unit = _unit_summary(stack, i)
        out.append(f"| {i} | `{u.name}` | {unit['q']} | {unit['theta']} | {unit['u']} |")
    out += ["", "## Glue", ""]
    for i, link in enumerate(stack.links):
        if link.select is not None:
            out.append(f"Glue {i} (unit {i} → unit {i + 1}, dense), activation $\\varphi(z) = "
                       f"{sp.latex(link.activation(sp.Symbol('z')))}$:")
            out += ["", *[f"$${left} = {right}$$" for left, right in _dense_glue_latex(stack, i)[:2]], ""]
            continue
        names = _glue_latex_names(stack, i)
        rule = glue_rule(stack, i)
        out.append(f"Glue {i} (unit {i} → unit {i + 1}), activation $\\varphi(z) = "
                   f"{sp.latex(link.activation(sp.Symbol('z')))}$:")
        out.append("")
        out += [f"$${sp.latex(u)} = {sp.latex(o, symbol_names=names)}$$"
                for u, o in zip(stack.unit_input_symbols(i + 1), rule["out"])]
        out.append("")
    for i, d in enumerate(derivations):
        out += [f"## Unit {i}: `{stack.units[i].name}`", "", _demote(_unit_report(stack, i, d, "markdown"))]
    out += ["## Stacked learning rule", ""]
    out += [f"- {line}" for line in _rule_lines(stack, data)[:3]]
    for u in data["learning_rule"]["units"]:
        out.append(f"- unit {u['unit']} (`{u['model']}`): nudged by `{u['nudge_cost']}`")
    for i in range(len(stack.links)):
        out += ["", f"Glue {i} ($g$: the input gradient of unit {i + 1} at node $k$; $\\rho$: the readout "
                    f"weights of unit {i}):", ""]
        out += [f"$${left} = {right}$$" for left, right in _glue_rule_latex(stack, i)]
    return "\n".join(out) + "\n"


def _render_latex(stack: Stack, derivations: list) -> str:
    out = [rf"% derivation of stack {_tex_text(stack.name)} (theory \S 9)",
           rf"\paragraph{{Stack {_tex_text(stack.name)}}} "
           + r" $\to$ ".join(_tex_text(u.name) for u in stack.units) + "."]
    for i, d in enumerate(derivations):
        out += [rf"\paragraph{{Unit {i}: {_tex_text(stack.units[i].name)}}}",
                _unit_report(stack, i, d, "latex").rstrip("\n")]
    for i, link in enumerate(stack.links):
        if link.select is not None:
            out.append(rf"\paragraph{{Glue {i} (unit {i} to unit {i + 1}, dense)}}")
            rows = [f"{left} &= {right}" for left, right in _dense_glue_latex(stack, i)]
            out += [r"\begin{align}", " \\\\\n".join(rows), r"\end{align}"]
            continue
        names = _glue_latex_names(stack, i)
        rule = glue_rule(stack, i)
        out.append(rf"\paragraph{{Glue {i} (unit {i} to unit {i + 1})}}")
        rows = [rf"{sp.latex(u)} &= {sp.latex(o, symbol_names=names)}"
                for u, o in zip(stack.unit_input_symbols(i + 1), rule["out"])]
        rows += [f"{left} &= {right}" for left, right in _glue_rule_latex(stack, i)]
        out += [r"\begin{align}", " \\\\\n".join(rows), r"\end{align}"]
    out += [r"\paragraph{Stacked learning rule (theory \S 9)} " + RULE_LATEX]
    return "\n".join(out) + "\n"


def derive_report(stack: Stack, fmt: str, simplify: str = "fast") -> str:
    """The stack's derivation in ``fmt``: structure, glue, every unit's own report (readable forms with
    ``simplify``, theory §11), the stacked rule (§9)."""
    if fmt not in DERIVE_FORMATS:
        raise SymglepError(f"unknown format {fmt!r}; choose one of {', '.join(DERIVE_FORMATS)}")
    derivations = _derivations(stack, simplify)
    if fmt == "latex":
        return _render_latex(stack, derivations)
    data = _stack_dict(stack, derivations)
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    return (_render_text if fmt == "text" else _render_markdown)(stack, derivations, data)


# --------------------------------------------------------------------------------------------------
# residuals
# --------------------------------------------------------------------------------------------------

def residuals_report(stack: Stack, bcs: tuple, fmt: str) -> str:
    """Every unit's boundary residuals of the conditions ``bcs`` (theory §2–§3), headed by the unit, and what
    the stack changes (§9)."""
    bcs = condition_names(bcs)
    if fmt not in DERIVE_FORMATS:
        raise SymglepError(f"unknown format {fmt!r}; choose one of {', '.join(DERIVE_FORMATS)}")
    per_unit = []
    for u, a in zip(stack.units, stack.arrays):
        if a is None:
            d = derive(u, simplify="none")
            res = shown_residuals(d, bcs)  # tidied as the scalar command prints them
        else:  # an array unit: index form
            d, res = None, derive_array(u)["residuals"]
        per_unit.append((u, d, {bc: res[bc] for bc in bcs}))

    def unit_residuals(i, fmt):
        u, d, res = per_unit[i]
        if d is None:
            return render_array_residuals(u, res, fmt)
        return render_residuals(u, res, fmt, latex_names(d) if fmt == "latex" else None)

    if fmt == "json":
        data = {"kind": "stack", "stack": stack.name, "composition": COMPOSITION_NOTE,
                "units": [{"unit": i, **(residuals_dict(u, res) if d is not None else array_residuals_data(u, res))}
                          for i, (u, d, res) in enumerate(per_unit)]}
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    chain = " -> ".join(u.name for u in stack.units)
    if fmt == "latex":
        out = [rf"% boundary residuals of stack {_tex_text(stack.name)}",
               rf"\paragraph{{Stack {_tex_text(stack.name)}}} "
               + r" $\to$ ".join(_tex_text(u.name) for u in stack.units) + ". " + COMPOSITION_LATEX]
        for i, (u, d, res) in enumerate(per_unit):
            out += [rf"\paragraph{{Unit {i}: {_tex_text(u.name)}}}", unit_residuals(i, "latex").rstrip("\n")]
        return "\n".join(out) + "\n"
    if fmt == "markdown":
        out = [f"# Boundary residuals of stack `{stack.name}`", "", chain, "", COMPOSITION_NOTE, ""]
        for i, (u, d, res) in enumerate(per_unit):
            out += [f"## Unit {i}: `{u.name}`", "", _demote(unit_residuals(i, "markdown"))]
        return "\n".join(out)
    out = [f"boundary residuals of stack {stack.name}: {chain}", COMPOSITION_NOTE, ""]
    for i, (u, d, res) in enumerate(per_unit):
        out += [f"=== unit {i}: {u.name}", unit_residuals(i, "text")]
    return "\n".join(out)


# --------------------------------------------------------------------------------------------------
# generate
# --------------------------------------------------------------------------------------------------

def write_generated(stack: Stack, out_dir: str, target: str, integrator: str, force: bool,
                    precision: str) -> list:
    """``OUT/<stack>/numba/kernels.py`` or ``OUT/<stack>/c/*`` (theory §9); returns the paths written."""
    stack.capabilities.require("target", target)
    if integrator != "auto":
        stack.capabilities.require("integrator", integrator)
        stack = stack.with_integrator(integrator)
        stack.capabilities.require("target", target)
    if target == "numba":
        if precision != "float64":
            raise SymglepError("the numba target computes in float64; --precision float32 is for --target c")
        files = {"kernels.py": render_stack(stack)}
    elif target == "c":
        files = render_stack_c(stack, precision)
    else:
        raise SymglepError(f"unknown target {target!r}; available: numba, c")
    return write_files(os.path.join(out_dir, stack.name, target), files, force)


# --------------------------------------------------------------------------------------------------
# check
# --------------------------------------------------------------------------------------------------

def _groups(stack: Stack) -> list:
    """``(label, slice)`` of every reported group of θ: all, units, glue, then each unit and each glue."""
    nu = sum(stack.unit_theta(i) for i in range(len(stack.units)))
    n = len(stack.parameter_names)
    out = [("theta", slice(0, n)), ("units", slice(0, nu)), ("glue", slice(nu, n))]
    out += [(f"unit {i} ({u.name})", sl) for i, (u, sl) in enumerate(zip(stack.units, stack.unit_slices()))]
    out += [(f"glue {i}", sl) for i, sl in enumerate(stack.glue_slices())]
    return out


def check(stack: Stack, opts: CheckOptions) -> tuple:
    """``symglep check`` of a stack: (report dict, rendered text); theory §9.

    One seeded instance: parameters drawn by :meth:`Stack.draw_parameters` (or read from
    ``params_file``), a smooth random drive ``x`` and targets ``y``, random starts ``q0``, ``p0``. The
    stacked echo (centred, ±β) against BPTT through the stack, and BPTT against central finite
    differences of the discrete loss, for θ (all, units, glue, each unit, each glue), the units'
    starts ``q0``, ``p0`` and the inputs ``x``; the round trip of the un-nudged echoes; a Richardson
    estimate of the β error.
    ``passed``: every group within ``tolerance`` (echo vs BPTT) and ``FD_TOLERANCE`` (BPTT vs FD).
    """
    steps, dt, beta, seed, params_file, tolerance, fmt = (opts.steps, opts.dt, opts.beta, opts.seed,
                                                          opts.params_file, opts.tolerance, opts.fmt)
    if fmt not in ("text", "json"):
        raise SymglepError(f"check reports as text or json, not {fmt}")
    require_plain_check(opts, "stacks (the study reads a scalar model's learning integrals)")
    beta = require_run_settings(steps, dt, beta)
    kernels = compile_stack(stack, dt=dt, integrator=opts.integrator)
    stack = kernels.stack
    rng = np.random.default_rng(seed)
    drawn = stack.draw_parameters(rng)
    theta = stack.read_parameters(params_file) if params_file else drawn
    times = np.arange(steps + 1) * dt
    x = smooth_signal(rng, times, kernels.n_x, 0.2)[None]
    y = smooth_signal(rng, times, kernels.n_y, 0.3)[None]
    q0 = rng.uniform(-0.3, 0.3, (1, kernels.nq))
    p0 = rng.uniform(-0.3, 0.3, (1, kernels.nq))

    choice = None
    order = 2  # the centred contrast, or the Richardson one when --beta auto needs it (theory §5)
    if beta == AUTO:
        slices = [sl for _, sl in _groups(stack)]

        def contrast(b, order=2):
            grad, grad_x = kernels.gradient(theta, x, y, q0, p0, beta=b, learn_inputs=True, order=order,
                                            retrace=False)[1:3]  # the check measures the round trip itself
            return [grad[0][sl] for sl in slices] + [grad_x]

        choice, order = choose_contrast(contrast, tolerance)
        beta = choice.beta
    loss, echo, echo_x, trip, echo_q0, echo_p0 = kernels.gradient(theta, x, y, q0, p0, beta=beta, learn_inputs=True,
                                                                  order=order, initial_state=True, retrace=False)
    doubled = kernels.gradient(theta, x, y, q0, p0, beta=2 * beta, order=order, retrace=False)[1]
    loss_b, bptt, bptt_x, bptt_q0, bptt_p0 = kernels.bptt_gradient(theta, x, y, q0, p0, initial_state=True)
    # each group's differences fall back on Richardson's where the plain step misses BPTT (a strongly curved
    # loss: a probe's trained classifier, inputs 5e-4 off at the step 1e-4, BPTT right)
    fd, rule = finite_differences(lambda th: kernels.free(th, x, y, q0, p0)[2][0], theta, bptt[0], THETA_FD_STEP)
    fd_x, rule_x = finite_differences(lambda flat: kernels.free(theta, flat.reshape(x.shape), y, q0, p0)[2][0],
                                      x.ravel().copy(), bptt_x.ravel(), INPUT_FD_STEP)
    fd_q0, rule_q0 = finite_differences(lambda s: kernels.free(theta, x, y, s[None], p0)[2][0], q0[0].copy(),
                                        bptt_q0[0], THETA_FD_STEP)
    fd_p0, rule_p0 = finite_differences(lambda s: kernels.free(theta, x, y, q0, s[None])[2][0], p0[0].copy(),
                                        bptt_p0[0], THETA_FD_STEP)
    echo, doubled, bptt = echo[0], doubled[0], bptt[0]
    scale = max(1.0, float(np.max(np.abs(np.concatenate([q0, p0], axis=1)))))
    roundtrip = float(trip[0]) / scale
    beta_error = rel_err(doubled, echo) / (2**order - 1)  # Richardson: G(2b) - G(b) = (2^p - 1) c b^p

    noise = LOSS_ROUND_OFF_PER_STEP * (steps + 1) * abs(float(loss_b[0]))

    def group(label, e, b, f, values, rel_step, rule) -> dict:
        """One row; ``fd_noise``: the finite differences' round-off floor over the group (steps of ``rel_step``);
        ``fd_rule``: Richardson's, where the plain step missed BPTT (:func:`finite_differences`)."""
        floor = float(np.linalg.norm(noise / (rel_step * np.maximum(1.0, np.abs(values)))))
        return {"group": label, "echo_vs_bptt": rel_err(e, b), "bptt_vs_fd": rel_err(b, f),
                "norm": float(np.linalg.norm(b)), "fd_noise": floor,
                "fd_within_noise": bool(np.linalg.norm(np.ravel(b) - np.ravel(f)) <= floor), "fd_rule": rule}

    groups = [group(label, echo[sl], bptt[sl], fd[sl], theta[sl], THETA_FD_STEP, rule) for label, sl in _groups(stack)]
    groups.append(group("initial q0", echo_q0[0], bptt_q0[0], fd_q0, q0[0], THETA_FD_STEP, rule_q0))
    groups.append(group("initial p0", echo_p0[0], bptt_p0[0], fd_p0, p0[0], THETA_FD_STEP, rule_p0))
    groups.append(group("inputs x", echo_x, bptt_x, fd_x, x.ravel(), INPUT_FD_STEP, rule_x))
    passed = all(g["echo_vs_bptt"] <= tolerance and _fd_agrees(g) for g in groups)
    warns = [f"unit {i} ({stack.units[i].name}): {w}" for i, gamma in stack.damping_rates(theta)
             for w in anti_damping_warning(gamma, steps * dt)]
    if beta_error > tolerance and warns:  # round-off grown by e^(γT), not β bias: a smaller β makes it worse
        warns.append(f"the {contrast_kind(CONTRASTS[order])} echo's estimates at beta and 2 beta differ by "
                     f"{beta_error:.1e}: that is the amplified round-off above, not a bias a smaller beta removes")
    elif beta_error > tolerance:
        warns.append(f"beta = {beta:g} is too large for this stack: the {contrast_kind(CONTRASTS[order])} echo's "
                     f"beta error is about {beta_error:.1e} (> tolerance {tolerance:.0e}); try --beta "
                     f"{suggested_beta(beta, beta_error, tolerance, order):.1g}")
    if not roundtrip <= tolerance:
        warns.append(f"the un-nudged echoes do not retrace the free run to the tolerance: round-trip error "
                     f"{roundtrip:.1e} > {tolerance:.0e} (shorten the sequence or reduce dt, theory §6)")
    names = stack.parameter_names
    report = {
        "kind": "stack",
        "stack": stack.name,
        "units": [u.name for u in stack.units],
        "integrator": stack.integrator_summary,
        "route": "stacked_echo",
        "steps": steps,
        "dt": dt,
        "beta": beta,
        "beta_auto": None if choice is None else choice.to_json(),
        "contrast": CONTRASTS[order],
        "seed": seed,
        "parameters": dict(zip(names, map(float, theta))),
        "loss": float(loss[0]),
        "loss_bptt": float(loss_b[0]),
        "terminal_cost": bool(stack.has_terminal_cost),
        "roundtrip_error": roundtrip,
        "centred_error_estimate": beta_error,
        "groups": groups,
        "rel_err_echo_vs_bptt": groups[0]["echo_vs_bptt"],
        "rel_err_inputs": groups[-1]["echo_vs_bptt"],
        "rel_err_bptt_vs_fd": groups[0]["bptt_vs_fd"],
        "tolerance_echo_vs_bptt": tolerance,
        "tolerance_bptt_vs_fd": FD_TOLERANCE,
        "fd_steps": {"theta": THETA_FD_STEP, "inputs": INPUT_FD_STEP},
        "warnings": warns,
        "passed": bool(passed),
        "gradients": {
            "echo": dict(zip(names, map(float, echo))),
            "bptt": dict(zip(names, map(float, bptt))),
            "finite_differences": dict(zip(names, map(float, fd))),
            "echo_dx": echo_x[0].tolist(), "bptt_dx": bptt_x[0].tolist(),
        },
    }
    return report, (json.dumps(report, indent=2) if fmt == "json" else render_check_text(report))


def _all_zero(group: dict) -> bool:
    """Whether a gradient group is exactly zero on every side (BPTT's norm zero and nothing differing)."""
    return group["norm"] == 0.0 and group["echo_vs_bptt"] == 0.0 and group["bptt_vs_fd"] == 0.0


def render_check_text(r: dict) -> str:
    """The check report for people: per parameter, then per group of θ and the inputs."""
    lines = [f"stack {r['stack']} ({' -> '.join(r['units'])}): {r['integrator']} units, stacked echo (theory §9), "
             f"K = {r['steps']} steps of dt = {r['dt']}, beta = {r['beta']:.3g}, seed {r['seed']}",
             *([describe(r["beta_auto"])] if r.get("beta_auto") else []),
             f"loss                                {r['loss']:.10g}"
             + ("  (the top unit's running + terminal cost c_T(q_K), theory §10)" if r.get("terminal_cost") else ""),
             f"round-trip error (un-nudged echoes) {r['roundtrip_error']:.3e}",
             f"contrast: {r.get('contrast', CONTRASTS[2])}",
             f"{contrast_kind(r.get('contrast', CONTRASTS[2]))} echo: beta error estimate   "
             f"{r['centred_error_estimate']:.3e}  (from the estimates at beta and 2 beta)",
             "", f"{'parameter':<16} {'echo':>16} {'BPTT':>16} {'finite diff':>16}"]
    g = r["gradients"]
    for name in r["parameters"]:
        lines.append(f"{name:<16} {g['echo'][name]:>16.9e} {g['bptt'][name]:>16.9e} "
                     f"{g['finite_differences'][name]:>16.9e}")
    te, tf = r["tolerance_echo_vs_bptt"], r["tolerance_bptt_vs_fd"]
    ok = lambda e, t: "ok" if e <= t else "FAIL"  # noqa: E731
    lines += ["", f"{'rel. error':<22} {'echo vs BPTT':>14}      {'BPTT vs FD':>14}      (tolerances "
                  f"{te:.0e}, {tf:.0e})"]
    for grp in r["groups"]:
        untested = _all_zero(grp)  # zero on every side: nothing compared, not "ok"
        fd_verdict = "zero" if untested else "ok" if _fd_agrees(grp) else "FAIL"
        lines.append(f"{grp['group']:<22} {grp['echo_vs_bptt']:>14.3e} {'zero' if untested else ok(grp['echo_vs_bptt'], te):<4} "
                     f"{grp['bptt_vs_fd']:>14.3e} {fd_verdict}")
    lines += [f"note: {grp['group']}: the gradient is exactly zero in the echo, BPTT and finite differences, so this "
              "row tests nothing (e.g. a glue activation that is flat where the run goes, or inputs that never reach "
              "the cost)" for grp in r["groups"] if _all_zero(grp)]
    lines += [f"note: {grp['group']}: BPTT and the finite differences differ by {grp['bptt_vs_fd']:.1e} relative to a "
              f"gradient of norm {grp['norm']:.1e}, that is {grp['bptt_vs_fd'] * grp['norm']:.1e}, within the "
              f"differences' own round-off ({grp['fd_noise']:.1e}: the loss's round-off over their step), so they "
              "agree as far as they can tell" for grp in r["groups"]
              if not _all_zero(grp) and grp["bptt_vs_fd"] > tf and grp.get("fd_within_noise")]
    lines += [f"note: {grp['group']}: {grp['fd_rule']}" for grp in r["groups"] if grp.get("fd_rule")]
    lines += [f"warning: {w}" for w in r["warnings"]]
    lines.append("passed" if r["passed"] else "FAILED")
    return "\n".join(lines) + "\n"

__all__ = ["derive_report", "residuals_report", "write_generated", "check", "train"]  # symglep.commands
