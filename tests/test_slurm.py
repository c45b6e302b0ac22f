"""The pipeline through Snakemake's Slurm executor on a real (local, single-node) Slurm cluster.

Brings up munged + slurmctld + slurmd in a temporary directory (tests/slurm/localslurm.py), runs
the workflow with `--workflow-profile workflow/profiles/slurm`, then an incremental run (6 more
archs and a new proxy, i.e. a new feature set) with workflow/profiles/slurm-gpu, and checks that

- every job Snakemake planned was an sbatch job that Slurm ran to COMPLETED: its `squeue -t all`
  record (MinJobAge keeps finished jobs), its job-completion record, and its own log under
  .snakemake/slurm_logs, written by Slurm, holding the rule's execution;
- the results equal the same two runs made locally (workflow/profiles/local): feature store,
  splits, predictions and metrics exactly (arch_stats minus its timing column), tables byte-equal;
- the incremental run submitted only the 4 new shards and the proxy table that reads them;
- the slurm-gpu profile got a (fake) GPU from Slurm for each extraction job, and only for those.

Runs only when selected with `pytest -m slurm` (a plain `pytest` skips it: it takes minutes).
Skips with the reason printed when Slurm is not installed (Debian: apt-get install -y slurm-wlm
munge; .ci/run does that) or not running as root.

Runs use the repository's Snakefile with `--directory <tmp>`, so `.snakemake/` (locks, metadata,
Slurm logs) and the results live in temporary directories, never in the checkout. The config is
config/test.yaml cut to one predictor and no search: each Slurm job starts three Python processes
that parse the workflow or run the script, importing torch and scikit-learn (~25 s of CPU per
job on the CI machine's 2 cores), so the fan-out is kept small; every level of the DAG remains.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl
import pytest
import yaml
from polars.testing import assert_frame_equal

sys.path.insert(0, str(Path(__file__).resolve().parent / "slurm"))
from localslurm import LocalSlurm, unavailable_reason  # noqa: E402

pytestmark = pytest.mark.timeout(2400)  # the runs fixture's Slurm runs are minutes each

REPO = Path(__file__).resolve().parents[1]
PROFILES = REPO / "workflow" / "profiles"
RUN_TIMEOUT = 900
# Poll Slurm 2 s after a submission (the profile's 10 s suit a real cluster); nothing else differs
# from the profile.
FAST_POLL = ("--slurm-init-seconds-before-status-checks", "2")
# "Job 3 has been submitted with SLURM jobid 7 (log: .../slurm_logs/rule_<rule>/<wildcards>/7.log)."
SUBMITTED = re.compile(
    r"has been submitted with SLURM jobid (\d+) "
    r"\(log: (\S*?/slurm_logs/rule_([^/\s]+)/(?:([^/\s]*)/)?\d+\.log)\)"
)
NEW_SET = "extra"  # the proxy added by the incremental run (a new feature set)


# -- helpers ---------------------------------------------------------------------------------


def make_config(path: Path, extra_archs: int = 0, new_set: bool = False) -> dict:
    """config/test.yaml with results in the run directory, one predictor and no search."""
    cfg = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    cfg["results"] = "results"
    predictors = cfg["train"]["predictors"]
    first = next(label for label, p in predictors.items() if not p.get("loss_ablation"))
    cfg["train"]["predictors"] = {first: predictors[first]}
    cfg["search"] = {}
    for entry in cfg["spaces"].values():
        entry["archs"]["count"] += extra_archs
    if new_set:
        cfg["feature_sets"][NEW_SET] = {"layer": ["l2_norm"]}
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return cfg


def snakemake(workdir: Path, config: Path, *args: str, env: dict | None = None, tag: str) -> dict:
    """Run the repository's workflow in `workdir`; returns wall seconds and the output."""
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(config),
        *args,
    ]
    log = workdir / f"snakemake-{tag}.log"
    started = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.Popen(
            cmd, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            rc = proc.wait(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)  # snakemake cancels its Slurm jobs on SIGINT
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            rc = None
    wall = time.monotonic() - started
    text = log.read_text()
    assert rc == 0, (
        f"snakemake {tag} {'timed out' if rc is None else f'exit {rc}'}:\n{text[-6000:]}"
    )
    print(f"\n[slurm test] {tag}: {wall:.0f} s wall ({log})")
    return {"wall": wall, "output": text}


def planned_jobs(output: str) -> Counter:
    """Jobs per rule from the first 'Job stats' table Snakemake prints, without `all`."""
    lines = output.split("Job stats:", 1)[1].splitlines()
    counts: Counter = Counter()
    for line in lines[3:]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        if parts[0] not in ("all", "total"):
            counts[parts[0]] = int(parts[1])
    return counts


def submitted_jobs(output: str, workdir: Path) -> list[dict]:
    jobs = []
    for jobid, log, rule, wildcards in SUBMITTED.findall(output):
        path = Path(log) if Path(log).is_absolute() else workdir / log
        jobs.append({"id": jobid, "log": path, "rule": rule, "wildcards": wildcards})
    return jobs


def assert_ran_under_slurm(cluster: LocalSlurm, run: dict, workdir: Path) -> list[dict]:
    """Every planned job was submitted, and Slurm ran each to COMPLETED: its squeue record, its
    job-completion record and its Slurm log (written by Slurm; it holds the rule's execution)."""
    jobs = submitted_jobs(run["output"], workdir)
    plan = planned_jobs(run["output"])
    assert plan, "Snakemake planned no jobs"
    submitted = Counter(j["rule"] for j in jobs)
    assert submitted == plan, f"planned {dict(plan)}, submitted {dict(submitted)} (retries?)"
    squeue = {j["id"]: j for j in cluster.jobs()}
    completions = {c["JobId"]: c for c in cluster.completions()}
    names = set()
    for job in jobs:
        record = squeue.get(job["id"])
        assert record is not None, f"Slurm does not know job {job}"
        assert record["state"] == "COMPLETED", f"{job}: Slurm state {record['state']}"
        assert record["comment"].startswith(f"rule_{job['rule']}"), (job, record)
        names.add(record["name"])
        assert completions.get(job["id"], {}).get("JobState") == "COMPLETED", job
        text = job["log"].read_text()
        assert re.search(rf"^rule {job['rule']}:", text, re.M), f"{job['log']}: no rule run"
    assert len(names) == 1, f"jobs of one Snakemake run have one name (its run id): {names}"
    return jobs


def parquet_files(results: Path, table: str) -> dict[str, Path]:
    return {str(p.relative_to(results)): p for p in sorted((results / table).rglob("*.parquet"))}


def assert_same_tables(a: Path, b: Path, table: str, drop: tuple[str, ...] = ()) -> int:
    """Same files under results/<table>, with exactly equal data (minus `drop` columns)."""
    fa, fb = parquet_files(a, table), parquet_files(b, table)
    assert fa and fa.keys() == fb.keys(), (table, sorted(fa), sorted(fb))
    for name in fa:
        da, db = pl.read_parquet(fa[name]), pl.read_parquet(fb[name])
        assert_frame_equal(
            da.drop(drop, strict=False), db.drop(drop, strict=False), check_exact=True
        )
    return len(fa)


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(request, tmp_path_factory):
    markexpr = request.config.option.markexpr or ""
    if "slurm" not in markexpr or "not slurm" in markexpr:
        pytest.skip("Slurm integration test (minutes): select it with `pytest -m slurm`")
    reason = unavailable_reason()
    if reason:
        print(f"\n[slurm test] SKIPPED: {reason}")
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("slurm")
    local = LocalSlurm(root, gpus=2)  # 2 fake GPUs: two GPU jobs at a time, like CPUs
    try:
        started = time.monotonic()
        local.up()
        print(f"\n[slurm test] cluster up in {time.monotonic() - started:.1f} s ({root})")
        yield local
    finally:
        local.down()


@pytest.fixture(scope="module")
def runs(cluster, tmp_path_factory):
    """Through Slurm: the first run (all targets, profile slurm), then an incremental run with
    more archs and a new proxy (the feature store and the proxy table, which reads all of it;
    profile slurm-gpu). Alongside, in another directory: the same two runs locally."""
    base = tmp_path_factory.mktemp("configs")
    first_cfg, final_cfg = base / "first.yaml", base / "final.yaml"
    make_config(first_cfg)
    make_config(final_cfg, extra_archs=6, new_set=True)
    slurm_dir, local_dir = tmp_path_factory.mktemp("slurm-run"), tmp_path_factory.mktemp("local")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    slurm_env = {**clean, **cluster.env()}
    local = ("--workflow-profile", str(PROFILES / "local"))
    incremental = ("--until", "proxy_correlation")

    def local_runs() -> dict:
        first = snakemake(local_dir, first_cfg, *local, env=clean, tag="local-first")
        final = snakemake(
            local_dir, final_cfg, *local, *incremental, env=clean, tag="local-incremental"
        )
        return {"first": first, "final": final}

    # The Slurm runs leave the CPUs idle while they poll: the local runs use them meanwhile.
    with ThreadPoolExecutor(max_workers=1) as pool:
        reference = pool.submit(local_runs)
        first = snakemake(
            slurm_dir,
            first_cfg,
            *("--workflow-profile", str(PROFILES / "slurm"), *FAST_POLL),
            env=slurm_env,
            tag="slurm-first",
        )
        final = snakemake(
            slurm_dir,
            final_cfg,
            *("--workflow-profile", str(PROFILES / "slurm-gpu"), *FAST_POLL),
            *incremental,
            env=slurm_env,
            tag="slurm-incremental",
        )
        reference = reference.result()
    first["jobs"] = assert_ran_under_slurm(cluster, first, slurm_dir)
    final["jobs"] = assert_ran_under_slurm(cluster, final, slurm_dir)
    print(
        f"\n[slurm test] wall s (local runs concurrent with the Slurm runs): slurm first "
        f"{first['wall']:.0f} ({len(first['jobs'])} jobs), slurm incremental {final['wall']:.0f} "
        f"({len(final['jobs'])} jobs); local first {reference['first']['wall']:.0f}, "
        f"local incremental {reference['final']['wall']:.0f}"
    )
    return {"first": first, "final": final, "slurm_dir": slurm_dir, "local_dir": local_dir}


# -- tests -----------------------------------------------------------------------------------


@pytest.mark.slurm
def test_every_job_went_through_slurm(runs):
    """assert_ran_under_slurm (in the fixture) matched each planned job to a COMPLETED Slurm job
    with its log; here: the expected plans, and no Slurm log without a job."""
    first = Counter(j["rule"] for j in runs["first"]["jobs"])
    assert first["extract_shard"] == 2 and first["train_predictor"] == 1, first
    assert {"make_split", "evaluate", "correlation_tables", "proxy_correlation"} <= first.keys()
    jobs = runs["first"]["jobs"] + runs["final"]["jobs"]
    logs = set((runs["slurm_dir"] / ".snakemake" / "slurm_logs").rglob("*.log"))
    assert {j["log"] for j in jobs} == logs, "one Slurm log per job, and no others"


@pytest.mark.slurm
def test_incremental_run_submits_only_new_shards(runs):
    final = runs["final"]["jobs"]
    extracted = {j["wildcards"] for j in final if j["rule"] == "extract_shard"}
    assert extracted == {
        "nb201_cifar10_mini_00012_00017",  # 6 more archs: one new shard of the old set
        f"nb201_cifar10_{NEW_SET}_00000_00005",  # the new proxy: its shards for all 18 archs
        f"nb201_cifar10_{NEW_SET}_00006_00011",
        f"nb201_cifar10_{NEW_SET}_00012_00017",
    }
    # ... and the one job downstream of the store that was asked for (it reads all 6 shards).
    assert Counter(j["rule"] for j in final) == {"extract_shard": 4, "proxy_correlation": 1}


@pytest.mark.slurm
def test_results_equal_local_run(runs):
    slurm = runs["slurm_dir"] / "results"
    local = runs["local_dir"] / "results"
    assert assert_same_tables(slurm, local, "features") == 6  # 3 shards x 2 feature sets
    assert_same_tables(slurm, local, "arch_stats", drop=("extract_ms",))  # extract_ms: timing
    assert assert_same_tables(slurm, local, "metrics") == 1
    assert_same_tables(slurm, local, "predictions")
    assert_same_tables(slurm, local, "splits")
    for csv in (
        "tables/correlation.csv",
        "tables/proxy_correlation/space=nb201/dataset=cifar10/proxies.csv",
    ):
        assert (slurm / csv).read_text() == (local / csv).read_text(), csv


@pytest.mark.slurm
def test_gpu_profile_gets_gpus_from_slurm(cluster, runs):
    """The incremental run used the slurm-gpu profile: Slurm allocated a (fake) GPU to each
    extraction job and none to the proxy table; the jobs ran (no CUDA here, device: cpu) and
    stored the local run's values (test_results_equal_local_run)."""
    for job in runs["final"]["jobs"]:
        show = cluster.run("scontrol", "show", "job", job["id"]).stdout
        gpu = re.search(r"TresPerJob=gres:gpu:1\b", show) is not None
        assert gpu == (job["rule"] == "extract_shard"), (job, show)


def test_gpu_profile_is_the_slurm_profile_plus_gpu_requests():
    cpu = yaml.safe_load((PROFILES / "slurm" / "config.yaml").read_text())
    gpu = yaml.safe_load((PROFILES / "slurm-gpu" / "config.yaml").read_text())
    requests = gpu.pop("set-resources")
    assert gpu == {k: v for k, v in cpu.items() if k != "set-resources"}
    assert requests == {
        rule: {"gpu": 1}
        for rule in ("extract_shard", "train_predictor", "rank_candidates", "loop_train")
    }
    assert cpu["slurm-status-command"] == "squeue"  # sacct needs slurmdbd
    assert "slurm_account" not in cpu.get("default-resources", {})
