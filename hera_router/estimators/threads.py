"""The torch thread count of a process that serves estimators (``HERA_ESTIMATORS__TORCH_THREADS``).

torch sizes its intra-op pool to every core by default. A prefork router runs one child per core,
so with the default each child's forward passes fight the other children for the same cores; on
a busy two-core machine a batch-1 MiniLM pass was several times slower with two threads than with
one (benchmarks/results/hera_decisions.md has the numbers). The router therefore sets
the count on purpose, once per process (a forked child sets it again: thread pools do not survive
a fork), when it first loads its estimators.
"""

from __future__ import annotations


def apply_torch_threads(threads: int) -> int:
    """Set torch's intra-op thread count to ``threads`` in this process (0: leave torch's default).

    Returns the count in force afterwards. Idempotent; cheap enough to call on every load.
    """
    import torch

    if threads > 0 and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return int(torch.get_num_threads())
