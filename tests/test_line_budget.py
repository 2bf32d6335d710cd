from tests import line_budget


def test_the_harness_stays_within_its_line_budget():
    assert line_budget.main() == 0
