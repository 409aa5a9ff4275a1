"""Training logs: the per-epoch CSV history, TensorBoard (if installed), and the progress bar.

Only the main process (rank 0) writes. The CSV is rewritten atomically from the history kept in
the checkpoint after every epoch, so it always matches the checkpoint, also after a resume.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from pathlib import Path

from tqdm.auto import tqdm

from dingo_gw.io.atomic import atomic_write

log = logging.getLogger(__name__)

#: Columns of history.csv: epoch (global, 1-based), stage (1-based), learning rate of the epoch,
#: mean training / validation loss, training samples per second, epoch time and cumulative
#: training wall time (s).
HISTORY_COLUMNS = ("epoch", "stage", "lr", "train_loss", "val_loss", "samples_per_s", "epoch_time_s",
                   "wall_time_s")


class _NoBar:
    def update(self, n=1):
        pass

    def set_postfix(self, *args, **kwargs):
        pass

    def close(self):
        pass


class TrainingLog:
    """CSV + TensorBoard + tqdm for one job; a silent no-op on ranks other than 0."""

    def __init__(self, output_dir: str | Path, csv_name: str, enabled: bool, progress: bool, tb_tag: str):
        self.output_dir = Path(output_dir)
        self.csv_path = self.output_dir / csv_name
        self.enabled = enabled
        self.progress = progress and enabled
        self.tb_tag = tb_tag
        self._tb = None
        if enabled:
            try:  # optional: torch's SummaryWriter needs the tensorboard package
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                SummaryWriter = None
            if SummaryWriter is not None:
                self._tb = SummaryWriter(log_dir=str(self.output_dir / "tensorboard"))

    def bar(self, total: int, initial: int, desc: str):
        if not self.progress:
            return _NoBar()
        return tqdm(total=total, initial=initial, desc=desc, unit="batch", dynamic_ncols=True, leave=False)

    def epoch_done(self, history: list[dict]) -> None:
        """Rewrite the CSV from ``history``; log the last row (and send it to TensorBoard)."""
        if not self.enabled or not history:
            return
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=HISTORY_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in history:
            writer.writerow({k: _fmt(row.get(k)) for k in HISTORY_COLUMNS})
        with atomic_write(self.csv_path) as tmp:
            tmp.write_text(buf.getvalue())
        row = history[-1]
        log.info("%s epoch %d (stage %d): train loss %.4f, val loss %s, lr %.2e, %.0f samples/s",
                 self.tb_tag, row["epoch"], row["stage"], row["train_loss"],
                 "n/a" if row.get("val_loss") is None else f"{row['val_loss']:.4f}", row["lr"],
                 row["samples_per_s"])
        if self._tb is not None:
            for key in ("train_loss", "val_loss", "lr", "samples_per_s"):
                if row.get(key) is not None:
                    self._tb.add_scalar(f"{self.tb_tag}/{key}", row[key], row["epoch"])
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def _fmt(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else str(v)
    return v
