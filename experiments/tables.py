"""README result tables copied from the results files the benchmarks write, so they cannot drift.

    python -m experiments.tables          # rewrite every generated block
    python -m experiments.tables --check  # exit 1 naming the blocks that differ

A block in README.md or an experiment's README is marked

    <!-- table: experiments/serving/results.md#1 -->
    ...
    <!-- /table -->

and holds the n-th markdown table (from 1) of that results file, verbatim. The results files are
what the benchmark scripts generate from their ``results.json``.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(
    r"(<!-- table: (?P<source>[^#\s]+)#(?P<n>\d+) -->\n)(?P<body>.*?)(<!-- /table -->)", re.S
)


def documents(root: Path = ROOT) -> list[Path]:
    """The markdown files that may hold generated blocks."""
    return [root / "README.md", *sorted((root / "experiments").glob("*/README.md"))]


def tables(text: str) -> list[str]:
    """The markdown tables of ``text`` (runs of lines starting with ``|``), in order."""
    found, current = [], []
    for line in text.splitlines():
        if line.startswith("|"):
            current.append(line)
        elif current:
            found.append("\n".join(current) + "\n")
            current = []
    if current:
        found.append("\n".join(current) + "\n")
    return found


def render(text: str, root: Path = ROOT) -> str:
    """``text`` with every block refilled from its source.

    Raises:
        ValueError: a block names a file that does not exist or a table it does not have.
    """

    def fill(match: re.Match) -> str:
        source, n = match["source"], int(match["n"])
        path = root / source
        if not path.is_file():
            raise ValueError(f"generated block names {source}, which does not exist")
        found = tables(path.read_text())
        if not 1 <= n <= len(found):
            raise ValueError(
                f"generated block asks for table {n} of {source}, which has {len(found)}"
            )
        return match[1] + found[n - 1] + match[5]

    return BLOCK.sub(fill, text)


def stale(root: Path = ROOT) -> list[str]:
    """The documents whose generated blocks differ from their sources."""
    return [
        str(p.relative_to(root))
        for p in documents(root)
        if render(p.read_text(), root) != p.read_text()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report documents that differ")
    args = parser.parse_args()
    if args.check:
        differ = stale()
        if differ:
            sys.exit(
                "generated tables are stale in: "
                + ", ".join(differ)
                + "; run python -m experiments.tables"
            )
        return
    for path in documents():
        text = path.read_text()
        new = render(text)
        if new != text:
            path.write_text(new)


if __name__ == "__main__":
    main()
