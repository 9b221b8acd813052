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


def block_groups(page: Path) -> list[list[tuple[int, str]]]:
    """The page's blocks, grouped: each block that runs on its own starts a group, and
    the blocks that continue it follow it; a block that continues blocks under a named
    heading joins every group before it (it may use any of them). Groups are
    independent, so they are tests of their own (xdist spreads a long page's groups
    over its workers)."""
    groups: list[list[tuple[int, str]]] = []
    for line, code in python_blocks(page):
        continues = CONTINUES.match(code)
        if continues is None or not groups:
            groups.append([])
        elif continues.group(1) != "the previous block":
            groups = [[block for group in groups for block in group]]
        groups[-1].append((line, code))
    return groups


GROUPS = [(page, group) for page in PAGES_WITH_CODE for group in block_groups(page)]


@pytest.mark.parametrize(
    ("page", "group"),
    GROUPS,
    ids=[f"{page.relative_to(ROOT)}:{group[0][0]}" for page, group in GROUPS],
)
def test_page_code_blocks_run(page: Path, group: list[tuple[int, str]]):
    # A block that continues others runs in the namespace its group has built so far,
    # as a reader pasting the page in order would; the first block of a group runs alone.
    namespace: dict = {"__name__": f"docs_{page.stem}"}
    for line, code in group:
        # dont_inherit: run the block as a reader's script would, without this
        # module's `from __future__ import annotations` (which breaks dataclasses
        # defined in a namespace that is not a module).
        compiled = compile(code, f"{page.relative_to(ROOT)}:{line}", "exec", dont_inherit=True)
        exec(compiled, namespace)
