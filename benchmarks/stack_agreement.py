"""Stacked echo vs BPTT through the stack, per layer and per beta, on the sine task of
examples/stack_chain_hru.py (8 sequences, 400 steps); BPTT vs central finite differences.

    python benchmarks/stack_agreement.py
"""
import numpy as np
from symglep.stack.runtime import compile_stack
from symglep.stack.training import load_stack, sine_data
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
st = load_stack(os.path.join(ROOT, 'examples', 'stack_chain_hru.py'))
ker = compile_stack(st, dt=0.05)
x, y, th, _ = sine_data(st, ker, seed=0)   # the sine task: 8 sequences, 400 steps
print("| beta | " + " | ".join(f"unit {i}" for i in range(len(st.units)))
      + " | " + " | ".join(f"glue {i}" for i in range(len(st.links))) + " |")
print("|---:|" + "---:|" * (len(st.units) + len(st.links)))
for beta in (1e-2, 1e-3, 1e-4):
    g = ker.gradient(th, x, y, beta=beta)[1].sum(0)
    gb = ker.bptt_gradient(th, x, y)[1].sum(0)
    errs = []
    for sl in st.unit_slices() + st.glue_slices():
        errs.append(np.linalg.norm(g[sl]-gb[sl])/np.linalg.norm(gb[sl]))
    print(f"| {beta:g} | " + " | ".join(f"{e:.1e}" for e in errs) + " |")
eps=1e-6; fd=np.zeros_like(th)
for i in range(th.size):
    e=np.zeros_like(th); e[i]=eps
    fd[i]=(ker.free(th+e,x,y)[2].sum()-ker.free(th-e,x,y)[2].sum())/(2*eps)
print(f"BPTT vs central differences (eps = 1e-6): max error / max |gradient| = {np.abs(fd - gb).max() / np.abs(gb).max():.1e}")
print(f"round trip of the un-nudged echoes: {ker.gradient(th, x, y)[3].max():.1e}")
