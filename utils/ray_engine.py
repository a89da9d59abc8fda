"""Data preparation on a Ray cluster: one task per video, a bounded number in flight, lost tasks retried.

`map_on_ray(function, jobs, settings, on_lost)` runs `function(job)` as Ray tasks and yields the results as
they finish. `function` must report a job's own failures in its result (a broken video is a result, never
an exception): Ray re-runs only tasks whose worker died (`max_retries`), and a task lost for good becomes
`on_lost(job, error)`. When the cluster itself goes away, `ClusterLost` stops the job; what finished is on
disk (written atomically by the workers) and the next run skips it.

Every node must see the input and output folders, and this repository, at the same paths (one machine, or
a shared file system); docs/scaling.md walks through a multi-machine setup.
"""
import argparse
import collections
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
ENGINES = ("local", "ray")
LOCAL_OBJECT_STORE_BYTES = 256 * 2**20  # results are small records; a local cluster needs little shared memory


class RayUnavailable(RuntimeError):
    """Ray is not installed, or the cluster cannot be reached."""


class ClusterLost(RuntimeError):
    """The Ray cluster went away during a job."""


@dataclass(frozen=True)
class RaySettings:
    address: str | None = None  # None: start a local cluster; "auto": the one this machine joined; HOST:PORT
    local_cpus: int | None = None  # CPUs of a local cluster (None: all of this machine's)
    cpus_per_task: float = 1.0
    gpus_per_task: float = 0.0
    max_in_flight: int = 0  # tasks submitted but not finished (0: 2 x the cluster's task slots)
    max_retries: int = 2  # re-runs of a task whose worker died


def add_ray_arguments(parser: argparse.ArgumentParser, workers_flag="--workers"):
    group = parser.add_argument_group("engine (docs/scaling.md)")
    group.add_argument("--engine", choices=ENGINES, default="local",
                       help="local: processes of this machine (default); ray: tasks on a Ray cluster")
    group.add_argument("--address", default=None,
                       help=f"ray: 'auto' (the cluster this machine joined with `ray start`) or HOST:PORT; default: "
                            f"a local cluster with {workers_flag} CPUs")
    group.add_argument("--cpus-per-task", type=float, default=1.0, help="ray: CPUs one video's task holds")
    group.add_argument("--gpus-per-task", type=float, default=0.0, help="ray: GPUs one video's task holds")
    group.add_argument("--max-in-flight", type=int, default=0,
                       help="ray: videos submitted but not finished (default: 2 x the cluster's task slots)")
    group.add_argument("--retries", type=int, default=2, help="ray: re-runs of a task whose worker died")


def ray_settings(args, workers) -> RaySettings:
    return RaySettings(args.address, workers if args.address is None else None, args.cpus_per_task,
                       args.gpus_per_task, args.max_in_flight, args.retries)


def import_ray():
    try:
        import ray
    except ImportError as error:
        raise RayUnavailable("--engine ray needs Ray: pip install -r requirements-scale.txt") from error
    return ray


def connect(settings: RaySettings):
    """The ray module, connected to the cluster of `settings` (a new local one when no address is given)."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    options = {"runtime_env": {"env_vars": {"PYTHONPATH": str(REPO_ROOT)}}, "log_to_driver": False,
               "include_dashboard": False, "configure_logging": False}
    if settings.address is None:
        options.update(num_cpus=settings.local_cpus, object_store_memory=LOCAL_OBJECT_STORE_BYTES)
    try:
        ray.init(address=settings.address, **options)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise RayUnavailable(f"cannot connect to the Ray cluster at {settings.address}: {error}") from error
    return ray


def task_slots(ray, settings: RaySettings) -> int:
    """How many tasks the cluster runs at once with the requested CPUs (and GPUs) per task."""
    resources = ray.cluster_resources()
    slots = resources.get("CPU", 1) // max(settings.cpus_per_task, 1e-9)
    if settings.gpus_per_task:
        slots = min(slots, resources.get("GPU", 0) // settings.gpus_per_task)
    if slots < 1:
        raise RayUnavailable(f"the cluster ({resources.get('CPU', 0)} CPUs, {resources.get('GPU', 0)} GPUs) cannot run "
                             f"one task of {settings.cpus_per_task} CPUs and {settings.gpus_per_task} GPUs")
    return int(slots)


def map_on_ray(function, jobs, settings: RaySettings, on_lost):
    """Yield function(job) for every job (in finishing order); at most max_in_flight tasks are pending."""
    ray = connect(settings)
    lost_errors = (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError, ray.exceptions.TaskCancelledError)
    remote = ray.remote(num_cpus=settings.cpus_per_task, num_gpus=settings.gpus_per_task,
                        max_retries=settings.max_retries, retry_exceptions=False)(_apply)
    function_ref = ray.put(function)  # serialised once, not with every task
    limit = settings.max_in_flight or 2 * task_slots(ray, settings)
    queue, pending, finished = collections.deque(jobs), {}, 0
    try:
        while queue or pending:
            while queue and len(pending) < limit:
                job = queue.popleft()
                pending[remote.remote(function_ref, job)] = job
            (ready,), _ = ray.wait(list(pending), num_returns=1)
            job = pending.pop(ready)
            try:
                result = ray.get(ready)
            except lost_errors as error:
                result = on_lost(job, f"task lost after {settings.max_retries} retries: {type(error).__name__}")
            finished += 1
            yield result
    except ray.exceptions.RayTaskError:  # the function itself raised (a bug: jobs report their own failures)
        raise
    except (ray.exceptions.RaySystemError, ConnectionError) as error:
        raise ClusterLost(f"the Ray cluster went away after {finished} of {finished + len(pending) + len(queue)} "
                          f"videos ({type(error).__name__}: {error}); finished outputs are kept: run the same "
                          f"command again to resume") from error


def _apply(function, job):
    return function(job)


def shutdown():
    """Disconnect (and stop a local cluster this process started)."""
    ray = import_ray()
    if ray.is_initialized():
        ray.shutdown()
