"""The noise study (symglep/noise.py, docs/noise.md): Gaussian noise of std σ on the learning
integrals G(±β), G(±2β); the measured variance of each contrast against its σ²/β² law."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import symglep
from symglep.check import check_instance
from symglep.runtime import compile_model
from symglep.cli import main
from symglep.noise import study

ROOT = Path(__file__).resolve().parents[1]
OSCILLATOR = str(ROOT / "examples/harmonic_oscillator.py")
#: per parameter, by hand: centred (ξ₊ − ξ₋)σ/2β → σ²·2/4β²;
#: Richardson (8(ξ₁ − ξ₋₁) − (ξ₂ − ξ₋₂))σ/12β → σ²·130/144β²
PER_PARAMETER = {"centred": 2 / 4, "richardson": 130 / 144}


@pytest.fixture(scope="module")
def integrals():
    """``G`` at any nudges, on the instance `symglep check` draws for the harmonic oscillator (K = 300),
    and the BPTT gradient."""
    model = symglep.load_model(OSCILLATOR)
    kernels = compile_model(model, dt=0.01)
    theta, q0, p0, u, y = check_instance(model, kernels, 300, 0.01, seed=0)
    qT, pT, _ = kernels.free(theta, q0, p0=p0, u=u, y=y)
    bptt = kernels.bptt_gradient(theta, q0, p0=p0, u=u, y=y).dtheta[0]
    return (lambda nudges: kernels.echo(theta, qT, pT, nudges, u=u, y=y)[2][0]), bptt


def test_variance_follows_sigma_squared_over_beta_squared(integrals):
    """2000 seeded repetitions per point (a variance to about ±3 %): over two decades of β and of σ the
    measured variance equals n·k·σ²/β² within 20 %, and its log-log slopes are −2 in β and 2 in σ."""
    G, bptt = integrals
    betas, sigmas = [1e-4, 1e-3, 1e-2], [1e-8, 1e-7, 1e-6]
    s = study(G, bptt, sigmas, betas=betas, repeats=2000, seed=3)
    norm, n = s["reference_norm"], bptt.size
    for est, k in PER_PARAMETER.items():
        var = np.array([[(s["curves"][repr(sg)][est]["std"][i] * norm) ** 2 for i in range(len(betas))]
                        for sg in sigmas])
        law = np.array([[n * k * sg ** 2 / b ** 2 for b in betas] for sg in sigmas])
        assert np.all(np.abs(var / law - 1) < 0.2), (est, var / law)
        slope_beta = np.polyfit(np.log(betas), np.log(var.mean(axis=0)), 1)[0]
        slope_sigma = np.polyfit(np.log(sigmas), np.log(var.mean(axis=1)), 1)[0]
        assert slope_beta == pytest.approx(-2, abs=0.1) and slope_sigma == pytest.approx(2, abs=0.1)


def test_noiseless_study_is_the_contrast_and_the_best_beta_grows_with_sigma(integrals):
    G, bptt = integrals
    s = study(G, bptt, [0.0, 1e-10, 1e-6], seed=0)
    curves = s["curves"]
    clean = curves["0.0"]["centred"]
    assert clean["std"] == [0.0] * len(s["betas"]) and clean["rms"] == clean["bias"]
    # the noiseless centred bias follows β² where it dominates round-off
    i, j = s["betas"].index(1e-3), s["betas"].index(1e-2)
    assert clean["bias"][j] / clean["bias"][i] == pytest.approx(100, rel=0.05)
    for est in ("centred", "richardson"):
        best = [curves[key][est]["best_beta"] for key in ("1e-10", "1e-06")]
        assert best[0] < best[1]
    # at σ = 1e-6 the Richardson contrast, at its best β, beats the centred one at its best β
    assert curves["1e-06"]["richardson"]["best_rms"] < curves["1e-06"]["centred"]["best_rms"]


def test_check_noise_option_reports_and_keeps_the_noiseless_verdict():
    result = CliRunner().invoke(main, ["check", OSCILLATOR, "--steps", "300", "--noise", "1e-8", "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    per = report["noise"]["curves"]["1e-08"]
    assert set(per) == {"centred", "richardson"} and report["noise"]["repeats"] >= 100
    assert report["passed"] and report["rel_err_echo_vs_bptt"] <= 1e-6
    text = CliRunner().invoke(main, ["check", OSCILLATOR, "--steps", "300", "--noise", "1e-8"]).output
    assert "noise study" in text and "best beta" in text


@pytest.mark.parametrize("args, fragment", [
    ([OSCILLATOR, "--bc", "pfvp"], "--noise studies the echo-vs-BPTT check; drop --bc"),
    ([str(ROOT / "examples/network_chain.py")], "--noise is not measured for array models"),
    ([str(ROOT / "examples/stack_chain_hru.py")], "--noise is not measured for stacks"),
])
def test_noise_refused_where_it_is_not_measured(args, fragment):
    result = CliRunner().invoke(main, ["check", *args, "--steps", "50", "--noise", "1e-8"])
    assert result.exit_code == 2 and fragment in result.output, result.output
    assert result.output.count("\n") == 1
