"""benchmarks/: the non-JAX parts import, and the flop counter counts right (no timing here)."""

import subprocess
import sys

import pytest
import sympy as sp

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))

import flops  # noqa: E402
from flops import FLOAT, Array, Bool, FlopCountError, count_flops  # noqa: E402

TINY = '''
import math

from numba import njit


@njit
def axpy(x, y, a):
    n = x.shape[0]
    for i in range(n):
        y[i * 1 + 0] += a * x[i]  # 2 flops; the index arithmetic is integer work


@njit
def tri(x):
    s = 0.0
    n = x.shape[0]
    for i in range(n):
        for j in range(i, n):
            s += x[i] * x[j]  # 2 flops, n(n+1)/2 times
    return s


def entry(x, y, a, learn):
    for k in range(3):
        axpy(x, y, a)  # 3 * 2n
    if learn:
        s = tri(x)  # n(n+1)
    else:
        s = 0.0
    return math.exp(1.0 * a) + s ** 2  # 1 transcendental; 1.0* folded; ** 2 one multiply; + one
'''


def test_flop_counter_on_a_hand_checked_kernel():
    n = sp.Symbol("n", integer=True, positive=True)
    args = {"x": Array((n,)), "y": Array((n,)), "a": FLOAT}
    on = count_flops(TINY, "entry", {**args, "learn": Bool(True)})
    off = count_flops(TINY, "entry", {**args, "learn": Bool(False)})
    assert sp.expand(on.flops - (6 * n + n * (n + 1) + 2)) == 0
    assert sp.expand(off.flops - (6 * n + 2)) == 0
    assert on.trans == 1 and off.trans == 1
    assert count_flops(TINY, "entry", {"x": Array((sp.Integer(4),)), "y": Array((sp.Integer(4),)), "a": FLOAT,
                                       "learn": Bool(True)}).flops == 6 * 4 + 4 * 5 + 2


def test_flop_counter_refuses_what_it_does_not_model():
    with pytest.raises(FlopCountError, match="While statements are not modelled"):
        count_flops("def f(x):\n    while x > 0:\n        x -= 1.0\n", "f", {"x": FLOAT})


def test_generated_network_flops_per_step():
    """Per step of the centred echo: 3 passes; the HRU's n x n products are counted by hand as
    A q and A^T f'(z) in every force (2n^2 flops each, 3 forces) and the rank-one update of dV/dA in
    the two echoes (2n^2 each): 16 n^2. The chain (edge list) has no n^2 term."""
    hru = flops.network_step_flops((ROOT / "generated/network_hru/numba/kernels.py").read_text())
    chain = flops.network_step_flops((ROOT / "generated/network_chain/numba/kernels.py").read_text())
    n = hru["symbols"]["n"]
    assert sp.Poly(hru["flops"], n).coeff_monomial(n ** 2) == 16
    assert sp.Poly(chain["flops"], chain["symbols"]["n"]).degree() == 1
    assert chain["trans"] == 0 and hru["trans"] != 0


def test_the_bptt_kernels_flops_count_past_a_continue():
    """`python benchmarks/run.py --quick` stopped at "Continue statements are not modelled" (a new-user probe): the
    generated BPTT branch ends its sequence with `continue`. A continue ends the iteration (a known branch) or
    bounds it (the costlier branch of an unknown one); the BPTT step of the HRU counts the 30 n² of
    docs/benchmarks.md's roofline table again."""
    hru = flops.network_step_flops((ROOT / "generated/network_hru/numba/kernels.py").read_text(), "bptt_gradient")
    n = hru["symbols"]["n"]
    assert sp.Poly(hru["flops"], n).coeff_monomial(n ** 2) == 30
    code = "def f(x, n):\n    s = 0.0\n    for i in range(n):\n        if i > 0:\n            continue\n        s += x\n"
    assert count_flops(code, "f", {"x": FLOAT, "n": sp.Symbol("n", integer=True, positive=True)}).flops != 0


def test_benchmark_modules_import_without_jax():
    """run.py, flops.py and derive_pendulum.py import in a clean process without touching JAX (an optional extra)."""
    code = ("import sys; sys.path.insert(0, 'benchmarks'); import run, flops, derive_pendulum; "
            "assert 'jax' not in sys.modules, 'jax imported'; assert run.rel_err([1.0, 3.0], [1.0, 2.0]) == 0.5")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_discretise_benchmark_compares_the_same_scheme(capsys):
    """benchmarks/discretise_pendulum.py at n = 2: its SymEngine and sympy.diff discretisations agree
    entry by entry (the table's agree column), and the table row is printed."""
    import discretise_pendulum

    discretise_pendulum.main(["--sizes", "2", "--repeats", "1"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 2 |")]
    assert len(rows) == 1 and rows[0].rstrip().endswith("| yes |"), rows


def test_run_keeps_the_sections_below_its_marker(tmp_path):
    """benchmarks/run.py rewrites docs/benchmarks.md above KEPT_MARKER and keeps what follows it."""
    import run

    page = tmp_path / "page.md"
    assert run.kept_sections(str(page)) == ""
    page.write_text(f"old tables\n{run.KEPT_MARKER}\n\n## Measured elsewhere\n", encoding="utf-8")
    assert run.kept_sections(str(page)) == f"\n{run.KEPT_MARKER}\n\n## Measured elsewhere\n"
    assert run.KEPT_MARKER in (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")


def test_run_calls_the_kernels_with_their_current_signature():
    """benchmarks/run.py's echo, generated-BPTT and JAX calls run on a small chain and agree (a kernel
    signature change, such as the start time t0, must not leave the benchmark broken)."""
    pytest.importorskip("jax")
    import numpy as np

    import run

    calls, _ = run.methods("chain", 4, 1, 20)
    echo, bptt, jax = (run.outputs("chain", name, calls[name]()) for name in ("echo", "bptt", "jax"))
    assert run.rel_err(np.asarray(bptt[1]).ravel(), np.asarray(jax[1]).ravel()) <= 1e-12
    assert run.rel_err(np.asarray(echo[1]).ravel(), np.asarray(bptt[1]).ravel()) <= 1e-6


def test_stack_echo_benchmark_runs_a_row():
    """benchmarks/stack_echo.py times a stack's echo and BPTT (a tiny row: the script's calls, not a timing)."""
    import stack_echo

    times = stack_echo.row("stack_chain_hru", 1, 20, 1, None)
    assert set(times) == {"echo", "bptt"} and all(t > 0 for t in times.values())
