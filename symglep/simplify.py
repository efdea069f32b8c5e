"""Simplification with a time budget, for the reports only (theory §11).

The code generator never sees these expressions: it keeps consuming the raw
Euler–Lagrange and Legendre results (DESIGN: never ``simplify`` big
expressions by default). A :class:`Budget` bounds the work per expression and
in total; an attempt that runs over its time (or starts on an expression
larger than the op-count guard) is dropped and the raw expression is kept, so
large models never stall. Every attempt is a rewriting that sympy proves
equal; the smallest result by ``count_ops`` wins, and ties keep the input.

Modes (``symglep derive --simplify``):

* ``none``: no simplification (today's speed);
* ``fast`` (default): factoring, trigonometric sum/product rules and
  ``sin² + cos² = 1``, cheap rational forms; the total is capped at half the
  time of the raw derivation (at least :data:`FAST_FLOOR_S` seconds for
  models of up to :data:`FLOOR_MODEL` coordinates: a physicist reads their
  equations line by line);
* ``full``: also ``sympy.simplify`` per expression, with larger limits.
"""

from __future__ import annotations

import gc
import signal
import threading
import time
import types
import weakref
from contextlib import contextmanager
from dataclasses import dataclass, field

import sympy as sp
from sympy.core.parameters import distribute
from sympy.simplify.fu import TR10i

from .errors import ArgumentError

MODES = ("none", "fast", "full")

#: Models up to this many coordinates get their det M, adj M and closed-form H and accelerations tidied.
SMALL_MODEL = 3
#: Models up to this many coordinates get at least FAST_FLOOR_S seconds in ``fast`` mode.
FLOOR_MODEL = 6
FAST_FLOOR_S = 3.0
#: Per-expression seconds and op-count guards of each mode.
PER_EXPRESSION_S = {"fast": 0.5, "full": 10.0}
MAX_OPS = {"fast": 400, "full": 3000}
#: Expressions up to this size also get ``sympy.trigsimp`` in ``fast`` mode (it is slow on large ones).
TRIGSIMP_OPS = 40


class _OverTime(BaseException):
    """Raised by the alarm inside an attempt that ran past its deadline (a BaseException, so that
    library code's ``except Exception`` does not swallow it and carry on)."""


#: After the deadline the alarm repeats every REPEAT_S seconds until the attempt has stopped: an
#: _OverTime raised where Python ignores exceptions (a garbage-collector callback, a ``__del__``)
#: is reported as "Exception ignored" and lost, and with a one-shot alarm the attempt would then
#: run without any limit (seen in CI: a run that never ended).
REPEAT_S = 0.05


@dataclass
class Budget:
    """How much simplification work is allowed (seconds per expression and in total)."""

    mode: str = "fast"
    per_expression: float = 0.5
    total: float = FAST_FLOOR_S
    max_ops: int = MAX_OPS["fast"]
    started: float = field(default_factory=time.perf_counter)
    attempts_dropped: int = 0

    @classmethod
    def for_model(cls, mode: str, n: int, derive_seconds: float) -> "Budget":
        """The budget of ``mode`` for a model of ``n`` coordinates whose raw derivation took ``derive_seconds``."""
        if mode not in MODES:
            raise ArgumentError(f"simplify must be one of {', '.join(MODES)}; got {mode!r}")
        if mode == "none":
            return cls(mode, 0.0, 0.0, 0)
        if mode == "fast":
            total = max(0.5 * derive_seconds, FAST_FLOOR_S if n <= FLOOR_MODEL else 0.0)
        else:
            total = max(5.0 * derive_seconds, 60.0)
        return cls(mode, PER_EXPRESSION_S[mode], total, MAX_OPS[mode])

    def remaining(self) -> float:
        return self.total - (time.perf_counter() - self.started)

    def spent(self) -> float:
        return time.perf_counter() - self.started

    def allows(self, expr) -> bool:
        """Whether an attempt on ``expr`` may start (mode, time left, op-count guard)."""
        return self.mode != "none" and self.remaining() > 0 and sp.count_ops(expr) <= self.max_ops


#: the code of the removal callbacks the weak containers define in their ``__init__``
_WEAK_CONTAINER_CALLBACKS = frozenset(
    const for container in (weakref.WeakSet, weakref.WeakKeyDictionary, weakref.WeakValueDictionary)
    for const in container.__init__.__code__.co_consts if isinstance(const, types.CodeType))


def _alarm(signum, frame):  # noqa: ARG001 - signal handler signature
    if _exceptions_dropped_in(frame):
        return  # Python would report and drop it ("Exception ignored"); the alarm repeats in REPEAT_S
    raise _OverTime


def _exceptions_dropped_in(frame) -> bool:
    """Whether an exception raised in ``frame`` would be dropped by Python: the frame runs inside an
    object's ``__del__``, a garbage-collector callback (e.g. JAX's, which a collection inside the
    attempt calls) or a ``weakref.finalize`` (e.g. the one ``sympy.lambdify`` registers to clean the
    line cache; seen in CI), or the removal callbacks of the weak containers (``WeakSet``, ``WeakKeyDictionary``,
    ``WeakValueDictionary``: SymPy's caches, seen in a test run). Other plain weakref callbacks cannot be told
    from their frames and are left to the repeating alarm."""
    dropping = ({getattr(cb, "__code__", None) for cb in gc.callbacks} | {weakref.finalize.__call__.__code__}
                | _WEAK_CONTAINER_CALLBACKS)
    while frame is not None:
        if frame.f_code.co_name == "__del__" or frame.f_code in dropping:
            return True
        frame = frame.f_back
    return False


@contextmanager
def deadline(seconds: float):
    """Interrupt the body after ``seconds``, and again every :data:`REPEAT_S` until it stops (SIGALRM,
    main thread only, and only when the program has no timer of its own armed; elsewhere the
    op-count guard and the wall-clock checks between attempts are the only limits)."""
    usable = (seconds > 0 and hasattr(signal, "setitimer")
              and threading.current_thread() is threading.main_thread()
              and signal.getitimer(signal.ITIMER_REAL)[0] == 0)
    if not usable:
        yield
        return
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds, REPEAT_S)
    try:
        yield
    finally:
        # A repeat of the alarm may land while the timer is being stopped (seen in a test run: the
        # timer stayed armed and interrupted pytest's own reporting); retry until both calls have run.
        while True:
            try:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)
                break
            except _OverTime:
                continue


def within(seconds: float, fn, *args):
    """``fn(*args)``, or ``None`` when it runs past ``seconds`` (:func:`deadline`): a simplification that is
    allowed to give up (``sp.simplify`` can run for minutes on a small nested expression)."""
    try:
        with deadline(seconds):
            return fn(*args)
    except _OverTime:
        return None


def pythagoras(expr):
    """``sin(x)² + cos(x)² = 1`` used both ways (``sin² → 1 − cos²`` and ``cos² → 1 − sin²``, expanded);
    the smallest of the three forms is kept."""
    args = {f.args[0] for f in expr.atoms(sp.sin, sp.cos) if expr.has(f ** 2)}
    if not args:
        return expr
    to_cos = sp.expand(expr.xreplace({sp.sin(a) ** 2: 1 - sp.cos(a) ** 2 for a in args}))
    to_sin = sp.expand(expr.xreplace({sp.cos(a) ** 2: 1 - sp.sin(a) ** 2 for a in args}))
    return smallest([expr, to_cos, to_sin])


def trig_factor_pass(expr):
    """Pull out common factors, then apply the sum-of-products rule (fu's TR10i, e.g.
    ``sin a sin b + cos a cos b`` → ``cos(a − b)``) and :func:`pythagoras` to each factor."""
    factored = sp.factor_terms(expr)
    if not factored.has(sp.sin, sp.cos):
        return factored
    parts = []
    for factor in sp.Mul.make_args(factored):
        if factor.has(sp.sin, sp.cos):
            factor = smallest([factor, pythagoras(factor), TR10i(factor), pythagoras(TR10i(factor))])
        parts.append(factor)
    return sp.Mul(*parts)


def smallest(candidates):
    """The candidate with the fewest operations (the first one on ties)."""
    best, best_ops = None, None
    for c in candidates:
        ops = sp.count_ops(c)
        if best is None or ops < best_ops:
            best, best_ops = c, ops
    return best


def attempts(mode: str, ops: int):
    """The rewritings tried in ``mode`` on an expression of ``ops`` operations, cheapest first."""
    out = [hyperbolic_tangents, lambda e: sp.factor_terms(hyperbolic_tangents(e)),  # cheap: first
           sp.factor_terms, trig_factor_pass, sp.expand,  # expand: terms that cancel once multiplied out
           over_shared_denominators, sp.together]  # m²/√D + p²/√D = √D; m (1 + v²/(1 − v²))/√(1 − v²)
    if ops <= TRIGSIMP_OPS or mode == "full":
        out += [sp.trigsimp, lambda e: sp.factor(sp.cancel(e))]
    if mode == "full":
        out.append(sp.simplify)
    return out


def hyperbolic_tangents(expr):
    """``sinh(a)/cosh(a)`` written ``tanh(a)``: the force of a ``log cosh`` potential, as a physicist writes it."""
    def rewrite(mul):
        factors = list(mul.args)
        for f in mul.args:
            denominator = 1 / sp.cosh(f.args[0]) if isinstance(f, sp.sinh) else None
            if denominator is not None and denominator in factors and f in factors:
                factors.remove(f)
                factors.remove(denominator)
                factors.append(sp.tanh(f.args[0]))
        return sp.Mul(*factors)
    return expr.replace(lambda e: e.is_Mul and e.has(sp.sinh) and e.has(sp.cosh), rewrite)


def over_shared_denominators(expr):
    """The terms of a sum that share a denominator written over it once: ``m²/√D + p²/√D`` becomes ``D/√D``,
    which SymPy writes ``√D`` (the relativistic Hamiltonian, theory §4)."""
    if not isinstance(expr, sp.Add):
        return expr
    groups: dict = {}
    for term in expr.args:
        numerator, denominator = sp.fraction(term)
        groups.setdefault(denominator, []).append(numerator)
    return sp.Add(*[sp.Add(*numerators) / denominator for denominator, numerators in groups.items()])


def as_real(expr) -> tuple:
    """``(expr', back)``: ``expr`` with each symbol of unknown realness replaced by a real one of the same name,
    and the map back. A model's coordinates, velocities, momenta, inputs and parameters are real numbers
    (theory §1), which lets ``(m² + p²)·√(1/(m² + p²))`` become ``√(m² + p²)`` (the relativistic H)."""
    swap = {s: sp.Dummy(s.name, real=True) for s in expr.free_symbols
            if isinstance(s, sp.Symbol) and s.is_real is None}
    return expr.xreplace(swap), {d: s for s, d in swap.items()}


def tidy(expr, budget: Budget):
    """The smallest equal form of ``expr`` found within ``budget`` (``expr`` itself when none is smaller), for
    real values of its symbols (:func:`as_real`)."""
    expr = sp.sympify(expr)
    if expr.is_Atom or not budget.allows(expr):
        return expr
    best, best_ops = expr, sp.count_ops(expr)
    real, back = as_real(expr)
    for attempt in attempts(budget.mode, best_ops):
        seconds = min(budget.per_expression, budget.remaining())
        if seconds <= 0:
            break
        try:
            with deadline(seconds):
                candidate = attempt(real)
            with distribute(False):  # the names back, without redistributing −(a + b) to −a − b
                candidate = candidate.xreplace(back)
            if candidate.has(sp.Abs, sp.sign) and not expr.has(sp.Abs, sp.sign):
                continue  # √(r²) = |r| holds for real r, but |r| of a symbol SymPy thinks complex differentiates
                # to sign(r)·Derivative(r, r) (Hamilton's equations of the printed H)
        except _OverTime:
            budget.attempts_dropped += 1
            continue
        ops = sp.count_ops(candidate)
        if ops < best_ops:
            best, best_ops = candidate, ops
    return best
