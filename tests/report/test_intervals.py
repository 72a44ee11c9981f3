"""The report shows every accuracy with its 95 % interval: the models table (from the cards,
old cards included) and the lens tables (from their ci_low/ci_high columns)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from robustlens.proportions import wilson_interval
from robustlens.report.builder import model_rows, summary_table
from robustlens.report.document import Estimate, ModelRow, ReportDocument, TableBlock
from robustlens.report.html import _table, format_number, render_report
from tests.lenses.helpers import TOY, small_cnn, study_model


def _models():
    new, old = study_model(small_cnn(TOY), "new"), study_model(small_cnn(TOY, 1), "old")
    new.card.add_metric("clean_accuracy", 0.9, n=200)
    new.card.add_metric("robust_accuracy", 0.5, n=200, attack={"attack": "pgd", "eps": 0.1})
    # a card written before intervals were stored: the report computes them
    old.card.metrics.append({"name": "clean_accuracy", "value": 0.75, "n": 40, "attack": None})
    return [new, old]


def test_model_rows_carry_the_cards_intervals_and_old_cards_get_them():
    new, old = model_rows(_models(), {})
    assert new.clean_interval == wilson_interval(180, 200)
    assert new.robust_interval == wilson_interval(100, 200) and new.n == 200
    assert old.clean_interval == wilson_interval(30, 40) and old.n == 40
    assert old.robust_interval is None and old.robust_accuracy is None


def _document(models: list[ModelRow]) -> ReportDocument:
    return ReportDocument("s", "", "toy", 0, 0, "", {}, models, [], [])


def test_the_models_table_prints_percentages_with_intervals():
    rows = model_rows(_models(), {})
    html = render_report(_document(rows))
    low, high = (100 * b for b in wilson_interval(180, 200))
    assert f"90.0 % [{low:.1f}, {high:.1f}]" in html
    low, high = (100 * b for b in wilson_interval(30, 40))
    assert f"75.0 % [{low:.1f}, {high:.1f}]" in html
    assert "McNemar" in html  # the caption says how two models are compared
    bare = ModelRow("m", "mlp", "natural", 0.5, None, "", 10, "a" * 64)
    assert "50.0 % [" not in render_report(_document([bare]))


def test_lens_tables_show_a_value_with_its_interval_where_the_row_has_one():
    frame = pd.DataFrame(
        {
            "model": ["a", "b", "a", "b"],
            "layer": ["input"] * 4,
            "setting": ["clean", "clean", "chance", "chance"],
            "metric": ["accuracy"] * 4,
            "value": [0.9, 0.5, 0.1, 0.1],
            "ci_low": [0.85, 0.4, np.nan, np.nan],
            "ci_high": [0.95, 0.6, np.nan, np.nan],
        }
    )
    wide = summary_table(frame)
    assert wide["a"].tolist() == [Estimate(0.9, 0.85, 0.95), 0.1]
    table = _table(TableBlock("t", wide))
    cells = [[c["text"] for c in row] for row in table["rows"]]
    f = format_number
    assert cells[0][-2:] == [f"{f(0.9)} [{f(0.85)}, {f(0.95)}]", f"{f(0.5)} [{f(0.4)}, {f(0.6)}]"]
    assert cells[0][-1] == "0.500 [0.400, 0.600]"
    assert cells[1][-2:] == [f(0.1), f(0.1)]
    assert all(c["num"] for c in table["rows"][0][-2:]) and table["numeric"][-2:] == [True, True]
    # a table without intervals pivots to plain numbers as before
    assert summary_table(frame.drop(columns=["ci_low", "ci_high"]))["a"].tolist() == [0.9, 0.1]
