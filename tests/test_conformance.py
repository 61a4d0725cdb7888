"""Every discovered fixed-point backend passes the installed conformance kit."""

import pytest

from snn_compile.backend import available_backends, get_backend
from snn_compile.testing.conformance import check_backend

FIXED = [name for name in available_backends() if get_backend(name).fixed_point]


@pytest.mark.parametrize("name", FIXED)
def test_backend_conforms(name):
    backend = get_backend(name)
    missing = backend.available()
    if missing:
        pytest.skip(missing)
    report = check_backend(backend, networks=6, seed=1)
    assert report.ran > 0, report.summary()
