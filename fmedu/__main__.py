"""Command line: ``python -m fmedu figures [--out DIR] [--only PREFIX ...]``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _set_threads() -> None:
    import torch

    threads = os.environ.get("FMEDU_THREADS") or os.environ.get("OMP_NUM_THREADS")
    if threads:
        torch.set_num_threads(int(threads))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fmedu", description="fmedu command line")
    sub = parser.add_subparsers(dest="command", required=True)

    fig = sub.add_parser("figures", help="regenerate figures/NN_name.png and their CSVs")
    fig.add_argument("--out", type=Path, default=Path("figures"), help="output folder (default: figures)")
    fig.add_argument("--only", nargs="*", default=None, metavar="PREFIX",
                     help="only figures whose name starts with PREFIX, e.g. --only 01 05")
    fig.add_argument("--list", action="store_true", help="list the registered figures and exit")

    args = parser.parse_args(argv)
    _set_threads()
    if args.command == "figures":
        from . import figures

        if args.list:
            for name in figures.discover():
                print(name)
            return 0
        for path in figures.generate(args.out, args.only):
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
