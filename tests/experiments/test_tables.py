"""README tables are the results files' own tables, so a rerun cannot leave a README behind."""

from __future__ import annotations

import pytest

from experiments import tables


def test_every_generated_table_matches_its_results_file():
    assert tables.stale() == [], "run python -m experiments.tables after a benchmark run"


def test_a_block_follows_its_source_and_names_what_is_missing(tmp_path):
    (tmp_path / "experiments" / "x").mkdir(parents=True)
    source = tmp_path / "experiments" / "x" / "results.md"
    source.write_text("# r\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\ntext\n\n| c |\n|---|\n| 3 |\n")
    readme = tmp_path / "README.md"
    block = "<!-- table: experiments/x/results.md#2 -->\n| old |\n<!-- /table -->\n"
    readme.write_text("intro\n" + block)
    assert tables.stale(tmp_path) == ["README.md"]
    assert "| c |\n|---|\n| 3 |\n<!-- /table -->" in tables.render(readme.read_text(), tmp_path)
    readme.write_text(tables.render(readme.read_text(), tmp_path))
    assert tables.stale(tmp_path) == []
    source.write_text(source.read_text().replace("| 3 |", "| 4 |"))
    assert tables.stale(tmp_path) == ["README.md"]
    with pytest.raises(ValueError, match="table 3 of experiments/x/results.md, which has 2"):
        tables.render("<!-- table: experiments/x/results.md#3 -->\n<!-- /table -->", tmp_path)
    with pytest.raises(ValueError, match="names experiments/y.md, which does not exist"):
        tables.render("<!-- table: experiments/y.md#1 -->\n<!-- /table -->", tmp_path)
