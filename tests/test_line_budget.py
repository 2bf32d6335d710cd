from tests import line_budget


def test_the_harness_stays_within_its_line_budget_and_every_file_within_its_cap():
    assert line_budget.main() == 0
