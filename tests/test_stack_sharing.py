"""Identical units share their compiled functions (symglep.stack.sharing, issue #17): a definition of a
unit is aliased to an earlier unit's when it is the same code under the other prefix and reads nothing of
its own unit that differs; the shared module computes exactly what the unshared one does."""

import pathlib

import numpy as np

import symglep.stack.codegen as codegen
from symglep.cache import forget_loaded
from symglep.loader import load_system
from symglep.stack.runtime import compile_stack
from symglep.stack.sharing import share_identical_definitions, shareable

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_a_definition_reading_a_differing_constant_stays_its_own():
    blocks = {
        0: ["u0_C = 1\nu0_D = 3\n", "def u0_f(x):\n    return x * u0_C\n",
            'def u0_g(x):\n    """unit 0"""\n    return u0_h(x) + u0_D\n', "def u0_h(x):\n    return x\n"],
        1: ["u1_C = 2\nu1_D = 3\n", "def u1_f(x):\n    return x * u1_C\n",
            'def u1_g(x):\n    """unit 1"""\n    return u1_h(x) + u1_D\n', "def u1_h(x):\n    return x\n"],
    }
    assert shareable(blocks, 1, 0) == {"u1_D", "u1_g", "u1_h"}  # docstrings aside; u1_f reads u1_C = 2
    out = share_identical_definitions(blocks)
    assert out[0] == blocks[0]
    namespace = {}
    for fragment in out[0] + out[1]:
        exec(fragment, namespace)
    assert namespace["u1_g"] is namespace["u0_g"] and namespace["u1_h"] is namespace["u0_h"]
    assert namespace["u1_f"] is not namespace["u0_f"] and namespace["u1_f"](1.0) == 2.0


def test_identical_layers_share_and_compute_what_unshared_layers_do(tmp_path, monkeypatch):
    """examples/stack_hru.py: the two HRU layers' loops are one set of functions; the unit interfaces that
    read the parameter offsets (B is n x 1 below, n x n above) stay per layer. Gradient, BPTT and the free
    pass of the shared module equal the unshared module's bit for bit (both run as plain Python)."""
    stack = load_system(str(ROOT / "examples" / "stack_hru.py"))
    source = codegen.render_stack(stack)
    assert "u1_a__force = u0_a__force" in source and "def u1_a__force(" not in source
    assert "u1_a__force_vjp = u0_a__force_vjp" in source
    assert "def u1_f_force(" in source and "u1_a_OFF = u0_a_OFF" not in source
    t = np.arange(81) * 0.05
    runs = []
    for cache in ("shared", "unshared"):
        if cache == "unshared":
            forget_loaded()  # the same content hash: load the unshared source, not the module above
            monkeypatch.setattr(codegen, "share_identical_definitions", lambda blocks: blocks)
        kernels = compile_stack(stack, dt=0.05, cache=str(tmp_path / cache), jit=False)
        theta, rng = stack.draw_parameters(np.random.default_rng(5)), np.random.default_rng(2)
        x = 0.4 * np.sin(1.3 * t[None, :, None] + rng.uniform(0, 6, (1, 1, kernels.n_x)))
        y = 0.3 * np.cos(0.7 * t[None, :, None] + rng.uniform(0, 6, (1, 1, kernels.n_y)))
        runs.append((kernels.gradient(theta, x, y, beta=1e-4), kernels.bptt_gradient(theta, x, y),
                     kernels.free(theta, x, y)))
    assert "def u1_a__force(" in next((tmp_path / "unshared").glob("*/kernels.py")).read_text()
    for got, ref in zip(runs[0], runs[1]):
        for a, b in zip(got, ref):
            np.testing.assert_array_equal(a, b)
    forget_loaded()
