"""A throw-away single-node Slurm cluster in one directory, for integration tests.

    python tests/slurm/localslurm.py up DIR      # start munged, slurmctld, slurmd; wait for node
    eval "$(python tests/slurm/localslurm.py env DIR)"   # SLURM_CONF and client wrappers on PATH
    python tests/slurm/localslurm.py status DIR
    python tests/slurm/localslurm.py down DIR    # cancel jobs, stop the daemons (by recorded PID)

Everything (slurm.conf, munge key and socket, state, spool, logs, PID files, client wrappers) lives
under DIR: nothing in /etc is written and no system daemon is used or needed. Ports are picked free
at `up`, so several clusters (or a system Slurm) can run side by side. Needs the Debian/Ubuntu
packages `slurm-wlm` and `munge`, and root (slurmd launches the jobs).

Design notes (why the settings are what they are):
- No accounting daemon (slurmdbd + a database): `sacct` cannot see jobs, so clients must poll with
  `squeue`; `MinJobAge` keeps finished jobs (state COMPLETED/FAILED) in slurmctld's memory for an
  hour so `squeue -t all` can still report them. Job completions are also appended to a text file
  (`jobcomp/filetxt`), one line per job, which the tests read as a second record.
- Containers: no cgroups (`proctrack/linuxproc`, `task/none`), and `config_overrides` makes slurmd
  trust the configured CPUs/memory instead of draining the node on a hardware mismatch. The node
  offers every CPU and 90% of the memory; CPUs and memory are consumable (`CR_CPU_Memory`).
- `bin/` holds wrappers of the client commands that pin SLURM_CONF: Snakemake's slurm-jobstep
  executor removes every SLURM_* variable before its inner `srun`, which would otherwise read
  /etc/slurm/slurm.conf and fail with "Unable to contact slurm controller".
- Optional fake GPUs (`gpus=N`): a `gpu` GRES backed by /dev/null & co., so jobs that request GPUs
  (`--gpus=1`) are scheduled and run (Slurm sets CUDA_VISIBLE_DEVICES); they find no CUDA device.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("srun", "sbatch", "squeue", "scancel", "scontrol", "sinfo", "sacct")
SBIN = ("/usr/sbin", "/sbin")
PACKAGES = "slurm-wlm munge"
FAKE_GPU_FILES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
# AF_UNIX socket paths are limited to 107 bytes.
MAX_SOCKET_PATH = 100


def which(name: str) -> str | None:
    """Path of a program on PATH or in an sbin directory (daemons live there)."""
    return shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), *SBIN]))


def unavailable_reason() -> str | None:
    """Why a local cluster cannot be started here, or None when it can."""
    needed = (*DAEMONS, "srun", "sbatch", "squeue", "scontrol", "sinfo")
    missing = [b for b in needed if not which(b)]
    if missing:
        return (
            f"Slurm is not installed (missing {', '.join(missing)}); "
            f"install the Debian packages with: apt-get install -y {PACKAGES}"
        )
    if os.geteuid() != 0:
        return "the local Slurm cluster needs root (slurmd launches jobs); run the test as root"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pid_alive(pid: int, name: str) -> bool:
    """The process exists and runs `name` (guards against a recycled PID)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(Path(arg.decode(errors="replace")).name == name for arg in cmdline[:1])


@dataclass
class LocalSlurm:
    """One cluster rooted at `root`; `up()` and `down()` are idempotent."""

    root: Path
    partition: str = "debug"
    gpus: int = 0
    min_job_age: int = 3600
    timeout: float = 60.0

    def __post_init__(self) -> None:
        if not 0 <= self.gpus <= len(FAKE_GPU_FILES):
            raise ValueError(f"gpus must be 0..{len(FAKE_GPU_FILES)}, got {self.gpus}")
        self.root = Path(self.root).resolve()
        self.node = socket.gethostname().split(".")[0]

    # -- paths ------------------------------------------------------------------------------
    @property
    def conf(self) -> Path:
        return self.root / "slurm.conf"

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    @property
    def jobcomp_file(self) -> Path:
        return self.root / "log" / "jobcomp.txt"

    @property
    def munge_socket(self) -> Path:
        return self.root / "munge" / "munge.socket"

    def _pidfile(self, daemon: str) -> Path:
        return self.root / f"{daemon}.pid"

    def env(self) -> dict[str, str]:
        """Variables for clients (sbatch, squeue, snakemake): SLURM_CONF and the wrappers first
        on PATH."""
        return {
            "SLURM_CONF": str(self.conf),
            "PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}",
        }

    # -- configuration ----------------------------------------------------------------------
    def _write_config(self, fresh: bool) -> None:
        for sub in ("munge", "state", "spool", "log"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "munge").chmod(0o700)
        if len(str(self.munge_socket)) > MAX_SOCKET_PATH:
            raise RuntimeError(f"{self.root} is too deep for a unix socket; use a shorter path")
        key = self.root / "munge" / "munge.key"
        if not key.exists():
            key.write_bytes(os.urandom(1024))
            key.chmod(0o400)
        if self.conf.exists() and not fresh:  # a daemon runs: keep its ports
            return
        user = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True)
        user = user.stdout.strip()
        cpus = os.cpu_count() or 1
        mem_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal:")
        )
        mem_mb = int(mem_kb / 1024 * 0.9)
        gres_node = f" Gres=gpu:{self.gpus}" if self.gpus else ""
        lines = [
            "# Written by tests/slurm/localslurm.py: one node, no accounting daemon, no cgroups.",
            "ClusterName=parzctest",
            f"SlurmctldHost={self.node}(127.0.0.1)",
            f"SlurmctldPort={free_port()}",
            f"SlurmdPort={free_port()}",
            f"SlurmUser={user}",
            f"SlurmdUser={user}",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.munge_socket}",
            f"StateSaveLocation={self.root / 'state'}",
            f"SlurmdSpoolDir={self.root / 'spool'}",
            f"SlurmctldPidFile={self.root / 'state' / 'slurmctld.pid'}",
            f"SlurmdPidFile={self.root / 'spool' / 'slurmd.pid'}",
            f"SlurmctldLogFile={self.root / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={self.root / 'log' / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_CPU_Memory",
            "SchedulerType=sched/backfill",
            "SchedulerParameters=sched_interval=2,bf_interval=2",
            "MpiDefault=none",
            "ReturnToService=2",
            "SlurmdParameters=config_overrides",
            "AccountingStorageType=accounting_storage/none",
            "JobAcctGatherType=jobacct_gather/none",
            "JobCompType=jobcomp/filetxt",
            f"JobCompLoc={self.jobcomp_file}",
            f"MinJobAge={self.min_job_age}",
            "MessageTimeout=30",
            *(["GresTypes=gpu"] if self.gpus else []),
            f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={mem_mb}"
            f"{gres_node} State=UNKNOWN",
            f"PartitionName={self.partition} Nodes={self.node} Default=YES MaxTime=INFINITE"
            " State=UP",
        ]
        self.conf.write_text("\n".join(lines) + "\n")
        # slurmd reads gres.conf next to slurm.conf. A gpu GRES needs device files (slurmd reports
        # a count of 0 without), so character devices that exist everywhere stand in for GPUs.
        files = ",".join(FAKE_GPU_FILES[: self.gpus])
        gres = f"NodeName={self.node} Name=gpu File={files}\n" if self.gpus else ""
        (self.root / "gres.conf").write_text(gres)

    def _write_wrappers(self) -> None:
        self.bin.mkdir(exist_ok=True)
        # Never wrap our own wrappers (DIR/bin may already be on PATH).
        path = [d for d in os.environ.get("PATH", "").split(os.pathsep) if Path(d) != self.bin]
        for name in CLIENTS:
            real = shutil.which(name, path=os.pathsep.join([*path, *SBIN]))
            if real is None:
                continue
            wrapper = self.bin / name
            wrapper.write_text(
                "#!/bin/sh\n"
                f"SLURM_CONF={shlex.quote(str(self.conf))}; export SLURM_CONF\n"
                f'exec {shlex.quote(real)} "$@"\n'
            )
            wrapper.chmod(0o755)

    # -- daemons ----------------------------------------------------------------------------
    def _running(self, daemon: str) -> int | None:
        try:
            pid = int(self._pidfile(daemon).read_text())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid, daemon) else None

    def _start(self, daemon: str, *args: str) -> None:
        if self._running(daemon):
            return
        with (self.root / "log" / f"{daemon}.out").open("wb") as log:
            proc = subprocess.Popen(
                [which(daemon) or daemon, *args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "SLURM_CONF": str(self.conf)},
                start_new_session=True,  # not killed with the terminal / pytest's process group
            )
        self._pidfile(daemon).write_text(str(proc.pid))
        time.sleep(0.3)
        if proc.poll() is not None:
            raise RuntimeError(
                f"{daemon} exited at once (code {proc.returncode}): "
                f"{(self.root / 'log' / f'{daemon}.out').read_text()[-2000:]}"
            )

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """A Slurm client command (squeue, sinfo, ...) against this cluster."""
        return subprocess.run(
            [which(args[0]) or args[0], *args[1:]],
            capture_output=True,
            text=True,
            check=check,
            env={**os.environ, "SLURM_CONF": str(self.conf)},
        )

    def node_state(self) -> str:
        out = self.run("sinfo", "-h", "-N", "-n", self.node, "-o", "%T", check=False)
        return out.stdout.strip() if out.returncode == 0 else ""

    def up(self) -> None:
        reason = unavailable_reason()
        if reason:
            raise RuntimeError(reason)
        self._write_config(fresh=not any(self._running(d) for d in DAEMONS))
        self._write_wrappers()
        self._start(
            "munged",
            "--foreground",
            "--force",
            f"--socket={self.munge_socket}",
            f"--key-file={self.root / 'munge' / 'munge.key'}",
            f"--pid-file={self.root / 'munge' / 'munged.pid'}",
            f"--log-file={self.root / 'log' / 'munged.log'}",
            f"--seed-file={self.root / 'munge' / 'munged.seed'}",
        )
        deadline = time.monotonic() + 10
        while not self.munge_socket.is_socket() and time.monotonic() < deadline:
            time.sleep(0.1)
        # -D: foreground (the PID we record is the daemon's); -c: discard saved job state.
        self._start("slurmctld", "-D", "-c", "-f", str(self.conf))
        self._start("slurmd", "-D", "-N", self.node, "-f", str(self.conf))
        deadline = time.monotonic() + self.timeout
        state = ""
        while time.monotonic() < deadline:
            state = self.node_state()
            if state.startswith(("idle", "mixed", "allocated")):
                return
            time.sleep(0.5)
        raise RuntimeError(
            f"node {self.node} not ready after {self.timeout:.0f}s (state {state!r}); "
            f"logs in {self.root / 'log'}"
        )

    def down(self) -> None:
        """Cancel every job of this cluster, then stop the daemons we started."""
        if self._running("slurmctld"):
            jobs = self.run("squeue", "-h", "-t", "pending,running", "-o", "%i", check=False)
            ids = jobs.stdout.split()
            if ids:
                self.run("scancel", *ids, check=False)
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline:
                    active = self.run(
                        "squeue", "-h", "-t", "running,completing", "-o", "%i", check=False
                    )
                    if active.returncode != 0 or not active.stdout.split():
                        break
                    time.sleep(0.5)
        for daemon in ("slurmd", "slurmctld", "munged"):
            pid = self._running(daemon)
            if pid is not None:
                os.kill(pid, signal.SIGTERM)
                deadline = time.monotonic() + 10
                while pid_alive(pid, daemon) and time.monotonic() < deadline:
                    time.sleep(0.1)
                if pid_alive(pid, daemon):
                    os.kill(pid, signal.SIGKILL)
            self._pidfile(daemon).unlink(missing_ok=True)

    # -- records ----------------------------------------------------------------------------
    def jobs(self) -> list[dict[str, str]]:
        """Every job slurmctld remembers (finished ones for `min_job_age` s): id, name, state,
        exit code."""
        out = self.run("squeue", "-h", "-t", "all", "-o", "%i|%j|%T|%k")
        rows = [line.split("|", 3) for line in out.stdout.splitlines() if line.strip()]
        return [dict(zip(("id", "name", "state", "comment"), r, strict=True)) for r in rows]

    def completions(self) -> list[dict[str, str]]:
        """Records of the job-completion log (one `key=value ...` line per finished job)."""
        if not self.jobcomp_file.exists():
            return []
        records = []
        for line in self.jobcomp_file.read_text().splitlines():
            fields = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
            if fields:
                records.append(fields)
        return records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["up", "down", "status", "env"])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--gpus", type=int, default=0, help="fake GPUs (gpu GRES) on the node")
    args = parser.parse_args(argv)
    cluster = LocalSlurm(args.dir, gpus=args.gpus)
    if args.command == "up":
        try:
            cluster.up()
        except RuntimeError as err:
            print(f"localslurm: {err}", file=sys.stderr)
            return 1
        env_cmd = f"python {sys.argv[0]} env {args.dir}"
        print(f'localslurm: node {cluster.node} is ready; clients: eval "$({env_cmd})"')
    elif args.command == "down":
        cluster.down()
    elif args.command == "status":
        for daemon in DAEMONS:
            pid = cluster._running(daemon)
            print(f"{daemon}: {f'running (pid {pid})' if pid else 'stopped'}")
        print(f"node {cluster.node}: {cluster.node_state() or 'unreachable'}")
    else:
        print(f"export SLURM_CONF={shlex.quote(str(cluster.conf))}")
        print(f'export PATH={shlex.quote(str(cluster.bin))}:"$PATH"')
    return 0


if __name__ == "__main__":
    sys.exit(main())
