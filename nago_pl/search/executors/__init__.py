"""Where a search's trials run (``executor=local|process|ray``): see :func:`make_executor`."""

from __future__ import annotations

from omegaconf import DictConfig

from nago_pl.errors import NagoError
from nago_pl.search.executors.base import Done, Event, Executor, Lost, OnReport, Started
from nago_pl.search.executors.local import LocalExecutor
from nago_pl.search.executors.placement import GpuSlots, gpu_fraction
from nago_pl.search.trial import TrialJob

KINDS = ("local", "process", "ray")

__all__ = ["Done", "Event", "Executor", "KINDS", "Lost", "OnReport", "Started", "make_executor",
           "uses_gpus"]


def uses_gpus(cfg: DictConfig) -> bool:
    """Whether the trials train on GPUs (``trainer.accelerator`` other than cpu)."""
    return str(cfg.trainer.accelerator) not in ("cpu",)


def _local_gpus(selected: list[int] | None) -> list[tuple[int, float]]:
    import torch

    if not torch.cuda.is_available():
        raise NagoError("executor=process with a GPU trainer: no CUDA device is visible "
                        "(use trainer=cpu)")
    indices = list(range(torch.cuda.device_count())) if selected is None else selected
    count = torch.cuda.device_count()
    bad = [i for i in indices if not 0 <= i < count]
    if bad:
        raise NagoError(f"executor.gpus={selected}: devices {bad} do not exist "
                        f"(this machine has {count})")
    return [(i, torch.cuda.get_device_properties(i).total_memory / 2**20) for i in indices]


def make_executor(cfg: DictConfig) -> tuple[Executor, bool]:
    """The executor of ``cfg.executor`` running ``cfg.search.workers`` trials at once, and
    whether its jobs need a memory estimate (``TrialJob.memory_mb``, to pack GPUs)."""
    settings = cfg.executor
    workers = int(cfg.search.workers)
    packing = uses_gpus(cfg) and int(settings.trials_per_gpu) > 1
    if settings.kind == "local":
        if workers != 1:
            raise NagoError(f"search.workers={workers} needs a parallel executor: "
                            "executor=process or executor=ray")
        return LocalExecutor(), False
    if settings.kind == "process":
        from nago_pl.search.executors.process import ProcessExecutor

        gpus = None
        if uses_gpus(cfg):
            selected = None if settings.gpus is None else [int(i) for i in settings.gpus]
            gpus = GpuSlots(_local_gpus(selected), int(settings.trials_per_gpu),
                            str(settings.gpu_order))
        return ProcessExecutor(workers, gpus), packing
    from nago_pl.search.executors.ray import RayExecutor

    per_trial = int(settings.trials_per_gpu)
    device_mb = settings.gpu_memory_mb
    if packing and device_mb is None:
        import torch

        if torch.cuda.is_available():
            device_mb = torch.cuda.get_device_properties(0).total_memory / 2**20

    def fraction(job: TrialJob) -> float:
        return gpu_fraction(job.memory_mb, device_mb, per_trial)

    executor = RayExecutor(workers, settings.address, num_cpus=int(settings.cpus_per_trial),
                           num_gpus=1.0 / per_trial if uses_gpus(cfg) else 0,
                           gpu_fraction=fraction if packing else None)
    return executor, packing
