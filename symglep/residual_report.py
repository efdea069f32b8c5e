"""Reports of the boundary residuals (``symglep residuals``): JSON, text, Markdown, LaTeX.

JSON: ``{"model", "sign_convention", "bc": {civp|cfvp|cbvp|periodic|pfvp: {...}}}``
where each entry has ``residual_T`` and ``residual_0`` (the string ``"0"`` when
the residual vanishes, else a map parameter → expression), ``vanishing_terms``,
``needs``, ``forward_only``, ``memory``, ``tractable`` and ``verdict``
(see ``docs/residuals.md``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import sympy as sp

from .boundary import BOUNDARY_CONDITIONS, TITLES, Residual, latex_names, residuals
from .report import expr_str

SIGN = ("dC/dθ = −d/dβ ∫ ∂L/∂θ dt − R with R = residual_T + residual_0, "
        "residual_T = X(T), residual_0 = −X(0), X = ∂βp·∂θq − ∂θp·∂βq (theory §2)")


def _res(value) -> str | dict:
    if isinstance(value, str):
        return value
    return {th.name: expr_str(e) for th, e in value.items()}


def notes(model) -> list[str]:
    """Warnings that qualify every residual of ``model`` (non-variational dissipation, theory §7)."""
    if getattr(model, "damping", 0) != 0:
        return ["the model has a non-variational Rayleigh force: these are the residuals of its conservative "
                "part, and no echo or PFVP estimator is exact for it (theory §7); BPTT is the reference"]
    return []


def to_dict(model, res: dict[str, Residual]) -> dict:
    bc = {}
    for name, r in res.items():
        bc[name] = {
            "title": TITLES[name],
            "residual_T": _res(r.residual_T),
            "residual_0": _res(r.residual_0),
            "vanishing_terms": list(r.vanishing_terms),
            "needs": r.needs,
            "forward_only": bool(r.forward_only),
            "memory": r.memory,
            "tractable": bool(r.tractable),
            "verdict": r.verdict,
            **{k: v for k, v in r.extra.items()},
        }
    return {"model": model.name, "sign_convention": SIGN, "notes": notes(model), "bc": bc}


#: Characters of one residual the text and markdown reports print (the JSON and LaTeX give it whole).
RESIDUAL_SHOWN = 2000


def _shown(expr) -> str:
    """``expr`` printed, or, past :data:`RESIDUAL_SHOWN` characters, its leading terms and how many more there
    are (a model declared by a non-quadratic H has p(v) in closed form: Cardano's roots run to kilobytes; the
    residual of an 8-link pendulum has thousands of terms, printed one by one only until the limit)."""
    terms = sp.Add.make_args(expr)
    text = ""
    for k, term in enumerate(terms):
        piece = expr_str(term)
        text = piece if k == 0 else text + (f" - {piece[1:]}" if piece.startswith("-") else f" + {piece}")
        if len(text) > RESIDUAL_SHOWN:
            more = f"{len(terms) - k - 1} more terms, " if k + 1 < len(terms) else ""
            return f"{text[:RESIDUAL_SHOWN]}... ({more}the whole: --format json)"
    return text


def _lines_of(value, tex=False, names=None) -> list[str]:
    if isinstance(value, str):
        return [value]
    if tex:
        return [rf"\theta = {sp.latex(th)}:\ {sp.latex(e, symbol_names=names or {})}" for th, e in value.items()]
    return [f"{th}: {_shown(e)}" for th, e in value.items()]


def render_text(model, res) -> str:
    out = [f"boundary residuals of model {model.name}", SIGN, *(f"note: {n}" for n in notes(model)), ""]
    for name, r in res.items():
        out.append(f"== {TITLES[name]} [{name}]")
        out.append("residual at T (X(T)):")
        out += ["  " + s for s in _lines_of(r.residual_T)]
        out.append("residual at 0 (−X(0)):")
        out += ["  " + s for s in _lines_of(r.residual_0)]
        out.append("vanishes because:")
        out += ["  - " + s for s in r.vanishing_terms]
        out.append(f"needs: {r.needs}")
        out.append(f"memory: {r.memory}; forward-only: {'yes' if r.forward_only else 'no'}; "
                   f"tractable: {'yes' if r.tractable else 'no'}")
        out.append(f"verdict: {r.verdict}")
        out.append("")
    return "\n".join(out)


def render_markdown(model, res) -> str:
    out = [f"# Boundary residuals of `{model.name}`", "", SIGN, "", *(f"**Note:** {n}\n" for n in notes(model)),
           "| boundary condition | residual at T | residual at 0 | forward-only | memory | tractable |",
           "|---|---|---|---|---|---|"]
    for name, r in res.items():
        t = "0" if r.residual_T == "0" else "non-zero"
        z = "0" if r.residual_0 == "0" else "non-zero"
        out.append(f"| {name} | {t} | {z} | {'yes' if r.forward_only else 'no'} | {r.memory} | "
                   f"{'yes' if r.tractable else 'no'} |")
    for name, r in res.items():
        out += ["", f"## {TITLES[name]}", "", "Residual at T:", ""]
        out += [f"- `{s}`" for s in _lines_of(r.residual_T)]
        out += ["", "Residual at 0:", ""]
        out += [f"- `{s}`" for s in _lines_of(r.residual_0)]
        out += ["", "Why terms vanish:", ""] + [f"- {s}" for s in r.vanishing_terms]
        out += ["", f"Needs: {r.needs}.", "", f"**Verdict:** {r.verdict}."]
    return "\n".join(out) + "\n"


def render_latex(model, res, names=None) -> str:
    out = [rf"% boundary residuals of {model.name}", *(f"% note: {n}" for n in notes(model)), r"\begin{itemize}"]
    for name, r in res.items():
        out.append(rf"\item \textbf{{{name.upper()}}}: {'forward-only' if r.forward_only else 'not forward-only'}, "
                   rf"{'tractable' if r.tractable else 'intractable'}.")
        out.append(r"\begin{align*}")
        rows = []
        for label, value in (("X(T)", r.residual_T), ("-X(0)", r.residual_0)):
            for s in _lines_of(value, tex=True, names=names):
                rows.append(rf"{label} &:\ {s}")
        out.append(" \\\\\n".join(rows))
        out.append(r"\end{align*}")
    out.append(r"\end{itemize}")
    return "\n".join(out) + "\n"


def render(model, res, fmt: str, names: dict | None = None) -> str:
    """The report in ``fmt``; ``names`` are LaTeX names of the end symbols (``boundary.latex_names``)."""
    if fmt == "json":
        return json.dumps(to_dict(model, res), indent=2, ensure_ascii=False) + "\n"
    if fmt == "latex":
        return render_latex(model, res, names)
    return {"text": render_text, "markdown": render_markdown}[fmt](model, res)


__all__ = ["render", "to_dict", "BOUNDARY_CONDITIONS"]


@dataclass
class ResidualReport:
    """The boundary residuals of one model (theory §2–§3), with Jupyter rich display."""

    model: object
    residuals: dict
    names: dict

    def render(self, fmt: str) -> str:
        return render(self.model, self.residuals, fmt, self.names)

    def _repr_latex_(self) -> str:
        return self.render("latex")

    def _repr_markdown_(self) -> str:
        return self.render("markdown")


def residual_report(d) -> ResidualReport:
    """The residual report of derivation ``d`` (what ``symglep residuals`` prints)."""
    return ResidualReport(d.model, residuals(d), latex_names(d))
