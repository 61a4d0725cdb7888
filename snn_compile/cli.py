"""Command line: ``snn-compile MODEL --target T`` plus the subcommands below.

    snn-compile MODEL --target loihi -o out/ [--data DATA] [check options]   main job
    snn-compile check MODEL --target T --data DATA [check options] [--report DIR]
    snn-compile check MODEL --network OUT/ --data DATA --shard 3/8 --partial p3.json
    snn-compile merge p*.json MODEL --network OUT/ [--report DIR]    merge shard results
    snn-compile run MODEL|OUT/ --backend B [--target T] --input IN.npz --output OUT.npz
    snn-compile inspect MODEL                                    layers, neurons, synapses
    snn-compile export-nir MODEL -o model.nir                    write the float IR as NIR
    snn-compile targets [--check] | backends                     what is available
    snn-compile --version

``--debug`` is accepted anywhere on the command line; an unknown command gets a "did you mean".
Errors print one line and exit with status 2 (1 for failed checks); ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path


from .boundary import guarded, parse_args
from ._version import __version__
from .errors import SnnCompileError
from .escape import terminal

SUBCOMMANDS = ("compile", "inspect", "run", "check", "merge", "export-nir", "targets",
               "backends")

DESCRIPTION = """\
Compile trained spiking neural networks to fixed-point hardware targets
(Loihi 2 through Lava, FPGA HLS, ONNX, a bit-accurate emulator) and check them."""
EPILOG = """\
commands:
  snn-compile MODEL --target T -o OUT [--data DATA]       the main job (same as 'compile')
  snn-compile check MODEL --target T --data DATA          float model vs quantized emulator
  snn-compile merge PARTIAL... MODEL --network OUT        merge the results of check shards
  snn-compile run MODEL|OUT --backend B --input IN.npz --output OUT.npz
  snn-compile inspect MODEL                               layers, neurons, synapses
  snn-compile export-nir MODEL -o model.nir               write the model as NIR
  snn-compile targets [--check] | backends                what is available

Run 'snn-compile COMMAND --help' for a command's options. Errors print one line and exit with
status 2 (1 for a failed check); --debug, anywhere on the line, shows tracebacks."""


MODEL_HELP = ("model file: .pt (snn-compile export, state_dict with --arch, or pickle with "
              "--trust-pickle) or .nir")


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", type=Path, help=MODEL_HELP)
    _model_options(p)


def _model_options(p: argparse.ArgumentParser) -> None:
    """How to read the model (the options of every command that takes one)."""
    p.add_argument("--arch", help="module:callable that builds the network for a state_dict")
    p.add_argument("--input-shape", help="sample shape for --arch/pickles, e.g. 1,28,28")
    p.add_argument("--trust-pickle", action="store_true",
                   help="allow loading a fully pickled module (runs code from the file)")
    p.add_argument("--nir-convention", help="how to discretise a .nir graph: snntorch, norse, "
                                            "sinabs, rockpool, spyx, lava or euler (variants: "
                                            "'name[key=value,...]')")
    p.add_argument("--dt", type=float, help="time step for --nir-convention euler")


def _target_args(p: argparse.ArgumentParser, required: bool) -> None:
    p.add_argument("--target", "-t", required=required, help="target name, alias or .toml path")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a target value, e.g. --set neuron.v=int16")


def _backend_args(p: argparse.ArgumentParser, default=None) -> None:
    p.add_argument("--backend", "-b", default=default,
                   help="lower to this backend instead of the target's own (e.g. onnx, "
                        "emulator)" if default is None else "float, emulator, lava, hls, onnx")
    p.add_argument("--backend-opt", action="append", default=[], metavar="KEY=VALUE",
                   help="a backend option, e.g. --backend-opt reuse_factor=4")


def _threshold_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("verdict (dead and saturated layers always fail)")
    g.add_argument("--min-precision", type=float, help="minimum per-layer spike precision at "
                                                       "the aligned step (0..1)")
    g.add_argument("--min-recall", type=float, help="minimum per-layer spike recall (0..1)")
    g.add_argument("--min-iou", type=float, help="minimum per-layer spike IoU (0..1)")
    g.add_argument("--require", action="append", default=[], metavar="METRIC>=VALUE",
                   help="any per-layer figure, e.g. recall_tolerant>=0.9 (default: "
                        "precision_tolerant and recall_tolerant >= 0.5)")
    g.add_argument("--min-agreement", type=float, help="minimum per-layer entry agreement "
                                                       "(mostly silent entries; 0..1)")
    g.add_argument("--min-class-agreement", type=float, help="minimum predicted-class "
                                                             "agreement (0..1)")
    g.add_argument("--max-accuracy-drop", type=float, help="maximum accuracy drop in points")
    g.add_argument("--tolerance", type=int, default=1, help="steps of the tolerant figures "
                                                            "(default 1)")


def _check_args(p: argparse.ArgumentParser, *, data_required: bool) -> None:
    g = p.add_argument_group("check data")
    g.add_argument("--data", nargs="+", required=data_required, metavar="DATA",
                   help=".npz/.npy/.h5 files, folders or globs with spikes [T, B, ...] "
                        "(+ labels), read lazily in chunks")
    g.add_argument("--calibration", nargs="+", metavar="DATA",
                   help="calibration data (not scored); else the first samples of --data")
    g.add_argument("--calibration-samples", type=int,
                   help="first samples of --data used to calibrate and not scored (default "
                        "min(128, a quarter))")
    g.add_argument("--balance", action="store_true",
                   help="balance thresholds for spike agreement on the calibration samples")
    g.add_argument("--junit", type=Path, help="also write JUnit XML here")
    g.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    g.add_argument("--plot-samples", metavar="LIST",
                   help="samples (indices into the data) drawn as rasters, e.g. 200,205 "
                        "(default: the first scored sample)")
    g = p.add_argument_group("how the check runs")
    g.add_argument("--batch-size", type=int, help="samples per chunk (default from the network "
                                                  "size)")
    g.add_argument("--workers", type=int, default=1, help="local processes (default 1)")
    g.add_argument("--cluster", metavar="ADDRESS",
                   help="run on a Dask distributed scheduler (tcp://host:8786), or on a "
                        "local Dask cluster of N processes (local:N); needs the 'cluster' "
                        "extra")
    g.add_argument("--threads", type=int, default=1,
                   help="torch threads per process (default 1: faster on shared machines)")
    _threshold_args(p)


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
    _backend_args(p)
    _check_args(p, data_required=False)

    p = add("check", help="float reference vs quantized emulator")
    _model_args(p)
    _target_args(p, required=False)
    p.add_argument("--network", type=Path, metavar="OUT",
                   help="check this compiled network (an -o folder) instead of quantizing")
    p.add_argument("--report", type=Path, default=Path("check"), help="output folder")
    p.add_argument("--shard", metavar="I/N", help="check only part I of N (0-based) of the "
                                                  "data; write it with --partial")
    p.add_argument("--partial", type=Path, help="write a mergeable partial result here "
                                                "(with --shard)")
    _check_args(p, data_required=True)

    p = add("merge", help="merge partial check results (check --shard ... --partial)")
    p.add_argument("partials", nargs="+", type=Path, help="partial result files")
    p.add_argument("--model", type=Path, required=True, help="the float model the shards ran: "
                                                             + MODEL_HELP)
    _model_options(p)
    p.add_argument("--network", type=Path, required=True, metavar="OUT",
                   help="the compiled network the shards checked")
    p.add_argument("--report", type=Path, default=Path("check"), help="output folder")
    p.add_argument("--junit", type=Path, help="also write JUnit XML here")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    _threshold_args(p)

    p = add("inspect", help="describe a model")
    _model_args(p)

    p = add("run", help="run a model, or a compiled network (an -o folder), on a backend")
    p.add_argument("model", type=Path, help=MODEL_HELP + ", or a compiled network: the -o "
                                                          "folder of the main command")
    _model_options(p)
    _target_args(p, required=False)
    _backend_args(p, default=None)
    p.add_argument("--input", type=Path, required=True, help=".npz with spikes [T, B, ...]")
    p.add_argument("--output", type=Path, required=True,
                   help=".npz to write (uncompressed unless --compress)")
    p.add_argument("--calibration", nargs="+", metavar="DATA",
                   help="data to calibrate the quantization on (a model with --target)")
    p.add_argument("--record", default="all", choices=("all", "spikes", "output"),
                   help="what to record: every state, every layer's spikes, or the output")
    p.add_argument("--compress", action="store_true", help="write a compressed .npz")

    p = add("export-nir", help="write MODEL's float IR as a NIR graph")
    _model_args(p)
    p.add_argument("-o", "--output", type=Path, required=True, help=".nir file to write")
    p.add_argument("--export-dt", type=float,
                   help="NIR time step (default: the model's own, else 1e-4 as snnTorch)")

    p = add("targets", help="list targets")
    p.add_argument("--check", action="store_true",
                   help="also say which backend can run each target")
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

def _load(args, path: Path | None = None):
    from .budget import check_address_space
    from .importers import load_model

    check_address_space()  # loading a model imports torch

    path = args.model if path is None else path
    shape = None
    if args.input_shape:
        try:
            shape = tuple(int(d) for d in args.input_shape.split(","))
        except ValueError:
            shape = ()
        if not shape or min(shape) < 1:
            raise SnnCompileError("--input-shape takes positive integers separated by commas",
                                  value=repr(args.input_shape), hint="e.g. --input-shape 1,28,28")
    if not path.exists():
        raise SnnCompileError("model file not found", file=path)
    return load_model(path, arch=args.arch, trust_pickle=args.trust_pickle,
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


def _thresholds(args):
    """The verdict's thresholds from the command line (validated)."""
    from .check import Thresholds, parse_requirement
    from .data import check_thresholds

    base = check_thresholds(args.min_agreement, args.max_accuracy_drop)
    layer = {metric: getattr(args, f"min_{metric}") for metric in ("precision", "recall", "iou")
             if getattr(args, f"min_{metric}") is not None}
    layer.update(parse_requirement(item) for item in args.require)
    return Thresholds(min_agreement=base.min_agreement, max_accuracy_drop=base.max_accuracy_drop,
                      min_class_agreement=args.min_class_agreement, layer=layer)


def _samples(text: str, option: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        values = (-1,)
    if any(v < 0 for v in values):
        raise SnnCompileError(f"{option} takes sample numbers separated by commas",
                              value=repr(text), hint=f"e.g. {option} 0,5,9")
    return values


def _positive(value, option: str, *, zero: bool = False):
    if value is not None and (value < 0 or (value == 0 and not zero)):
        raise SnnCompileError(f"{option} must be {'at least 0' if zero else 'positive'}",
                              value=value)
    return value


def _check_options(args):
    from .pipeline import CheckOptions

    return CheckOptions(
        data=args.data, calibration=args.calibration,
        calibration_samples=_positive(args.calibration_samples, "--calibration-samples",
                                      zero=True),
        balance=args.balance, thresholds=_thresholds(args),
        tolerance=_positive(args.tolerance, "--tolerance", zero=True),
        batch_size=_positive(args.batch_size, "--batch-size"),
        workers=_positive(args.workers, "--workers"), cluster=args.cluster,
        threads=_positive(args.threads, "--threads"),
        plot_samples=None if args.plot_samples is None
        else _samples(args.plot_samples, "--plot-samples"), plots=not args.no_plots)


def _shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    index, sep, count = text.partition("/")
    try:
        shard = int(index), int(count)
    except ValueError:
        shard = (-1, 0)
    if not sep or not 0 <= shard[0] < shard[1]:
        raise SnnCompileError("--shard takes I/N with 0 <= I < N", value=repr(text),
                              hint="e.g. --shard 0/4 ... --shard 3/4, then snn-compile merge")
    return shard


def _command_record(args) -> dict:
    """The options of this run as plain data for report.json: file names, not paths, and not
    where the results go (the same input gives the same bytes wherever they are written)."""
    out = {}
    for key, value in sorted(vars(args).items()):
        if key in ("debug", "command", "output", "report", "junit", "partial") \
                or value is None or value == [] or value is False:
            continue
        if isinstance(value, Path):
            value = value.name
        elif isinstance(value, list):
            value = [Path(v).name if key in ("data", "calibration") else v for v in value]
        out[key] = value
    return {"command": args.command, "options": out}


def _say(line: str) -> None:
    print(terminal(line), flush=True)


def cmd_compile(args) -> int:
    from .backend import parse_options
    from .output import atomic_dir, check_output
    from .pipeline import compile_model, file_sha256

    if args.output is not None:
        check_output(args.output)  # refuse a folder that is not ours before the long run
    options = _check_options(args) if args.data else None
    if options is None and (args.calibration or args.balance):
        options = _check_options(args)  # calibration without a check
        options.data = None
    graph = _load(args)
    target = _target(args)
    kwargs = dict(source_name=args.model.name, source_sha256=file_sha256(args.model),
                  check=options, backend=args.backend,
                  backend_options=parse_options(args.backend_opt),
                  command=_command_record(args), say=_say)
    if args.output is None:
        result = compile_model(graph, target, None, **kwargs)
    else:
        with atomic_dir(args.output) as tmp:
            if options is not None:
                options.junit = _junit_path(args.junit, args.output, tmp)
            result = compile_model(graph, target, tmp, **kwargs)
        print(terminal(f"wrote {args.output}/"))
    return 1 if result.failed else 0


def cmd_inspect(args) -> int:
    from .inspect import describe

    print(describe(_load(args), args.model.name))
    return 0


def cmd_run(args) -> int:
    """Run a model (float, or quantized for --target) or a compiled network on a backend."""
    from . import budget
    from .backend import get_backend, parse_options
    from .data import load_data
    from .ir.fixed_io import is_network, load_network
    from .output import write_file

    output = args.output if args.output.suffix == ".npz" else args.output.with_name(
        args.output.name + ".npz")  # numpy would append .npz; say the real name
    if not output.parent.is_dir():
        raise SnnCompileError("the output's folder does not exist", file=output)
    name = args.backend or ("emulator" if is_network(args.model) else "float")
    opts = parse_options(args.backend_opt)
    backend = get_backend(name, **({"record": args.record} | opts if name == "emulator"
                                   else opts))
    if is_network(args.model):
        if not backend.fixed_point:
            raise SnnCompileError("a compiled network runs on a fixed-point backend",
                                  file=args.model, hint="pass --backend emulator (or onnx, "
                                                        "lava, hls), or the float model file")
        if args.target or args.calibration:
            raise SnnCompileError("a compiled network is already quantized for its target",
                                  file=args.model, hint="drop --target/--set/--calibration")
        network = load_network(args.model)
        spikes, _ = load_data(args.input, network.input_shape)
    else:
        graph = _load(args)
        spikes, _ = load_data(args.input, graph.inputs[0].shape)
        network = graph
        if backend.fixed_point:
            if not args.target:
                raise SnnCompileError(f"backend '{name}' runs a quantized network",
                                      hint="pass --target (e.g. loihi2, cpu, xc7z020), or "
                                           "run a compiled network (an -o folder)")
            from .pipeline import _calibration_samples, quantize_for_target

            calibration = (_calibration_samples(args.calibration, graph)
                           if args.calibration else None)
            network = quantize_for_target(graph, _target(args), calibration).network
    if backend.fixed_point:
        budget.check_run(network, *spikes.shape[:2])
        backend.check(network)
    trace = backend.run(network, spikes)
    trace = _recorded(trace, args.record)
    from .ir.fixed_io import write_npz

    write_file(output, lambda fh: write_npz(fh, trace.to_npz_dict(), compress=args.compress))
    print(terminal(f"wrote {output}: spikes {tuple(trace.output.shape)}, "
                   f"{len(trace.layers)} layers"))
    return 0


def _recorded(trace, record: str):
    """Keep what ``--record`` asks for (backends that record everything)."""
    from .trace import Trace

    if record == "all":
        return trace
    if record == "output":
        return Trace(output=trace.output, layers={})
    return Trace(output=trace.output, layers={name: {"spikes": states["spikes"]}
                                              for name, states in trace.layers.items()
                                              if "spikes" in states})


def cmd_check(args) -> int:
    """The float model vs the emulator: a full report, or one shard's partial result."""
    import json

    from . import budget
    from .check import partial_dict, summary_lines, write_outputs
    from .output import atomic_dir, check_output, write_file
    from .pipeline import check_network, open_check_data, quantize_for_target

    shard = _shard(args.shard)
    if shard is not None and args.partial is None:
        raise SnnCompileError("--shard writes a partial result", hint="add --partial FILE, "
                                                                       "then snn-compile merge")
    if args.partial is None:
        check_output(args.report)  # refuse a folder that is not ours before the long run
        _junit_path(args.junit, args.report, args.report)
    elif not args.partial.absolute().parent.is_dir():
        raise SnnCompileError("the folder of the --partial file does not exist",
                              file=args.partial)
    options = _check_options(args)
    graph = _load(args)
    if args.network is not None:
        from .passes import float_reference

        net = _compiled(args)
        graph = float_reference(graph, net.target)
        if options.calibration_samples is None and options.calibration is None:
            options.calibration_samples = _scored_from(args.network)
        source, _, first, _ = open_check_data(graph, options, calibrate=False)
    else:
        if not args.target:
            raise SnnCompileError("check needs --target (to quantize) or --network (a "
                                  "compiled network)", hint="e.g. --target loihi2")
        source, calibration, first, _ = open_check_data(graph, options)
        quantized = quantize_for_target(graph, _target(args), calibration,
                                        balance=options.balance)
        net, graph = quantized.network, quantized.float_graph
    budget.check_run(net, source.steps, options.batch_size or 1)
    result = check_network(graph, net, source, first, options, shard)
    if args.partial is not None:
        text = json.dumps(partial_dict(result, shard), sort_keys=True) + "\n"
        write_file(args.partial, text.encode())
        print(terminal(f"wrote {args.partial}: samples {result.report['chunks']} of "
                       f"{source.samples}; merge the shards with snn-compile merge"))
        return 0
    with atomic_dir(args.report) as tmp:  # the folder's ownership rule of -o
        write_outputs(result, tmp, junit=_junit_path(args.junit, args.report, tmp),
                      plots=options.plots, name=args.model.name)
    print("\n".join(map(terminal, summary_lines(result.report))))
    print(terminal(f"report: {args.report / 'check.json'}"))
    return 0 if result.passed else 1


def _compiled(args):
    from .ir.fixed_io import is_network, load_network

    if args.target or args.set:
        raise SnnCompileError("--network is already quantized for its target",
                              file=args.network, hint="drop --target and --set")
    if not is_network(args.network):
        raise SnnCompileError("not a compiled network (no network.json)", file=args.network,
                              hint="pass the -o folder of the main command")
    return load_network(args.network)


def _scored_from(folder: Path) -> int:
    """The calibration split the main command recorded in ``folder/report.json`` (else 0)."""
    import json

    try:
        split = json.loads((Path(folder) / "report.json").read_text()).get("calibration")
    except (OSError, ValueError, AttributeError):
        return 0
    value = split.get("scored_from") if isinstance(split, dict) else None
    return value if isinstance(value, int) and value >= 0 else 0


def cmd_merge(args) -> int:
    """Merge the partial results of ``check --shard``: the report of one check on all data."""
    import json

    from .check import merge_partials, summary_lines, write_outputs
    from .output import atomic_dir, check_output

    check_output(args.report)
    _junit_path(args.junit, args.report, args.report)
    parts = []
    for path in args.partials:
        try:
            parts.append(json.loads(path.read_text()))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise SnnCompileError(f"cannot read the partial result ({type(exc).__name__})",
                                  file=path) from None
    from .passes import float_reference

    args.target, args.set = None, []
    net = _compiled(args)
    graph = float_reference(_load(args), net.target)
    try:
        result = merge_partials(parts, graph, net, _thresholds(args))
    except SnnCompileError as err:
        raise err.at(file=args.partials[0]) if err.file is None else err
    with atomic_dir(args.report) as tmp:
        write_outputs(result, tmp, junit=_junit_path(args.junit, args.report, tmp),
                      plots=not args.no_plots, name=args.model.name)
    print("\n".join(map(terminal, summary_lines(result.report))))
    print(terminal(f"report: {args.report / 'check.json'}"))
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
    """The shipped targets (and those on SNN_COMPILE_TARGET_PATH); with ``--check``, which
    backends accept each target's datapath."""
    from .targets import available_targets

    targets = available_targets()
    if not args.check:
        for name, description in targets.items():
            print(terminal(f"{name:<12} {description}"))
        return 0
    from .backend import available_backends, get_backend, target_gaps
    from .targets import load_target

    backends = {}
    for name in available_backends():
        try:
            backends[name] = get_backend(name)
        except SnnCompileError:
            continue
    for name, description in targets.items():
        target = load_target(name)
        fits = [b for b, backend in backends.items()
                if backend.fixed_point and not target_gaps(target, backend.capabilities)]
        print(terminal(f"{name:<12} {description}"))
        print(terminal(f"{'':<12} backend {target.backend}; runs on: {', '.join(fits) or '-'}"))
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
    "merge": cmd_merge, "export-nir": cmd_export_nir, "targets": cmd_targets,
    "backends": cmd_backends,
}

if __name__ == "__main__":
    sys.exit(main())
