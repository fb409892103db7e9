"""Packing trials onto GPUs: ``trials_per_gpu`` per device, within the device's memory."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from nago_pl.errors import NagoError

#: The share of a device's memory the packed trials' estimates may add up to (the rest is
#: the CUDA context, allocator slack and what the estimate does not count).
MEMORY_FRACTION = 0.8
ORDERS = ("round_robin", "free_memory")


@dataclass
class Device:
    """One GPU: its index, its memory (MiB) and the memory estimates of its trials."""

    index: int
    memory_mb: float
    trials: dict[int, float] = field(default_factory=dict)

    def free_mb(self) -> float:
        """The memory not yet promised to a trial (of the usable fraction)."""
        return MEMORY_FRACTION * self.memory_mb - sum(self.trials.values())


class GpuSlots:
    """Which device a trial runs on: at most ``trials_per_gpu`` trials per device whose memory
    estimates (``memory_mb``) fit together; ``order`` picks among the devices that fit, in turn
    (``round_robin``) or the one with the most free memory (``free_memory``). A trial too large
    to share a device runs alone on an empty one; a multi-device (DDP) trial gets empty devices
    to itself."""

    def __init__(self, devices: list[tuple[int, float]], trials_per_gpu: int = 1,
                 order: str = "round_robin") -> None:
        if order not in ORDERS:
            raise NagoError(f"executor.gpu_order={order!r}: allowed: {', '.join(ORDERS)}")
        if not devices:
            raise NagoError("GpuSlots: no GPU to place trials on")
        self.devices = [Device(i, m) for i, m in devices]
        self.trials_per_gpu = trials_per_gpu
        self.order = order
        self._next = 0

    @property
    def slots(self) -> int:
        """How many trials can run at once (when all fit)."""
        return len(self.devices) * self.trials_per_gpu

    def place(self, trial_id: int, memory_mb: float, count: int = 1) -> list[int] | None:
        """The device indices (``count`` of them) for ``trial_id``, now holding it, or None
        when there is no room yet."""
        if count > 1:
            if count > len(self.devices):
                raise NagoError(f"a trial asks for {count} GPUs; the search has "
                                f"{len(self.devices)} (executor.gpus)")
            empty = [d for d in self.devices if not d.trials]
            if len(empty) < count:
                return None
            for device in empty[:count]:
                device.trials[trial_id] = math.inf  # its whole memory: nothing shares it
            return [d.index for d in empty[:count]]
        fits = [d for d in self.devices if not d.trials or (
            len(d.trials) < self.trials_per_gpu and memory_mb <= d.free_mb())]
        if not fits:
            return None
        if self.order == "free_memory":
            chosen = max(fits, key=Device.free_mb)
        else:  # the first fitting device from the one after the last chosen
            n = len(self.devices)
            ring = [self.devices[(self._next + k) % n] for k in range(n)]
            chosen = next(d for d in ring if d in fits)
            self._next = (self.devices.index(chosen) + 1) % n
        chosen.trials[trial_id] = memory_mb
        return [chosen.index]

    def free(self, trial_id: int) -> None:
        """Forget ``trial_id`` (it ended)."""
        for device in self.devices:
            device.trials.pop(trial_id, None)


def gpu_fraction(memory_mb: float | None, device_memory_mb: float | None,
                 trials_per_gpu: int) -> float:
    """The fraction of a GPU to ask Ray for: ``1/trials_per_gpu``, raised in steps of that to what
    the trial's memory estimate needs of a device of ``device_memory_mb`` (at most 1)."""
    step = 1.0 / trials_per_gpu
    if memory_mb is None or not device_memory_mb:
        return step
    needed = memory_mb / (MEMORY_FRACTION * device_memory_mb)
    return min(1.0, max(step, math.ceil(needed / step - 1e-9) * step))
