"""The examples in the docstrings of the public modules run as written."""

import doctest

import numpy as np
import pytest

import mfcy
import mfcy.datasets
import mfcy.model


@pytest.mark.parametrize("module", [mfcy, mfcy.datasets, mfcy.model],
                         ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, extraglobs={"np": np}, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
