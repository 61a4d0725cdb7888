"""JUnit XML for CI systems, written with junitparser.

The writer is generic: :func:`write_junit` takes a list of :class:`Suite`, each a list of
:class:`Case` (name, classname, time, failure message or None, properties), so any report can
feed it through a small adapter; :func:`check_suite` is the adapter for today's check report
(``snn_compile.check.CheckResult.report``).

The output validates against the strict Apache Ant JUnit schema (Windy Road's ``JUnit.xsd``)
and Jenkins' ``junit-10.xsd`` (both in ``tests/data/junit/``, checked by ``tests/test_junit.py``).
What that asks for:

* ``<testsuites>`` without attributes; each ``<testsuite>`` with ``id`` (0, 1, ...),
  ``package``, ``name``, ``timestamp`` (``YYYY-MM-DDTHH:MM:SS``, no zone), ``hostname``,
  ``tests``, ``failures``, ``errors``, ``skipped`` and ``time`` (seconds, plain decimal);
* children in order: ``<properties>``, the ``<testcase>`` elements, ``<system-out>``,
  ``<system-err>``;
* a ``<failure>`` carries ``type`` and ``message``.

Neither schema allows properties on a ``<testcase>``, so a case's properties are written as
suite properties named ``<case name> / <key>`` and also listed in the failure text, where CI
front ends show them.

Case names must be unique (per classname) across the file: :func:`write_junit` refuses
duplicates, and :func:`check_suite` names every case by model, target and layer.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from xml.etree import ElementTree

from junitparser import Attr, Failure, JUnitXml, Property, SystemErr, SystemOut, TestCase, \
    TestSuite

from ._version import __version__

__all__ = ["Case", "Suite", "check_suite", "junit_xml", "write_junit"]

FAILURE_TYPE = "snn_compile.threshold"


@dataclass(frozen=True)
class Case:
    """One test case: ``failure`` is the failure message, or None when it passed."""

    name: str
    classname: str
    time: float = 0.0
    failure: str | None = None
    properties: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Suite:
    """One test suite. ``time`` defaults to the sum of the cases' times; ``timestamp`` to the
    time of writing (or ``SOURCE_DATE_EPOCH``, for reproducible files)."""

    name: str
    cases: Sequence[Case]
    properties: Mapping[str, object] = field(default_factory=dict)
    time: float | None = None
    timestamp: datetime | None = None
    package: str = "snn_compile"


class _TestSuite(TestSuite):
    """junitparser's suite with the attributes the Ant schema requires, time as plain text."""

    id = Attr()
    package = Attr()
    time = Attr()


class _TestCase(TestCase):
    time = Attr()


def _seconds(value: float) -> str:
    if not value >= 0:  # also catches NaN
        raise ValueError(f"a JUnit time must be >= 0 seconds, got {value}")
    return f"{value:.3f}"


def _text(value: object) -> str:
    """A property value as text: floats with 6 significant digits, others with str()."""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _timestamp(when: datetime | None) -> str:
    if when is None:
        epoch = os.environ.get("SOURCE_DATE_EPOCH")
        when = (datetime.fromtimestamp(int(epoch), timezone.utc) if epoch
                else datetime.now(timezone.utc))
    return when.strftime("%Y-%m-%dT%H:%M:%S")


def _failure_text(case: Case) -> str:
    lines = [case.failure or ""]
    lines += [f"{key} = {_text(value)}" for key, value in case.properties.items()]
    return "\n".join(lines)


def _build_suite(index: int, suite: Suite, hostname: str) -> _TestSuite:
    out = _TestSuite(suite.name)
    out.id = str(index)
    out.package = suite.package
    out.timestamp = _timestamp(suite.timestamp)
    out.hostname = hostname
    for key, value in suite.properties.items():  # <properties> must come first
        out.add_property(str(key), _text(value))
    for case in suite.cases:
        for key, value in case.properties.items():
            out.add_property(f"{case.name} / {key}", _text(value))
    if not suite.properties and not any(case.properties for case in suite.cases):
        out.add_property("snn-compile", __version__)  # the schema wants a <properties> element
    for case in suite.cases:
        tc = _TestCase(case.name, case.classname)
        tc.time = _seconds(case.time)
        if case.failure is not None:
            failure = Failure(case.failure, FAILURE_TYPE)
            failure.text = _failure_text(case)
            tc.result = [failure]
        out.append(tc)
    out.tests = len(suite.cases)
    out.failures = sum(case.failure is not None for case in suite.cases)
    out.errors = 0
    out.skipped = 0
    total = suite.time if suite.time is not None else sum(case.time for case in suite.cases)
    out.time = _seconds(total)
    out.append(SystemOut(""))
    out.append(SystemErr(""))
    return out


def _check_unique(suites: Sequence[Suite]) -> None:
    seen = set()
    for suite in suites:
        for case in suite.cases:
            key = (case.classname, case.name)
            if key in seen:
                raise ValueError(f"duplicate JUnit test case {case.classname}::{case.name}")
            seen.add(key)


def junit_xml(suites: Sequence[Suite], *, hostname: str | None = None) -> str:
    """The JUnit XML document of ``suites`` as text."""
    _check_unique(suites)
    host = hostname or socket.gethostname() or "localhost"
    root = JUnitXml()
    for index, suite in enumerate(suites):
        root.append(_build_suite(index, suite, host))
    tree = ElementTree.fromstring(root.tostring())
    ElementTree.indent(tree)  # whitespace between elements only; failure texts stay as they are
    return ('<?xml version="1.0" encoding="utf-8"?>\n'
            + ElementTree.tostring(tree, encoding="unicode") + "\n")


def write_junit(suites: Sequence[Suite], path, *, hostname: str | None = None) -> Path:
    """Write ``suites`` as JUnit XML to ``path``; returns the path."""
    path = Path(path)
    path.write_text(junit_xml(suites, hostname=hostname), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- check adapter

def _ident(text: str) -> str:
    """A dotted-name-safe identifier: dots in a file name would split a CI class tree."""
    return re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_") or "model"


def _failures_by_case(report: Mapping) -> dict[str, list[str]]:
    """Failure messages by case: the layer's name, ``"classes"`` or ``"accuracy"``.

    Reports carry ``failed_rules`` (``{"case", "rule", "message"}``); older ones only the
    messages, whose prefix names the case (``"layer 3: ..."``, ``"accuracy drop ..."``).
    """
    out: dict[str, list[str]] = {}
    if "failed_rules" in report:
        for rule in report["failed_rules"]:
            out.setdefault(str(rule["case"]), []).append(rule["message"])
        return out
    names = [str(layer["name"]) for layer in report["layers"]]
    for message in report.get("failures", []):
        case = next((n for n in names if message.startswith(f"layer {n}:")), None)
        if case is None:
            case = "accuracy" if message.startswith("accuracy") else "classes"
        out.setdefault(case, []).append(message)
    return out


def _numbers(mapping: Mapping, skip=("name",)) -> dict:
    """The scalar figures of a report entry (numbers and flags; no lists, dicts or None)."""
    return {k: v for k, v in mapping.items()
            if k not in skip and isinstance(v, (int, float)) and v is not None}


def check_suite(report: Mapping, *, model: str, seconds: float | None = None) -> Suite:
    """The suite of one check report (``CheckResult.report``): a case per layer, one for the
    predicted-class agreement and one for the accuracy drop (with labels).

    Case names carry model, target and layer, so files of several models and targets can be
    merged; a case's figures become its properties. ``seconds`` is the measured duration of
    the whole check (layers run together, so no per-layer time exists: cases get 0 and the
    suite this total).
    """
    target = report["target"]
    classname = f"snn_compile.check.{_ident(target)}.{_ident(Path(model).name)}"
    failed = _failures_by_case(report)

    def case(label: str, key: str, props: Mapping) -> Case:
        return Case(name=f"{model} [{target}] {label}", classname=classname,
                    failure="; ".join(failed.get(key, [])) or None, properties=props)

    cases = [case(f"layer {layer['name']}", str(layer["name"]), _numbers(layer))
             for layer in report["layers"]]
    cases.append(case("class agreement", "classes",
                      {"class_agreement": report["class_agreement"]}))
    if "accuracy_drop" in report:
        cases.append(case("accuracy", "accuracy", {
            k: report[k] for k in ("float_accuracy", "fixed_accuracy", "accuracy_drop")}))
    keys = ("target", "samples", "steps", "latency_steps", "level", "verdict", "exact")
    props = {"model": model, "snn-compile": __version__,
             **{k: report[k] for k in keys if k in report}}
    return Suite(name=f"snn-compile check {model} on {target}", cases=cases, properties=props,
                 time=seconds)
