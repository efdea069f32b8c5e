"""Floating-point operations of generated kernels, counted from their source; and the machine's peak.

:func:`count_flops` walks the Python AST of a kernel module (the generated Numba source,
read as plain Python) from an entry function whose argument shapes are given as SymPy
expressions, and returns the number of floating-point operations as a polynomial in those
sizes (``n``, ``K``, ``B`` …). The rules:

* ``+ − * /`` with at least one floating-point operand: 1 flop each (``x += y`` too);
  ``x ** 2`` is one multiply, ``x ** 3`` two; a product with the literal ``1`` or ``1.0``
  is free (LLVM folds it); unary minus is free (a sign flip).
* integer arithmetic (indices, sizes, offsets) is not counted: a value is an integer when
  it comes from an integer literal, a loop variable, ``.shape``, or an integer array
  (``off``, ``E``, ``ro`` — named in the entry's arguments);
* ``math.*`` calls (``exp``, ``log``, ``sinh``, ``cosh``, ``tanh``, ``sqrt`` …) are counted
  apart, as *transcendental calls*;
* ``for v in range(a, b)`` (or ``prange``) multiplies by the trip count, as an exact sum
  over ``v`` (triangular loops come out right); calls to functions of the same module are
  counted through, with the caller's argument shapes and known flags (``learn``,
  ``mode``, ``order`` …), so only the branches that run are counted; an ``if`` whose
  condition is unknown counts its costlier branch (compared at sizes of 100).

The peak: :func:`fma_peak` times a Numba loop of independent fused multiply–adds on an
L1-resident array (``fastmath`` lets LLVM emit FMA instructions and vectorise), one
thread and all threads, and reports GFLOP/s (an FMA is 2 flops).
"""

from __future__ import annotations

import ast
import copy
import time
from dataclasses import dataclass

import sympy as sp


class FlopCountError(Exception):
    """The source uses a construct the counter does not model."""


# -- abstract values -------------------------------------------------------------------
class _Float:
    def __repr__(self):
        return "FLOAT"


FLOAT = _Float()  # an unknown floating-point scalar


@dataclass
class Array:
    shape: tuple
    integer: bool = False

    @property
    def size(self):
        out = sp.Integer(1)
        for s in self.shape:
            out *= s
        return out


@dataclass
class Bool:
    value: object  # True, False or None (unknown)


@dataclass
class Func:
    node: ast.FunctionDef


@dataclass
class Module_:
    name: str


class Count:
    """Flops and transcendental calls, SymPy expressions."""

    def __init__(self, flops=0, trans=0):
        self.flops, self.trans = sp.sympify(flops), sp.sympify(trans)

    def __add__(self, other):
        return Count(self.flops + other.flops, self.trans + other.trans)

    def __iadd__(self, other):
        self.flops += other.flops
        self.trans += other.trans
        return self

    def sample(self):
        free = self.flops.free_symbols | self.trans.free_symbols
        sub = {s: 100 for s in free}
        return float(self.flops.subs(sub)) + 20 * float(self.trans.subs(sub))

    def __repr__(self):
        return f"Count(flops={self.flops}, trans={self.trans})"


def _is_int(v):
    return isinstance(v, sp.Expr) or isinstance(v, int)


def _is_num(v):
    return v is FLOAT or _is_int(v)


class _Return(Exception):
    def __init__(self, value):
        self.value = value


class _Continue(Exception):
    """A ``continue``: the rest of the loop body is skipped for this iteration (counted up to it)."""


def _unwrap_numpy_bools(node):
    """`np.bool_(False)` → `False` (the run-time flags NO, YES of the templates), so
    that a module-level flag assignment reads as a literal."""
    class Unwrap(ast.NodeTransformer):
        def visit_Call(self, call):
            f = call.func
            if (isinstance(f, ast.Attribute) and f.attr == "bool_" and len(call.args) == 1
                    and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, bool)):
                return call.args[0]
            return self.generic_visit(call)
    return Unwrap().visit(copy.deepcopy(node))


class Counter:
    """Abstract interpreter of one module's source (see the module docstring)."""

    def __init__(self, source: str):
        self.tree = ast.parse(source)
        self.globals = {}
        for node in self.tree.body:
            if isinstance(node, ast.FunctionDef):
                self.globals[node.name] = Func(node)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    self.globals[alias.asname or alias.name] = Module_(alias.name)
            elif isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    self.globals[alias.asname or alias.name] = Module_(f"{node.module}.{alias.name}")
            elif isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                names = [target] if isinstance(target, ast.Name) else list(getattr(target, "elts", []))
                try:
                    value = ast.literal_eval(_unwrap_numpy_bools(node.value))
                except ValueError:
                    continue
                values = [value] if isinstance(target, ast.Name) else list(value)
                for name, v in zip(names, values):
                    if isinstance(name, ast.Name) and isinstance(v, bool):
                        self.globals[name.id] = Bool(v)
                    elif isinstance(name, ast.Name) and isinstance(v, int):
                        self.globals[name.id] = sp.Integer(v)
        self._fresh = 0

    # -- helpers -----------------------------------------------------------------
    def fresh(self, name="t"):
        self._fresh += 1
        return sp.Symbol(f"_{name}{self._fresh}", integer=True, nonnegative=True)

    def lookup(self, env, name):
        if name in env:
            return env[name]
        if name in self.globals:
            return self.globals[name]
        if name in ("range", "prange", "len", "float", "int", "bool", "abs", "min", "max", "tuple"):
            return Module_(name)
        raise FlopCountError(f"unknown name {name!r}")

    # -- entry ----------------------------------------------------------------------
    def call(self, name: str, args: dict) -> Count:
        func = self.globals.get(name)
        if not isinstance(func, Func):
            raise FlopCountError(f"no function {name!r} in the source")
        count = Count()
        self.invoke(func.node, [args[a.arg] for a in func.node.args.args], {}, count)
        return count

    def invoke(self, node: ast.FunctionDef, args, kwargs, count):
        env = {}
        params = [a.arg for a in node.args.args]
        defaults = node.args.defaults
        for i, p in enumerate(params):
            if i < len(args):
                env[p] = args[i]
            elif p in kwargs:
                env[p] = kwargs[p]
            else:
                d = i - (len(params) - len(defaults))
                if d < 0:
                    raise FlopCountError(f"{node.name}: argument {p} missing")
                env[p], _ = self.expr(defaults[d], env)
        try:
            self.block(node.body, env, count)
        except _Return as r:
            return r.value
        return None

    # -- statements ---------------------------------------------------------------------
    def block(self, body, env, count):
        for stmt in body:
            self.stmt(stmt, env, count)

    def stmt(self, s, env, count):
        if isinstance(s, ast.Expr):
            if isinstance(s.value, ast.Constant):
                return
            _, c = self.expr(s.value, env)
            count += c
        elif isinstance(s, ast.Assign):
            value, c = self.expr(s.value, env)
            count += c
            for target in s.targets:
                count += self.bind(target, value, env)
        elif isinstance(s, ast.AnnAssign):
            if s.value is not None:
                value, c = self.expr(s.value, env)
                count += c
                count += self.bind(s.target, value, env)
        elif isinstance(s, ast.AugAssign):
            value, c = self.expr(s.value, env)
            count += c
            old, c2 = self.expr(s.target, env)  # reading the target's indices is integer work
            count += c2
            if isinstance(s.target, ast.Name) and _is_int(old) and _is_int(value):
                env[s.target.id] = self.intop(s.op, old, value)
            elif isinstance(old, Array):
                count += Count(old.size)
            elif old is FLOAT or value is FLOAT or isinstance(value, Array):
                count += Count(value.size if isinstance(value, Array) else 1)
                if isinstance(s.target, ast.Name):
                    env[s.target.id] = FLOAT
            elif isinstance(s.target, ast.Name):
                env[s.target.id] = self.fresh()
        elif isinstance(s, ast.For):
            self.loop(s, env, count)
        elif isinstance(s, ast.If):
            cond, c = self.expr(s.test, env)
            count += c
            known = self.truth(cond)
            if known is True:
                self.block(s.body, env, count)
            elif known is False:
                self.block(s.orelse, env, count)
            else:
                self.either(s.body, s.orelse, env, count)
        elif isinstance(s, ast.Return):
            value = None
            if s.value is not None:
                value, c = self.expr(s.value, env)
                count += c
            raise _Return(value)
        elif isinstance(s, ast.Continue):
            raise _Continue()
        elif isinstance(s, (ast.Pass, ast.Assert, ast.Raise, ast.Import, ast.ImportFrom, ast.Global,
                            ast.Nonlocal, ast.Delete)):
            return
        else:
            raise FlopCountError(f"line {s.lineno}: {type(s).__name__} statements are not modelled")

    def either(self, body, orelse, env, count):
        """An ``if`` with an unknown condition: the costlier branch (a Return inside counts up to it)."""
        results = []
        for branch in (body, orelse):
            e, c = dict(env), Count()
            try:
                self.block(branch, e, c)
            except (_Return, _Continue):  # the costlier branch up to it (an upper bound of the loop's rest)
                pass
            results.append((c.sample(), c, e))
        _, c, e = max(results, key=lambda r: r[0])
        count += c
        for key, value in e.items():
            env[key] = value

    def loop(self, s, env, count):
        it = s.iter
        if not (isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id in ("range", "prange")):
            raise FlopCountError(f"line {s.lineno}: only for-loops over range/prange are modelled")
        bounds = []
        for a in it.args:
            v, c = self.expr(a, env)
            count += c
            if not _is_int(v):
                raise FlopCountError(f"line {s.lineno}: non-integer loop bound")
            bounds.append(sp.sympify(v))
        lo, hi, step = (sp.Integer(0), bounds[0], 1) if len(bounds) == 1 else (
            bounds[0], bounds[1], bounds[2] if len(bounds) == 3 else 1)
        if not isinstance(s.target, ast.Name):
            raise FlopCountError(f"line {s.lineno}: loop target must be a name")
        var = self.fresh(s.target.id)
        env[s.target.id] = var
        body = Count()
        try:
            self.block(s.body, env, body)
        except _Continue:  # a branch known to be taken ends the iteration there
            pass
        if step == 1:
            first, last = lo, hi - 1
        elif step == -1:
            first, last = hi + 1, lo
        else:
            raise FlopCountError(f"line {s.lineno}: loop step {step} is not modelled")
        count += Count(sp.expand(sp.summation(body.flops, (var, first, last))),
                       sp.expand(sp.summation(body.trans, (var, first, last))))

    def bind(self, target, value, env):
        if isinstance(target, ast.Name):
            env[target.id] = value
        elif isinstance(target, (ast.Tuple, ast.List)):
            if isinstance(value, tuple) and len(value) == len(target.elts):
                for t, v in zip(target.elts, value):
                    self.bind(t, v, env)
            else:
                for t in target.elts:
                    self.bind(t, FLOAT, env)
        elif isinstance(target, (ast.Subscript, ast.Attribute)):
            _, c = self.expr(target.value, env)
            return c
        else:
            raise FlopCountError(f"cannot assign to {type(target).__name__}")
        return Count()

    # -- expressions -----------------------------------------------------------------------
    def truth(self, v):
        if isinstance(v, Bool):
            return v.value
        if isinstance(v, sp.logic.boolalg.Boolean):
            if v == sp.true:
                return True
            if v == sp.false:
                return False
            return None
        if _is_int(v):
            v = sp.sympify(v)
            return None if v.is_zero is None else not v.is_zero
        return None

    def intop(self, op, a, b):
        a, b = sp.sympify(a), sp.sympify(b)
        if isinstance(op, ast.Add):
            return a + b
        if isinstance(op, ast.Sub):
            return a - b
        if isinstance(op, ast.Mult):
            return a * b
        if isinstance(op, ast.FloorDiv):
            return sp.floor(a / b)
        if isinstance(op, ast.Mod):
            return sp.Mod(a, b)
        if isinstance(op, ast.Pow):
            return a ** b
        return self.fresh()

    def expr(self, e, env):
        """``(value, Count)`` of an expression."""
        if isinstance(e, ast.Constant):
            v = e.value
            if isinstance(v, bool):
                return Bool(v), Count()
            if isinstance(v, int):
                return sp.Integer(v), Count()
            if isinstance(v, float):
                return FLOAT, Count()
            return v, Count()
        if isinstance(e, ast.Name):
            return self.lookup(env, e.id), Count()
        if isinstance(e, (ast.Tuple, ast.List)):
            vals, c = [], Count()
            for x in e.elts:
                v, cx = self.expr(x, env)
                vals.append(v)
                c += cx
            return tuple(vals), c
        if isinstance(e, ast.BinOp):
            return self.binop(e, env)
        if isinstance(e, ast.UnaryOp):
            v, c = self.expr(e.operand, env)
            if isinstance(e.op, ast.Not):
                t = self.truth(v)
                return Bool(None if t is None else not t), c
            if isinstance(e.op, ast.USub) and _is_int(v):
                return -sp.sympify(v), c
            return v, c
        if isinstance(e, ast.BoolOp):
            c, vals = Count(), []
            for x in e.values:
                v, cx = self.expr(x, env)
                c += cx
                vals.append(self.truth(v))
            if isinstance(e.op, ast.And):
                out = False if False in vals else (True if all(v is True for v in vals) else None)
            else:
                out = True if True in vals else (False if all(v is False for v in vals) else None)
            return Bool(out), c
        if isinstance(e, ast.Compare):
            return self.compare(e, env)
        if isinstance(e, ast.IfExp):
            cond, c = self.expr(e.test, env)
            t = self.truth(cond)
            if t is not None:
                v, c2 = self.expr(e.body if t else e.orelse, env)
                return v, c + c2
            (v1, c1), (v2, c2) = self.expr(e.body, env), self.expr(e.orelse, env)
            pick = (v1, c1) if c1.sample() >= c2.sample() else (v2, c2)
            v = pick[0]
            if _is_int(v1) and _is_int(v2) and not (sp.sympify(v1) - sp.sympify(v2)).is_zero:
                v = self.fresh()
            return v, c + pick[1]
        if isinstance(e, ast.Subscript):
            return self.subscript(e, env)
        if isinstance(e, ast.Attribute):
            base, c = self.expr(e.value, env)
            if isinstance(base, Array) and e.attr == "shape":
                return tuple(base.shape), c
            if isinstance(base, Array) and e.attr in ("T",):
                return Array(tuple(reversed(base.shape)), base.integer), c
            if isinstance(base, Array):
                return ("method", base, e.attr), c
            if isinstance(base, Module_):
                if base.name == "math" and e.attr in ("pi", "e", "inf", "nan"):
                    return FLOAT, c
                return Module_(f"{base.name}.{e.attr}"), c
            raise FlopCountError(f"line {e.lineno}: attribute .{e.attr} of {base!r}")
        if isinstance(e, ast.Call):
            return self.callexpr(e, env)
        raise FlopCountError(f"line {getattr(e, 'lineno', '?')}: {type(e).__name__} is not modelled")

    def binop(self, e, env):
        a, ca = self.expr(e.left, env)
        b, cb = self.expr(e.right, env)
        c = ca + cb
        if _is_int(a) and _is_int(b):
            return self.intop(e.op, a, b), c
        if isinstance(a, Array) or isinstance(b, Array):
            arr = a if isinstance(a, Array) else b
            return Array(arr.shape), c + Count(arr.size)
        if not (_is_num(a) and _is_num(b)):
            if isinstance(e.op, ast.Mod):  # string formatting
                return a, c
            raise FlopCountError(f"line {e.lineno}: arithmetic on {a!r} and {b!r}")
        if isinstance(e.op, ast.Mult):
            for side in (e.left, e.right):
                if isinstance(side, ast.Constant) and side.value in (1, 1.0) and not isinstance(side.value, bool):
                    return FLOAT, c  # x * 1.0: folded
        if isinstance(e.op, ast.Pow):
            if _is_int(b) and sp.sympify(b).is_Integer and 1 <= int(b) <= 4:
                return FLOAT, c + Count(int(b) - 1)
            return FLOAT, c + Count(0, 1)
        return FLOAT, c + Count(1)

    def compare(self, e, env):
        if len(e.ops) != 1:
            raise FlopCountError(f"line {e.lineno}: chained comparison")
        a, ca = self.expr(e.left, env)
        b, cb = self.expr(e.comparators[0], env)
        c = ca + cb
        op = e.ops[0]
        if isinstance(op, ast.Eq) and ast.dump(e.left) == ast.dump(e.comparators[0]):
            return Bool(True), c  # h == h: true for every number (the template's way to spell True)
        if _is_int(a) and _is_int(b):
            a, b = sp.sympify(a), sp.sympify(b)
            rel = {ast.Eq: sp.Eq, ast.NotEq: sp.Ne, ast.Lt: sp.Lt, ast.LtE: sp.Le, ast.Gt: sp.Gt,
                   ast.GtE: sp.Ge}.get(type(op))
            if rel is None:
                return Bool(None), c
            return Bool(self.truth(rel(a, b))), c
        if isinstance(a, Bool) and isinstance(b, Bool) and isinstance(op, (ast.Eq, ast.Is)):
            return Bool(None if None in (a.value, b.value) else a.value == b.value), c
        return Bool(None), c

    def subscript(self, e, env):
        base, c = self.expr(e.value, env)
        idx = e.slice
        parts = list(idx.elts) if isinstance(idx, ast.Tuple) else [idx]
        if isinstance(base, tuple):
            v, c2 = self.expr(idx, env)
            if _is_int(v) and sp.sympify(v).is_Integer:
                return base[int(v)], c + c2
            raise FlopCountError(f"line {e.lineno}: tuple index not a constant")
        if not isinstance(base, Array):
            raise FlopCountError(f"line {e.lineno}: subscript of {base!r}")
        shape = []
        for axis, p in enumerate(parts):
            if isinstance(p, ast.Slice):
                length = base.shape[axis]
                lo = sp.Integer(0)
                hi = length
                if p.lower is not None:
                    lo, c2 = self.expr(p.lower, env)
                    c += c2
                if p.upper is not None:
                    hi, c2 = self.expr(p.upper, env)
                    c += c2
                shape.append(sp.simplify(sp.sympify(hi) - sp.sympify(lo)))
            else:
                _, c2 = self.expr(p, env)
                c += c2
        shape += list(base.shape[len(parts):])
        if shape:
            return Array(tuple(shape), base.integer), c
        return (self.fresh("i") if base.integer else FLOAT), c

    def callexpr(self, e, env):
        fn, c = self.expr(e.func, env)
        args, kwargs = [], {}
        for a in e.args:
            v, ca = self.expr(a, env)
            args.append(v)
            c += ca
        for kw in e.keywords:
            v, ck = self.expr(kw.value, env)
            kwargs[kw.arg] = v
            c += ck
        if isinstance(fn, Func):
            return self.invoke(fn.node, args, kwargs, c), c
        if isinstance(fn, tuple) and len(fn) == 3 and fn[0] == "method":
            _, arr, name = fn
            if name == "reshape":
                shape = args[0] if len(args) == 1 and isinstance(args[0], tuple) else tuple(args)
                return Array(tuple(sp.sympify(s) for s in shape), arr.integer), c
            if name in ("copy", "ravel", "flatten"):
                return Array(arr.shape if name == "copy" else (arr.size,), arr.integer), c
            if name in ("sum", "max", "min"):
                return FLOAT, c + Count(arr.size)
            raise FlopCountError(f"line {e.lineno}: array method .{name}")
        if isinstance(fn, Module_):
            name = fn.name
            short = name.split(".")[-1]
            if name.startswith("math."):
                return FLOAT, c + Count(0, 1)
            if short in ("empty", "zeros", "ones", "full", "empty_like", "zeros_like"):
                shape = args[0]
                if isinstance(shape, Array):
                    return Array(shape.shape, shape.integer), c
                shape = shape if isinstance(shape, tuple) else (shape,)
                integer = "int" in str(kwargs.get("dtype", ""))
                return Array(tuple(sp.sympify(s) for s in shape), integer), c
            if short in ("array", "asarray", "ascontiguousarray"):
                if isinstance(args[0], Array):
                    return args[0], c
                if isinstance(args[0], tuple):
                    return Array((sp.Integer(len(args[0])),)), c
            if short in ("float",):
                return FLOAT, c
            if short in ("int", "len"):
                if short == "len" and isinstance(args[0], Array):
                    return args[0].shape[0], c
                if short == "int" and _is_int(args[0]):  # a known integer (e.g. the contrast's order)
                    return args[0], c
                return self.fresh(), c
            if short == "bool":
                return Bool(self.truth(args[0])), c
            if short in ("abs", "min", "max"):
                if all(_is_int(a) for a in args):
                    return self.fresh(), c
                return FLOAT, c
            if short in ("sqrt", "exp", "log", "sin", "cos", "tanh", "sinh", "cosh"):
                if args and isinstance(args[0], Array):
                    return Array(args[0].shape), c + Count(0, args[0].size)
                return FLOAT, c + Count(0, 1)
        raise FlopCountError(f"line {e.lineno}: call of {fn!r} is not modelled")


def count_flops(source: str, entry: str, args: dict) -> Count:
    """Flops of ``entry(**args)`` in ``source`` (see the module docstring); ``args`` maps each
    parameter to ``Array(shape)``, ``Array(shape, integer=True)``, ``FLOAT``, ``Bool(v)`` or a size."""
    return Counter(source).call(entry, args)


# -- the generated network kernels ---------------------------------------------------------
def network_step_flops(source: str, method: str = "gradient") -> dict:
    """Flops per time step and sequence of a network module's ``gradient`` (centred echo: free
    pass + both echoes) or ``bptt_gradient``, as SymPy polynomials in n (units), e (edges),
    m (inputs), r (readout units) and N (parameters)."""
    n, e, m, r, K, B, N, P = sp.symbols("n e m r K B N P", integer=True, positive=True)
    counter = Counter(source)
    D = counter.globals.get("D", sp.Integer(1))
    NQ = n * D
    args = {"th": Array((N,)), "off": Array((P,), True), "E": Array((e, sp.Integer(2)), True),
            "ro": Array((r,), True), "q0": Array((B, NQ)), "p0": Array((B, NQ)),
            "u": Array((B, K + 1, m)), "y": Array((B, K + 1, r)), "h": FLOAT, "t0": FLOAT}
    if method == "gradient":
        args.update(beta=FLOAT, order=2)  # the centred contrast
    args.update(learn_u=Bool(False))  # the default path: no input gradients
    count = counter.call(method, args)
    per = lambda x: sp.expand(sp.diff(sp.expand(x), K, B))  # noqa: E731 - coefficient of K·B
    return {"flops": per(count.flops), "trans": per(count.trans), "symbols": {"n": n, "e": e, "m": m, "r": r, "N": N}}


# -- the machine's peak --------------------------------------------------------------------
_PEAK = {}


def _fma_kernels():
    if _PEAK:
        return _PEAK
    from numba import njit, prange

    @njit(fastmath=True, cache=False)
    def sweep(x, a, b, reps):
        """One FMA per element and sweep; elements independent (vectorised; L1-resident)."""
        for _ in range(reps):
            for i in range(x.shape[0]):
                x[i] = x[i] * a + b
        return x[0]

    @njit(fastmath=True, cache=False)
    def chains(x, a, b, reps):
        """8 dependent FMAs per element and sweep; the elements independent (pipelined)."""
        for _ in range(reps):
            for i in range(x.shape[0]):
                v = x[i]
                v = v * a + b
                v = v * a + b
                v = v * a + b
                v = v * a + b
                v = v * a + b
                v = v * a + b
                v = v * a + b
                v = v * a + b
                x[i] = v
        return x[0]

    @njit(fastmath=True, parallel=True, cache=False)
    def sweep_parallel(x, a, b, reps):
        out = 0.0
        for t in prange(x.shape[0]):
            out += sweep(x[t], a, b, reps)
        return out

    @njit(fastmath=True, parallel=True, cache=False)
    def chains_parallel(x, a, b, reps):
        out = 0.0
        for t in prange(x.shape[0]):
            out += chains(x[t], a, b, reps)
        return out

    _PEAK.update(sweep=(sweep, sweep_parallel, 1), chains=(chains, chains_parallel, 8))
    return _PEAK


def fma_peak(threads: int, width: int = 512, flops_per_call: float = 2e8, repeats: int = 7) -> dict:
    """Peak GFLOP/s of the FMA loops (an FMA = 2 flops) on one thread and on ``threads`` threads.

    The best of ``repeats`` calls of each loop, and the better loop: a peak is what the core
    does when it is not taken by something else (on a shared machine a median would measure
    the other jobs)."""
    import numpy as np

    a, b = 0.999999, 1e-7  # a contraction: values stay finite and normal
    best = {"one thread": 0.0, "all threads": 0.0}
    for serial, parallel, per in _fma_kernels().values():
        reps = max(1, int(flops_per_call / (2.0 * per * width)))
        for label, fn, x in (("one thread", serial, np.full(width, 0.5)),
                             ("all threads", parallel, np.full((threads, width), 0.5))):
            fn(x, a, b, 1)
            lanes = 1 if x.ndim == 1 else threads
            for _ in range(repeats):
                t0 = time.perf_counter()
                fn(x, a, b, reps)
                rate = 2.0 * per * width * reps * lanes / (time.perf_counter() - t0) / 1e9
                best[label] = max(best[label], rate)
    return best


# -- why a dense network runs below the peak --------------------------------------------------
def matvec_probe(n: int = 64, calls: int = 20000, repeats: int = 5) -> dict:
    """GFLOP/s (best of ``repeats``) of the three loop shapes of a dense n × n force term:

    * ``row dot``: ``z_i = Σ_j A_ij q_j`` as the network template writes ``(A q)_i`` — one
      accumulator, a serial chain of dependent adds that LLVM may not reorder (IEEE order);
    * ``row dot, reassociation allowed``: the same loop with ``fastmath={"reassoc", "contract"}``;
    * ``column axpy``: ``f_j += A_ij g_i`` as the template writes ``Aᵀ g`` (independent updates:
      vectorised).
    """
    import numpy as np
    from numba import njit

    def rowdot(A, q, z, reps):
        m = q.shape[0]
        for _ in range(reps):
            for i in range(m):
                s = 0.0
                for j in range(m):
                    s += A[i, j] * q[j]
                z[i] = s

    def axpy(A, g, f, reps):
        m = g.shape[0]
        for _ in range(reps):
            for i in range(m):
                gi = g[i]
                for j in range(m):
                    f[j] += A[i, j] * gi

    rng = np.random.default_rng(0)
    A = rng.uniform(-1, 1, (n, n)) / n
    q = rng.uniform(-1, 1, n)
    out = {}
    for label, fn in (("row dot, strict IEEE order", njit(error_model="numpy")(rowdot)),
                      ("row dot, reassociation allowed (as generated)", njit(error_model="numpy",
                                                             fastmath={"reassoc", "contract"})(rowdot)),
                      ("column axpy, strict order", njit(error_model="numpy")(axpy))):
        z = np.zeros(n)
        fn(A, q, z, 1)
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn(A, q, z, calls)
            best = min(best, time.perf_counter() - t0)
        out[label] = 2.0 * n * n * calls / best / 1e9
    out.update(transcendental_probe(n, calls, repeats))
    return out


def transcendental_probe(n: int = 64, calls: int = 20000, repeats: int = 5) -> dict:
    """Nanoseconds per unit of ``sinh(z)/cosh(z)`` (SymPy's f′(z) of log cosh: two scalar libm calls and
    a division) and of ``tanh(z)`` (what the network kernels call since the quotient is rewritten), in a loop over n units (best of ``repeats``)."""
    import math

    import numpy as np
    from numba import njit

    def two(x, out, reps):
        for _ in range(reps):
            for i in range(x.shape[0]):
                t = x[i]
                out[i] = math.sinh(t) / math.cosh(t)

    def one(x, out, reps):
        for _ in range(reps):
            for i in range(x.shape[0]):
                out[i] = math.tanh(x[i])

    x = np.random.default_rng(1).uniform(-2, 2, n)
    res = np.empty(n)
    out = {}
    for label, fn in (("sinh(z)/cosh(z) per unit (ns, not GFLOP/s)", njit(error_model="numpy")(two)),
                      ("tanh(z) per unit, as generated (ns)", njit(error_model="numpy")(one))):
        fn(x, res, 1)
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn(x, res, calls)
            best = min(best, time.perf_counter() - t0)
        out[label] = best / calls / n * 1e9
    return out
