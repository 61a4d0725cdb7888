"""Every discovered fixed-point backend passes the installed conformance kit."""

import pytest

from snn_compile.backend import available_backends, backend_class, get_backend
from snn_compile.errors import BackendError
from snn_compile.testing.conformance import check_backend


def _fixed_point(name: str) -> bool:
    try:
        return backend_class(name).fixed_point
    except BackendError:
        return True  # a backend that fails to load fails its own case below, with the cause


FIXED = [name for name in available_backends() if _fixed_point(name)]


@pytest.mark.parametrize("name", FIXED)
def test_backend_conforms(name):
    backend = get_backend(name)
    missing = backend.available()
    if missing:
        pytest.skip(missing)
    report = check_backend(backend, networks=6, seed=1)
    assert report.ran > 0, report.summary()
