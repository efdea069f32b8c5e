"""Measures docs/classification.md: the HSSM of examples/stack_hssm.py on UEA sets, echo vs BPTT (RHEL's comparison).

Run: python docs/classification_study.py   (writes docs/classification.md and
docs/classification.png; about 15 minutes on 2 cores with the kernels cached; needs the
extras 'uea' and 'plot')

1. Accuracy: for each data set and seeds 0-4, `symglep train examples/stack_hssm.py --task uea:NAME`
   by the echo (centred, β chosen by the run) and by BPTT, same settings and seeds; test accuracy
   after the last epoch, mean ± std, and the learning curves (figure).
2. Gradients: per layer (each unit, the glue, the encoder, the head), the cosine similarity and
   the norm ratio of the echo's gradient (at the run's β) against BPTT's, on the whole training
   split, at the seed-0 start and at the parameters the seed-0 echo run ended with (float64).
3. Cost as the sequences grow: each sample held for 1, 4 and 16 integration steps (K ×1, ×4,
   ×16), wall time of one epoch (median of 3) and the peak memory a batch's gradient call adds
   (VmHWM reset before the call, in a fresh process per row).
"""

import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from symglep.classification import ClassifierLearner, linear_readout_of, uea_task  # noqa: E402
from symglep.learners import learner_for  # noqa: E402
from symglep.loader import load_system  # noqa: E402
from symglep.systems import compile as compile_system  # noqa: E402
from symglep.training import train  # noqa: E402

HSSM = os.path.join(ROOT, "examples", "stack_hssm.py")
SETS = {"BasicMotions": {"epochs": 40, "batch": 8, "lr": 0.01},
        "JapaneseVowels": {"epochs": 40, "batch": 16, "lr": 0.01}}
SEEDS = range(5)
ESTIMATORS = ("echo", "bptt")
SUBSTEPS = (1, 4, 16)
DT = 0.2


MODEL_NOTES = [
    "How close this is to RHEL's HSSM block (normalisation → HRU → GELU → GLU → skip, a linear encoder in "
    "front, a mean-pool linear softmax head):", "",
    "- **HRU layer**: the same Hamiltonian, `H = Σ ½p² + Σ ½αq² + Σ c_i log cosh(w_i q_i + (Bu)_i + b_i)/w_i` "
    "(B, b, c, w learned, α = 1), leapfrog. Its readout `C q + D u` is the glue's `W q + b` below; the "
    "feed-through `D u` is a skip and is not there.",
    "- **GELU**: the glue's activation, `u = GELU(W q + b)` (exact normal CDF).",
    "- **GLU and the skip are not in the stack**: a stack's glue is elementwise, `φ(W r + b)`, and the "
    "stacked echo pulls each unit's input gradient back through that diagonal Jacobian (theory §9); a GLU "
    "(`a ⊙ σ(b)` of two linear maps) or a skip (unit i's input added to unit i+1's) needs glue code that "
    "sums gradients across two links, not built yet.",
    "- **Normalisation**: the inputs are normalised per channel with the training split's statistics; "
    "a fixed affine normalisation between layers would fold into the glue's `W`, `b`.",
    "- **Encoder and head**: as RHEL's (`symglep/classification.py`, `symglep/heads.py`).",
    "- `examples/stack_hssm.py:dense_hssm` is the variant with the dense-coupled HRU of `examples/network_hru.py`.",
]


def warm_up() -> None:
    """Compile every kernel the runs call (cached on disk), so no run's time includes compiling."""
    learner, d = setup("BasicMotions")
    theta = learner.flat(learner.draw(np.random.default_rng(0)))
    for est in ESTIMATORS:
        learner.gradients(est, 1e-3, theta, d.u[:1], d.y[:1], d.q0[:1], d.x0[:1], False, d.dt)


def runs() -> dict:
    warm_up()
    out = {}
    for name, cfg in SETS.items():
        for seed in SEEDS:
            for est in ESTIMATORS:
                r = train(HSSM, f"uea:{name}", estimator=est, seed=seed, dt=DT, **cfg)
                out[(name, seed, est)] = r
                print(f"{name} seed {seed} {est}: test acc {r.scores[-1]['test']['accuracy']:.4f} "
                      f"({r.seconds:.1f} s)", flush=True)
    return out


def setup(name: str, substeps: int = 1):
    stack = load_system(HSSM)
    inner = learner_for(stack, compile_system(stack, dt=DT))
    data = uea_task(name, inner, DT, substeps)
    learner = ClassifierLearner(inner, linear_readout_of(stack), data.u.shape[2], len(data.classes))
    return learner, data


def layer_of(name: str) -> str:
    return name.split(".", 1)[0]


def agreement(name: str, theta, beta: float) -> list:
    learner, d = setup(name)
    echo = learner.gradients("echo", beta, theta, d.u, d.y, d.q0, d.x0, False, d.dt)[1].sum(axis=0)
    bptt = learner.gradients("bptt", None, theta, d.u, d.y, d.q0, d.x0, False, d.dt)[1].sum(axis=0)
    layers = np.array([layer_of(n) for n in learner.names])
    rows = []
    for layer in dict.fromkeys(layers):
        a, b = echo[layers == layer], bptt[layers == layer]
        rows.append((layer, a.size, float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))),
                     float(np.linalg.norm(a) / np.linalg.norm(b))))
    return rows


def epoch_seconds(name: str, est: str, substeps: int, beta: float) -> float:
    learner, d = setup(name, substeps)
    theta = learner.flat(learner.draw(np.random.default_rng(0)))
    batch = SETS[name]["batch"]
    learner.gradients(est, beta, theta, d.u[:1], d.y[:1], d.q0[:1], d.x0[:1], False, d.dt)  # compiled
    times = []
    for _ in range(3):
        t = time.perf_counter()
        for lo in range(0, d.size, batch):
            s = slice(lo, lo + batch)
            learner.gradients(est, beta, theta, d.u[s], d.y[s], d.q0[s], d.x0[s], False, d.dt)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


MEMORY_PROBE = r"""
import json, sys, gc
import numpy as np
sys.path.insert(0, {root!r}); sys.path.insert(0, {here!r})
from classification_study import setup, SETS
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
learner, d = setup({name!r}, {substeps})
theta = learner.flat(learner.draw(np.random.default_rng(0)))
b = d.size  # the whole training split in one call
hp, _, inputs = learner.forward(theta, d.u[:b], d.y[:b], d.q0[:b], d.x0[:b], d.dt)
th = learner.split(theta)[0]
args = (th, inputs, hp.cotangent, d.q0[:b], d.x0[:b], False, d.dt)
learner.inner.gradients({est!r}, {beta}, *args[:1], inputs[:1], hp.cotangent[:1], d.q0[:1], d.x0[:1], False, d.dt,
                        with_inputs=True)
gc.collect()
before = status("VmRSS")
open("/proc/self/clear_refs", "w").write("5")
out = learner.inner.gradients({est!r}, {beta}, *args, with_inputs={inputs})
peak = status("VmHWM")
data = sum(a.nbytes for a in (inputs, hp.cotangent, out[-1]))
print(json.dumps({{"added": peak - before, "data": data}}))
"""


def memory(name: str, est: str, substeps: int, beta: float, inputs: bool) -> dict:
    code = MEMORY_PROBE.format(root=ROOT, here=HERE, name=name, substeps=substeps, est=est, beta=beta,
                               inputs=inputs)
    # a fixed mmap threshold: glibc otherwise raises it after the first large free, and later large arrays
    # then reuse heap pages already resident, which a peak of the resident set does not see
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def figure(results: dict, path: str) -> None:
    from symglep.plotting import pyplot, save_figure

    plt = pyplot()
    fig, axes = plt.subplots(1, len(SETS), figsize=(11, 3.6), squeeze=False)
    for ax, name in zip(axes[0], SETS):
        for est, style in zip(ESTIMATORS, ("-", "--")):
            curves = np.array([[s["test"]["accuracy"] for s in results[(name, seed, est)].scores] for seed in SEEDS])
            epochs = np.arange(1, curves.shape[1] + 1)
            ax.plot(epochs, curves.mean(axis=0), style, label=f"{est} (mean of {len(SEEDS)} seeds)")
            ax.fill_between(epochs, curves.min(axis=0), curves.max(axis=0), alpha=0.15)
        ax.set_title(f"{name}: test accuracy")
        ax.set_xlabel("epoch")
        ax.set_ylim(0, 1.02)
        ax.grid(True, alpha=0.3)
        ax.legend()
    save_figure(fig, path)
    plt.close(fig)


def main() -> None:
    started = time.time()
    results = runs()
    figure(results, os.path.join(HERE, "classification.png"))
    lines = ["# Classifying real time series: the HSSM by the echo and by BPTT", "",
             "Generated by `python docs/classification_study.py` (do not edit by hand); "
             f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
             f"{(time.time() - started) / 60:.0f} min for the training runs.", "",
             "The model is `examples/stack_hssm.py`: a linear encoder, two layers of RHEL's diagonal nonlinear HRU "
             "(16 oscillators each) joined by a dense GELU glue, and a mean-pool softmax head, trained by "
             "`symglep train examples/stack_hssm.py --task uea:NAME` (Adam, float64, dt = "
             f"{DT}, one integration step per sample). The echo is the centred contrast with the β the run "
             "chose (`--beta auto`); the head's cotangents drive it through the linear readout cost "
             "(theory §12). BPTT is the discrete adjoint of the same leapfrog through the same stack.", "",
             *MODEL_NOTES, "",
             "## Test accuracy (5 seeds each)", "",
             "| data set | epochs | batch | lr | echo | BPTT | echo − BPTT (same seeds) | seconds per run (echo, BPTT) |",
             "|---|---|---|---|---|---|---|---|"]
    for name, cfg in SETS.items():
        acc = {est: np.array([results[(name, s, est)].scores[-1]["test"]["accuracy"] for s in SEEDS])
               for est in ESTIMATORS}
        secs = {est: np.mean([results[(name, s, est)].seconds for s in SEEDS]) for est in ESTIMATORS}
        diff = acc["echo"] - acc["bptt"]
        lines.append(f"| {name} | {cfg['epochs']} | {cfg['batch']} | {cfg['lr']} | "
                     f"{100 * acc['echo'].mean():.1f} ± {100 * acc['echo'].std():.1f} % | "
                     f"{100 * acc['bptt'].mean():.1f} ± {100 * acc['bptt'].std():.1f} % | "
                     f"{100 * diff.mean():+.2f} points (per seed: {', '.join(f'{100 * v:+.1f}' for v in diff)}) | "
                     f"{secs['echo']:.1f}, {secs['bptt']:.1f} |")
    lines += ["", "Per seed (test accuracy, echo / BPTT):", ""]
    for name in SETS:
        lines.append(f"- {name}: " + "; ".join(
            f"seed {s}: {100 * results[(name, s, 'echo')].scores[-1]['test']['accuracy']:.1f} / "
            f"{100 * results[(name, s, 'bptt')].scores[-1]['test']['accuracy']:.1f}" for s in SEEDS))
    lines += ["", "![test accuracy per epoch](classification.png)", "",
              "## Echo vs BPTT gradients, per layer", "",
              "Whole training split, float64; the echo at the β its seed-0 run chose. `unit0`, `unit1`: the HRU "
              "layers; `glue0`: the GELU glue; `encoder`, `head`.", "",
              "| data set | parameters | layer | size | cosine similarity | norm ratio echo/BPTT − 1 |",
              "|---|---|---|---|---|---|"]
    for name in SETS:
        run = results[(name, 0, "echo")]
        beta = run.settings["beta"]
        start = setup(name)[0]
        theta0 = start.flat(start.draw(np.random.default_rng(0)))
        for label, theta in (("at initialisation", theta0), ("after training (echo, seed 0)", run.theta)):
            for layer, size, cos, ratio in agreement(name, theta, beta):
                lines.append(f"| {name} (β = {beta:.3g}) | {label} | {layer} | {size} | {cos:.12f} | "
                             f"{ratio - 1:+.1e} |")
    lines += ["", "## Cost as the sequence grows", "",
              "Each sample held for s integration steps: the series resampled ×s by repetition, K = s × the longest "
              "series (BasicMotions 100 samples, JapaneseVowels 29). "
              "Time: one epoch of gradients (batches as above), median of 3. Memory: what one gradient "
              "call on the whole training split (40 and 270 sequences) of the physical model adds to the process's peak resident memory (the kernels' working "
              "memory: BPTT keeps the trajectory of every unit, the echo nothing of length K), for the gradient "
              "of the model's parameters θ alone and with the input gradient dℓ/du_k the encoder needs (an "
              "array of length K that both return; the echo accumulates it per nudged echo); *data* is the "
              "batch's encoded inputs, cotangents and input gradients, arrays of length K that both "
              "estimators take or return. Peaks are read from VmHWM (reset before the call) with a fixed "
              "malloc mmap threshold, at page granularity.", "",
              "| data set | s | K | echo s/epoch | BPTT s/epoch | echo, θ | BPTT, θ | echo, θ and dℓ/du | "
              "BPTT, θ and dℓ/du | data of the batch |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for name in SETS:
        scaling(name, results[(name, 0, "echo")].settings["beta"], lines)
    with open(os.path.join(HERE, "classification.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


def scaling(name: str, beta: float, lines: list) -> None:
    """One row per substeps s: time per epoch and the peak memory of one gradient call."""
    longest = {"BasicMotions": 100, "JapaneseVowels": 29}[name]
    for s in SUBSTEPS:
        t = {est: epoch_seconds(name, est, s, beta) for est in ESTIMATORS}
        m = {(est, inputs): memory(name, est, s, beta, inputs) for est in ESTIMATORS for inputs in (False, True)}
        lines.append(f"| {name} | {s} | {longest * s} | {t['echo']:.2f} | {t['bptt']:.2f} | "
                     + " | ".join(f"{m[(est, inputs)]['added'] / 2**20:.2f} MiB" for inputs in (False, True)
                                  for est in ESTIMATORS)
                     + f" | {m[('echo', True)]['data'] / 2**20:.2f} MiB |")
        print(lines[-1], flush=True)


if __name__ == "__main__":
    main()
