"""hbsdeploy's test suite: a package, so helpers are imported by their full name (docs/testing.md)."""

import pytest

# pytest explains a failed assert (values, diffs) in test modules and conftests; these helpers assert too.
pytest.register_assert_rewrite("tests.helpers", "tests.reliability.helpers")
