"""Multi-process training on ``torch.distributed`` (torchrun and DDP; nothing home-made).

``dtg train FILE --nproc N`` re-runs itself under torchrun (:mod:`dtg.runtime.torchrun`) with N
local processes; ``dtg train`` started by torchrun on several machines reads the usual
``RANK``/``WORLD_SIZE``/``LOCAL_RANK``/``MASTER_ADDR`` environment. The backend is ``nccl`` on
CUDA and ``gloo`` on CPU; DDP averages gradients (log Z included).

Randomness is defined per *shard* so that results do not depend on the number of processes:
each step's global batch is cut into ``shards`` slices (train option, default: the world size),
slice k draws its noise from a torch generator seeded by (seed, step, k), and each process
handles ``shards / world`` slices. A single process with ``--set shards=2`` therefore computes
the same update as two processes, to float tolerance, and a run resumes on any number of
processes that divides ``shards``.

A rank that dies makes torchrun stop the others; collectives time out after
``DTG_DIST_TIMEOUT`` seconds (default 120) so nothing hangs longer. Only rank 0 writes the
checkpoint (atomically) and ``metrics.jsonl``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from types import FrameType

import torch
import torch.distributed as dist

__all__ = ["Context", "context_from_env", "launch", "lost_peer", "shard_seed", "DEFAULT_TIMEOUT"]

DEFAULT_TIMEOUT = 120.0


@dataclass
class Context:
    """This process's place in the job.

    :param rank: global rank; :param world: number of processes; :param local_rank: rank on
        this machine (selects the CUDA device).
    """

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def device(self, requested: torch.device) -> torch.device:
        """The device of this rank: ``cuda:LOCAL_RANK`` when training on CUDA."""
        if requested.type == "cuda" and self.active:
            return torch.device("cuda", self.local_rank)
        return requested

    def all_mean(self, value: torch.Tensor) -> torch.Tensor:
        """The mean of a scalar over ranks (for logging)."""
        if not self.active:
            return value
        value = value.detach().clone()
        dist.all_reduce(value)
        return value / self.world

    def any_rank(self, flag: int) -> int:
        """The largest of ``flag`` over ranks (a host sync: called at sync points only).

        :param flag: this rank's value (e.g. the number of a signal received, or 0).
        :returns: the maximum over all ranks (``flag`` itself in a single process).
        """
        if not self.active:
            return flag
        value = torch.tensor([flag], dtype=torch.int64, device=self.device_of_group())
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return int(value.item())

    def device_of_group(self) -> torch.device:
        """Where the group's collectives run: this rank's CUDA device under nccl, else the CPU."""
        if dist.is_initialized() and dist.get_backend() == "nccl":
            return torch.device("cuda", self.local_rank)
        return torch.device("cpu")

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def close(self) -> None:
        if self.active and dist.is_initialized():
            dist.destroy_process_group()


def context_from_env(device: torch.device) -> Context:
    """Join the process group when started by torchrun (``WORLD_SIZE`` > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Context()
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        timeout = float(os.environ.get("DTG_DIST_TIMEOUT", DEFAULT_TIMEOUT))
        if device.type == "cuda":
            torch.cuda.set_device(local)
        dist.init_process_group(backend, timeout=timedelta(seconds=timeout))
    return Context(rank, world, local)


def lost_peer(error: BaseException) -> bool:
    """Whether ``error`` is a collective failing because another rank is gone.

    gloo reports a dead peer as a plain ``RuntimeError`` ("Connection reset by peer", "Connection
    closed by peer"), nccl and the store as :class:`torch.distributed.DistError`.

    :param error: what the training step raised.
    :returns: true for a lost peer (the job cannot go on; the dead rank explains itself).
    """
    if isinstance(error, dist.DistError):
        return True
    text = str(error)
    return any(mark in text for mark in ("gloo", "NCCL", "by peer", "Socket Timeout"))


def shard_seed(seed: int, step: int, shard: int) -> int:
    """The seed of shard ``shard`` at ``step``: the same on every process layout."""
    return (seed * 1_000_003 + step * 7_919 + shard * 104_729) % (2**63 - 1)


def launch(argv: Sequence[str], nproc: int) -> int:
    """Re-run ``dtg train`` under torchrun with ``nproc`` local processes.

    :param argv: the ``dtg`` arguments without ``--nproc``.
    :returns: torchrun's exit status (non-zero when any rank failed).
        A SIGTERM is forwarded to the ranks (``128 + 15`` once they have saved and stopped).
    """
    command = [
        sys.executable,
        "-m",
        "dtg.runtime.torchrun",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "dtg",
        *argv,
    ]
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    process = subprocess.Popen(command, env=env)

    def forward(signum: int, frame: FrameType | None) -> None:
        process.send_signal(signum)  # torchrun passes it on to every rank; rank 0 saves

    # SIGTERM is forwarded; Ctrl-C reaches torchrun and the ranks from the terminal already
    # (one process group), so this process only waits for them to save and stop.
    previous = {
        signal.SIGTERM: signal.signal(signal.SIGTERM, forward),
        signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN),
    }
    try:
        return process.wait()  # 128 + signal after one (rank 0 has said where it saved)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
