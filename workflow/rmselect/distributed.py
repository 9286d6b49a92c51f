"""Process-group set-up shared by the DeepSpeed trainers (RM, SFT/DPO).

A lone process (no launcher, or a launcher with one rank) joins a group of one through a
file store instead of a TCP port: picking a "free" port and binding it later is a race that
two jobs started at the same moment on one machine lose (EADDRINUSE), which Snakemake's
parallel jobs do. Launched multi-rank jobs keep the launcher's rendezvous.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any


def init_lone_process_group(backend: str, timeout: Any = None) -> bool:
    """Initialise a world of one with a file store; returns whether it did anything."""
    import torch.distributed as dist

    if dist.is_initialized() or int(os.environ.get("WORLD_SIZE", "1")) != 1:
        return False
    fd, path = tempfile.mkstemp(prefix="rmselect-pg-")
    os.close(fd)
    os.unlink(path)  # the file store creates it; an existing non-empty file would be reused
    kw = {} if timeout is None else {"timeout": timeout}
    dist.init_process_group(backend, init_method=f"file://{path}", rank=0, world_size=1, **kw)
    return True
