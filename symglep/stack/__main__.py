"""``python -m symglep.stack train FILE`` / ``generate FILE --out DIR`` (docs/echo-family.md)."""

import os
import sys

from ..errors import SymglepError
from .training import load_stack, train_stack


def main(argv=None) -> int:
    """``python -m symglep.stack train FILE [options]`` and ``... generate FILE --out DIR``."""
    import argparse

    from ..fileio import write_atomic

    parser = argparse.ArgumentParser(prog="python -m symglep.stack", description="Stacks of Hamiltonian units.")
    sub = parser.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train", help="train a stack on the sine task")
    tr.add_argument("file")
    tr.add_argument("--epochs", type=int, default=400)
    tr.add_argument("--lr", type=float, default=0.05)
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--beta", type=float, default=1e-4)
    tr.add_argument("--estimator", choices=("echo", "bptt"), default="echo")
    tr.add_argument("--steps", type=int, default=400)
    tr.add_argument("--dt", type=float, default=0.05)
    gen = sub.add_parser("generate", help="write the stack's generated kernels to OUT/<name>/numba/kernels.py "
                                          "(--target c: OUT/<name>/c/<name>.h, .c, example_main.c)")
    gen.add_argument("file")
    gen.add_argument("--out", default="generated")
    gen.add_argument("--target", choices=("numba", "c"), default="numba")
    gen.add_argument("--precision", choices=("float64", "float32"), default="float64",
                     help="C target only: the type of <name>_real")
    args = parser.parse_args(argv)
    try:
        stack = load_stack(args.file)
        if args.command == "generate" and args.target == "c":
            from .codegen_c import write_stack_c

            for path in write_stack_c(stack, args.out, args.precision):
                print(path)
            return 0
        if args.command == "generate":
            path = os.path.join(args.out, stack.name, "numba", "kernels.py")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            write_atomic(path, stack.source())
            print(path)
            return 0

        def show(epoch, loss):
            if epoch % 20 == 0:
                print(f"epoch {epoch:4d}  loss {loss:.6e}", flush=True)

        res = train_stack(stack, epochs=args.epochs, lr=args.lr, seed=args.seed, beta=args.beta,
                          estimator=args.estimator, dt=args.dt, steps=args.steps, progress=show)
        print(f"final loss {res.losses[-1]:.6e}; loss decreased {res.factor:.1f}x over {args.epochs} epochs "
              f"({args.estimator})")
        return 0
    except SymglepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code



if __name__ == "__main__":
    sys.exit(main())
