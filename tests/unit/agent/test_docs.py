"""docs/components.md is generated from the specs and must be current."""

from __future__ import annotations

from agent import docs


def test_components_reference_is_current() -> None:
    assert docs.render() == docs.TARGET.read_text(), "docs/components.md is stale: run python -m agent.docs"


def test_every_documented_property_has_a_description() -> None:
    text = docs.render()
    rows = [line for line in text.splitlines() if line.startswith("| `") or line.startswith("| **")]
    assert rows
    assert all(not line.rstrip().endswith("|  |") for line in rows), [r for r in rows if r.rstrip().endswith("|  |")]
