"""Where a run writes its logs: the text log (output/log/train_logs.txt, test_logs.txt) and TensorBoard."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

__all__ = ["RunPaths", "attach_log_file", "detach_log_file", "open_tensorboard"]


class RunPaths:
    """The output folders of a run under cfg.output_dir (Hand4Whole's layout)."""

    def __init__(self, output_dir: str | Path) -> None:
        self.output_dir = Path(output_dir)
        self.model_dir = self.output_dir / "model_dump"  # snapshot_{epoch}.pth.tar
        self.log_dir = self.output_dir / "log"  # train_logs.txt, test_logs.txt, tensorboard/
        self.vis_dir = self.output_dir / "vis"
        self.result_dir = self.output_dir / "result"
        self.tensorboard_dir = self.log_dir / "tensorboard"


def attach_log_file(path: Path, is_main: bool) -> logging.Handler | None:
    """Sends log records to the console (every process) and, on the main process, appended to `path`.

    Rank 0 logs from INFO up; the other ranks only warnings, so a multi-process run prints each line once.
    Returns the file handler, to be given to `detach_log_file` when the run ends (None on the other ranks).
    """
    root = logging.getLogger()
    root.setLevel(logging.INFO if is_main else logging.WARNING)
    if not root.handlers:  # a spawned process; the entry script's own process has its console handler already
        console = logging.StreamHandler(sys.stderr)
        console.setFormatter(logging.Formatter("%(message)s"))
        root.addHandler(console)
    # PyOpenGL announces at INFO that an optional accelerator module is absent; not the run's business.
    logging.getLogger("OpenGL").setLevel(logging.WARNING)
    if not is_main:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    root.addHandler(handler)
    return handler


def detach_log_file(handler: logging.Handler | None) -> None:
    """Closes what `attach_log_file` opened."""
    if handler is not None:
        logging.getLogger().removeHandler(handler)
        handler.close()


def open_tensorboard(log_dir: Path) -> Any:
    """A TensorBoard SummaryWriter writing under `log_dir` (imported here: only rank 0 needs tensorboard)."""
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(log_dir))
