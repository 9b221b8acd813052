"""Every ```python block in the docs and the README runs.

Each block runs on its own, in a fresh namespace, unless its first line says
which earlier block it continues (``# Continues the previous block ...`` or
``# Continues the block under "Heading" above.``): then it runs in the
namespace the page's blocks so far have built, as a reader pasting the page
in order would. A block whose info string is ``python no-run`` is shown but
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


@pytest.mark.parametrize("page", PAGES_WITH_CODE, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_code_blocks_run(page: Path):
    page_namespace: dict = {"__name__": f"docs_{page.stem}"}
    for line, code in python_blocks(page):
        continues = CONTINUES.match(code) is not None
        # A block that does not say it continues another must run on its own.
        namespace = page_namespace if continues else {"__name__": f"docs_{page.stem}"}
        # dont_inherit: run the block as a reader's script would, without this
        # module's `from __future__ import annotations` (which breaks dataclasses
        # defined in a namespace that is not a module).
        compiled = compile(code, f"{page.relative_to(ROOT)}:{line}", "exec", dont_inherit=True)
        exec(compiled, namespace)
        page_namespace.update(namespace)
