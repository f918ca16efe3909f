"""The evaluation verdict opens with a paragraph a product manager can read (issue 17, item 7)."""

from __future__ import annotations

from test_evaluation_verdict import _comp, _report

from emorec.jobs.evaluation.verdict import plain_summary, verdict_lines


def _with_side_effects():
    return _report([
        _comp("B", 0.012, 0.123, 0.041, 0.202, 0.0031, True),
        _comp("C", -0.01, -0.1, -0.15, -0.05, 0.0004, True),
        _comp("B", 0.05, 0.31, 0.2, 0.4, 0.001, True, metric="long_tail@10"),
        _comp("B", 0.5, 0.042, 0.01, 0.07, 0.01, True, metric="arp@10"),
        _comp("B", 0.01, 0.01, -0.02, 0.04, 0.6, False, metric="ild@10"),  # not significant: not mentioned
    ], variants=("A", "B", "C"))


def test_the_first_paragraph_says_what_won_by_how_much_how_sure_and_at_what_cost():
    text = plain_summary(_with_side_effects())
    assert text.startswith("In plain words")
    assert "B (als) wins" in text and "12.3% better than A (als)" in text
    assert "between +4.1% and +20.2% with 95% confidence" in text and "very unlikely to be chance (p = 0.003)" in text
    assert "more long-tail items (+31%), but also more popular items on average (+4%)" in text
    assert "varied" not in text  # an insignificant change is not a claim
    assert "C (als) is worse than A, by 10.0%" in text
    assert "how high the item the customer bought next ranks in the top 10" in text  # the metric explained
    lines = verdict_lines(_with_side_effects())
    assert lines[0] == text and lines[1] == "" and "B beats A on NDCG@10" in "\n".join(lines[2:])


def test_no_winner_is_said_plainly_with_what_the_data_could_detect():
    text = plain_summary(_report([_comp("D", 0.002, 0.021, -0.03, 0.075, 0.41, False, mde_rel=0.098)], variants=("A", "D")))
    assert "no variant is shown to beat A (als)" in text and "could be chance (p = 0.410)" in text
    assert "about ±9.8% or more would show" in text and "wins" not in text


def test_failed_baseline_and_lonely_baseline():
    rep = _report([], variants=("A", "B"))
    assert "nothing to compare" in plain_summary(rep)
    rep["variants"][0].update(status="failed", error="x")
    assert "failed to train" in plain_summary(rep)


def test_verdict_file_and_html_report_open_with_the_paragraph(tmp_path):
    """A real (small) evaluation: verdict.txt and report.html both start with the plain paragraph."""
    from emorec.jobs.cli import main
    from emorec.jobs.demo_shop import generate_demo_shop

    paths = generate_demo_shop(n_users=80, seed=3).write(tmp_path / "shop")
    cfg = tmp_path / "v.toml"
    cfg.write_text('name = "small"\nks = [10]\n[stats]\nbootstrap = 200\npermutations = 200\n'
                   '[[variant]]\nname = "A"\nmodel = "popular"\n[[variant]]\nname = "B"\nmodel = "itemknn"\n')
    out = tmp_path / "eval"
    assert main(["evaluate", "-w", str(tmp_path / "ws"), "--config", str(cfg), "--reviews", str(paths["reviews"]),
                 "--out", str(out), "-q"]) == 0
    verdict = (out / "verdict.txt").read_text()
    assert verdict.startswith("In plain words, measured on ")
    html = (out / "report.html").read_text()
    assert "In plain words" in html and html.index("In plain words") < html.index("baseline A, primary metric")
