"""Outputs a person can read: item titles in the monitor's alerts and in the CRM exports (issue 17.6)."""

from __future__ import annotations

import io
from contextlib import redirect_stdout

import pandas as pd
import pytest

from emorec.jobs.cli import main
from emorec.jobs.store import Workspace


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Workspace:
    root = tmp_path_factory.mktemp("titles") / "ws"
    assert main(["run", "-w", str(root), "--demo-users", "120", "--scorer", "lexicon", "--model", "als", "-q"]) == 0
    return Workspace(root)


def test_monitor_alerts_show_item_titles(ws):
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["monitor", "-w", str(ws.root), "--min-reviews", "1", "--z", "0.5"]) == 0
    alerts = ws.read_table("alerts")
    titles = ws.read_table("items").set_index("item_id")["title"]
    first = alerts.loc[alerts["level"] == "item"].iloc[0]
    assert first["title"] == titles[first["key"]]  # the table's title is the catalog's
    assert "title" in out.getvalue().splitlines()[2] and titles[first["key"]][:39] in out.getvalue()


def test_crm_exports_name_the_recommended_products(ws, tmp_path):
    assert main(["segment", "-w", str(ws.root), "--out", str(tmp_path / "crm"), "-q"]) == 0
    exported = pd.concat([pd.read_csv(p, dtype=str) for p in (tmp_path / "crm").glob("*.csv")], ignore_index=True)
    recs = ws.read_table("recommendations").sort_values(["user_id", "rank"])
    titles = ws.read_table("items").set_index("item_id")["title"]
    for _, row in exported.head(20).iterrows():
        mine = recs.loc[recs["user_id"] == row["user_id"], "item_id"].head(3).tolist()
        assert row["recommended_items"].split(";") == mine
        assert row["recommended_titles"].split("; ") == [titles[i] for i in mine]
