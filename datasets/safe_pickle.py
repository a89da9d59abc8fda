"""Restricted unpickling for the official data files.

The official layout stores poses and labels as pickles. A pickle can import and call anything,
so we never use `pickle.load` on user data: `safe_load` admits only plain containers, numbers,
strings and numpy arrays (plus the numpy internals needed to rebuild an ndarray), and refuses
anything else with an error that names the file and the forbidden global.
"""
import gzip
import io
import pickle
import zlib
from pathlib import Path

# (module, name) pairs a numpy-array pickle needs; nothing here can run user code.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("__builtin__", "set"),  # protocol <= 2 writes builtins under their Python 2 name
    ("__builtin__", "frozenset"),
    ("collections", "OrderedDict"),
    ("_codecs", "encode"),  # numpy pickles written by Python 2 era code encode bytes this way
}


class UnsafePickleError(ValueError):
    """Raised when a pickle asks for a global outside the allow-list."""


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, source):
        super().__init__(file)
        self.source = source

    def find_class(self, module, name):
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise UnsafePickleError(
            f"{self.source}: refusing to unpickle '{module}.{name}' "
            "(only numpy arrays, numbers, strings, lists, tuples and dicts are allowed)"
        )


def safe_loads(data: bytes, source: str = "<bytes>"):
    """Unpickle `data` with the restricted allow-list; `source` names the origin in errors."""
    try:
        return _RestrictedUnpickler(io.BytesIO(data), source).load()
    except UnsafePickleError:
        raise
    except Exception as error:  # truncated or corrupt stream
        raise ValueError(f"{source}: not a readable pickle ({type(error).__name__}: {error})") from error


def safe_load(path) -> object:
    """Load a (possibly gzip-compressed) pickle file through the restricted unpickler."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as error:
            raise ValueError(f"{path}: corrupt gzip stream ({error})") from error
    return safe_loads(raw, str(path))
