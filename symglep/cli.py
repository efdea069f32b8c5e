"""The ``symglep`` command line (click).

User errors print ``error: <message>`` on one line and exit with code 2; other
failures print one line and exit with code 1. ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import sys

import click

from . import __version__
from .errors import SymglepError


class _Group(click.Group):
    """Turns exceptions into one-line messages unless ``--debug`` was given."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SymglepError as exc:
            if ctx.meta.get("symglep.debug"):
                raise
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)
        except Exception as exc:  # noqa: BLE001 - last resort: one line, no traceback
            if ctx.meta.get("symglep.debug"):
                raise
            click.echo(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for details)", err=True)
            ctx.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="symglep")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.pass_context
def main(ctx, debug):
    """Derive, analyse and generate learning code for physical learning systems."""
    ctx.meta["symglep.debug"] = debug


MODEL_ARG = click.argument("model_spec", metavar="MODEL")


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
def derive(model_spec, fmt, output):
    """Derive Euler–Lagrange equations, Legendre transform, symmetries and learning rule.

    MODEL is a Python file defining `model`, or PATH.py:NAME.
    """
    from .derivation import derive as derive_model
    from .loader import load_model
    from .report import render

    model = load_model(model_spec)
    _emit(render(derive_model(model), fmt), output)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
