"""One clear line for a user's mistake, a traceback only for a bug (or with --debug).

Command-line entry points wrap their work in `user_errors(debug)`: data, checkpoint, run-folder,
language-model, non-finite training and file-system errors become `SystemExit("error: ...")` (exit status 1,
the message on standard error); anything else propagates with its traceback.
"""
import contextlib

from datasets.formats import DataFormatError
from datasets.registry import UnknownDatasetError
from engine import NonFiniteError
from models.language_model import LanguageModelError
from runs.folder import RunFolderError
from utils.checkpoint import CheckpointError


class UsageError(ValueError):
    """Flags that do not fit together; the message names them."""


USER_ERRORS = (DataFormatError, UnknownDatasetError, LanguageModelError, RunFolderError, CheckpointError, UsageError,
               NonFiniteError, OSError)


def one_line(error) -> str:
    text = str(error) or type(error).__name__
    if isinstance(error, OSError) and error.filename and str(error.filename) not in text:
        text = f"{error.filename}: {text}"
    return "error: " + text


@contextlib.contextmanager
def user_errors(debug=False):
    """Turn the errors a user can fix into one line and exit status 1 (re-raised as they are with debug)."""
    try:
        yield
    except USER_ERRORS as error:
        if debug:
            raise
        raise SystemExit(one_line(error)) from error
