"""Prints the capability table of docs/architecture.md (every refused cell of every kind, with its reason).

Run ``python docs/capabilities_table.py`` and paste its output between the markers of
docs/architecture.md; tests/test_matrix.py fails when the page and the code disagree.
"""

from symglep.capabilities import AREAS
from symglep.model import Model
from symglep.network.model import ArrayModel
from symglep.stack.model import Stack

KINDS = (("scalar", Model), ("array", ArrayModel), ("stack", Stack))


def table() -> str:
    """Markdown: one row per cell of :data:`AREAS`, one column per kind (✓ or the refusal's reason)."""
    lines = ["| area | cell | " + " | ".join(kind for kind, _ in KINDS) + " |",
             "|---|---|" + "---|" * len(KINDS)]
    for area, names in AREAS.items():
        for name in names:
            cells = [cls.capabilities.reason(area, name) for _, cls in KINDS]
            shown = ["✓" if why is None else "refused: " + why.replace("|", "\\|") for why in cells]
            lines.append(f"| {area} | `{name}` | " + " | ".join(shown) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(table(), end="")
