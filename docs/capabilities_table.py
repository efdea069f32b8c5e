"""Prints the capability table of docs/architecture.md (every refused cell of every kind, with its reason).

Run ``python docs/capabilities_table.py`` and paste its output between the markers of
docs/architecture.md; tests/test_matrix.py fails when the page and the code disagree.
"""

from symglep.capabilities import AREAS, ARRAY_MIDPOINT
from symglep.model import Model
from symglep.network.model import ArrayModel
from symglep.stack.model import Stack

# (column, table): an array model whose mass reads the unit's position has a table of its own (theory §6)
KINDS = (("scalar", Model.capabilities), ("array", ArrayModel.capabilities),
         ("array, mass m_i(q_i)", ARRAY_MIDPOINT), ("stack", Stack.capabilities))


def table() -> str:
    """Markdown: one row per cell of :data:`AREAS`, one column per kind (✓ or the refusal's reason)."""
    lines = ["| area | cell | " + " | ".join(kind for kind, _ in KINDS) + " |",
             "|---|---|" + "---|" * len(KINDS)]
    for area, names in AREAS.items():
        for name in names:
            cells = [caps.reason(area, name) for _, caps in KINDS]
            shown = ["✓" if why is None else "refused: " + why.replace("|", "\\|") for why in cells]
            lines.append(f"| {area} | `{name}` | " + " | ".join(shown) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(table(), end="")
