"""C99 kernels: float32 error against the float64 estimator, and Cortex-M4F code size (docs/c-kernels.md).

(a) For every time-reversible bundled example and each β in ``--betas``, the generated C
    kernels in float32 (gcc -O2, x86-64) compute the centred, one-sided and Richardson (±β, ±2β) echo gradient of
    one seeded sequence (``--steps`` steps of 0.01, the same instance as
    tests/test_c_kernels.py); the table gives the norm-wise relative error
    ``max|g32 − g64| / max|g64|`` of dC/dθ, dC/dq0 and dC/dp0 against the float64 Numba
    estimator at the same β, and, for context, the float64 estimator's own distance to BPTT
    (its O(β²) or O(β) bias). The float64 C kernels are not listed: they equal Numba bit for bit.
(b) With ``arm-none-eabi-gcc`` on PATH (``scripts/install-toolchains.sh``), the text size of
    each example's float32 kernels compiled for a Cortex-M4F
    (``-mcpu=cortex-m4 -mthumb -mfpu=fpv4-sp-d16 -mfloat-abi=hard -O2``).

A measurement script: it prints tables and asserts nothing.

Usage::

    python benchmarks/c_kernels.py [--steps 150] [--betas 1e-3 1e-2 1e-1]
"""

from __future__ import annotations

import argparse
import pathlib
import shutil
import subprocess
import sys
import tempfile


ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the ctypes harness the tests use

import symglep  # noqa: E402
from c_harness import STRICT, CKernels, compile_c, generate, instance, relative_error  # noqa: E402

EXAMPLES = ["harmonic_oscillator", "oscillator_chain", "double_pendulum", "relativistic_particle",
            "damped_oscillator", "charged_particle"]
REVERSIBLE = EXAMPLES[:5]
DT = 0.01
CORTEX_M4 = ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"]


def float32_errors(out: pathlib.Path, steps: int, betas) -> None:
    print(f"(a) float32 C gradient vs float64 estimator at the same beta, {steps} steps of {DT}, "
          "momentum start; relative error of dtheta / dq0 / dp0")
    print(f"{'model':22s} {'beta':>7s} {'centred':>26s} {'one-sided':>26s} {'richardson':>26s} "
          f"{'f64 centred vs BPTT':>20s} {'f64 richardson vs BPTT':>23s}")
    for name in REVERSIBLE:
        model = symglep.load_model(str(ROOT / "examples" / f"{name}.py"))
        folder = generate(model, out, "float32")
        lib = folder / "lib.so"
        compile_c("gcc", folder, lib, [f"{name}.c"], STRICT + ["-O2", "-fPIC", "-shared"])
        c = CKernels(lib, model, "float32")
        mod = symglep.compile(model, dt=DT).module
        th, q0, p0, u, y = instance(model, seed=EXAMPLES.index(name), steps=steps, single=True)
        bptt = mod.bptt_gradient(th, q0[None], p0[None], False, u[None], y[None], DT, 0.0)
        for beta in betas:
            cells = []
            for order in (2, 1, 4):  # centred, one-sided, Richardson (±beta, ±2 beta)
                ref = mod.gradient(th, q0[None], p0[None], False, u[None], y[None], DT, 0.0, beta, order, False, th, False)
                got = c.gradient(th, q0, p0, False, u, y, DT, beta, order)
                cells.append(" / ".join(f"{relative_error(g, r[0]):.1e}" for g, r in zip(got[1:], ref[1:4])))
            biases = []
            for order in (2, 4):
                ref = mod.gradient(th, q0[None], p0[None], False, u[None], y[None], DT, 0.0, beta, order, False, th, False)
                biases.append(relative_error(ref[1][0], bptt[1][0]))
            print(f"{name:22s} {beta:7.0e} {cells[0]:>26s} {cells[1]:>26s} {cells[2]:>26s} {biases[0]:20.1e} "
                  f"{biases[1]:23.1e}")


def code_size(out: pathlib.Path) -> None:
    if shutil.which("arm-none-eabi-gcc") is None:
        print("\n(b) arm-none-eabi-gcc not found: run scripts/install-toolchains.sh")
        return
    version = subprocess.run(["arm-none-eabi-gcc", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    print(f"\n(b) Cortex-M4F text size of <model>.o, float32, -O2 ({version})")
    print(f"{'model':22s} {'integrator':>10s} {'text (B)':>9s}  library calls")
    for name in EXAMPLES:
        model = symglep.load_model(str(ROOT / "examples" / f"{name}.py"))
        folder = generate(model, out / "m4", "float32")
        obj = folder / f"{name}.o"
        compile_c("arm-none-eabi-gcc", folder, obj, [f"{name}.c"], CORTEX_M4 + STRICT + ["-O2", "-c"])
        text = int(subprocess.run(["arm-none-eabi-size", str(obj)], capture_output=True, text=True,
                                  check=True).stdout.splitlines()[1].split()[0])
        calls = [s for s in subprocess.run(["arm-none-eabi-nm", "-u", str(obj)], capture_output=True, text=True,
                                           check=True).stdout.split() if s != "U"]
        integrator = "leapfrog" if "leapfrog" in (folder / f"{name}.h").read_text() else "midpoint"
        print(f"{name:22s} {integrator:>10s} {text:9d}  {', '.join(calls)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--betas", type=float, nargs="+", default=[1e-3, 1e-2, 1e-1])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        float32_errors(pathlib.Path(tmp), args.steps, args.betas)
        code_size(pathlib.Path(tmp))


if __name__ == "__main__":
    main()
