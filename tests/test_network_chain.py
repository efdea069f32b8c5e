"""examples/network_chain.py (the chain benchmarks/run.py times): committed kernels up to date, echo = BPTT."""

import numpy as np

import symglep
from symglep.check import rel_err
from symglep.network.check import draw_instance
from symglep.network.runtime import generate_source

from conftest import ROOT

DT = 0.01


def model():
    return symglep.load_model(str(ROOT / "examples" / "network_chain.py"))


def test_generated_chain_file_is_up_to_date():
    committed = ROOT / "generated" / "network_chain" / "numba" / "kernels.py"
    assert committed.read_text(encoding="utf-8") == generate_source(model()), (
        f"{committed} is stale; regenerate with: symglep generate examples/network_chain.py --out generated")


def test_chain_echo_matches_bptt():
    """Centred echo (β = 1e-4) = BPTT of the same leapfrog to <= 1e-6 at n = 12, driven at unit 0 only (B = e_0)."""
    mod = model()
    kern = symglep.compile(mod, dt=DT)
    n = 12
    theta, q0, p0, u, y = draw_instance(mod, kern, n, 2, 800, DT, np.random.default_rng(5))
    assert len(kern.edges(n)) == n - 1
    theta["B"] = np.zeros((n, 1))
    theta["B"][0, 0] = 1.0
    echo = kern.gradient(theta, q0, p0, u, y, beta=1e-4)
    bptt = kern.bptt_gradient(theta, q0, p0, u, y)
    np.testing.assert_array_equal(echo.loss, bptt.loss)
    assert np.all(np.abs(bptt.dtheta["k"]) > 0)
    for b in range(2):
        assert rel_err(echo.flat[b], bptt.flat[b]) <= 1e-6
        assert rel_err(np.concatenate([echo.dq0[b], echo.dp0[b]]), np.concatenate([bptt.dq0[b], bptt.dp0[b]])) <= 1e-6
