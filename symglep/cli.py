"""The ``symglep`` command line (click).

User errors print ``error: <message>`` on one line and exit with code 2; other
failures print one line and exit with code 1. ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import sys

import click

from . import __version__
from .errors import SymglepError


def _one_line(exc: BaseException) -> str:
    """The message of ``exc`` on a single line (a multi-line message is joined with ' / ')."""
    parts = [part.strip() for part in str(exc).splitlines() if part.strip()]
    return " / ".join(parts) or type(exc).__name__


class _Group(click.Group):
    """Turns exceptions into one-line messages unless ``--debug`` was given."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SymglepError as exc:
            if ctx.meta.get("symglep.debug"):
                raise
            click.echo(f"error: {_one_line(exc)}", err=True)
            ctx.exit(exc.exit_code)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)
        except Exception as exc:  # noqa: BLE001 - last resort: one line, no traceback
            if ctx.meta.get("symglep.debug"):
                raise
            message = f"internal error: {type(exc).__name__}: {_one_line(exc)} (rerun with --debug for details)"
            click.echo(message, err=True)
            ctx.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="symglep")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.pass_context
def main(ctx, debug):
    """Derive, analyse and generate learning code for physical learning systems."""
    ctx.meta["symglep.debug"] = debug


MODEL_ARG = click.argument("model_spec", metavar="MODEL")


def _is_array(model) -> bool:
    """An array (network) model: its commands live in symglep.network.commands."""
    from .network.model import ArrayModel

    return isinstance(model, ArrayModel)


def _emit(text: str, output: str | None) -> None:
    if output:
        from .fileio import write_atomic

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
    from .derivation import derive as derive_model
    from .loader import load_model
    from .report import render

    model = load_model(model_spec)
    if _is_array(model):
        from .network.commands import derive_report

        return _emit(derive_report(model, fmt), output)
    _emit(render(derive_model(model, simplify=simplify), fmt), output)


@main.command()
@MODEL_ARG
@click.option("--bc", type=click.Choice(["civp", "cfvp", "cbvp", "periodic", "pfvp", "all"]), default="all",
              show_default=True, help="Boundary condition to analyse.")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "latex", "json"]), default="text",
              show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write the report to FILE.")
def residuals(model_spec, bc, fmt, output):
    """Boundary residuals of Lagrangian EP for each boundary condition (theory §2–§3)."""
    from .boundary import latex_names
    from .boundary import residuals as boundary_residuals
    from .derivation import derive as derive_model
    from .loader import load_model
    from .residual_report import render

    model = load_model(model_spec)
    if _is_array(model):
        from .network.commands import residuals_report

        return _emit(residuals_report(model, bc, fmt), output)
    derivation = derive_model(model, simplify="none")
    res = boundary_residuals(derivation)
    if bc != "all":
        res = {bc: res[bc]}
    _emit(render(model, res, fmt, latex_names(derivation)), output)


@main.command()
@MODEL_ARG
@click.option("--target", type=click.Choice(["numba", "c"]), default="numba", show_default=True,
              help="numba: Python kernels; c: portable C99 (docs/c-kernels.md).")
@click.option("--precision", type=click.Choice(["float64", "float32"]), default="float64", show_default=True,
              help="Floating type of the C kernels (numba: float64 only).")
@click.option("--integrator", type=click.Choice(["auto", "leapfrog", "midpoint"]), default="auto", show_default=True,
              help="auto: leapfrog when separable, else midpoint (theory §6).")
@click.option("--out", "out_dir", default="generated", show_default=True, type=click.Path(file_okay=False),
              help="Root folder; files go to OUT/<model>/<target>/.")
@click.option("--force", is_flag=True, help="Overwrite files that symglep did not generate.")
def generate(model_spec, target, precision, integrator, out_dir, force):
    """Generate the kernels of MODEL (free, echo, gradient, BPTT) into OUT/<model>/<target>/."""
    from .codegen.output import write_generated
    from .loader import load_model

    model = load_model(model_spec)
    if _is_array(model):
        from .network.commands import write_generated as write_network
    for path in (write_network if _is_array(model) else write_generated)(model, out_dir, target, integrator,
                                                                          force, precision):
        click.echo(path)


@main.command()
@MODEL_ARG
@click.option("--steps", type=click.IntRange(min=1), default=1000, show_default=True, help="Number of steps K.")
@click.option("--dt", type=float, default=0.01, show_default=True, help="Step size h.")
@click.option("--beta", type=float, default=1e-4, show_default=True, help="Nudge strength of the echo.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the drawn instance.")
@click.option("--params", "params_file", type=click.Path(dir_okay=False), help="JSON {name: value} of parameters.")
@click.option("--integrator", type=click.Choice(["auto", "leapfrog", "midpoint"]), default="auto", show_default=True)
@click.option("--tolerance", type=float, default=1e-6, show_default=True, help="Allowed echo-vs-BPTT relative error.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--bc", type=click.Choice(["civp", "pfvp", "cbvp", "all"]), default=None,
              help="Instead: compare the estimators of these boundary conditions with their true gradients.")
@click.option("--cbvp-steps", type=click.IntRange(min=2), default=40, show_default=True,
              help="Steps of the two-point (CBVP) problem, solved whole by Newton.")
@click.option("--route", type=click.Choice(["auto", "echo", "flipped_echo", "digital_pfvp"]), default="auto",
              show_default=True, help="Gradient route: auto takes the model's exact one (see `symglep derive`); "
              "digital_pfvp is exact on a computer, not forward-only in hardware.")
@click.option("--naive-echo", is_flag=True,
              help="Run the plain echo even where it is not exact, and report its bias against BPTT.")
@click.option("--size", type=int, default=None,
              help="Array models: number of units n [default: the model's size; with --bc, 3 (the model is "
                   "expanded element by element)].")
def check(model_spec, steps, dt, beta, seed, params_file, integrator, tolerance, fmt, bc, cbvp_steps, route,
          naive_echo, size):
    """Round trip, energy drift, and echo vs BPTT vs finite-difference gradients on one seeded instance.

    With --bc: CIVP (bulk only, and with the residual from tangent kernels), PFVP (echo) and CBVP
    (two-point solve) estimates against their true gradients (theory §3).
    Exits with code 1 when the gradients disagree beyond the printed tolerances.
    """
    import json

    from .check import load_params, render_text, run_check
    from .loader import load_model

    model = load_model(model_spec)
    if _is_array(model):
        from .network.commands import check as check_network

        if route != "auto" or naive_echo:
            raise SymglepError("array models have one gradient route (the echo): --route and --naive-echo "
                               "do not apply")

        report, text = check_network(model, steps, dt, beta, seed, params_file, integrator, tolerance, fmt, bc,
                                     size, cbvp_steps)
        click.echo(text, nl=fmt == "json")
        sys.exit(0 if report["passed"] else 1)
    if size is not None:
        raise SymglepError("--size applies to array models only (a scalar model's size is fixed by its file)")
    params = load_params(params_file, model) if params_file else None
    if bc is not None:
        from .bc_check import BCS, run_bc_check
        from .bc_check import render_text as render_bc

        report = run_bc_check(model, BCS if bc == "all" else (bc,), steps=steps, dt=dt, beta=beta, seed=seed,
                              params=params, cbvp_steps=min(cbvp_steps, steps), integrator=integrator)
        click.echo(json.dumps(report, indent=2) if fmt == "json" else render_bc(report), nl=fmt == "json")
        if not report["passed"]:
            sys.exit(1)
        return
    report = run_check(model, steps=steps, dt=dt, beta=beta, seed=seed, params=params,
                       integrator=integrator, tolerance=tolerance, route=route, naive_echo=naive_echo)
    click.echo(json.dumps(report, indent=2) if fmt == "json" else render_text(report), nl=fmt == "json")
    if not report["passed"]:
        sys.exit(1)


@main.command()
@MODEL_ARG
@click.option("--task", default="sine", show_default=True, metavar="sine|target|DATA.npz",
              help="Built-in task 'sine' or 'target' (reach a final state, HEB), or a .npz file of inputs, "
                   "targets and initial states (docs/training.md).")
@click.option("--epochs", type=click.IntRange(min=0), default=100, show_default=True)
@click.option("--lr", type=float, default=None, help="Learning rate [default: 0.05 for adam, 0.01 for sgd].")
@click.option("--optimizer", type=click.Choice(["sgd", "adam"]), default="adam", show_default=True)
@click.option("--batch", type=click.IntRange(min=1), default=None, help="Sequences per step [default: all].")
@click.option("--beta", type=float, default=1e-4, show_default=True, help="Nudge strength of the echo.")
@click.option("--estimator", type=click.Choice(["echo", "echo-one-sided", "bptt"]), default="echo",
              show_default=True, help="Gradient: centred echo (3 passes), one-sided echo (2), or BPTT reference.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the task, start and batch order.")
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
@click.option("--quiet", is_flag=True, help="No progress line.")
def train(model_spec, task, epochs, lr, optimizer, batch, beta, estimator, seed, dt, integrator, plot_path,
          save_path, resume_path, scheduler, learn_initial_state, freeze_parameters, quiet):
    """Train the parameters of MODEL with the echo gradient (theory §5) on a task.

    Prints the loss before and after, and the learned parameters.
    """
    from .loader import load_model
    from .training import train as run_training

    loaded = load_model(model_spec, allow_stack=True)
    if _is_stack(loaded):  # a stack of units: its own trainer (docs/echo-family.md)
        return _train_stack(loaded, task=task, epochs=epochs, lr=lr, optimizer=optimizer, batch=batch, beta=beta,
                            estimator=estimator, seed=seed, dt=dt, integrator=integrator, plot_path=plot_path,
                            save_path=save_path, resume_path=resume_path, scheduler=scheduler, quiet=quiet,
                            learn_initial_state=learn_initial_state, freeze_parameters=freeze_parameters)
    if _is_array(loaded):
        raise SymglepError("train does not support array models yet; train a network from Python with "
                           "symglep.compile(model).gradient (docs/networks.md)")
    if plot_path:
        from .plotting import pyplot

        pyplot()  # fail before training when matplotlib is missing
    result = run_training(model_spec, task, epochs=epochs, lr=lr, optimizer=optimizer, batch=batch, beta=beta,
                          estimator=estimator, seed=seed, dt=dt, resume=resume_path, save=save_path,
                          scheduler=scheduler, progress=not quiet, integrator=integrator,
                          learn_initial_state=learn_initial_state, freeze_parameters=freeze_parameters)
    history = result.loss_history
    first = history[0] if history else result.final_loss
    click.echo(f"model {result.model}: {result.settings['estimator']} gradient, {result.settings['optimizer']} "
               f"(lr {result.settings['lr']:g}), {len(history)} epochs, {result.seconds:.1f} s")
    click.echo(f"loss {first:.6e} -> {result.final_loss:.6e} (x{first / result.final_loss:.3g} lower)"
               if result.final_loss > 0 else f"loss {first:.6e} -> 0")
    for name, value in result.parameters.items():
        click.echo(f"  {name} = {value:.10g}" + (" (fixed)" if freeze_parameters else ""))
    for key, values in (result.initial_state or {}).items():
        click.echo(f"  {key} = [{', '.join(f'{v:.10g}' for v in values)}]")
    if plot_path:
        from .plotting import plot_loss

        plot_loss({result.settings["estimator"]: history}, plot_path, f"{result.model}: {result.settings['task']}")
    for path in (save_path, plot_path):
        if path:
            click.echo(f"wrote {path}")


def _is_stack(obj) -> bool:
    from .stack.model import Stack

    return isinstance(obj, Stack)


def _train_stack(stack, *, task, epochs, lr, optimizer, batch, beta, estimator, seed, dt, integrator, plot_path,
                 save_path, resume_path, scheduler, quiet, learn_initial_state=False, freeze_parameters=False):
    """``symglep train STACK_FILE``: the sine task, full batch, echo or BPTT (symglep.stack.training)."""
    import json

    from .fileio import write_atomic
    from .stack.training import train_stack

    refused = {"--task": task != "sine", "--batch": batch is not None, "--resume": resume_path is not None,
               "--scheduler": scheduler is not None, "--integrator": integrator == "midpoint",
               "--estimator echo-one-sided": estimator == "echo-one-sided",
               "--learn-initial-state": learn_initial_state, "--freeze-parameters": freeze_parameters}
    bad = [flag for flag, on in refused.items() if on]
    if bad:
        raise SymglepError(f"stacks train on the sine task, full batch, by the centred echo or BPTT with "
                           f"leapfrog units; not supported for a stack: {', '.join(bad)}")
    if epochs < 1:
        raise SymglepError("a stack needs --epochs >= 1")
    if plot_path:
        from .plotting import pyplot

        pyplot()

    def show(epoch, loss):
        if not quiet and (epoch % 20 == 0 or epoch == epochs - 1):
            click.echo(f"epoch {epoch:4d}  loss {loss:.6e}", err=True)

    result = train_stack(stack, epochs=epochs, lr=lr, optimizer=optimizer, seed=seed, beta=beta,
                         estimator=estimator, dt=dt or 0.05, progress=show)
    first, last = result.losses[0], result.losses[-1]
    how = "stacked echo, theory sec. 9" if estimator == "echo" else "BPTT through the stack"
    click.echo(f"stack {stack.name}: {estimator} gradient ({how}), {optimizer}, "
               f"{epochs} epochs, {result.info['seconds']:.1f} s")
    click.echo(f"loss {first:.6e} -> {last:.6e} (x{first / last:.3g} lower)")
    for name, value in zip(result.names, result.theta):
        click.echo(f"  {name} = {value:.10g}")
    if plot_path:
        from .plotting import plot_loss

        plot_loss({estimator: result.losses}, plot_path, f"{stack.name}: sine")
    if save_path:
        write_atomic(save_path, json.dumps({"stack": stack.name, "parameters": dict(zip(result.names,
                     map(float, result.theta))), "loss_history": result.losses, "settings": result.info},
                     indent=2) + "\n")
    for path in (save_path, plot_path):
        if path:
            click.echo(f"wrote {path}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
