"""`leadscore train`'s account step says which candidates it trained: the stacked one only when it
was (it is dropped without a lead model to read)."""

from leadscore.cli.common import step
from leadscore.cli.train import account_step_title


def test_the_account_step_names_the_candidates_it_trained_and_says_when_stacked_was_dropped():
    trained = account_step_title(["logistic_regression", "lightgbm", "stacked"], stacked_wanted=True)
    assert trained == "training the account model: logistic regression, LightGBM, stacked on its people"
    dropped = account_step_title(["logistic_regression", "lightgbm"], stacked_wanted=True)
    assert "stacked on its people" not in dropped and "no stacked candidate" in dropped
    off = account_step_title(["logistic_regression", "lightgbm"], stacked_wanted=False)
    assert off == "training the account model: logistic regression, LightGBM"


def test_a_step_ends_under_the_title_it_set(capsys):
    with step("working") as done:
        done.title = "worked: 3 things"
    assert "worked: 3 things" in capsys.readouterr().err
