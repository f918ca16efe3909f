import pytest

from emorec.sentiment.text import clean_text, prepare_for_storage, scrub_pii


@pytest.mark.parametrize("raw", [
    "write to jane.doe@example.co.uk please",
    "call +44 20 7946 0958 today",
    "call (555) 123-4567 today",
    "call 555.123.4567 today",
    "ruf an: +49 30 12345678",
    "ruf an: 0049 30 12345678",
    "appelez +33 1 42 68 53 00",
    "call +91 98765 43210",
    "bel 020 123 4567 voor info",
    "see https://shop.example.com/p?id=3 now",
    "see www.example.org/page now",
])
def test_scrub_removes_personal_data(raw):
    out = scrub_pii(raw)
    assert any(tok in out for tok in ("[email]", "[phone]", "[url]"))
    digits = sum(c.isdigit() for c in out)
    assert digits <= 1 and "@" not in out and "http" not in out and "www" not in out


@pytest.mark.parametrize("raw", [
    "Bought it 12-24-2013 for $19.99",
    "1/4 inch jack, model SM58, year 2014",
    "serial 123456789 works",
    "10 x 12 x 14 cm, 3.5 mm plug",
])
def test_scrub_keeps_ordinary_numbers(raw):
    assert scrub_pii(raw) == raw


def test_clean_text_html_whitespace_emoji_and_negation_kept():
    assert clean_text("<p>Not   good&amp;cheap</p><br>really\x00 😡") == "Not good&cheap\nreally 😡"
    assert clean_text(None) == ""
    # comparisons are text, not tags: nothing between them is lost
    assert clean_text("a < b and c > d") == "a < b and c > d"
    assert clean_text("5<10 and 20>3, <!-- hidden --> <B>bold</B>") == "5<10 and 20>3, bold"
    assert clean_text("   ") == ""
    assert prepare_for_storage("I do <b>not</b> like it") == "I do not like it"
