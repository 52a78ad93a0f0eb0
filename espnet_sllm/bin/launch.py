#!/usr/bin/env python3
"""Run a command as N parallel jobs, locally or on Slurm, with one log file per job.

Usage:
    python -m espnet_sllm.bin.launch [options] [JOB=1:N] <log> <command> [args...]

Options and semantics: espnet_sllm/jobs.py (this is its command line).
"""
import sys
from typing import Optional, Sequence

from espnet_sllm.jobs import PROG, LaunchError, parse_args, run_local, run_slurm


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        spec = parse_args(sys.argv[1:] if argv is None else argv)
        return run_local(spec) if spec.backend == "local" else run_slurm(spec)
    except LaunchError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted, jobs killed", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
