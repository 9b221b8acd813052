"""Every ```python block in the docs and the README runs.

Each block runs on its own, in a fresh namespace, unless its first line says
which earlier block it continues (``# Continues the previous block ...`` or
``# Continues the block under "Heading" above.``): then it runs in the
namespace built by the blocks since the last block that runs on its own, as a
reader pasting the page in order would. A block whose info string is ``python no-run`` is shown but
not run (for cluster launch lines and the like).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("**/*.md")])
BLOCK = re.compile(r"^```python[ \t]*(?P<flags>[^\n]*)\n(?P<code>.*?)^```", re.S | re.M)


def python_blocks(page: Path) -> list[tuple[int, str]]:
    """``(line number, code)`` of each runnable python block of ``page``."""
    text = page.read_text()
    blocks = []
    for match in BLOCK.finditer(text):
        if "no-run" in match.group("flags"):
            continue
        line = text.count("\n", 0, match.start()) + 2
        blocks.append((line, match.group("code")))
    return blocks


PAGES_WITH_CODE = [page for page in PAGES if python_blocks(page)]


def test_the_docs_have_code_to_run():
    assert PAGES_WITH_CODE, "no python blocks found: is the docs folder where it should be?"


CONTINUES = re.compile(r"# Continues (the previous block|the blocks? under \".+\".* above)")


def block_groups(page: Path) -> list[list[tuple[int, str, str]]]:
    """The page's blocks as ``(line, code, how)``, grouped; ``how`` is ``"alone"``
    (runs in a fresh namespace), ``"previous"`` (continues the block before it) or
    ``"heading"`` (continues blocks under a named heading, so it may use any block
    before it). Each block that runs alone starts a group and the blocks that
    continue it follow it; a ``"heading"`` block joins every group before it. Groups
    are independent, so they are tests of their own (xdist spreads a long page's
    groups over its workers)."""
    groups: list[list[tuple[int, str, str]]] = []
    for line, code in python_blocks(page):
        continues = CONTINUES.match(code)
        if continues is None or not groups:
            how = "alone"
            groups.append([])
        elif continues.group(1) == "the previous block":
            how = "previous"
        else:
            how = "heading"
            groups = [[block for group in groups for block in group]]
        groups[-1].append((line, code, how))
    return groups


GROUPS = [(page, group) for page in PAGES_WITH_CODE for group in block_groups(page)]


@pytest.mark.parametrize(
    ("page", "group"),
    GROUPS,
    ids=[f"{page.relative_to(ROOT)}:{group[0][0]}" for page, group in GROUPS],
)
def test_page_code_blocks_run(page: Path, group: list[tuple[int, str, str]]):
    # Within a group each block runs as the reader would meet it: a block that runs
    # alone in a fresh namespace (even when merged into a group, so it cannot lean on
    # names an earlier block defined), a continuing block in its predecessor's
    # namespace, a heading continuation in every name defined so far on the page.
    seen: dict = {}
    namespace: dict = {}
    for line, code, how in group:
        if how == "alone":
            namespace = {"__name__": f"docs_{page.stem}"}
        elif how == "heading":
            namespace = dict(seen)
        # dont_inherit: run the block as a reader's script would, without this
        # module's `from __future__ import annotations` (which breaks dataclasses
        # defined in a namespace that is not a module).
        shown = page.relative_to(ROOT) if page.is_relative_to(ROOT) else page
        compiled = compile(code, f"{shown}:{line}", "exec", dont_inherit=True)
        exec(compiled, namespace)
        seen.update(namespace)


def test_a_block_that_runs_alone_gets_a_fresh_namespace(tmp_path: Path):
    """Merged into a group by a later heading continuation, a standalone block still
    cannot use names an earlier standalone block defined."""
    page = tmp_path / "page.md"
    page.write_text(
        "```python\nvalue = 1\n```\n\n```python\nprint(value)\n```\n\n"
        '```python\n# Continues the block under "Start" above.\nprint(value)\n```\n'
    )
    groups = block_groups(page)
    assert [[how for _, _, how in group] for group in groups] == [["alone", "alone", "heading"]]
    with pytest.raises(NameError, match="value"):
        test_page_code_blocks_run(page, groups[0])
