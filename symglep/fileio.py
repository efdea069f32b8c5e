"""Atomic file writes: a temporary file in the same folder, then a rename.

An interrupted write leaves either the old file or the new one, never a
half-written file.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile

import numpy as np

from .errors import SymglepError


def _file_mode(path: str) -> int:
    """The permissions the written file gets: those of the file it replaces, else what ``open`` would give
    a new file (0666 less the umask; ``mkstemp`` alone would leave it readable by its owner only)."""
    try:
        return os.stat(path).st_mode & 0o777
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def require_writable(path: str, what: str = "") -> None:
    """A one-line :class:`SymglepError` when ``path`` cannot be written: a folder on its way is a file, or the
    nearest existing folder does not let us write. Checked before long work (training) whose result goes there."""
    label = f"{what} {path}".strip()
    if os.path.isdir(path):
        raise SymglepError(f"cannot write {label}: it is a folder")
    folder = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(folder):
        folder = os.path.dirname(folder)
    if not os.path.isdir(folder):
        raise SymglepError(f"cannot write {label}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise SymglepError(f"cannot write {label}: no permission to write in {folder}")
    if folder == os.path.dirname(os.path.abspath(path)):  # the file's own folder: try it (os.access trusts root
        try:                                             # and special file systems such as /proc)
            fd, probe = tempfile.mkstemp(prefix=".symglep-", suffix=".probe", dir=folder)
        except OSError as exc:
            raise SymglepError(f"cannot write {label}: {exc.strerror or exc} (in {folder})") from None
        os.close(fd)
        os.unlink(probe)


def refuse_overwriting(path: str, what: str, inputs: dict) -> None:
    """A one-line :class:`SymglepError` when the output ``path`` is one of the ``inputs`` (``{label: path}``, e.g.
    the model file or the data set): a new-user probe's ``derive m.py -o m.py`` replaced the model's source, and
    ``train --save DATA.npz`` the data set."""
    if not path:
        return
    target = os.path.realpath(path)
    for label, given in inputs.items():
        if given and os.path.realpath(given) == target:
            raise SymglepError(f"{what} {path} is {label}: writing there would destroy it; choose another file")


def write_atomic(path: str, text: str | bytes) -> None:
    """Write ``text`` to ``path`` atomically (``os.replace`` of a sibling temporary file); a path that cannot
    be written is a one-line :class:`SymglepError`. A symbolic link is written through (the file it names is
    replaced, the link stays); an existing pipe or device (``/dev/stdout``, a FIFO) is written directly, not
    replaced by a regular file."""
    if os.path.islink(path):
        path = os.path.realpath(path)
    if os.path.exists(path) and not os.path.isfile(path) and not os.path.isdir(path):
        data = text.encode("utf-8") if isinstance(text, str) else text
        try:
            with open(path, "wb") as handle:
                handle.write(data)
        except OSError as exc:
            raise SymglepError(f"cannot write {path}: {exc.strerror or exc}") from None
        return
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        require_writable(path)  # names a file on the way ("File exists" from makedirs did not)
        raise SymglepError(f"cannot write {path}: {exc.strerror or exc} ({exc.filename or folder})") from None
    data = text.encode("utf-8") if isinstance(text, str) else text
    mode = _file_mode(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".symglep-", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise SymglepError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_json_object(path: str, what: str = "") -> dict:
    """The JSON object in ``path``; a missing, unreadable or malformed file is a one-line :class:`SymglepError`."""
    label = f"{what} {path}".strip()
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as exc:
        raise SymglepError(f"cannot read {label}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise SymglepError(f"{label} is not valid JSON: {exc.msg} (line {exc.lineno})") from None
    except UnicodeDecodeError:
        raise SymglepError(f"{label} is not UTF-8 text") from None
    if not isinstance(data, dict):
        raise SymglepError(f"{label} must hold a JSON object")
    return data


def read_npz(path: str) -> dict:
    """The arrays of a numpy ``.npz`` archive, read without pickles; a missing file, a file that is not a zip
    archive or a damaged one is a one-line :class:`SymglepError`."""
    if not os.path.exists(path):
        raise SymglepError(f"data file not found: {path}")
    if not zipfile.is_zipfile(path):
        hint = (": a UEA .ts set is read with --task uea:FOLDER/NAME (NAME_TRAIN.ts and NAME_TEST.ts in FOLDER)"
                if str(path).lower().endswith(".ts") else ": write it with numpy.savez")
        raise SymglepError(f"{path} is not a numpy .npz archive (not a zip file){hint}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: np.asarray(archive[key]) for key in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise SymglepError(f"cannot read {path} as a numpy .npz archive: {exc}") from None
