"""Data-parallel training under torchrun: one process per GPU (or CPU), gradients averaged.

`torchrun --nproc_per_node N -m rechroma train ...` starts N copies of the same command
with RANK, LOCAL_RANK and WORLD_SIZE set; `DistributedContext.from_environment` sees
them and joins the process group: NCCL between GPUs, gloo on CPUs. Without torchrun
the context is a single process and nothing here changes the training.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands among the training processes."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 alone logs, validates, draws samples and writes checkpoints."""
        return self.rank == 0

    @classmethod
    def from_environment(cls, device_name: str) -> DistributedContext:
        """Join torchrun's process group when its variables are set; else a single process."""
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size <= 1:
            return cls()
        context = cls(
            rank=int(os.environ["RANK"]),
            world_size=world_size,
            local_rank=int(os.environ.get("LOCAL_RANK", "0")),
        )
        if not dist.is_initialized():
            cuda = device_name in ("auto", "cuda") and torch.cuda.is_available()
            if cuda:
                torch.cuda.set_device(context.local_rank)
            dist.init_process_group(backend="nccl" if cuda else "gloo")
        logger.info("process %d of %d (local %d)", context.rank, world_size, context.local_rank)
        return context

    def device(self, resolved: torch.device) -> torch.device:
        """This process's device: its own GPU by local rank, or the CPU."""
        if resolved.type == "cuda" and self.enabled:
            return torch.device("cuda", self.local_rank)
        return resolved

    def wrap(self, model: nn.Module, device: torch.device, may_skip_params: bool) -> nn.Module:
        """DistributedDataParallel around `model` when there are several processes.

        On GPUs batch norms become synchronised ones, so statistics come from the whole
        global batch; gloo on CPUs has no synchronised batch norm, so there each process
        normalises by its own part. `may_skip_params` (a frozen encoder phase) lets
        steps leave parameters without gradients.
        """
        if not self.enabled:
            return model
        if device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return DistributedDataParallel(
            model,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=may_skip_params,
        )

    def close(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()


def unwrap(model: nn.Module) -> nn.Module:
    """The network inside a DistributedDataParallel wrapper (or the network itself)."""
    return model.module if isinstance(model, DistributedDataParallel) else model
