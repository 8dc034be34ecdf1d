"""Run every ```python block of docs/*.md and README.md, so documented examples stay true.

Blocks of one page run in order in a shared namespace, inside a temporary working folder.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _blocks(page: Path) -> list[str]:
    return BLOCK.findall(page.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    "page", [p for p in PAGES if p.exists() and _blocks(p)], ids=lambda p: p.name
)
def test_page_examples_run(page: Path, tmp_path: Path) -> None:
    namespace: dict[str, object] = {"__name__": "__docs__"}
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        for number, block in enumerate(_blocks(page)):
            code = compile(block, f"{page.name}[block {number}]", "exec")
            exec(code, namespace)  # noqa: S102 - the project's own documentation
    finally:
        os.chdir(cwd)
