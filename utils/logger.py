"""Run logs a user can plot: CSV files (one per stream) and TensorBoard scalars."""
import csv
from pathlib import Path


class RunLogger:
    """`scalars(stream, step, **values)` appends a row to `<output_dir>/<stream>_log.csv` and to TensorBoard.

    A stream's columns are fixed by its first row; later rows may not add columns.
    """

    def __init__(self, output_dir, tensorboard=True):
        self.output_dir = Path(output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.columns = {}
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(self.output_dir / "tensorboard"))
            except ImportError:
                self.writer = None

    def scalars(self, stream, step, **values):
        path = self.output_dir / f"{stream}_log.csv"
        if stream not in self.columns:
            self.columns[stream] = ["step", *values]
            if not path.exists() or path.stat().st_size == 0:
                with open(path, "w", newline="") as handle:
                    csv.writer(handle).writerow(self.columns[stream])
        row = [step] + [values.get(column, "") for column in self.columns[stream][1:]]
        with open(path, "a", newline="") as handle:
            csv.writer(handle).writerow(row)
        if self.writer is not None:
            for name, value in values.items():
                if isinstance(value, (int, float)):
                    self.writer.add_scalar(f"{stream}/{name}", value, step)

    def close(self):
        if self.writer is not None:
            self.writer.close()
