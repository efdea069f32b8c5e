"""The ``symglep`` command line (click).

User errors print ``error: <message>`` on one line and exit with code 2; other
failures print one line and exit with code 1. ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from contextlib import contextmanager

import click

from . import __version__, commands
from .beta import parse_beta
from .command_options import CheckOptions, TrainOptions, name_list
from .dissipation import AntiDampingWarning
from .distributed import checked_address
from .errors import SymglepError
from .fileio import refuse_overwriting, require_writable, write_atomic
from .kernel_module import interrupted_by_user
from .estimators import ESTIMATORS
from .loader import load_system, split_spec
from .training import resumed_task
from .noise import parse_noise
from .parameter_values import trained_run


def _one_line(exc: BaseException) -> str:
    """The message of ``exc`` on a single line (a multi-line message is joined with ' / ')."""
    parts = [part.strip() for part in str(exc).splitlines() if part.strip()]
    return " / ".join(parts) or type(exc).__name__


def _json_requested(args: list) -> bool:
    """Whether a command line (after the group's options) asks for ``--format json`` on stdout (no ``-o``)."""
    wants = any(a == "--format=json" or (a == "--format" and b == "json") for a, b in zip(args, [*args[1:], None]))
    return wants and not any(a in ("-o", "--output") or a.startswith("--output=") for a in args)


def _echo_json_error(message: str, kind: str, exit_code: int, **fields) -> None:
    """The JSON error object on stdout: ``fields`` first, then the error, its kind and the exit code."""
    click.echo(json.dumps({**fields, "error": message, "kind": kind, "exit_code": exit_code}, indent=2))


def _json_fallback(args: list, message: str, kind: str, exit_code: int, exc: BaseException | None = None) -> None:
    """The JSON error object of :func:`_json_error` for a failure no command caught (an option's own check, an
    internal error), printed once on stdout when ``--format json`` was asked for."""
    if not getattr(exc, "json_reported", False) and _json_requested(args):
        _echo_json_error(message, kind, exit_code)


class _Group(click.Group):
    """Turns exceptions into one-line messages unless ``--debug`` was given."""

    def parse_args(self, ctx, args):
        ctx.meta["symglep.args"] = list(args)  # the command line, for a JSON error no command caught
        return super().parse_args(ctx, args)

    def invoke(self, ctx):
        args = ctx.meta.get("symglep.args", [])
        try:
            return super().invoke(ctx)
        except SymglepError as exc:
            if ctx.meta.get("symglep.debug"):
                raise
            _json_fallback(args, _one_line(exc), type(exc).__name__, exc.exit_code, exc)
            click.echo(f"error: {_one_line(exc)}", err=True)
            ctx.exit(exc.exit_code)
        except click.ClickException as exc:  # an option's own check (e.g. --steps 0): usage error, exit 2
            _json_fallback(args, _one_line(exc.format_message()), "UsageError", exc.exit_code)
            raise
        except (click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KeyboardInterrupt as exc:
            click.echo(f"interrupted: {exc}" if str(exc) else "interrupted", err=True)
            ctx.exit(130)
        except MemoryError as exc:  # e.g. --steps 99999999999: the arrays of one run do not fit
            if ctx.meta.get("symglep.debug"):
                raise
            click.echo(f"error: not enough memory for this run ({_one_line(exc)}): fewer --steps, a smaller "
                       "--size, fewer sequences", err=True)
            ctx.exit(2)
        except BrokenPipeError:  # the reader went away (`symglep train ... | head`): stop quietly, like cat
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
            ctx.exit(141)  # 128 + SIGPIPE, what a shell reports for a command killed by a closed pipe
        except Exception as exc:  # noqa: BLE001 - last resort: one line, no traceback
            if interrupted_by_user(exc):  # Ctrl-C inside a library call that wrapped it
                click.echo("interrupted", err=True)
                ctx.exit(130)
            if ctx.meta.get("symglep.debug"):
                raise
            if isinstance(exc, ValueError) and "Maximum allowed size exceeded" in str(exc):  # numpy: --steps 1e20
                click.echo(f"error: not enough memory for this run ({_one_line(exc)}): fewer --steps, a smaller "
                           "--size, fewer sequences", err=True)
                ctx.exit(2)
            message = f"internal error: {type(exc).__name__}: {_one_line(exc)} (rerun with --debug for details)"
            _json_fallback(args, message, "InternalError", 1)
            click.echo(message, err=True)
            ctx.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="symglep")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.pass_context
def main(ctx, debug):
    """Derive, analyse and generate learning code for physical learning systems."""
    ctx.meta["symglep.debug"] = debug
    warnings.simplefilter("ignore", AntiDampingWarning)  # check and train report the anti-damped echo themselves


MODEL_ARG = click.argument("model_spec", metavar="MODEL")


@contextmanager
def _json_error(fmt: str, to_stdout: bool = True, **fields):
    """A reader of ``--format json`` gets JSON on stdout when a command fails too (``fields`` first, then the
    error, its kind and the exit code); the one-line error still goes to stderr. Nothing is written to stdout
    when the report was to go to a file (``to_stdout`` false)."""
    try:
        yield
    except SymglepError as exc:
        if fmt == "json" and to_stdout:
            _echo_json_error(_one_line(exc), type(exc).__name__, exc.exit_code, **fields)
        exc.json_reported = True  # said once: the group's handler does not say it again
        raise


def _emit(text: str, output: str | None, model_spec: str) -> None:
    if output:
        refuse_overwriting(output, "-o", {"the model file": split_spec(model_spec)[0]})
        write_atomic(output, text)
    else:
        click.echo(text, nl=False)


@main.command()
@MODEL_ARG
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "latex", "json"]), default="text",
              show_default=True, help="Report format.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write the report to FILE.")
@click.option("--simplify", type=click.Choice(["none", "fast", "full"]), default="fast", show_default=True,
              help="Time budget of the readable forms the report prints (theory §11); raw fields are unchanged.")
def derive(model_spec, fmt, output, simplify):
    """Derive Euler–Lagrange equations, Legendre transform, symmetries and learning rule.

    MODEL is a Python file defining `model`, or PATH.py:NAME.
    """
    with _json_error(fmt, output is None):
        _emit(commands.derive_report(load_system(model_spec), fmt, simplify), output, model_spec)


@main.command()
@MODEL_ARG
@click.option("--bc", default="all", show_default=True, metavar="civp|cfvp|cbvp|periodic|pfvp|mixed|all",
              help="Boundary conditions to analyse: one, a comma-separated list, or all.")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "latex", "json"]), default="text",
              show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write the report to FILE.")
def residuals(model_spec, bc, fmt, output):
    """Boundary residuals of Lagrangian EP for each boundary condition (theory §2–§3)."""
    with _json_error(fmt, output is None):
        _emit(commands.residuals_report(load_system(model_spec), bc, fmt), output, model_spec)


@main.command()
@MODEL_ARG
@click.option("--target", type=click.Choice(["numba", "c", "jax"]), default="numba", show_default=True,
              help="numba: Python kernels; c: portable C99 (docs/c-kernels.md); jax: a jax.numpy module with echo VJPs (docs/jax.md; scalar and array models).")
@click.option("--precision", type=click.Choice(["float64", "float32"]), default="float64", show_default=True,
              help="Floating type of the C kernels (numba: float64 only).")
@click.option("--integrator", type=click.Choice(["auto", "leapfrog", "midpoint"]), default="auto", show_default=True,
              help="auto: leapfrog when separable, else midpoint (theory §6).")
@click.option("--out", "out_dir", default="generated", show_default=True, type=click.Path(file_okay=False),
              help="Root folder; files go to OUT/<model>/<target>/.")
@click.option("--force", is_flag=True, help="Overwrite files that symglep did not generate.")
def generate(model_spec, target, precision, integrator, out_dir, force):
    """Generate the kernels of MODEL (free, echo, gradient, BPTT) into OUT/<model>/<target>/."""
    system = load_system(model_spec)
    for path in commands.write_generated(system, out_dir, target, integrator, force, precision):
        click.echo(path)
    for note in commands.generate_notes(system, target, integrator):
        click.echo(f"note: {note}")


@main.command()
@MODEL_ARG
@click.option("--steps", type=click.IntRange(min=1), default=1000, show_default=True, help="Number of steps K.")
@click.option("--dt", type=float, default=0.01, show_default=True, help="Step size h.")
@click.option("--beta", default="auto", show_default=True, metavar="auto|BETA",
              help="Nudge strength of the echo; auto: chosen from a pilot estimate of the bias and round-off "
                   "(docs/theory.md §6).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of the drawn instance.")
@click.option("--params", "params_file", type=click.Path(dir_okay=False), help="JSON {name: value} of parameters.")
@click.option("--integrator", type=click.Choice(["auto", "leapfrog", "midpoint"]), default="auto", show_default=True)
@click.option("--tolerance", type=float, default=1e-6, show_default=True, help="Allowed echo-vs-BPTT relative error.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--bc", default=None, metavar="civp|cfvp|cbvp|periodic|pfvp|mixed|all",
              help="Instead: compare the estimators of these boundary conditions (one, a comma-separated "
                   "list, or all six) with their true gradients.")
@click.option("--cbvp-steps", type=click.IntRange(min=2), default=None,
              help="Steps of the two-point (CBVP) problem, solved whole by Newton, at most --steps "
                   "[default: 40, or --steps when fewer].")
@click.option("--route", type=click.Choice(["auto", "echo", "flipped_echo", "digital_pfvp"]), default="auto",
              show_default=True, help="Gradient route: auto takes the model's exact one (see `symglep derive`); "
              "digital_pfvp is exact on a computer, not forward-only in hardware.")
@click.option("--naive-echo", is_flag=True,
              help="Run the plain echo even where it is not exact, and report its bias against BPTT.")
@click.option("--size", type=int, default=None,
              help="Array models: number of units n [default: the model's size; with --bc, 3 (the model is "
                   "expanded element by element)].")
@click.option("--noise", type=str, default=None, metavar="SIGMA",
              help="Also study Gaussian noise of std SIGMA on the learning integrals G: bias, variance and the "
                   "best beta of the centred and Richardson contrasts (docs/noise.md).")
def check(model_spec, steps, dt, beta, seed, params_file, integrator, tolerance, fmt, bc, cbvp_steps, route,
          naive_echo, size, noise):
    """Round trip, energy drift, and echo vs BPTT vs finite-difference gradients on one seeded instance.

    With --bc: CIVP (bulk only, and with the residual from tangent kernels), CFVP (bulk only, and with
    its residual X(0)), CBVP (two-point solve), periodic (a periodic orbit by shooting), PFVP (echo) and
    mixed q(0), p(T) (shooting) estimates against their true gradients (theory §3).
    Exits with code 1 when the gradients disagree beyond the printed tolerances.
    """
    with _json_error(fmt, passed=False):
        steps, dt = _trained_run_settings(params_file, steps, dt, fmt)
        opts = CheckOptions(steps=steps, dt=dt, beta=parse_beta(beta), seed=seed, params_file=params_file,
                            integrator=integrator, tolerance=tolerance, fmt=fmt, bc=bc, cbvp_steps=cbvp_steps,
                            route=route, naive_echo=naive_echo, size=size, noise=parse_noise(noise))
        report, text = commands.check(load_system(model_spec), opts)
    click.echo(text, nl=fmt == "json")
    if not report["passed"]:
        sys.exit(1)


def _trained_run_settings(params_file, steps: int, dt: float, fmt: str) -> tuple:
    """``(steps, dt)`` of the check: a training file's own run (``settings``) where ``--steps`` or ``--dt`` was
    not given, so that the trained parameters are checked where they were trained (a probe: parameters
    trained at dt = 0.05 were checked at the default 0.01); a note says so in the text format."""
    if not params_file:
        return steps, dt
    ctx = click.get_current_context()
    given = {"steps": steps, "dt": dt}
    run = {key: value for key, value in trained_run(params_file).items()
           if ctx.get_parameter_source(key) is click.core.ParameterSource.DEFAULT and value != given[key]}
    if run and fmt == "text":
        taken = ", ".join(f"--{key} {value:g}" for key, value in run.items())
        click.echo(f"note: {taken} from the training run recorded in {params_file} (give them to override)")
    return run.get("steps", steps), run.get("dt", dt)


@main.command()
@MODEL_ARG
@click.option("--task", default=None, metavar="sine|target|uea:NAME|DATA.npz",
              help="[default: sine; with --resume, the resumed run's task] "
                   "Built-in task 'sine' or 'target' (reach a final state, HEB), 'uea:NAME' (classify a UEA "
                   "data set shipped with sktime, extra 'uea', docs/classification.md; or uea:PATH/NAME, a "
                   "downloaded set's folder holding NAME_TRAIN.ts and NAME_TEST.ts), or a .npz file of "
                   "inputs, targets and initial states (or of series and integer labels) (docs/training.md).")
@click.option("--substeps", type=click.IntRange(min=1), default=None,
              help="Classification: integration steps per sample of a series [default: 1].")
@click.option("--epochs", type=click.IntRange(min=0), default=100, show_default=True)
@click.option("--lr", type=float, default=None, help="Learning rate [default: 0.05 for adam, 0.01 for sgd].")
@click.option("--optimizer", type=click.Choice(["sgd", "adam"]), default="adam", show_default=True)
@click.option("--batch", type=click.IntRange(min=1), default=None, help="Sequences per step [default: all].")
@click.option("--beta", default="auto", show_default=True, metavar="auto|BETA",
              help="Nudge strength of the echo; auto: chosen at the start parameters from a pilot estimate of "
                   "the bias and round-off (docs/theory.md §6), chosen again every few epochs, and saved.")
@click.option("--estimator", type=click.Choice(list(ESTIMATORS)), default="echo",
              show_default=True, help="Gradient: centred echo (3 passes, O(β²)), one-sided echo (2, O(β)), "
              "echo4 (echoes at ±β, ±2β in one pass, O(β⁴)), echo-complex (β = iε in complex arithmetic: "
              "exact to round-off, digital only), or BPTT reference.")
@click.option("--seed", type=click.IntRange(min=0), default=None,
              help="Seed of the task, start and batch order [default: 0; with --resume, the resumed run's, "
              "so that it continues on the same task].")
@click.option("--dt", type=float, default=None, help="Step size [default: the task's, or 'dt' in DATA.npz].")
@click.option("--integrator", type=click.Choice(["auto", "leapfrog", "midpoint"]), default="auto", show_default=True)
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), help="Write the loss curve to this PNG.")
@click.option("--save", "save_path", type=click.Path(dir_okay=False), help="Write parameters and loss_history (JSON).")
@click.option("--resume", "resume_path", type=click.Path(dir_okay=False),
              help="Start from a --save file (or a {name: value} JSON file).")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Dask scheduler address: spread the batches over its workers (extra 'dask').")
@click.option("--learn-initial-state", is_flag=True,
              help="Also learn one initial state (q0, p0) shared by all sequences (HEB, docs/echo-family.md).")
@click.option("--freeze-parameters", is_flag=True,
              help="Keep the parameters fixed (with --learn-initial-state: learn only the initial state).")
@click.option("--freeze", "freeze", multiple=True, metavar="NAME[,NAME…]",
              help="Keep these parameters (B) or elements (B[0,1]) at their start values (from --resume) while "
                   "the others learn: a fixed input matrix, a mask of couplings. Repeatable.")
@click.option("--size", type=click.IntRange(min=2), default=None,
              help="Array models: the number of units n to train at (default: the model file's; a DATA.npz task "
                   "reads it from its q0).")
@click.option("--quiet", is_flag=True, help="No progress line.")
def train(model_spec, task, substeps, epochs, lr, optimizer, batch, beta, estimator, seed, dt, integrator, plot_path,
          save_path, resume_path, scheduler, learn_initial_state, freeze_parameters, freeze, size, quiet):
    """Train the parameters of MODEL with the echo gradient (theory §5) on a task.

    Prints the loss before and after, and the learned parameters.
    """
    if task is None:  # a resumed run continues on its own task
        task = resumed_task(resume_path)
    opts = TrainOptions(spec=model_spec, task=task, substeps=substeps, epochs=epochs, lr=lr, optimizer=optimizer, batch=batch,
                        beta=parse_beta(beta), estimator=estimator, seed=seed, dt=dt, integrator=integrator, plot_path=plot_path,
                        save_path=save_path, resume_path=resume_path, scheduler=scheduler,
                        learn_initial_state=learn_initial_state, freeze_parameters=freeze_parameters,
                        freeze=tuple(name for given in freeze for name in name_list(given)), size=size, quiet=quiet)
    inputs = {"the model file": split_spec(model_spec)[0],
              "the data set": task if isinstance(task, str) and os.path.isfile(task) else None}
    refuse_overwriting(save_path, "--save", {**inputs, "the --plot file": plot_path})
    refuse_overwriting(plot_path, "--plot", {**inputs, "the --resume file": resume_path})
    for path, what in ((plot_path, "--plot"), (save_path, "--save")):
        if path:
            require_writable(path, what)  # before training, not after
    if scheduler is not None:
        checked_address(scheduler)
    system = load_system(model_spec)
    if plot_path:
        from .plotting import pyplot  # optional extra 'plot'

        pyplot()  # fail before training when matplotlib is missing
    lines, histories, title = commands.train(system, opts)
    for line in lines:
        click.echo(line)
    if plot_path:
        from .plotting import plot_loss

        plot_loss(histories, plot_path, title)
    for path in (save_path, plot_path):
        if path:
            click.echo(f"wrote {path}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
