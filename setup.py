"""Package discovery for setuptools (all metadata lives in pyproject.toml).

pyproject.toml's ``[tool.setuptools.package-dir]`` maps import names onto source trees
(``snn_compile.backends`` -> ``backends/``, ``snn_compile._targets`` -> ``targets/``).
setuptools' ``packages.find`` cannot put a prefix in front of what it finds, so this file walks
each mapped tree and names every folder in it as a package (namespace discovery: a folder needs
no ``__init__.py``, so data-only folders such as ``templates/`` are found too). A new sub-folder
is picked up without editing anything; pyproject's ``package-data`` then ships every file in it.
``tests/test_packaging.py`` checks the built wheel against the trees.
"""

import tomllib
from pathlib import Path

from setuptools import find_namespace_packages, setup

ROOT = Path(__file__).resolve().parent
SKIP = ["__pycache__", "*.__pycache__"]


def package_dir() -> dict[str, str]:
    with open(ROOT / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)["tool"]["setuptools"]["package-dir"]


def discover(mapping: dict[str, str]) -> list[str]:
    """Every package name under every mapped tree, e.g. ``snn_compile.backends.hls.templates``."""
    names = set()
    for name, folder in mapping.items():
        names.add(name)
        names.update(f"{name}.{sub}"
                     for sub in find_namespace_packages(str(ROOT / folder), exclude=SKIP))
    return sorted(names)


setup(packages=discover(package_dir()))
