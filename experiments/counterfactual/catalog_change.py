"""Which of the validity study's injections a catalog change added or removed.

    python -m experiments.counterfactual.catalog_change [--before fff1401] [--after HEAD]

The study (``run.py``) draws its onsets among months clear of the catalog's events, so a change
to the catalog changes its sample. This draws the sample under the default catalog of two
revisions, with everything else (protocol, store, code) as it is now, and writes the injections
only one of them holds to ``catalog_change.md`` beside this file. ``fff1401`` is the revision
whose catalog the study's first run used (261 injections); the catalog gained the January 2016
family raids and widened Programa Frontera Sur's scope after that run had landed injections on
them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from experiments.counterfactual.run import HERE, Task, catalog_at, eligible, load_config, tasks


def onsets(todo: list[Task]) -> dict[tuple[str, str], list[str]]:
    """(series, onset) -> the injections there."""
    out: dict[tuple[str, str], list[str]] = {}
    for task in todo:
        out.setdefault((task.key, task.onset), []).append(task.injection)
    return out


def report(before: str, after: str, old: list[Task], new: list[Task], catalogs, clear) -> str:
    """``clear``: series -> the onsets clear of the later catalog's events."""
    was, now = onsets(old), onsets(new)
    lines = [
        "# The validity study's sample under two catalogs",
        "",
        f"Written by `python -m experiments.counterfactual.catalog_change --before {before} "
        f"--after {after}`: the study's protocol (`config.yaml`), store and code as they are "
        "now; only the default catalog differs. The onsets are drawn at random among the "
        "eligible months of each series, so a catalog change that makes a few months "
        "ineligible redraws the series' whole sample: a removed onset is either near an event "
        "the later catalog has (*ineligible*) or still eligible and not drawn again (*redrawn*).",
        "",
        "| catalog | events | fingerprint | injections | onsets |",
        "| --- | ---: | --- | ---: | ---: |",
    ]
    rows = [(before, catalogs[0], old, was), (after, catalogs[1], new, now)]
    for label, catalog, todo, found in rows:
        lines.append(
            f"| {label} | {len(catalog.events)} | `{catalog.fingerprint()[:12]}` | {len(todo)} "
            f"| {len(found)} |"
        )
    removed = sorted(set(was) - set(now))
    ineligible = [k for k in removed if _month(k[1]) not in clear[k[0]]]
    lines += [
        "",
        f"## Removed by the change ({sum(len(was[k]) for k in removed)} injections at "
        f"{len(removed)} onsets; {len(ineligible)} onsets ineligible, "
        f"{len(removed) - len(ineligible)} redrawn)",
        "",
    ]
    lines += [
        f"- `{key}` {onset} ({'ineligible' if (key, onset) in ineligible else 'redrawn'}): "
        f"{', '.join(was[(key, onset)])}"
        for key, onset in removed
    ]
    added = sorted(set(now) - set(was))
    lines += ["", f"## Added by the change ({sum(len(now[k]) for k in added)} injections)", ""]
    lines += [f"- `{key}` {onset}: {', '.join(now[(key, onset)])}" for key, onset in added]
    return "\n".join(lines) + "\n"


def _month(text: str) -> pd.Timestamp:
    return pd.Timestamp(f"{text}-01")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="fff1401", help="revision of the earlier catalog")
    parser.add_argument("--after", default="HEAD", help="revision of the later catalog")
    parser.add_argument("--config", type=Path, default=HERE / "config.yaml")
    args = parser.parse_args()
    config = load_config(args.config)
    catalogs = [catalog_at(args.before), catalog_at(args.after)]
    old, _ = tasks(config, catalogs[0])
    new, _ = tasks(config, catalogs[1])
    clear = {key: found for key, (_, found) in eligible(config, catalogs[1]).items()}
    text = report(args.before, args.after, old, new, catalogs, clear)
    (HERE / "catalog_change.md").write_text(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
