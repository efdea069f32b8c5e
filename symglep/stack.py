"""``symglep.Stack``: Hamiltonian units stacked by feed-forward glue, trained end to end (theory §9).

Unit ``i``'s readout ``r_i(q_i)`` (declared expressions of its coordinates)
drives unit ``i+1`` through the glue ``u_{i+1} = φ(W_i r_i + b_i)`` with
learnable ``W_i``, ``b_i`` and an optional elementwise ``φ`` (``tanh``...).
Only the top unit has a cost. The gradient runs by chained echoes (RHEL's
deep models): the units' echoes are stepped in lockstep, the un-nudged echo
of each lower unit rebuilds its free trajectory and feeds the unit above, and
each unit's per-node input gradient, pulled back through the glue's Jacobian,
becomes the linear readout cost that nudges the unit below (theory §9). Memory
is O(1) in the sequence length; :meth:`StackKernels.bptt_gradient` is the
BPTT reference (O(K) memory).

Run ``python -m symglep.stack train examples/stack_chain_hru.py`` (docs/echo-family.md).
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field

import numpy as np
import sympy as sp
from sympy.core.function import AppliedUndef

from .errors import ModelError, SymglepError
from .model import Model


def _identity(e):
    return e


@dataclass
class Link:
    """The glue from unit ``i`` to unit ``i+1``: ``u = φ(W r(q) + b)`` (plain symbols of unit ``i``)."""

    q: tuple
    readout: list
    W: list            # [[Symbol]] (n_out × n_r)
    bias: list         # [Symbol] (n_out)
    activation: object = _identity

    @property
    def weights(self) -> list:
        return [w for row in self.W for w in row]


def _plain_map(model: Model) -> dict:
    """User objects (coordinate functions, inputs, targets) → the model's plain symbols."""
    out = {}
    for v in model.variables:
        if v.kind in ("coordinate", "input", "target") and v.user != v.symbol:
            out[v.user] = v.symbol
    return out


def _user_map(model: Model) -> dict:
    """The model's plain symbols → user objects (velocities → derivatives of the coordinates)."""
    out = {}
    for v in model.variables:
        if v.kind == "coordinate":
            out[v.symbol] = v.user
            out[model.v[model.q.index(v.symbol)]] = sp.Derivative(v.user, model.time)
        elif v.kind in ("input", "target") and v.user != v.symbol:
            out[v.symbol] = v.user
    return out


def echo_model(model: Model, name: str, readout: list | None) -> Model:
    """Unit ``model`` with its cost replaced by the linear readout cost ``Σ_j ρ_j r_j(q)`` (theory §9).

    ``ρ_j`` are new targets (the per-node weights of the nudge); ``readout=None`` keeps the
    model's own cost (the top unit).
    """
    back = _user_map(model)
    users = lambda group: [v.user for v in model.variables if v.kind == group]  # noqa: E731
    constants = {v.user: float(model.constants[v.symbol]) for v in model.variables if v.kind == "constant"}
    if readout is None:
        targets, cost = users("target"), model.cost.xreplace(back)
    else:
        taken = {v.name for v in model.variables}
        base = "readout_weight"
        while any(f"{base}{j}" in taken for j in range(len(readout))):
            base = "_" + base
        t = model.time
        targets = [sp.Function(f"{base}{j}")(t) for j in range(len(readout))]
        cost = sum((rho * r.xreplace(back) for rho, r in zip(targets, readout)), sp.S.Zero)
    return Model(lagrangian=model.lagrangian.xreplace(back), coordinates=users("coordinate"),
                 parameters=list(model.parameters), inputs=users("input"), targets=targets, cost=cost,
                 name=name, constants=constants)


def _activation(value):
    if value is None:
        return _identity
    if isinstance(value, str):
        funcs = {"tanh": sp.tanh, "sigmoid": lambda e: 1 / (1 + sp.exp(-e)), "identity": _identity,
                 "linear": _identity}
        if value not in funcs:
            raise ModelError(f"unknown activation {value!r}; choose one of {', '.join(funcs)} or give a callable")
        return funcs[value]
    if callable(value):
        return value
    raise ModelError(f"an activation must be None, a name or a callable on sympy expressions, got {value!r}")


class Stack:
    """A composition of :class:`~symglep.Model` units (module docstring; theory §9).

    Parameters
    ----------
    units:
        Models, bottom first. Every unit must be separable (leapfrog) and time-reversible;
        the bottom unit's inputs are the stack's inputs, unit ``i+1``'s inputs are fed by the glue,
        only the top unit may have a cost (and its targets are the stack's targets).
    readouts:
        For each unit but the top one, a list of expressions of its coordinates: ``r_i(q_i)``.
    activations:
        For each link, ``None`` (linear), ``"tanh"``, ``"sigmoid"`` or a callable on sympy expressions.
    name:
        Used for the generated files and the kernel cache.
    """

    def __init__(self, units, readouts, activations=None, name: str = "stack"):
        units = list(units)
        if len(units) < 2:
            raise ModelError("a stack needs at least two units")
        for u in units:
            if not isinstance(u, Model):
                raise ModelError(f"stack units must be symglep.Model objects, got {type(u).__name__}")
        readouts = [list(r) for r in readouts]
        if len(readouts) != len(units) - 1:
            raise ModelError(f"a stack of {len(units)} units needs {len(units) - 1} readouts, got {len(readouts)}")
        activations = list(activations) if activations is not None else [None] * (len(units) - 1)
        if len(activations) != len(units) - 1:
            raise ModelError(f"a stack of {len(units)} units needs {len(units) - 1} activations")
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
            raise ModelError(f"the stack name must be an identifier, got {name!r}")
        self.name = name
        self.units = units
        for i, u in enumerate(units[:-1]):
            if u.cost != 0:
                raise ModelError(f"unit {i} ({u.name!r}) is not the top unit: it must declare no cost "
                                 "(the stack's cost sits on the top unit)")
        for i, u in enumerate(units[1:], start=1):
            if not u.u:
                raise ModelError(f"unit {i} ({u.name!r}) has no inputs: the unit below cannot drive it")
        if not units[0].u:
            raise ModelError(f"the bottom unit ({units[0].name!r}) needs inputs: the stack's drive")
        self.links = []
        for i, (u, r) in enumerate(zip(units[:-1], readouts)):
            if not r:
                raise ModelError(f"the readout of unit {i} ({u.name!r}) is empty")
            to_plain = _plain_map(u)
            plain = []
            for e in r:
                e = sp.sympify(e)
                if e.atoms(sp.Derivative):
                    raise ModelError(f"readout {e} of unit {i} depends on a velocity; a readout is a "
                                     "function of the coordinates only")
                e = e.xreplace(to_plain).xreplace(u.constants)
                stray = e.free_symbols - set(u.q)
                stray |= {a for a in e.atoms(AppliedUndef)}
                if stray:
                    raise ModelError(f"readout {e} of unit {i} ({u.name!r}) uses {', '.join(map(str, stray))}, "
                                     "not coordinates of that unit")
                plain.append(e)
            n_out = len(units[i + 1].u)
            W = [[sp.Symbol(f"glue{i}_W{m}_{j}") for j in range(len(plain))] for m in range(n_out)]
            b = [sp.Symbol(f"glue{i}_b{m}") for m in range(n_out)]
            self.links.append(Link(tuple(u.q), plain, W, b, _activation(activations[i])))
        self.echo_models = [echo_model(u, f"{name}_unit{i}", lk.readout if i < len(self.links) else None)
                            for i, (u, lk) in enumerate(zip(units, self.links + [None]))]
        self._check_units()

    def _check_units(self):
        from .derivation import derive
        from .discrete import choose_integrator

        for i, m in enumerate(self.echo_models):
            d = derive(m)
            try:
                choose_integrator(d, "leapfrog")
            except SymglepError as exc:
                raise ModelError(f"unit {i} ({self.units[i].name!r}): stacks step their units by leapfrog; {exc}")
            if not d.sym.time_reversible:
                raise ModelError(f"unit {i} ({self.units[i].name!r}) is not time-reversible: the stacked echo "
                                 "needs the plain echo of every unit (theory sec. 4)")

    # -- parameters ------------------------------------------------------------
    @property
    def parameter_names(self) -> list:
        """Names of the packed parameter vector: ``unit<i>.<name>``, then ``glue<i>.W<m>_<j>``, ``glue<i>.b<m>``."""
        names = [f"unit{i}.{s.name}" for i, u in enumerate(self.units) for s in u.parameters]
        for i, lk in enumerate(self.links):
            names += [f"glue{i}.{s.name.split('_', 1)[1]}" for s in lk.weights + lk.bias]
        return names

    @property
    def n(self) -> int:
        return sum(u.n for u in self.units)

    def unit_slices(self) -> list:
        """The slice of each unit's parameters in the packed vector."""
        out, o = [], 0
        for u in self.units:
            out.append(slice(o, o + len(u.parameters)))
            o += len(u.parameters)
        return out

    def glue_slices(self) -> list:
        out, o = [], sum(len(u.parameters) for u in self.units)
        for lk in self.links:
            k = len(lk.weights) + len(lk.bias)
            out.append(slice(o, o + k))
            o += k
        return out

    def draw_parameters(self, rng: np.random.Generator) -> np.ndarray:
        """Units as ``symglep check`` draws them; glue weights N(0, 1/n_r), biases N(0, 0.1²)."""
        from .check import draw_parameters as draw

        parts = []
        for u in self.units:
            values = draw(u, rng)
            keys = {getattr(k, "name", k): v for k, v in values.items()}
            parts.append([float(keys[s.name]) for s in u.parameters])
        for lk in self.links:
            nr = len(lk.readout)
            parts.append(list(rng.normal(0.0, 1.0 / np.sqrt(nr), len(lk.weights))))
            parts.append(list(rng.normal(0.0, 0.1, len(lk.bias))))
        return np.array([v for p in parts for v in p], dtype=np.float64)

    # -- code ------------------------------------------------------------------
    def source(self) -> str:
        """The generated kernel module (deterministic)."""
        from .stack_codegen import render_stack

        return render_stack(self)

    def compile(self, dt: float = 0.05, cache: str | None = None) -> "StackKernels":
        return compile_stack(self, dt=dt, cache=cache)

    def __repr__(self) -> str:
        return f"Stack({self.name!r}: {' -> '.join(u.name for u in self.units)})"


_LOADED: dict = {}


def compile_stack(stack: Stack, dt: float = 0.05, cache: str | None = None) -> "StackKernels":
    """Generate (or find in the kernel cache) and import the stack's Numba module (as ``symglep.compile``)."""
    from .runtime import _FileLock, _import, _valid_entry, _write_entry, cache_dir
    from .stack_codegen import render_stack, stack_hash

    digest = stack_hash(stack)
    if digest not in _LOADED:
        folder = os.path.join(cache_dir(cache), f"stack_{stack.name[:40]}-{digest[:16]}")
        path = os.path.join(folder, "kernels.py")
        os.makedirs(folder, exist_ok=True)
        with _FileLock(folder + ".lock"):
            if not _valid_entry(path, digest):
                _write_entry(folder, path, render_stack(stack, digest))
            module = _import(path, digest)
            kernels = StackKernels(stack, module, dt)
            kernels.warm_up()
        _LOADED[digest] = module
    return StackKernels(stack, _LOADED[digest], dt)


class StackKernels:
    """Compiled kernels of one stack. ``theta`` packed (:attr:`Stack.parameter_names`);
    ``x (B, K+1, n_x)`` the bottom unit's inputs, ``y (B, K+1, n_y)`` the top unit's targets;
    every unit starts at rest unless ``q0``/``p0`` ``(B, NQ)`` are given."""

    def __init__(self, stack: Stack, module, dt: float):
        self.stack, self.module, self.dt = stack, module, float(dt)
        self.n_theta, self.nq, self.n_x, self.n_y = module.NTH, module.NQ, module.NX, module.NY

    def warm_up(self) -> None:
        th = np.full(self.n_theta, 0.5)
        x = np.zeros((1, 3, self.n_x))
        y = np.zeros((1, 3, self.n_y))
        q0 = np.zeros((1, self.nq))
        for record in (False, True):
            self.module.free(th, q0, q0, x, y, 0.01, 0.0, record)
        for learn in (False, True):
            self.module.gradient(th, q0, q0, x, y, 0.01, 0.0, 1e-4, learn)
        self.module.bptt_gradient(th, q0, q0, x, y, 0.01, 0.0)

    def _args(self, theta, x, y, q0, p0):
        th = np.asarray(theta, dtype=np.float64).reshape(-1)
        if th.shape != (self.n_theta,):
            raise SymglepError(f"the stack has {self.n_theta} parameters, got {th.size}")
        x = np.ascontiguousarray(x, dtype=np.float64)
        y = np.ascontiguousarray(y, dtype=np.float64)
        if x.ndim != 3 or x.shape[2] != self.n_x:
            raise SymglepError(f"inputs must have shape (B, K+1, {self.n_x}), got {x.shape}")
        if y.shape != x.shape[:2] + (self.n_y,):
            raise SymglepError(f"targets must have shape {x.shape[:2] + (self.n_y,)}, got {y.shape}")
        if x.shape[1] < 2:
            raise SymglepError("the sequences need at least 2 time nodes (K >= 1)")
        for name, a in (("theta", th), ("inputs", x), ("targets", y)):
            if not np.all(np.isfinite(a)):
                raise SymglepError(f"{name} hold a non-finite value")
        B = x.shape[0]
        zero = np.zeros((B, self.nq))
        q0 = zero if q0 is None else np.ascontiguousarray(q0, dtype=np.float64)
        p0 = zero.copy() if p0 is None else np.ascontiguousarray(p0, dtype=np.float64)
        if q0.shape != (B, self.nq) or p0.shape != (B, self.nq):
            raise SymglepError(f"q0 and p0 must have shape ({B}, {self.nq})")
        return th, x, y, q0, p0

    def free(self, theta, x, y=None, q0=None, p0=None, dt=None, t0=0.0, record=False):
        """Free pass: ``(qT, pT, loss[, traj_q, traj_p, traj_u])`` (trajectories with ``record``)."""
        if y is None:
            y = np.zeros(np.shape(x)[:2] + (self.n_y,))
        th, x, y, q0, p0 = self._args(theta, x, y, q0, p0)
        out = self.module.free(th, q0, p0, x, y, float(dt or self.dt), float(t0), bool(record))
        return out if record else out[:3]

    def gradient(self, theta, x, y, q0=None, p0=None, dt=None, t0=0.0, beta=1e-4, learn_inputs=False):
        """Stacked echo (theory §9): ``(loss (B,), dtheta (B, n_θ), dx, round_trip (B,))``; memory O(1) in K."""
        th, x, y, q0, p0 = self._args(theta, x, y, q0, p0)
        if not (np.isfinite(beta) and beta != 0):
            raise SymglepError(f"beta must be a finite non-zero number, got {beta}")
        out = self.module.gradient(th, q0, p0, x, y, float(dt or self.dt), float(t0), float(beta),
                                   bool(learn_inputs))
        if not all(np.all(np.isfinite(a)) for a in out[:2]):
            raise SymglepError("the stacked echo produced a non-finite value (the free run or an echo diverged; "
                               "reduce dt)")
        return out

    def bptt_gradient(self, theta, x, y, q0=None, p0=None, dt=None, t0=0.0):
        """Reference: BPTT through the stack, ``(loss, dtheta, dx)``; O(K) memory."""
        th, x, y, q0, p0 = self._args(theta, x, y, q0, p0)
        return self.module.bptt_gradient(th, q0, p0, x, y, float(dt or self.dt), float(t0))


# -- the sine task and training ------------------------------------------------

@dataclass
class StackTrainResult:
    """Loss per epoch (the summed loss of the batch, before each update) and the final parameters."""

    losses: list
    theta: np.ndarray
    names: list
    info: dict = field(default_factory=dict)

    @property
    def factor(self) -> float:
        """Initial loss over final loss."""
        return self.losses[0] / self.losses[-1]


def sine_data(stack: Stack, kernels: StackKernels, seed: int = 0, sequences: int = 8, steps: int = 400,
              dt: float = 0.05, omega: float = 0.8, amplitude: float = 0.5):
    """The ``sine`` task for a stack (as ``symglep.tasks``): a sine drive with a random phase per
    sequence; the targets are what a teacher stack (parameters drawn from the seed) puts on the top
    unit's readout (``∂c/∂y = 0``). Returns ``(x, y, start parameters, teacher parameters)``."""
    from .tasks import readout_map

    top = stack.units[-1]
    readout = readout_map(top)
    rng = np.random.default_rng(seed)
    teacher = stack.draw_parameters(rng)
    start = stack.draw_parameters(rng)
    phases = rng.uniform(0.0, 2 * np.pi, sequences)
    t = np.arange(steps + 1) * dt
    drive = amplitude * np.sin(omega * t[None, :] + phases[:, None])
    x = np.ascontiguousarray(np.repeat(drive[:, :, None], kernels.n_x, axis=2))
    _, _, _, tq, _, tu = kernels.free(teacher, x, dt=dt, record=True)
    qo = sum(u.n for u in stack.units[:-1])
    uo = sum(len(u.u) for u in stack.units[:-1])
    y = np.ascontiguousarray(readout(tq[:, :, qo:], tu[:, :, uo:], t[None, :]))
    if not np.all(np.isfinite(y)):
        raise SymglepError(f"the teacher run of the sine task diverged for stack {stack.name!r} (dt = {dt})")
    return x, y, start, teacher


def train_stack(stack: Stack, epochs: int = 200, lr: float = 0.02, seed: int = 0, beta: float = 1e-4,
                estimator: str = "echo", dt: float = 0.05, steps: int = 400, sequences: int = 8,
                progress=None, cache: str | None = None) -> StackTrainResult:
    """Train ``stack`` on the sine task with Adam, full batch; ``estimator`` ``echo`` or ``bptt``."""
    from .optim import make_optimizer

    if estimator not in ("echo", "bptt"):
        raise SymglepError(f"unknown estimator {estimator!r}; choose echo or bptt")
    if not (isinstance(epochs, int) and epochs >= 1):
        raise SymglepError(f"epochs must be a positive integer, got {epochs!r}")
    kernels = compile_stack(stack, dt=dt, cache=cache)
    x, y, theta, teacher = sine_data(stack, kernels, seed, sequences, steps, dt)
    opt = make_optimizer("adam", lr, theta.size)
    losses = []
    for epoch in range(epochs):
        if estimator == "echo":
            loss, g = kernels.gradient(theta, x, y, beta=beta)[:2]
        else:
            loss, g = kernels.bptt_gradient(theta, x, y)[:2]
        losses.append(float(loss.sum()))
        if progress is not None:
            progress(epoch, losses[-1])
        theta = opt.step(theta, g.sum(axis=0))
    losses.append(float(kernels.free(theta, x, y)[2].sum()))
    return StackTrainResult(losses, theta, stack.parameter_names,
                            {"task": "sine", "estimator": estimator, "beta": beta, "dt": dt, "steps": steps,
                             "sequences": sequences, "seed": seed, "teacher": teacher.tolist()})


def load_stack(spec: str, name: str = "stack") -> Stack:
    """Run a model file and return its ``stack`` object (``path.py:NAME`` picks another name)."""
    import runpy

    from .errors import ModelFileError
    from .loader import split_spec

    path, obj = split_spec(spec)
    obj = obj if ":" in str(spec) else name
    if not os.path.isfile(path):
        raise ModelFileError(f"model file not found: {path}")
    try:
        namespace = runpy.run_path(path, run_name="__symglep_model__")
    except SymglepError as exc:
        raise type(exc)(f"{path}: {exc}") from exc
    except Exception as exc:
        raise ModelFileError(f"{path} raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(namespace.get(obj), Stack):
        raise ModelFileError(f"{path} defines no symglep.Stack named {obj!r}")
    return namespace[obj]


def main(argv=None) -> int:
    """``python -m symglep.stack train FILE [options]`` and ``... generate FILE --out DIR``."""
    import argparse

    from .fileio import write_atomic

    parser = argparse.ArgumentParser(prog="python -m symglep.stack", description="Stacks of Hamiltonian units.")
    sub = parser.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train", help="train a stack on the sine task")
    tr.add_argument("file")
    tr.add_argument("--epochs", type=int, default=200)
    tr.add_argument("--lr", type=float, default=0.02)
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--beta", type=float, default=1e-4)
    tr.add_argument("--estimator", choices=("echo", "bptt"), default="echo")
    tr.add_argument("--steps", type=int, default=400)
    tr.add_argument("--dt", type=float, default=0.05)
    gen = sub.add_parser("generate", help="write the stack's generated kernels to OUT/<name>/numba/kernels.py")
    gen.add_argument("file")
    gen.add_argument("--out", default="generated")
    args = parser.parse_args(argv)
    try:
        stack = load_stack(args.file)
        if args.command == "generate":
            path = os.path.join(args.out, stack.name, "numba", "kernels.py")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            write_atomic(path, stack.source())
            print(path)
            return 0

        def show(epoch, loss):
            if epoch % 20 == 0:
                print(f"epoch {epoch:4d}  loss {loss:.6e}", flush=True)

        res = train_stack(stack, epochs=args.epochs, lr=args.lr, seed=args.seed, beta=args.beta,
                          estimator=args.estimator, dt=args.dt, steps=args.steps, progress=show)
        print(f"final loss {res.losses[-1]:.6e}; loss decreased {res.factor:.1f}x over {args.epochs} epochs "
              f"({args.estimator})")
        return 0
    except SymglepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
