"""Extra peak memory of the stacked echo and of BPTT through the stack, against the sequence length.

For each K, a fresh process loads the compiled kernels of examples/stack_chain_hru.py, builds
B sine sequences, resets the kernel's peak resident set (Linux: ``/proc/self/clear_refs``),
runs one gradient and reports the peak resident set above the level before the call (MiB),
and the wall time (median of ``--repeats`` runs). The inputs and targets themselves, O(K), are
allocated before the reset: the figure is what the gradient adds. Prints a table.

    python benchmarks/stack_memory.py [--steps 500 2000 8000] [--batch 16]
"""

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _status(key: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return float(line.split()[1]) / 1024.0  # kB -> MiB
    raise RuntimeError(key)


def measure(steps: int, batch: int, repeats: int) -> dict:
    """Run in the child: peak extra MiB and median seconds of the echo and of BPTT."""
    import numpy as np

    from symglep.stack.runtime import compile_stack
    from symglep.stack.training import load_stack

    stack = load_stack(os.path.join(ROOT, "examples", "stack_chain_hru.py"))
    kernels = compile_stack(stack, dt=0.05)
    rng = np.random.default_rng(0)
    theta = stack.draw_parameters(rng)
    t = np.arange(steps + 1) * 0.05
    x = 0.5 * np.sin(0.8 * t[None, :, None] + rng.uniform(0, 6.28, (batch, 1, 1)))
    y = 0.1 * np.cos(0.8 * t[None, :, None] + np.zeros((batch, 1, 1)))
    kernels.gradient(theta, x[:, :3], y[:, :3])  # first calls done before measuring
    kernels.bptt_gradient(theta, x[:, :3], y[:, :3])
    out = {}
    for name, run in (("echo", lambda: kernels.gradient(theta, x, y, beta=1e-4)),
                      ("bptt", lambda: kernels.bptt_gradient(theta, x, y))):
        peaks, times = [], []
        for _ in range(repeats):
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # reset the peak resident set (VmHWM) to the current one
            base = _status("VmRSS")
            start = time.perf_counter()
            result = run()
            times.append(time.perf_counter() - start)
            peaks.append(_status("VmHWM") - base)
            del result
        out[name] = {"mib": max(peaks), "s": sorted(times)[len(times) // 2]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[500, 2000, 8000])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(measure(args.child, args.batch, args.repeats)))
        return
    rows = []
    for steps in args.steps:
        run = subprocess.run([sys.executable, __file__, "--child", str(steps), "--batch", str(args.batch),
                              "--repeats", str(args.repeats)], capture_output=True, text=True, check=True)
        rows.append((steps, json.loads(run.stdout.strip().splitlines()[-1])))
    print(f"stack_chain_hru (3 units, 7 coordinates, 18 parameters), B = {args.batch} sequences, "
          f"median of {args.repeats}")
    print("| K | stacked echo: extra peak MiB | echo s | BPTT: extra peak MiB | BPTT s |")
    print("|---:|---:|---:|---:|---:|")
    for steps, r in rows:
        print(f"| {steps} | {r['echo']['mib']:.2f} | {r['echo']['s']:.3f} | {r['bptt']['mib']:.2f} | "
              f"{r['bptt']['s']:.3f} |")


if __name__ == "__main__":
    main()
