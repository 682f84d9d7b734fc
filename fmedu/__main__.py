"""Command line.

``python -m fmedu figures [--out DIR] [--only PREFIX ...]``     regenerate figures
``python -m fmedu experiment NAME [--device cpu|cuda] [--out DIR]``  run / resume a MovieLens preset
``python -m fmedu bench``                                        prox-step and sweep benchmarks (CPU; GPU where present)
``python -m fmedu peers [--out DIR]``                              logistic regression and Bayesian FM baselines
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .errors import FMError


def _set_threads() -> None:
    """torch threads from $FMEDU_THREADS (torch reads OMP_NUM_THREADS itself); a bad value is refused."""
    from .validation import env_threads

    threads = env_threads()
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def _out_folder(text: str) -> Path:
    """An --out value: an empty one is refused (``Path('')`` would silently mean the current folder)."""
    if text.strip() == "":
        raise argparse.ArgumentTypeError(
            "--out is empty; name a folder, e.g. --out results (use --out . for the current folder)"
        )
    return Path(text)


def _positive_int(text: str) -> int:
    """argparse type: a positive integer, refused with a usage error otherwise (never replaced by a default)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fmedu", description="fmedu command line")
    sub = parser.add_subparsers(dest="command", required=True)

    fig = sub.add_parser("figures", help="regenerate figures/NN_name.png and their CSVs")
    fig.add_argument("--out", type=_out_folder, default=Path("figures"), help="output folder (default: figures)")
    fig.add_argument(
        "--only",
        nargs="+",
        default=None,
        metavar="PREFIX",
        help="only figures whose name starts with PREFIX, e.g. --only 01 05",
    )
    fig.add_argument("--list", action="store_true", help="list the registered figures and exit")

    exp = sub.add_parser(
        "experiment",
        help="run or resume a MovieLens experiment preset (results/NAME.csv + .json)",
        description="Run or resume a named MovieLens experiment. Finished runs are appended "
        "to OUT/NAME.csv as they complete, with provenance in OUT/NAME.json; "
        "running the same command again resumes an interrupted sweep.",
    )
    exp.add_argument("name", nargs="?", help="preset name (see --list)")
    exp.add_argument("--list", action="store_true", help="list the presets and exit")
    exp.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="engine backend (default: cpu); cuda trains all runs of a variant together on the GPU "
        "(needs pip install -e '.[cuda]')",
    )
    exp.add_argument("--out", type=_out_folder, default=Path("results"), help="results folder (default: results)")
    exp.add_argument(
        "--methods",
        nargs="+",
        default=None,
        metavar="METHOD",
        help="only these methods (prox, prox-published, sgd, adagrad, adam); an unknown name is an error",
    )
    exp.add_argument("--attempts", type=_positive_int, default=None, help="attempts (seeds) per method and step size")
    exp.add_argument(
        "--epochs", type=_positive_int, default=None, help="override the preset's epochs (new --out needed)"
    )
    exp.add_argument("--threads", type=_positive_int, default=None, help="CPU threads (default: $FMEDU_THREADS or all)")
    exp.add_argument("--no-progress", action="store_true", help="no progress bar (also off when CI is set)")

    ben = sub.add_parser(
        "bench",
        help="prox steps/s of the published torch step vs the engine; sweep throughput (CPU, GPU)",
        description="Side-by-side benchmark in one run: prox steps per second of a "
        "published-style torch step (golden-section search) and of the compiled "
        "engine, their ratio, and sweep throughput in sample-steps/s per method on the CPU "
        "engine and, where a CUDA GPU is present, on the GPU engine with its ratio to the CPU.",
    )
    ben.add_argument("--published-steps", type=_positive_int, default=200, help="steps timed for the torch step")
    ben.add_argument("--quick", action="store_true", help="smaller workloads (CI)")
    ben.add_argument("--threads", type=_positive_int, default=None, help="CPU threads for the sweep (default: all)")
    ben.add_argument("--gpu-runs", type=_positive_int, default=500, help="runs per method on the GPU (default: 500)")
    ben.add_argument(
        "--against",
        metavar="DIR",
        default=None,
        help="instead: compare this CPU engine with the one of another fmedu checkout DIR (e.g. "
        "git worktree add /tmp/before <commit>), one run and one thread per method, taking turns",
    )
    ben.add_argument("--rounds", type=_positive_int, default=5, help="rounds of --against (default: 5)")

    peers = sub.add_parser(
        "peers",
        help="logistic regression and a Bayesian FM on the experiments' split (results/peers.csv + .json)",
        description="Fit what practitioners would use instead of the blog's methods (the base rate, "
        "logistic regression with scikit-learn, a Bayesian FM with myFM) on the training rows "
        "and features of the stability-full experiment, and score them on its held-out rows. "
        "Needs the optional extra: pip install -e '.[peers]'.",
    )
    peers.add_argument("--out", type=_out_folder, default=Path("results"), help="results folder (default: results)")
    peers.add_argument("--no-progress", action="store_true", help="no progress messages (also off when CI is set)")

    args = parser.parse_args(argv)
    try:
        _set_threads()
        return _run(args)
    except FMError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a read-only or full disk, a missing folder: the path and a fix
        from .paths import describe_os_error

        print(f"error: {describe_os_error(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if args.command != "experiment":
            raise
        print(
            "interrupted: finished runs are saved; run the same command again to resume",
            file=sys.stderr,
        )
        return 130


def _run_regularised(args, regularised) -> int:
    """The five-fold regularisation presets (CPU only; --methods, --attempts, --epochs do not apply)."""
    if args.device != "cpu" or args.methods or args.attempts or args.epochs:
        print(
            f"error: preset {args.name} runs on the CPU with its own grid; drop --device, --methods, "
            "--attempts and --epochs",
            file=sys.stderr,
        )
        return 2
    quiet = args.no_progress or os.environ.get("CI")
    log = None if quiet else (lambda msg: print(f"{args.name}: {msg}", file=sys.stderr, flush=True))
    prov = regularised.run(args.name, args.out, threads=args.threads, log=log)
    last = prov["sessions"][-1]
    print(f"{args.name}: results in {args.out / (args.name + '.csv')}; this session took {last['wall_s']:.1f} s")
    return 0


def _run(args) -> int:
    if args.command == "figures":
        from . import registry as figures

        if args.list:
            for name in figures.discover():
                print(name)
            return 0
        from .paths import check_output_folder

        check_output_folder(args.out)  # before computing: a bad --out is reported at once
        paths = figures.generate(args.out, args.only)
        for path in paths:
            print(path)
    elif args.command == "experiment":
        from .movielens import experiments, regularised

        if args.list:
            for name, preset in {**experiments.PRESETS, **regularised.PRESETS}.items():
                print(f"{name}: {preset.description}")
            return 0
        if not args.name:
            names = [*experiments.PRESETS, *regularised.PRESETS]
            print(f"error: name a preset: {', '.join(names)} (see --list)", file=sys.stderr)
            return 2
        if args.name in regularised.PRESETS:
            return _run_regularised(args, regularised)
        prov = experiments.run_experiment(
            args.name,
            args.out,
            device=args.device,
            methods=args.methods,
            attempts=args.attempts,
            epochs=args.epochs,
            threads=args.threads,
            progress=False if args.no_progress else None,
        )
        last = prov["sessions"][-1]
        print(
            f"{args.name}: {prov['runs_complete']}/{prov['runs_total']} runs in {args.out / (args.name + '.csv')}; "
            f"this session added {last['runs_added']} runs in {last['wall_s']:.1f} s on {last['device']['backend']}"
        )
    elif args.command == "peers":
        from .movielens import peers as peer_models

        prov = peer_models.run_peers(args.out, progress=False if args.no_progress else None)
        print(f"peers: {len(prov['fits'])} fits in {args.out / 'peers.csv'} ({prov['wall_s']:.1f} s)")
    elif args.command == "bench":
        from .movielens import bench

        if args.against is not None:
            bench.against(args.against, rounds=args.rounds)
        else:
            bench.main(
                published_steps=args.published_steps, quick=args.quick, threads=args.threads, gpu_runs=args.gpu_runs
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
