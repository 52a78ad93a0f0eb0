"""Run a command as N parallel jobs, locally or on Slurm, with one log file per job.

Usage:
    python -m espnet_sllm.bin.launch [options] [JOB=1:N] <log> <command> [args...]

    python -m espnet_sllm.bin.launch JOB=1:4 exp/decode/log/decode.JOB.log \\
        python -m espnet_sllm.bin.sllm_inference --key_file split/keys.JOB.scp \\
            --output_dir exp/decode/output.JOB
    python -m espnet_sllm.bin.launch --backend slurm --gpu 1 --mem 32G --time 1-00:00:00 \\
        --slurm_opts=--partition=gpu exp/train.log python -m espnet_sllm.bin.sllm_train ...

Options (before the job range; ``--foo-bar`` and ``--foo_bar`` are the same option):
    --backend local|slurm   where the jobs run (default: local)
    --max_jobs_run N        at most N jobs at a time (local default: number of CPUs;
                            Slurm default: no limit, otherwise ``--array=1-N%M``)
    --gpu N                 GPUs per job (Slurm: ``--gres=gpu:N``; local: ignored, the jobs see
                            the GPUs of CUDA_VISIBLE_DEVICES)
    --num_threads N         CPU cores per job (Slurm: ``--cpus-per-task``; local: ignored)
    --mem X                 memory per job, e.g. 16G (Slurm: ``--mem``; local: ignored)
    --time T                time limit, e.g. 4:00:00 (Slurm: ``--time``; local: ignored)
    --slurm_opts "..."      more sbatch options; may be repeated (``--slurm_opts=--partition=gpu
                            --slurm_opts=--account=me`` works inside an unquoted $cmd variable)

Semantics are those of Kaldi's ``run.pl``/``slurm.pl`` (this is our own implementation):

* ``JOB=a:b`` runs jobs a..b; every occurrence of the name ``JOB`` (any identifier may be used
  instead, e.g. ``SPLIT=1:8``) in the log path and in the command is replaced by the job number.
  Without a range a single job runs, with nothing replaced.
* The command is one shell command line built from the arguments: an argument without
  whitespace is used verbatim, so ``\\|``, ``\\>``, ``2\\>\\&1`` and ``$VAR`` act as shell syntax
  (as with run.pl); an argument with whitespace is quoted and stays one argument.  The line runs
  in ``bash`` with ``pipefail``.
* Each log gets a header (the command, the start time), the job's stdout and stderr, and a footer
  ``# Ended (code C) at <date>, elapsed time S seconds``.
* The exit status is 0 when every job succeeded, else 1 with a message naming the failed logs
  (and the tail of the first one).

The Slurm backend writes ``<logdir>/q/<log name>.sh`` that runs the command with
JOB=$SLURM_ARRAY_TASK_ID, submits it with ``sbatch --array=a-b --wait -o <log with %a>`` (plus the
resource options above) and waits for the whole array.
"""
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

PROG = "launch"
_RANGE_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(\d+):(\d+)$")
_OPTIONS = {"backend", "max_jobs_run", "gpu", "num_threads", "mem", "time", "slurm_opts"}


class LaunchError(Exception):
    """A usage or environment problem, reported as one line on stderr."""


@dataclass
class Spec:
    backend: str = "local"
    max_jobs_run: Optional[int] = None
    gpu: int = 0
    num_threads: int = 1
    mem: Optional[str] = None
    time: Optional[str] = None
    slurm_opts: List[str] = field(default_factory=list)
    job_var: Optional[str] = None  # None: a single job, nothing substituted
    first: int = 1
    last: int = 1
    log: str = ""
    command: str = ""

    @property
    def jobs(self) -> range:
        return range(self.first, self.last + 1)

    def log_of(self, job: int) -> str:
        return substitute(self.log, self.job_var, job)

    def command_of(self, job: int) -> str:
        return substitute(self.command, self.job_var, job)


def substitute(text: str, job_var: Optional[str], job: int) -> str:
    return text if job_var is None else text.replace(job_var, str(job))


def join_command(args: Sequence[str]) -> str:
    """The shell line for ``args``: whitespace-free words verbatim, others quoted (run.pl rule)."""
    return " ".join(a if re.fullmatch(r"\S+", a) else shlex.quote(a) for a in args)


def _int_option(name: str, value: str, minimum: int) -> int:
    try:
        n = int(value)
    except ValueError:
        raise LaunchError(f"--{name} needs an integer, got '{value}'") from None
    if n < minimum:
        raise LaunchError(f"--{name} must be >= {minimum}, got {n}")
    return n


def parse_args(argv: Sequence[str]) -> Spec:
    spec = Spec()
    argv = list(argv)
    i = 0
    while i < len(argv) and argv[i].startswith("--"):
        arg = argv[i]
        if arg in ("--help",):
            print(__doc__)
            sys.exit(0)
        if "=" in arg:
            name, value = arg[2:].split("=", 1)
            i += 1
        else:
            if i + 1 >= len(argv):
                raise LaunchError(f"option '{arg}' needs a value")
            name, value = arg[2:], argv[i + 1]
            i += 2
        name = name.replace("-", "_")
        if name not in _OPTIONS:
            raise LaunchError(
                f"unknown option '{arg}' (valid: {', '.join('--' + o for o in sorted(_OPTIONS))})"
            )
        if name == "backend":
            if value not in ("local", "slurm"):
                raise LaunchError(f"--backend must be local or slurm, got '{value}'")
            spec.backend = value
        elif name == "max_jobs_run":
            spec.max_jobs_run = _int_option(name, value, 1)
        elif name == "gpu":
            spec.gpu = _int_option(name, value, 0)
        elif name == "num_threads":
            spec.num_threads = _int_option(name, value, 1)
        elif name == "slurm_opts":
            spec.slurm_opts.extend(shlex.split(value))
        else:
            setattr(spec, name, value)

    if i < len(argv):
        m = _RANGE_RE.match(argv[i])
        if m:
            spec.job_var, spec.first, spec.last = m.group(1), int(m.group(2)), int(m.group(3))
            if spec.first > spec.last:
                raise LaunchError(f"empty job range '{argv[i]}' (first > last)")
            i += 1
        elif re.match(r"^[A-Za-z_][A-Za-z0-9_]*=\S*:", argv[i]):
            raise LaunchError(f"bad job range '{argv[i]}': expected e.g. JOB=1:8")
    rest = argv[i:]
    if len(rest) < 2:
        raise LaunchError(
            "expected [JOB=1:N] <log> <command> [args...]; run with --help for the usage"
        )
    spec.log, spec.command = rest[0], join_command(rest[1:])
    if spec.job_var is not None and spec.last > spec.first and spec.job_var not in spec.log:
        raise LaunchError(
            f"{spec.last - spec.first + 1} jobs would share one log file '{spec.log}': "
            f"put {spec.job_var} in the log name (e.g. log/decode.{spec.job_var}.log)"
        )
    return spec


def _now() -> str:
    return time.strftime("%a %b %d %H:%M:%S %Z %Y")


def _header(command: str) -> str:
    return f"# {command}\n# Started at {_now()}\n#\n"


def _footer(code: int, elapsed: float) -> str:
    return f"# Ended (code {code}) at {_now()}, elapsed time {elapsed:.0f} seconds\n"


def _tail(path: str, n: int = 10) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def _report(spec: Spec, failed: List[Tuple[int, str]]) -> int:
    n = len(spec.jobs)
    if not failed:
        return 0
    logs = [log for _, log in failed]
    shown = ", ".join(logs[:10]) + (f" and {len(logs) - 10} more" if len(logs) > 10 else "")
    print(f"{PROG}: {len(failed)} / {n} job(s) failed, see {shown}", file=sys.stderr)
    tail = _tail(logs[0])
    if tail:
        print(f"{PROG}: last lines of {logs[0]}:\n{tail}", file=sys.stderr, end="")
    return 1


def _makedirs_for(path: str) -> None:
    d = os.path.dirname(path)
    if d:
        os.makedirs(d, exist_ok=True)


def _nproc() -> int:
    """CPUs this process may use (what ``nproc`` prints)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def run_local(spec: Spec) -> int:
    max_run = spec.max_jobs_run or _nproc()
    pending = list(spec.jobs)
    running = {}  # job -> (Popen, log file object, start time)
    failed: List[Tuple[int, str]] = []
    try:
        while pending or running:
            while pending and len(running) < max_run:
                job = pending.pop(0)
                log, command = spec.log_of(job), spec.command_of(job)
                _makedirs_for(log)
                with open(log, "w", encoding="utf-8") as f:
                    f.write(_header(command))
                # Append mode: the job's output and our footer never overwrite each other.
                f = open(log, "ab")
                proc = subprocess.Popen(
                    ["bash", "-c", "set -o pipefail\n" + command],
                    stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                )
                running[job] = (proc, f, time.monotonic())
            time.sleep(0.02)
            for job in [j for j, (p, _, _) in running.items() if p.poll() is not None]:
                proc, f, start = running.pop(job)
                f.close()
                with open(spec.log_of(job), "a", encoding="utf-8") as g:
                    g.write(_footer(proc.returncode, time.monotonic() - start))
                if proc.returncode != 0:
                    failed.append((job, spec.log_of(job)))
    except BaseException:
        # Ctrl-C or any internal error: do not leave orphan jobs behind.
        for proc, f, _ in running.values():
            proc.kill()
            proc.wait()
            f.close()
        raise
    failed.sort()
    return _report(spec, failed)


def slurm_script(spec: Spec) -> str:
    """The batch script: one array task runs the command of job $SLURM_ARRAY_TASK_ID."""
    job_expr = '"${SLURM_ARRAY_TASK_ID}"' if spec.job_var is not None else "1"
    if spec.job_var is not None:
        # Substituting at run time (not in the text) also reaches quoted parts of the command.
        command_line = f"command=${{template//{spec.job_var}/${{job}}}}"
    else:
        command_line = "command=${template}"
    return f"""#!/usr/bin/env bash
# Written by espnet_sllm.bin.launch (Slurm backend); stdout goes to the job's log file.
cd {shlex.quote(os.getcwd())}
job={job_expr}
template={shlex.quote(spec.command)}
{command_line}
echo "# ${{command}}"
echo "# Started at $(date) on $(hostname) (Slurm job ${{SLURM_JOB_ID:-?}})"
echo "#"
start=$(date +%s)
bash -c "set -o pipefail
${{command}}" </dev/null 2>&1
code=$?
echo "# Ended (code ${{code}}) at $(date), elapsed time $(( $(date +%s) - start )) seconds"
exit ${{code}}
"""


def sbatch_args(spec: Spec, script: str) -> List[str]:
    name = os.path.splitext(os.path.basename(script))[0]
    args = ["sbatch", "--wait", f"--job-name={name}"]
    if spec.job_var is not None:
        array = f"{spec.first}-{spec.last}"
        if spec.max_jobs_run:
            array += f"%{spec.max_jobs_run}"
        args += [f"--array={array}", "-o", substitute(spec.log, spec.job_var, "%a")]
    else:
        args += ["-o", spec.log]
    if spec.gpu > 0:
        args.append(f"--gres=gpu:{spec.gpu}")
    if spec.num_threads > 1:
        args.append(f"--cpus-per-task={spec.num_threads}")
    if spec.mem:
        args.append(f"--mem={spec.mem}")
    if spec.time:
        args.append(f"--time={spec.time}")
    return args + spec.slurm_opts + [script]


def _footer_code(log: str) -> Optional[int]:
    for line in reversed(_tail(log, 3).splitlines()):
        m = re.match(r"# Ended \(code (\d+)\)", line)
        if m:
            return int(m.group(1))
    return None


def run_slurm(spec: Spec) -> int:
    if shutil.which("sbatch") is None:
        raise LaunchError(
            "--backend slurm needs 'sbatch' (the Slurm client tools) on PATH; on a machine "
            "without Slurm use --backend local (cmd_backend=local in cmd.sh)"
        )
    log0 = spec.log_of(spec.first)
    logdir = os.path.dirname(log0) or "."
    qdir = os.path.join(logdir, "q")
    os.makedirs(qdir, exist_ok=True)
    for job in spec.jobs:
        _makedirs_for(spec.log_of(job))
        # A log left by an earlier run would otherwise be read as this run's result.
        if os.path.exists(spec.log_of(job)):
            os.remove(spec.log_of(job))
    name = os.path.basename(substitute(spec.log, spec.job_var, "JOBS") if spec.job_var else
                            spec.log)
    script = os.path.join(qdir, re.sub(r"\.log$", "", name) + ".sh")
    with open(script, "w", encoding="utf-8") as f:
        f.write(slurm_script(spec))
    os.chmod(script, 0o755)
    args = sbatch_args(spec, script)
    proc = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    failed = []
    for job in spec.jobs:
        code = _footer_code(spec.log_of(job))
        if code != 0:  # None: killed (time/memory limit) or never started
            failed.append((job, spec.log_of(job)))
    if proc.returncode != 0 and not failed:
        print(f"{PROG}: sbatch failed (code {proc.returncode}): {shlex.join(args)}\n"
              f"{proc.stdout}", file=sys.stderr)
        return 1
    if failed and proc.stdout.strip():
        print(f"{PROG}: sbatch said: {proc.stdout.strip()}", file=sys.stderr)
    return _report(spec, failed)
