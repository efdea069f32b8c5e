"""Digest of the code-generation sources: a template folder and the generator modules.

A kernel's content hash combines the model with this digest, so editing a template or a
generator module invalidates every cached and committed kernel of that target. This module
only lists and reads files; it is not itself hashed.
"""

from __future__ import annotations

import hashlib
import os

PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sources_digest(template_folder: str, modules) -> str:
    """sha256 over every file of ``template_folder`` and each of ``modules`` (paths in the package)."""
    h = hashlib.sha256()
    for name in sorted(os.listdir(template_folder)):
        with open(os.path.join(template_folder, name), "rb") as f:
            h.update(name.encode() + b"\0" + f.read())
    for rel in modules:
        with open(os.path.join(PACKAGE, rel), "rb") as f:
            h.update(rel.encode() + b"\0" + f.read())
    return h.hexdigest()
