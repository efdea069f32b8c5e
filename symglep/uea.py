"""Time-series classification sets of the UEA/UCR archive: the copies shipped in sktime's (or aeon's) wheel,
or any set on disk in the archive's ``.ts`` format.

sktime ships a few UEA/UCR sets (BasicMotions, JapaneseVowels, GunPoint, ...) as
``<sktime>/datasets/data/<NAME>/<NAME>_TRAIN.ts`` and ``_TEST.ts`` (aeon, its fork, in the same
layout). This module finds those folders with ``importlib.util.find_spec`` (the packages are never
imported: that is slow and pulls pandas), parses the ``.ts`` text format itself
and returns numpy arrays; nothing is downloaded and nothing is cached on disk. A set
downloaded from the archive is read from its folder (``uea:PATH/NAME``, holding
``NAME_TRAIN.ts`` and ``NAME_TEST.ts``) or from the path of its ``NAME_TRAIN.ts``.

The ``.ts`` format: ``#`` lines are comments (and ``%`` lines, as in sktime's UnitTest set, which sktime
reads); header lines start with ``@``
(``@problemName``, ``@timeStamps``, ``@missing``, ``@univariate``,
``@dimensions``, ``@equalLength``, ``@seriesLength``, ``@classLabel true
<labels...>``, ``@targetLabel``; keywords are case-insensitive) up to
``@data``; after it each non-empty line is one case, its dimensions separated
by ``:``, the values of a dimension by ``,``, the last ``:`` field being the
class label. Only classification sets without time stamps are read: a file
with ``@timeStamps true`` or without ``@classLabel true`` (a regression set),
a case whose dimension count differs from the others' (or from
``@dimensions``), a case whose dimensions differ in length, or a value that is
not a finite number is refused with a :class:`~symglep.errors.SymglepError`
naming the file and line. Lengths may differ between cases (JapaneseVowels: 7
to 29 steps).

Missing values (``?``, or ``NaN`` written out) are filled per case and channel by
linear interpolation along time; leading and trailing gaps take the nearest
valid value, and a channel with no valid value becomes zeros.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from .errors import SymglepError, listed

_INSTALL_HINT = "pip install 'symglep[uea]' (or pip install sktime)"


@dataclass
class Split:
    """The cases of one split: ``series[i]`` is ``(L_i, channels)`` float64, ``labels[i]`` its class index."""

    series: list[np.ndarray]
    labels: np.ndarray

    @property
    def lengths(self) -> np.ndarray:
        """``(S,)`` int64: the number of time steps of each case."""
        return np.array([s.shape[0] for s in self.series], dtype=np.int64)

    @property
    def channels(self) -> int:
        """The number of channels (dimensions) of every case; 0 for an empty split."""
        return int(self.series[0].shape[1]) if self.series else 0


@dataclass
class UEADataset:
    """A classification set as shipped: ``classes`` in the TRAIN file's ``@classLabel`` order."""

    name: str
    classes: list[str]
    train: Split
    test: Split
    source: str


@dataclass
class _Header:
    """What the header of a ``.ts`` file declares (``None``: not declared)."""

    timestamps: bool | None = None
    class_label: bool | None = None
    labels: list[str] = field(default_factory=list)
    target_label: bool | None = None
    dimensions: int | None = None
    timestamps_line: int = 0
    class_line: int = 0
    data_line: int = 0


def _error(path: str, lineno: int, reason: str) -> SymglepError:
    return SymglepError(f"{path}, line {lineno}: {reason}")


def _flag(words: list[str], path: str, lineno: int, keyword: str) -> bool:
    if not words or words[0].lower() not in ("true", "false"):
        raise _error(path, lineno, f"@{keyword} expects true or false")
    return words[0].lower() == "true"


def _lines(path: str) -> Iterator[tuple[int, str]]:
    """The numbered, stripped lines of ``path`` that are neither empty nor comments."""
    try:
        handle = open(path, encoding="utf-8-sig", errors="replace")  # -sig: a byte-order mark is not data
    except OSError as exc:
        raise SymglepError(f"cannot read {path}: {exc.strerror or exc}") from None
    with handle:
        for lineno, raw in enumerate(handle, 1):
            line = raw.strip()
            if line and not line.startswith(("#", "%")):
                yield lineno, line


def _read_header(lines: Iterator[tuple[int, str]], path: str) -> _Header:
    """Consume ``lines`` up to and including ``@data``."""
    header = _Header()
    for lineno, line in lines:
        if not line.startswith("@"):
            raise _error(path, lineno, "data before the @data line")
        words = line[1:].split()
        if not words:
            raise _error(path, lineno, "a bare '@' with no keyword")
        keyword = words.pop(0).lower()
        if keyword == "data":
            header.data_line = lineno
            return header
        if keyword == "timestamps":
            header.timestamps = _flag(words, path, lineno, "timeStamps")
            header.timestamps_line = lineno
        elif keyword == "classlabel":
            header.class_label = _flag(words, path, lineno, "classLabel")
            header.labels = words[1:]
            header.class_line = lineno
        elif keyword == "targetlabel":
            header.target_label = _flag(words, path, lineno, "targetLabel")
        elif keyword == "dimensions":
            if len(words) != 1 or not words[0].isdigit() or int(words[0]) < 1:
                raise _error(path, lineno, "@dimensions expects a positive integer")
            header.dimensions = int(words[0])
        # @problemName, @missing, @univariate, @equalLength, @seriesLength and
        # unknown keywords are informative only: the data are checked themselves.
    raise SymglepError(f"{path}: no @data line")


def _check_classification(header: _Header, path: str) -> None:
    if header.timestamps:
        raise _error(path, header.timestamps_line, "@timeStamps true: series with time stamps are not supported")
    if not header.class_label:
        kind = "a regression set (@targetLabel)" if header.target_label else "no '@classLabel true'"
        raise _error(path, header.data_line, f"{kind}: only classification sets are read (train on a regression "
                     "set's series as a DATA.npz with targets, docs/training.md)")
    if not header.labels:
        raise _error(path, header.class_line, "@classLabel true lists no class labels")
    if len(set(header.labels)) != len(header.labels):
        raise _error(path, header.class_line, "@classLabel lists a label twice")


def _values(text: str, path: str, lineno: int) -> np.ndarray:
    """One dimension of a case: comma-separated numbers, ``?`` for missing (NaN)."""
    tokens = text.split(",")
    try:
        values = np.array(tokens, dtype=np.float64)
    except ValueError:
        values = np.empty(len(tokens))
        for i, token in enumerate(tokens):
            token = token.strip()
            if token == "?":
                values[i] = np.nan
                continue
            try:
                values[i] = float(token)
            except ValueError:
                stamped = " (a timestamped value, '(t,x)'? @timeStamps true is not read)" if token.startswith("(") else ""
                raise _error(path, lineno, f"value {token!r} is not a number{stamped}") from None
    if np.isinf(values).any():
        raise _error(path, lineno, "an infinite value")
    return values


def _fill_missing(x: np.ndarray) -> np.ndarray:
    """Fill NaN in ``x (L, C)`` in place: linear in time per channel, nearest value at the ends, zeros if all NaN."""
    missing = np.isnan(x)
    if not missing.any():
        return x
    t = np.arange(x.shape[0], dtype=np.float64)
    for c in range(x.shape[1]):
        gap = missing[:, c]
        if gap.all():
            x[:, c] = 0.0
        elif gap.any():
            x[gap, c] = np.interp(t[gap], t[~gap], x[~gap, c])
    return x


def _occurring(train_labels: np.ndarray, test_labels: np.ndarray, classes: list) -> tuple:
    """The labels and classes without the classes the header declares that no series has (a probe: a header's
    third class made a head of three outputs on a set of two, start loss ln 3; a labelled DATA.npz keeps only
    the labels that occur too). A class only the test split has stays, for the classifier to refuse."""
    present = sorted(set(train_labels.tolist()) | set(test_labels.tolist()))
    if len(present) == len(classes):
        return train_labels, test_labels, classes
    index = np.full(len(classes), -1, dtype=np.int64)
    index[present] = np.arange(len(present))
    return index[train_labels], index[test_labels], [classes[c] for c in present]


def read_ts(path: str, classes: list[str] | None = None) -> tuple[list[np.ndarray], np.ndarray, list[str]]:
    """Read a classification ``.ts`` file: ``(series, labels, classes)``.

    ``series[i]`` is ``(L_i, channels)`` float64 with missing values filled
    (module docstring); ``labels`` ``(S,)`` int64 indexes ``classes``, which is
    the file's ``@classLabel`` list unless ``classes`` is given (a TEST file
    read with its TRAIN file's classes); a label outside it is an error.
    """
    lines = _lines(path)
    header = _read_header(lines, path)
    _check_classification(header, path)
    classes = list(header.labels) if classes is None else list(classes)
    index = {label: i for i, label in enumerate(classes)}
    ndim = header.dimensions
    series: list[np.ndarray] = []
    labels: list[int] = []
    for lineno, line in lines:
        if line.startswith("@"):
            raise _error(path, lineno, "a header line after @data")
        fields = line.split(":")
        if len(fields) < 2:
            raise _error(path, lineno, "no class label (a case is dim:dim:...:label)")
        *dims, label = fields
        if ndim is None:
            ndim = len(dims)
        elif len(dims) != ndim:
            raise _error(path, lineno, f"the case has {len(dims)} dimensions, the others {ndim}")
        columns = [_values(d, path, lineno) for d in dims]
        if len({len(col) for col in columns}) > 1:
            lengths = ", ".join(str(len(col)) for col in columns)
            raise _error(path, lineno, f"the dimensions of the case differ in length ({lengths})")
        label = label.strip()
        if label not in index:
            raise _error(path, lineno, f"class label {label!r} is not one of {', '.join(classes)}")
        series.append(_fill_missing(np.stack(columns, axis=1)))
        labels.append(index[label])
    if not series:
        raise SymglepError(f"{path}: no cases after @data")
    return series, np.array(labels, dtype=np.int64), classes


def _package_data(package: str) -> str | None:
    """``<package>/datasets/data`` when ``package`` is installed and ships it (the package is not imported)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = os.path.join(list(spec.submodule_search_locations)[0], "datasets", "data")
    return folder if os.path.isdir(folder) else None


def data_folder() -> str | None:
    """sktime's ``datasets/data`` folder, or ``None`` when sktime is not installed (sktime is not imported)."""
    return _package_data("sktime")


def data_folders() -> list[str]:
    """The folders searched for ``uea:NAME``, in order: sktime's, then aeon's (sktime's fork, which ships
    its own sets in the same layout), where installed."""
    return [f for f in (data_folder(), _package_data("aeon")) if f is not None]


def _split_files(path: str) -> tuple[str, str, str]:
    """``(name, TRAIN file, TEST file)`` of a set on disk: a folder ``NAME/`` holding ``NAME_TRAIN.ts`` and
    ``NAME_TEST.ts``, the path of ``NAME_TRAIN.ts`` (its ``_TEST.ts`` beside it), or ``PATH/NAME`` where no folder
    of that name exists but ``PATH/NAME_TRAIN.ts`` does (a probe's files unpacked without their folder)."""
    path = os.path.expanduser(path)
    if not os.path.isdir(path) and os.path.isfile(path.rstrip("/\\") + "_TRAIN.ts"):
        path = path.rstrip("/\\") + "_TRAIN.ts"
    if os.path.isdir(path):
        name = os.path.basename(os.path.normpath(path))
        train, test = (os.path.join(path, f"{name}_{split}.ts") for split in ("TRAIN", "TEST"))
    elif path.endswith("_TRAIN.ts"):
        name, train = os.path.basename(path)[:-len("_TRAIN.ts")], path
        test = path[:-len("_TRAIN.ts")] + "_TEST.ts"
    elif not os.path.exists(path):
        raise SymglepError(f"uea:{path}: no such file or folder (a set on disk is a folder NAME/ holding NAME_TRAIN.ts "
                           "and NAME_TEST.ts, or the path of NAME_TRAIN.ts)")
    else:
        raise SymglepError(f"uea:{path}: give a set's name, a folder NAME/ holding NAME_TRAIN.ts and NAME_TEST.ts, "
                           "or the path of NAME_TRAIN.ts")
    for file in (train, test):
        if not os.path.isfile(file):
            folder = os.path.dirname(file)
            found = sorted(f for f in os.listdir(folder) if f.endswith(".ts")) if os.path.isdir(folder) else []
            raise SymglepError(f"uea:{path}: no file {file} (a set on disk is NAME_TRAIN.ts and NAME_TEST.ts, NAME "
                               "the folder's name)" + (f"; the folder holds {listed(found)}" if found else ""))
    return name, train, test


def _is_classification(path: str) -> bool:
    try:
        header = _read_header(_lines(path), path)
        _check_classification(header, path)
    except SymglepError:
        return False
    return True


def _shipped() -> dict:
    """``{name: folder}`` of the classification sets in :func:`data_folders` (the first folder wins)."""
    found: dict = {}
    for folder in data_folders():
        for name in sorted(os.listdir(folder)):
            train = os.path.join(folder, name, f"{name}_TRAIN.ts")
            test = os.path.join(folder, name, f"{name}_TEST.ts")
            if name not in found and os.path.isfile(train) and os.path.isfile(test) and _is_classification(train):
                found[name] = os.path.join(folder, name)
    return found


def available() -> list[str]:
    """Sorted names of the classification sets in :func:`data_folders` (headers checked, data not parsed)."""
    return sorted(_shipped())


def _is_path(name: str) -> bool:
    return os.sep in name or name.endswith(".ts") or name.startswith("~")


def load(name: str) -> UEADataset:
    """The set ``name`` with its train and test splits: one of :func:`available` as shipped, or a set on
    disk (a folder ``NAME/`` holding ``NAME_TRAIN.ts`` and ``NAME_TEST.ts``, or the path of ``NAME_TRAIN.ts``:
    any UEA/UCR download)."""
    if _is_path(name):
        name, train_path, test_path = _split_files(name)
        source = os.path.dirname(os.path.abspath(train_path))
    else:
        here = f"; a folder {name!r} is here: give it as uea:./{name}" if name and os.path.isdir(name) else ""
        if not data_folders():
            raise SymglepError(f"the UEA data sets come with sktime, which is not installed: {_INSTALL_HINT}; "
                               "or give a set on disk, uea:PATH/NAME (a folder holding NAME_TRAIN.ts and NAME_TEST.ts)"
                               + here)
        shipped = _shipped()
        if name not in shipped:
            for folder in data_folders():
                train = os.path.join(folder, name, f"{name}_TRAIN.ts")
                if name and name not in (".", "..") and os.path.isfile(train):
                    # shipped, but not a classification set: say why
                    _check_classification(_read_header(_lines(train), train), train)
            names = sorted(shipped)
            same = [n for n in names if n.lower() == name.lower()]
            hint = f"; did you mean {same[0]!r}? (names are case-sensitive)" if same else ""
            raise SymglepError(f"unknown UEA data set {name!r}{hint}; available: {', '.join(names) or '(none)'}; "
                               "a set on disk is uea:PATH/NAME (a folder holding NAME_TRAIN.ts and NAME_TEST.ts)"
                               + here)
        source = shipped[name]
        train_path, test_path = (os.path.join(source, f"{name}_{split}.ts") for split in ("TRAIN", "TEST"))
    train_series, train_labels, classes = read_ts(train_path)
    test_series, test_labels, _ = read_ts(test_path, classes)
    train_labels, test_labels, classes = _occurring(train_labels, test_labels, classes)
    train, test = Split(train_series, train_labels), Split(test_series, test_labels)
    if test.channels != train.channels:
        raise SymglepError(f"{test_path}: {test.channels} channels, the TRAIN file has {train.channels}")
    return UEADataset(name=name, classes=classes, train=train, test=test, source=source)
