"""Command line: ``snn-compile MODEL --target T`` plus the subcommands below.

    snn-compile MODEL --target loihi -o out/ [--data DATA.npz]   main job (compile + checks)
    snn-compile inspect MODEL                                    layers, neurons, synapses
    snn-compile run MODEL --backend B [--target T] --input IN.npz --output OUT.npz
    snn-compile check MODEL --target T --data DATA.npz [--min-agreement X] [--max-accuracy-drop P]
                      [--balance]
    snn-compile export-nir MODEL -o model.nir                    write the float IR as NIR
    snn-compile targets | backends                               what is available
    snn-compile --version

``--debug`` is accepted anywhere on the command line; an unknown command gets a "did you mean".
Errors print one line and exit with status 2 (1 for failed checks); ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import argparse
import difflib
import sys
import time
from pathlib import Path

import numpy as np

from .boundary import guarded, parse_args
from ._version import __version__
from .errors import SnnCompileError
from .escape import terminal

SUBCOMMANDS = ("compile", "inspect", "run", "check", "export-nir", "targets", "backends")

DESCRIPTION = """\
Compile trained spiking neural networks to fixed-point hardware targets
(Loihi 2 through Lava, FPGA HLS, ONNX, a bit-accurate emulator) and check them."""
EPILOG = """\
commands:
  snn-compile MODEL --target T -o OUT [--data DATA.npz]   the main job (same as 'compile')
  snn-compile inspect MODEL                               layers, neurons, synapses
  snn-compile run MODEL --backend B --input IN.npz --output OUT.npz
  snn-compile check MODEL --target T --data DATA.npz      float model vs quantized emulator
  snn-compile export-nir MODEL -o model.nir               write the model as NIR
  snn-compile targets | backends                          what is available

Run 'snn-compile COMMAND --help' for a command's options. Errors print one line and exit with
status 2 (1 for a failed check); --debug, anywhere on the line, shows tracebacks."""


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", type=Path, help="model file: .pt (snn-compile export, state_dict "
                                            "with --arch, or pickle with --trust-pickle) or .nir")
    p.add_argument("--arch", help="module:callable that builds the network for a state_dict")
    p.add_argument("--input-shape", help="sample shape for --arch/pickles, e.g. 1,28,28")
    p.add_argument("--trust-pickle", action="store_true",
                   help="allow loading a fully pickled module (runs code from the file)")
    p.add_argument("--nir-convention", help="how to discretise a .nir graph: snntorch, norse, "
                                            "sinabs, rockpool, spyx, lava or euler")
    p.add_argument("--dt", type=float, help="time step for --nir-convention euler")


def _target_args(p: argparse.ArgumentParser, required: bool) -> None:
    p.add_argument("--target", "-t", required=required, help="target name, alias or .toml path")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a target value, e.g. --set neuron.v_bits=16")


def _check_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--min-agreement", type=float, help="minimum per-layer spike agreement "
                                                       "(0..1, e.g. 0.99; 1 = exact)")
    p.add_argument("--max-accuracy-drop", type=float, help="maximum accuracy drop in points")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")


def _common() -> argparse.ArgumentParser:
    """Options every subcommand accepts too. ``default=SUPPRESS``: a subcommand that is not
    given ``--debug`` leaves the value set before the subcommand alone."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks")
    return common


class _TopParser(argparse.ArgumentParser):
    """The top-level parser: :func:`route` runs first, so ``parse_args`` alone handles the bare
    main command and misspelt commands (as usage errors)."""

    def parse_known_args(self, args=None, namespace=None):
        args = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(route(args, self), namespace)


def build_parser() -> argparse.ArgumentParser:
    parser = _TopParser(prog="snn-compile", description=DESCRIPTION, epilog=EPILOG,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--version", action="version", version=f"snn-compile {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND",
                                parser_class=argparse.ArgumentParser)
    common = [_common()]

    def add(name: str, **kwargs) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=common, **kwargs)

    p = add("compile", help="compile MODEL for a target (the default command)")
    _model_args(p)
    _target_args(p, required=True)
    p.add_argument("-o", "--output", type=Path, help="output folder (written atomically)")
    p.add_argument("--backend", "-b", help="lower to this backend instead of the target's own "
                                           "(e.g. onnx, emulator)")
    p.add_argument("--data", type=Path, help=".npz with spikes [T,B,...] (+ labels) for "
                                            "calibration and the float-vs-fixed check")
    _check_args(p)

    p = add("inspect", help="describe a model")
    _model_args(p)

    p = add("run", help="run a model on a backend")
    _model_args(p)
    _target_args(p, required=False)
    p.add_argument("--backend", "-b", default="float", help="float, emulator, lava, hls, onnx")
    p.add_argument("--input", type=Path, required=True, help=".npz with spikes [T, B, ...]")
    p.add_argument("--output", type=Path, required=True, help=".npz to write")
    p.add_argument("--calibration", type=Path, help=".npz with spikes for quantization")

    p = add("check", help="float reference vs quantized emulator")
    _model_args(p)
    _target_args(p, required=True)
    p.add_argument("--data", type=Path, required=True, help=".npz with spikes (+ labels)")
    p.add_argument("--report", type=Path, default=Path("check"), help="output folder")
    p.add_argument("--junit", type=Path, help="also write JUnit XML here")
    p.add_argument("--balance", action="store_true",
                   help="balance thresholds for spike agreement on the first 128 samples "
                        "(post-training quantization; snn_compile.calibrate)")
    _check_args(p)

    p = add("export-nir", help="write MODEL's float IR as a NIR graph")
    _model_args(p)
    p.add_argument("-o", "--output", type=Path, required=True, help=".nir file to write")
    p.add_argument("--export-dt", type=float,
                   help="NIR time step (default: the model's own, else 1e-4 as snnTorch)")

    add("targets", help="list targets")
    add("backends", help="list backends")
    return parser


def route(argv: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """Insert the default command: ``snn-compile MODEL ...`` means ``snn-compile compile MODEL``.

    The first word that is not an option must be a command or a model file. A word that is
    neither an existing file nor path-like (no suffix, no folder) is an unknown command: close
    misspellings get "did you mean" instead of a misleading "model file not found".
    """
    first = next((i for i, a in enumerate(argv) if not a.startswith("-")), None)
    if first is None or argv[first] in SUBCOMMANDS:
        return argv
    word = argv[first]
    path = Path(word)
    if not path.exists() and not path.suffix and len(path.parts) == 1:
        close = difflib.get_close_matches(word, SUBCOMMANDS, n=1, cutoff=0.6)
        if close:
            parser.error(f"unknown command '{word}' (did you mean '{close[0]}'?)")
        parser.error(f"'{word}' is neither a command ({', '.join(SUBCOMMANDS)}) nor a model "
                     "file")
    return argv[:first] + ["compile"] + argv[first:]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parse_args(build_parser(), argv)  # usage errors: one line, status 2
    except SystemExit as exit_:
        return exit_.code or 0
    if args.command is None:
        build_parser().print_help()
        return 2
    return guarded(lambda: COMMANDS[args.command](args), debug=args.debug)


# ----------------------------------------------------------------------------- commands

def _load(args):
    from .importers import load_model

    shape = None
    if args.input_shape:
        try:
            shape = tuple(int(d) for d in args.input_shape.split(","))
        except ValueError:
            shape = ()
        if not shape or min(shape) < 1:
            raise SnnCompileError("--input-shape takes positive integers separated by commas",
                                  value=repr(args.input_shape), hint="e.g. --input-shape 1,28,28")
    if not args.model.exists():
        raise SnnCompileError("model file not found", file=args.model)
    return load_model(args.model, arch=args.arch, trust_pickle=args.trust_pickle,
                      nir_convention=args.nir_convention, dt=args.dt, input_shape=shape)


def _target(args):
    from .targets import load_target

    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise SnnCompileError("--set needs SECTION.KEY=VALUE", value=item)
        overrides[key.strip()] = _parse_value(value.strip())
    return load_target(args.target, overrides)


def _parse_value(text: str):
    import tomllib

    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _thresholds(args, labels):
    from .data import check_thresholds

    return check_thresholds(args.min_agreement, args.max_accuracy_drop,
                            has_labels=labels is not None)


def _data(path, graph):
    """Load an .npz of spikes (+ labels) for ``graph``; labels must name output neurons."""
    from .data import load_data, output_classes

    return load_data(path, graph.inputs[0].shape, output_classes(graph))


def cmd_compile(args) -> int:
    from .output import atomic_dir
    from .pipeline import compile_model, file_sha256

    graph = _load(args)
    target = _target(args)
    data, labels = _data(args.data, graph) if args.data else (None, None)
    kwargs = dict(source_name=args.model.name, source_sha256=file_sha256(args.model), data=data,
                  labels=labels, thresholds=_thresholds(args, labels), plots=not args.no_plots,
                  backend=args.backend)
    if args.output is None:
        result = compile_model(graph, target, None, **kwargs)
    else:
        with atomic_dir(args.output) as tmp:
            result = compile_model(graph, target, tmp, **kwargs)
    print("\n".join(map(terminal, result.lines)))
    if args.output is not None:
        print(f"wrote {args.output}/")
    return 1 if result.failed else 0


def cmd_inspect(args) -> int:
    from .inspect import describe

    print(describe(_load(args), args.model.name))
    return 0


def cmd_run(args) -> int:
    from . import budget
    from .backend import get_backend
    from .quantize import quantize

    graph = _load(args)
    spikes, _ = _data(args.input, graph)
    output = args.output if args.output.suffix == ".npz" else args.output.with_name(
        args.output.name + ".npz")  # numpy appends .npz; say the real name
    if not output.parent.is_dir():
        raise SnnCompileError("the output's folder does not exist", file=output)
    backend = get_backend(args.backend)
    if backend.fixed_point:
        if not args.target:
            raise SnnCompileError(f"backend '{args.backend}' runs a quantized network",
                                  hint="pass --target (e.g. loihi2, cpu, xc7z020)")
        calibration = _data(args.calibration, graph)[0] if args.calibration else None
        network = quantize(graph, _target(args), calibration).network
        budget.check_run(network, *spikes.shape[:2])
    else:
        network = graph
    trace = backend.run(network, spikes)
    np.savez_compressed(output, **trace.to_npz_dict())
    print(f"wrote {output}: spikes {trace.output.shape}, {len(trace.layers)} layers")
    return 0


def cmd_check(args) -> int:
    from . import budget
    from .check import run_check, summary_lines, write_outputs
    from .output import atomic_dir, check_output
    from .quantize import quantize

    check_output(args.report)  # refuse a folder that is not ours before the long run
    _junit_path(args.junit, args.report, args.report)
    graph = _load(args)
    target = _target(args)
    data, labels = _data(args.data, graph)
    thresholds = _thresholds(args, labels)
    if args.balance:
        from .calibrate import balance
        net = balance(graph, target, data[:, :128]).network
    else:
        net = quantize(graph, target, data[:, :128]).network
    budget.check_run(net, *data.shape[:2])
    result = run_check(graph, net, data, labels, thresholds)
    with atomic_dir(args.report) as tmp:  # the folder's ownership rule of -o
        write_outputs(result, tmp, junit=_junit_path(args.junit, args.report, tmp),
                      plots=not args.no_plots, name=args.model.name)
    print("\n".join(map(terminal, summary_lines(result.report))))
    print(f"report: {args.report / 'check.json'}")
    return 0 if result.passed else 1


def _junit_path(junit: Path | None, report: Path, tmp: Path) -> Path | None:
    """Where to write ``--junit``: inside the report folder's temporary copy when it lies in
    the report folder; its folder must exist."""
    if junit is None:
        return None
    junit, report = junit.absolute(), report.absolute()
    if report in junit.parents:
        inside = tmp / junit.relative_to(report)
        if tmp != report:
            inside.parent.mkdir(parents=True, exist_ok=True)
        return inside
    if not junit.parent.is_dir():
        raise SnnCompileError("the folder of the --junit file does not exist", file=junit,
                              hint="create it first, or write the file elsewhere")
    return junit


def cmd_export_nir(args) -> int:
    from .exporters.nir import export_nir

    graph = _load(args)
    output = args.output
    if not output.parent.is_dir():
        raise SnnCompileError("the output's folder does not exist", file=output)
    export_nir(graph, output, dt=args.export_dt)
    print(f"wrote {output}: {len(graph.nodes)} nodes; read it back exactly with "
          "--nir-convention snn_compile")
    return 0


def cmd_targets(args) -> int:
    from .targets import available_targets

    for name, description in available_targets().items():
        print(terminal(f"{name:<12} {description}"))
    return 0


def cmd_backends(args) -> int:
    from .backend import available_backends, get_backend

    for name in available_backends():
        try:
            backend = get_backend(name)
            status = backend.available() or "ready"
            print(terminal(f"{name:<10} {status:<10} {backend.description}"))
        except SnnCompileError as exc:
            print(terminal(f"{name:<10} broken     {exc}"))
    return 0


COMMANDS = {
    "compile": cmd_compile, "inspect": cmd_inspect, "run": cmd_run, "check": cmd_check,
    "export-nir": cmd_export_nir, "targets": cmd_targets, "backends": cmd_backends,
}

if __name__ == "__main__":
    sys.exit(main())
