"""An account whose chance is past the top of the 0-100 score (80% and more reads 100) is shown by
its chance, with its decimals, on the account page and on a lead's portrait: large accounts no
longer all read "100" (the score's scale is the lead score's, fixed across model versions)."""

from __future__ import annotations

import pytest
from test_opportunities import _account_score, opportunities_of
from test_portrait import COLOURS, _build_world, _score

from leadscore.config import Settings
from leadscore.serving.account.reader import AccountReader
from leadscore.serving.account.render import render_account_html
from leadscore.serving.portrait.reader import PortraitReader
from leadscore.serving.portrait.render import render_portrait_html


@pytest.fixture()
def reader(tmp_path, settings: Settings) -> PortraitReader:
    _build_world(tmp_path)
    return PortraitReader(settings.with_data_dir(tmp_path))


@pytest.mark.parametrize("probability, shown", [(0.9935, "99.4%"), (0.99971, "over 99%"), (0.861, "86.1%")])
def test_an_account_past_the_scores_top_reads_its_chance_on_its_page_and_the_portrait(reader, probability,
                                                                                      shown):
    top = _account_score(None).model_copy(update={"probability": probability, "score": 100.0})
    page = render_account_html(AccountReader(reader).page("C1", top), "E0042")
    assert f'id="account-chance">{shown}<small> chance' in page and "100<small> / 100" not in page
    assert "their chances\n      tell them apart" in page
    portrait = reader.portrait("P1", _score())
    portrait.account_score = top
    line = render_portrait_html(portrait, "E0042", COLOURS)
    assert f"<b>{shown}</b>" in line and "100 / 100" not in line


def test_an_account_below_the_top_reads_its_score_and_one_in_an_opportunity_says_so(reader):
    below = _account_score(None).model_copy(update={"probability": 0.412, "score": 82.3})
    page = render_account_html(AccountReader(reader).page("C1", below), "E0042")
    assert "82<small> / 100" in page and "41.2% chance" in page and 'id="account-chance"' not in page
    portrait = reader.portrait("P1", _score())
    portrait.account_score = below
    line = render_portrait_html(portrait, "E0042", COLOURS)
    assert "41.2% in 90 days" in line  # the page's chance, to the same decimal
    busy = _account_score(opportunities_of(reader).of_company("C1"))  # at 100, in an opportunity
    page = render_account_html(AccountReader(reader).page("C1", busy), "E0042")
    assert 'id="account-chance"' not in page and "In an opportunity since" in page
