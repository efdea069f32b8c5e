"""Automatic β (symglep/beta.py, theory §6 "Choosing β"): the choice on synthetic contrasts with a
known bias and round-off, on two bundled examples against BPTT, and the command-line forms."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from click.testing import CliRunner
from sympy.physics.mechanics import dynamicsymbols

import symglep
from symglep.beta import AUTO, MAX_GROWTH, choose_beta, parse_beta, pick
from symglep.check import rel_err, run_check
from symglep.cli import main
from symglep.errors import SymglepError

ROOT = Path(__file__).resolve().parents[1]
OSCILLATOR = str(ROOT / "examples/harmonic_oscillator.py")
PENDULUM = str(ROOT / "examples/double_pendulum.py")
CART_POLE = str(ROOT / "examples/cart_pole.py")


# -- the rule ------------------------------------------------------------------------------------
def synthetic(c: float, a: float, seed: int = 0, order: int = 2):
    """A contrast with relative bias exactly ``c·β^p`` along one direction and round-off noise of
    relative size ``a/β`` (seeded, fresh at each call), around a known gradient ``g``."""
    g = np.array([1.0, -2.0, 0.5])
    direction = np.array([0.3, 0.9, -0.2])
    direction *= np.linalg.norm(g) / np.linalg.norm(direction)
    rng = np.random.default_rng(seed)

    def contrast(beta):
        noise = rng.standard_normal(3)
        noise *= np.linalg.norm(g) / np.linalg.norm(noise)
        return [g + c * beta ** order * direction + a / beta * noise]

    return g, contrast


def test_pick_keeps_the_estimated_error_at_the_tolerance():
    beta, beta_tol, beta_opt, note = pick(1.0, 1e-15, 2, 1e-8, 1e-3)
    assert beta_opt < beta < beta_tol
    assert 1.0 * beta ** 2 + 1e-15 / beta == pytest.approx(1e-8, rel=1e-9)
    assert "tolerance" in note


def test_pick_floor_when_the_tolerance_is_out_of_reach():
    """A tolerance below what float64 allows: β stops at the minimiser of bias + round-off."""
    beta, beta_tol, beta_opt, note = pick(1e6, 1e-12, 2, 1e-16, 1e-3)
    assert beta == beta_opt == pytest.approx((1e-12 / 2e6) ** (1 / 3))
    assert beta > 1e4 * beta_tol and "not reachable" in note


def test_pick_caps_beta_without_measured_bias():
    beta, beta_tol, _, note = pick(0.0, 1e-15, 2, 1e-8, 1e-3)
    assert beta == MAX_GROWTH * 1e-3 and math.isinf(beta_tol) and "capped" in note


@pytest.mark.parametrize("order, c", [(2, 3.0), (1, 3e-4), (4, 50.0)])  # one-sided: a bias small enough to reach 1e-8
def test_choose_beta_measures_bias_and_roundoff(order, c):
    a = 2e-14
    g, contrast = synthetic(c, a, order=order)
    choice = choose_beta(contrast, order=order, tolerance=1e-8)
    assert choice.curvature == pytest.approx(c, rel=0.05)
    assert a / 3 < choice.roundoff < 3 * a
    # the error of the chosen contrast, measured against the known gradient, is within the tolerance
    errors = [rel_err(contrast(choice.beta)[0], g) for _ in range(20)]
    assert max(errors) <= 1.5e-8 and choice.predicted_bias <= 1e-8


def test_roundoff_floor_keeps_beta_from_going_absurdly_small():
    """τ = 1e-15 asks for β ~ 2e-8 by the bias alone; there round-off is 1e-6. The floor stops at
    the minimum of bias + round-off, where the error is orders of magnitude smaller."""
    c, a = 3.0, 2e-14
    g, contrast = synthetic(c, a)
    choice = choose_beta(contrast, tolerance=1e-15)
    assert choice.beta == pytest.approx(choice.beta_optimal) and choice.beta > 100 * choice.beta_tolerance
    at_choice = np.mean([rel_err(contrast(choice.beta)[0], g) for _ in range(20)])
    at_tolerance = np.mean([rel_err(contrast(choice.beta_tolerance)[0], g) for _ in range(20)])
    assert at_choice < at_tolerance / 30


def test_a_pilot_outside_the_power_law_moves_to_a_smaller_beta():
    """Above β = 3e-4 the contrast errs erratically (the nudged runs of a kinked model cross the kink
    differently), small enough to pass the pilot's size test at β0 = 1e-3: the check at β0/2 sees the
    difference not shrink by 2^p, so the pilot moves to 1e-4, where c·β² holds, and the chosen β errs
    within the tolerance."""
    g, smooth = synthetic(3.0, 2e-14)
    direction = np.array([0.9, 0.2, -0.4])

    def kinked(beta):
        jump = 1e-4 * math.sin(3e4 * beta) if beta > 3e-4 else 0.0
        return [smooth(beta)[0] + jump * direction]

    choice = choose_beta(kinked, tolerance=1e-8)
    assert choice.pilot_beta == pytest.approx(1e-4) and choice.curvature == pytest.approx(3.0, rel=0.05)
    assert 2 * choice.beta <= 3e-4
    assert max(rel_err(kinked(choice.beta)[0], g) for _ in range(20)) <= 1.5e-8


def test_a_moved_pilot_caps_beta_at_itself():
    """The law fails above 3e-4 and the bias below is tiny, so the tolerance alone would allow β ~ 1e-1: the
    cap is the moved pilot β (1e-4), not 10x it, which is the β the pilot left (new-user probe: a wall and
    an Abs chose β = 1e-3 and erred by 1e-3)."""
    g, smooth = synthetic(1e-3, 2e-14)
    direction = np.array([0.9, 0.2, -0.4])

    def kinked(beta):
        jump = 1e-4 * math.sin(3e4 * beta) if beta > 3e-4 else 0.0
        return [smooth(beta)[0] + jump * direction]

    choice = choose_beta(kinked, tolerance=1e-8)
    assert choice.pilot_beta == pytest.approx(1e-4) and choice.beta == pytest.approx(1e-4)
    assert "capped at the pilot beta" in choice.note
    assert max(rel_err(kinked(choice.beta)[0], g) for _ in range(20)) <= 1e-8


def test_a_pilot_swamped_by_roundoff_moves_to_a_larger_beta():
    """Round-off far above the bias at β0 = 1e-3 (new-user probe: an elastic pendulum stretched to 15 times its
    rest length, whose learning integrals are ~1e6 times its gradient; the pilot moved down and chose β = 1e-6,
    echo vs BPTT 3e-4): the differences fail the β^p law, a probe shows they are round-off, and the pilot
    moves up to where c·β^p is measured. The chosen β's error is 50 times smaller than at any β the old
    pilot could reach (1e-3 and below), and it is capped at the moved pilot."""
    c, a = 1e-3, 1e-8
    g, contrast = synthetic(c, a, order=4)
    choice = choose_beta(contrast, order=4, tolerance=1e-8)
    assert choice.pilot_beta == pytest.approx(1e-1) and choice.curvature == pytest.approx(c, rel=0.2)
    assert choice.beta <= choice.pilot_beta and "not reachable" in choice.note
    at_choice = max(rel_err(contrast(choice.beta)[0], g) for _ in range(20))
    assert at_choice <= 2e-7
    assert at_choice < min(rel_err(contrast(1e-3)[0], g) for _ in range(20)) / 50


def test_a_pilot_moved_up_stops_at_a_beta_that_breaks_the_run():
    """A nudge of 1e-2 makes the run fail (a kernel error): the pilot keeps the last β that ran."""
    g, smooth = synthetic(1e-3, 1e-8)

    def fragile(beta):
        if beta >= 1e-2:
            raise SymglepError("the nudged run diverged")
        return smooth(beta)

    choice = choose_beta(fragile, tolerance=1e-8)
    assert choice.pilot_beta == pytest.approx(1e-3)


def test_auto_beta_on_a_model_with_a_wall():
    """A one-sided wall kw·Max(0, x − a)²/2: at β0 = 1e-3 the echoes cross the wall differently and the
    pilot once chose a β whose echo erred by 3e-4; now it passes, echo vs BPTT within 1e-7."""
    x, u, y = dynamicsymbols("x u y")
    k, kw = sp.symbols("k kw", positive=True)
    a = sp.Symbol("a")
    model = symglep.Model(x.diff() ** 2 / 2 - k * x**2 / 2 - kw * sp.Max(0, x - a) ** 2 / 2 + u * x, [x], [k, kw],
                          constants={a: 0.1}, inputs=[u], targets=[y], cost=(x - y) ** 2 / 2, name="wall")
    report = run_check(model)
    assert report["passed"] and report["beta_auto"]["pilot_beta"] < 1e-3
    assert report["rel_err_echo_vs_bptt"] <= 1e-7 and report["rel_err_init_state"] <= 1e-7


# -- on bundled examples, against BPTT -----------------------------------------------------------
@pytest.mark.parametrize("path", [OSCILLATOR, PENDULUM, CART_POLE], ids=["harmonic_oscillator", "double_pendulum",
                                                                      "cart_pole"])
def test_auto_beta_bias_below_its_tolerance(path):
    report = run_check(symglep.load_model(path))
    auto = report["beta_auto"]
    assert report["beta"] == auto["beta"] and report["passed"]
    tolerance = auto["tolerance"]
    # the bias of the chosen contrast, measured again at the chosen β from its estimates at β and 2β, is
    # within the tolerance (cart_pole: the centred contrast cannot reach it, the fourth-order one is
    # chosen, and its own bias is what is measured and warned about)
    assert report["contrast"].startswith("centred" if auto["order"] == 2 else "Richardson")
    assert report["centred_error_estimate"] <= tolerance
    assert not any("too large for this model's curvature" in w for w in report["warnings"])
    # and the whole error against BPTT (bias + round-off) is within it up to the round-off's scatter
    assert report["rel_err_echo_vs_bptt"] <= 1.5 * tolerance
    assert report["rel_err_init_state"] <= 1.5 * tolerance


def test_auto_beta_floor_on_an_example():
    """A tolerance beyond float64 (1e-16 → bias target 1e-17): β stops at the round-off floor,
    and the error there is far below the error at the β the bias alone would ask for."""
    model = symglep.load_model(OSCILLATOR)
    report = run_check(model, tolerance=1e-16, steps=300)
    auto = report["beta_auto"]
    assert auto["beta"] == pytest.approx(auto["beta_optimal"]) and "not reachable" in auto["note"]
    naive = run_check(model, tolerance=1e-16, steps=300, beta=auto["beta_tolerance"])
    assert report["rel_err_echo_vs_bptt"] < naive["rel_err_echo_vs_bptt"] / 10


# -- command line ----------------------------------------------------------------------------------
def test_check_default_is_auto_and_within_1e7():
    result = CliRunner().invoke(main, ["check", OSCILLATOR, "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["beta_auto"]["beta"] == report["beta"]
    assert report["rel_err_echo_vs_bptt"] <= 1e-7 and report["rel_err_init_state"] <= 1e-7
    text = CliRunner().invoke(main, ["check", OSCILLATOR, "--steps", "200"]).output
    assert "chosen automatically" in text


def test_explicit_beta_still_works():
    result = CliRunner().invoke(main, ["check", OSCILLATOR, "--steps", "200", "--beta", "1e-4", "--format", "json"])
    report = json.loads(result.output)
    assert result.exit_code == 0 and report["beta"] == 1e-4 and report["beta_auto"] is None


@pytest.mark.parametrize("command, args, fragment", [
    (command, ["--beta", value], f"--beta must be a positive number or 'auto', got {shown}")
    for command in ("check", "train") for value, shown in (("-1", "-1"), ("foo", "'foo'"), ("0", "0"))
] + [("check", ["--noise", "-1"], "--noise must be a non-negative number")])
def test_bad_beta_and_noise_are_one_line_errors(command, args, fragment):
    result = CliRunner().invoke(main, [command, OSCILLATOR, *args])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ") and fragment in result.output
    assert result.output.count("\n") == 1


def test_parse_beta():
    assert parse_beta("auto") == AUTO and parse_beta(" AUTO ") == AUTO
    assert parse_beta("1e-4") == 1e-4 and parse_beta(3e-5) == 3e-5
    for bad in ("nan", "inf", "-1e-4", None, True):
        with pytest.raises(SymglepError, match="positive number or 'auto'"):
            parse_beta(bad)


def test_check_falls_back_to_the_fourth_order_contrast_where_the_centred_one_cannot_reach():
    """cart_pole: the centred contrast's bias (c ≈ 150) and round-off (≈ 6e-12/β) leave at best
    2e-7 in float64; --beta auto then measures the Richardson contrast (±β, ±2β) and meets 1e-7."""
    result = CliRunner().invoke(main, ["check", str(ROOT / "examples/cart_pole.py"), "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["contrast"].startswith("Richardson") and report["beta_auto"]["order"] == 4
    assert report["rel_err_echo_vs_bptt"] <= 1e-7 and report["rel_err_init_state"] <= 1e-7
    plain = json.loads(CliRunner().invoke(main, ["check", OSCILLATOR, "--format", "json"]).output)
    assert plain["contrast"].startswith("centred") and plain["beta_auto"]["order"] == 2


def test_a_pilot_whose_nudged_runs_fail_tries_a_smaller_beta():
    """A harmonic oscillator at k = m = 1e-6: the pilot's nudge of 1e-3 overwhelms it, the nudged runs fail (NaN),
    and check stopped with "Reduce dt or beta" where β = 1e-9 gives 1e-8 agreement (new-user probe). A failed pilot
    is retried at β/1e3 (at most FAILED_PILOTS times); a contrast that fails at every β still raises."""
    from symglep.beta import FAILED_PILOTS, FAILED_PILOT_STEP, PILOT_BETA
    from symglep.errors import SymglepError

    g, smooth = synthetic(3e6, 2e-20)

    def fragile(beta):
        if beta > 1e-7:
            raise SymglepError("echo phase: NaN first appears at step 3")
        return smooth(beta)

    choice = choose_beta(fragile, tolerance=1e-8)
    assert choice.pilot_beta == pytest.approx(PILOT_BETA / FAILED_PILOT_STEP ** 2) and choice.beta <= 1e-7
    assert rel_err(fragile(choice.beta)[0], g) <= 1.5e-8

    def broken(beta):
        raise SymglepError("echo phase: NaN first appears at step 3")

    calls = []
    with pytest.raises(SymglepError, match="NaN first appears"):
        choose_beta(lambda b: calls.append(b) or broken(b), tolerance=1e-8)
    assert len(calls) == FAILED_PILOTS + 1
