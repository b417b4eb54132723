"""The campaign on a SLURM cluster through dask-jobqueue: a worked example (README, "On many
machines"; issue "Beyond one machine").

It starts a Dask scheduler here (a login node), submits ``--jobs`` batch jobs of ``--cores``
single-threaded workers each, and runs the campaign on them until the deadline; every worker
reads and writes the run store, state cache and dataset at the paths given, which must be on a
filesystem all nodes see. ``--print-job-script`` prints the batch script it would submit and
exits (no SLURM needed). For PBS, SGE or LSF use dask-jobqueue's ``PBSCluster``,
``SGECluster`` or ``LSFCluster`` with the same arguments.

    python scripts/slurm_campaign.py --jobs 16 --cores 8 --walltime 04:00:00 --account proj \\
        --hours 3.5 --runs /shared/lth/data/runs --cache /shared/lth/cache --data /shared/data
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--jobs", type=int, default=4, help="batch jobs (nodes) to submit")
    parser.add_argument("--cores", type=int, default=8, help="cores per job: one worker each")
    parser.add_argument("--memory", default="16GB", help="memory per job")
    parser.add_argument("--walltime", default="04:00:00", help="per job, HH:MM:SS")
    parser.add_argument("--account", default=None)
    parser.add_argument("--queue", default=None, help="the SLURM partition")
    parser.add_argument("--gpu", action="store_true", help="one GPU per job, one worker on it")
    parser.add_argument("--python", default=sys.executable, help="the workers' interpreter")
    parser.add_argument("--hours", default=None, help="stop the campaign after H hours")
    parser.add_argument("--until", default=None, metavar="HH:MM")
    parser.add_argument("--only", nargs="+", default=None, metavar="NAME")
    parser.add_argument("--runs", default=None, help="run store (shared); default $LTH_RUNS")
    parser.add_argument("--cache", default=None, help="state cache (shared); default $LTH_CACHE")
    parser.add_argument("--data", default=None, help="dataset root (shared); default $LTH_DATA")
    parser.add_argument("--print-job-script", action="store_true")
    args = parser.parse_args(argv)
    if min(args.jobs, args.cores) < 1:
        parser.error("--jobs and --cores must be at least 1")

    from dask_jobqueue import SLURMCluster  # the cluster extra: pip install -e ".[cluster]"

    workers = 1 if args.gpu else args.cores  # a GPU job: one worker, on its one device
    directives = ["--gres=gpu:1"] if args.gpu else []
    cluster = SLURMCluster(
        cores=workers,
        processes=workers,  # single-threaded workers: torch gets one thread each
        job_cpu=args.cores,
        memory=args.memory,
        walltime=args.walltime,
        account=args.account,
        queue=args.queue,
        python=args.python,
        job_extra_directives=directives,
        worker_extra_args=["--resources", "GPU=1"] if args.gpu else [],
        scheduler_options={"dashboard_address": None},
    )
    if args.print_job_script:
        print(cluster.job_script())
        cluster.close()
        return 0

    from lth.__main__ import main as lth_main

    cluster.scale(jobs=args.jobs)
    command = ["campaign", "--scheduler", cluster.scheduler_address, "--quiet"]
    for flag in ("hours", "until", "runs", "cache", "data"):
        if getattr(args, flag) is not None:
            command += [f"--{flag}", getattr(args, flag)]
    if args.only:
        command += ["--only", *args.only]
    if args.gpu:
        command += ["--device", "auto"]
    try:
        return lth_main(command)
    finally:
        cluster.close()


if __name__ == "__main__":
    sys.exit(main())
