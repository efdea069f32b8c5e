"""Where the test suite's time goes: each test's wall time and the Numba compile time inside it.

A pytest plugin and its report. Run the suite with it (a fresh kernel cache, as CI does)::

    rm -rf .pytest_cache/symglep-kernels
    PYTHONPATH=benchmarks SUITE_PROFILE=/tmp/suite python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder -p suite_profile
    python benchmarks/suite_profile.py /tmp/suite          # tables: by file, slowest tests

Each worker appends one JSON line per test to ``$SUITE_PROFILE/<pid>.jsonl``: the test's wall
seconds (setup, call and teardown) and the seconds spent in top-level Numba compiles (a kernel's
callees compile inside it and are not counted twice), with the kernels compiled. Subprocesses a
test starts (CLI runs, concurrency tests) are not seen. This is a measurement tool, not a test.
"""

from __future__ import annotations

import collections
import json
import os
import sys
import threading
import time
from pathlib import Path

_state = threading.local()
_record = {"compile": 0.0, "kernels": [], "out": None}  # "out": this worker's JSON-lines file


def _kernel_name(dispatcher) -> str:
    try:
        code = dispatcher.py_func.__code__
        return f"{Path(code.co_filename).parent.name}/{Path(code.co_filename).name}:{code.co_name}"
    except AttributeError:
        return str(dispatcher)[:80]


def _listener():
    from numba.core import event

    class TopLevelCompiles(event.Listener):
        """Times the outermost Numba compile of each thread (nested compiles are inside it)."""

        def on_start(self, ev):
            depth = getattr(_state, "depth", 0)
            if depth == 0:
                _state.started = time.perf_counter()
            _state.depth = depth + 1

        def on_end(self, ev):
            _state.depth -= 1
            if _state.depth == 0:
                seconds = time.perf_counter() - _state.started
                _record["compile"] += seconds
                data = ev.data if isinstance(ev.data, dict) else {}
                _record["kernels"].append((round(seconds, 2), _kernel_name(data.get("dispatcher"))))

    return TopLevelCompiles()


def pytest_configure(config):
    folder = os.environ.get("SUITE_PROFILE")
    if not folder:
        return
    from numba.core import event

    event.register("numba:compile", _listener())
    Path(folder).mkdir(parents=True, exist_ok=True)
    _record["out"] = open(Path(folder) / f"{os.getpid()}.jsonl", "a", encoding="utf-8")


def pytest_runtest_protocol(item, nextitem):  # noqa: ARG001 - pytest hook signature
    _record["compile"], _record["kernels"] = 0.0, []
    _record["started"] = time.perf_counter()


def pytest_runtest_logfinish(nodeid, location):  # noqa: ARG001 - pytest hook signature
    out = _record["out"]
    if out is None or "started" not in _record:
        return
    out.write(json.dumps({"test": nodeid, "seconds": round(time.perf_counter() - _record["started"], 2),
                          "compile": round(_record["compile"], 2), "kernels": _record["kernels"]}) + "\n")
    out.flush()


def report(folder: str, top: int = 30) -> str:
    """Markdown tables: seconds per test file (all, of which Numba compile), and the slowest tests."""
    rows = [json.loads(line) for path in sorted(Path(folder).glob("*.jsonl")) for line in path.open()]
    if not rows:
        raise SystemExit(f"no records under {folder}: run the suite with -p suite_profile and SUITE_PROFILE set")
    total, compiled = sum(r["seconds"] for r in rows), sum(r["compile"] for r in rows)
    by_file = collections.defaultdict(lambda: [0.0, 0.0, 0])
    for r in rows:
        entry = by_file[r["test"].split("::")[0]]
        entry[0] += r["seconds"]
        entry[1] += r["compile"]
        entry[2] += 1
    lines = [f"{len(rows)} tests, {total:.0f} s in tests (summed over workers), "
             f"of which {compiled:.0f} s Numba compile ({100 * compiled / max(total, 1e-9):.0f} %)", "",
             "| file | tests | seconds | Numba compile (s) |", "|---|---:|---:|---:|"]
    for name, (seconds, comp, count) in sorted(by_file.items(), key=lambda kv: -kv[1][0]):
        lines.append(f"| {name} | {count} | {seconds:.1f} | {comp:.1f} |")
    lines += ["", f"| slowest {top} tests | seconds | Numba compile (s) | largest compiles |", "|---|---:|---:|---|"]
    for r in sorted(rows, key=lambda r: -r["seconds"])[:top]:
        kernels = collections.Counter()
        for seconds, name in r["kernels"]:
            kernels[name.split("/")[-1]] += seconds
        largest = ", ".join(f"{name} {s:.1f}" for name, s in kernels.most_common(3))
        lines.append(f"| {r['test']} | {r['seconds']:.1f} | {r['compile']:.1f} | {largest} |")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python benchmarks/suite_profile.py FOLDER (the SUITE_PROFILE of a profiled run)")
    print(report(sys.argv[1]))
