"""Building the generated C kernels and calling them through ctypes (used by test_c_kernels.py)."""

from __future__ import annotations

import ctypes
import pathlib
import subprocess

import numpy as np

from symglep.codegen.c_printer import c_api_prefix
from symglep.codegen.output import write_generated

STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]
EXTRA = ["-Wshadow", "-Wdouble-promotion", "-Wstrict-prototypes", "-Wmissing-prototypes"]


def generate(model, out: pathlib.Path, precision: str) -> pathlib.Path:
    """Writes the C files of ``model`` under ``out`` with the CLI's writer; returns their folder."""
    paths = write_generated(model, str(out), target="c", precision=precision)
    return pathlib.Path(paths[0]).parent


def compile_c(cc: str, folder: pathlib.Path, output: pathlib.Path, sources, flags) -> None:
    """Compiles ``sources`` in ``folder``; fails with the compiler's messages on any warning."""
    link = [] if "-c" in flags else ["-lm"]
    cmd = [cc, *flags, "-o", str(output), *[str(folder / s) for s in sources], *link]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0 and not done.stderr.strip(), f"{' '.join(cmd)}\n{done.stderr}"


class CKernels:
    """The per-sequence C API of one model, called with numpy arrays."""

    def __init__(self, library: pathlib.Path, model, precision: str):
        self.lib = ctypes.CDLL(str(library))
        self.api = c_api_prefix(model.name)
        self.dtype = np.float32 if precision == "float32" else np.float64
        self.real = ctypes.c_float if precision == "float32" else ctypes.c_double
        self.n, self.n_theta, self.n_u, self.n_y = model.n, len(model.parameters), len(model.u), len(model.y)
        self.fn("work_size").restype = ctypes.c_long
        self.work = np.zeros(self.fn("work_size")(), dtype=self.dtype)
        if hasattr(self.lib, f"{self.api}_energy"):
            self.fn("energy").restype = self.real

    def fn(self, name):
        return getattr(self.lib, f"{self.api}_{name}")

    def arr(self, x) -> np.ndarray:
        return np.ascontiguousarray(np.asarray(x, dtype=self.dtype))

    def ptr(self, a: np.ndarray):
        assert a.dtype == self.dtype and a.flags.c_contiguous
        return a.ctypes.data_as(ctypes.c_void_p)

    def free(self, th, q0, x0, velocity, u, y, h, t0=0.0, record=True):
        th, q0, x0, u, y = map(self.arr, (th, q0, x0, u, y))
        K = u.shape[0] - 1
        qT, pT, loss = (np.zeros(self.n, self.dtype), np.zeros(self.n, self.dtype), np.zeros(1, self.dtype))
        tq = np.zeros((K + 1, self.n), self.dtype)
        tp = np.zeros((K + 1, self.n), self.dtype)
        status = self.fn("free")(self.ptr(th), self.ptr(q0), self.ptr(x0), int(velocity), self.ptr(u), self.ptr(y),
                                 ctypes.c_long(K), self.real(h), self.real(t0), self.ptr(qT), self.ptr(pT),
                                 self.ptr(loss), self.ptr(tq) if record else None,
                                 self.ptr(tp) if record else None, self.ptr(self.work))
        assert status == 0, status
        return qT, pT, loss[0], tq, tp

    def echo(self, th, qT, pT, u, y, h, betas, t0=0.0):
        th, qT, pT, u, y, betas = map(self.arr, (th, qT, pT, u, y, betas))
        nb = betas.shape[0]
        sigma, pi = np.zeros((nb, self.n), self.dtype), np.zeros((nb, self.n), self.dtype)
        G = np.zeros((nb, self.n_theta), self.dtype)
        status = self.fn("echo")(self.ptr(th), self.ptr(qT), self.ptr(pT), self.ptr(u), self.ptr(y),
                                 ctypes.c_long(u.shape[0] - 1), self.real(h), self.real(t0), ctypes.c_long(nb),
                                 self.ptr(betas), self.ptr(sigma), self.ptr(pi), self.ptr(G), self.ptr(self.work))
        assert status == 0, status
        return sigma, pi, G

    def gradient(self, th, q0, x0, velocity, u, y, h, beta, order, t0=0.0, learn_u=False):
        """``(loss, dth, dq0, dx0)``, and ``du`` (K+1, N_U) too when ``learn_u``."""
        th, q0, x0, u, y = map(self.arr, (th, q0, x0, u, y))
        loss = np.zeros(1, self.dtype)
        dth, dq0, dx0 = np.zeros(self.n_theta, self.dtype), np.zeros(self.n, self.dtype), np.zeros(self.n, self.dtype)
        du = np.full(u.shape, np.nan, self.dtype) if learn_u else None
        status = self.fn("gradient")(self.ptr(th), self.ptr(q0), self.ptr(x0), int(velocity), self.ptr(u),
                                     self.ptr(y), ctypes.c_long(u.shape[0] - 1), self.real(h), self.real(t0),
                                     self.real(beta), int(order), self.ptr(loss), self.ptr(dth), self.ptr(dq0),
                                     self.ptr(dx0), None if du is None else self.ptr(du), self.ptr(self.work))
        assert status == 0, status
        return (loss[0], dth, dq0, dx0) + ((du,) if learn_u else ())

    def steps(self, th, q0, p0, u, y, h, t0=0.0, beta=0.0):
        """Runs the single-step function K times; returns the (K+1, n) trajectories."""
        th, u, y = map(self.arr, (th, u, y))
        q, p = self.arr(q0).copy(), self.arr(p0).copy()
        tq, tp = [q.copy()], [p.copy()]
        for k in range(u.shape[0] - 1):
            status = self.fn("step")(self.ptr(th), self.ptr(q), self.ptr(p), self.real(t0 + k * h),
                                     self.ptr(u[k]), self.ptr(y[k]), self.real(t0 + (k + 1) * h),
                                     self.ptr(u[k + 1]), self.ptr(y[k + 1]), self.real(h), self.real(beta),
                                     self.ptr(self.work))
            assert status == 0, status
            tq.append(q.copy())
            tp.append(p.copy())
        return np.array(tq), np.array(tp)


def relative_error(a, b, scale=None) -> float:
    """max |a - b| / max |b| (norm-wise; b is the reference), or / ``scale`` when given."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = np.max(np.abs(b)) if scale is None else scale
    return float(np.max(np.abs(a - b)) / scale) if scale > 0 else float(np.max(np.abs(a)))


def parse_example_output(text: str) -> dict:
    """``name v1 v2 ...`` lines of example_main.c → {name: array}."""
    out = {}
    for line in text.splitlines():
        name, *values = line.split()
        out[name] = np.array([float(v) for v in values])
    return out


def instance(model, seed: int, steps: int, single: bool):
    """A seeded problem (th, q0, p0, u, y) for one sequence; float32-representable when ``single``."""
    rng = np.random.default_rng(seed)
    n, n_theta, n_u, n_y = model.n, len(model.parameters), len(model.u), len(model.y)
    th = 1 + 0.2 * rng.random(n_theta)
    q0, p0 = rng.uniform(-.3, .3, n), rng.uniform(-.2, .2, n)
    u, y = rng.uniform(-.2, .2, (steps + 1, n_u)), rng.uniform(-.2, .2, (steps + 1, n_y))
    arrays = (th, q0, p0, u, y)
    return tuple(a.astype(np.float32).astype(np.float64) for a in arrays) if single else arrays
