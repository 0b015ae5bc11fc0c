"""torchrun integration: one process per GPU, DistributedDataParallel, rank 0 does the I/O."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_kind: str) -> DistInfo:
    """Join the process group torchrun describes in the environment (no-op when not under torchrun)."""
    from restyle.settings import TorchrunEnv

    env = TorchrunEnv()
    world, rank, local_rank = env.world_size, env.rank, env.local_rank
    if world <= 1:
        return DistInfo()
    backend = "nccl" if device_kind == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return DistInfo(rank=rank, world_size=world, local_rank=local_rank)


def resolve_device(name: str, info: DistInfo) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            from restyle.errors import UserError

            raise UserError("--device cuda asked for, but no CUDA GPU is available")
        if info.enabled:
            return torch.device("cuda", info.local_rank)
        return torch.device(name)
    if name != "cpu":
        from restyle.errors import UserError

        raise UserError(f"unknown device {name!r}; use auto, cpu or cuda[:N]")
    return torch.device("cpu")


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def all_reduce_mean(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.enabled:
        value = value.detach().clone()
        dist.all_reduce(value)
        value /= info.world_size
    return value


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
