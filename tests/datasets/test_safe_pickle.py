"""The restricted unpickler: plain data round-trips, code-running pickles are refused (and not run),
broken files give errors that name the file."""
import builtins
import gzip
import os
import pickle
from collections import OrderedDict

import numpy as np
import pytest

from datasets.safe_pickle import UnsafePickleError, safe_load, safe_loads


class _Gadget:
    """Pickles as a call of `function(*arguments)`: what a malicious data file would contain."""

    def __init__(self, function, *arguments):
        self.function, self.arguments = function, arguments

    def __reduce__(self):
        return self.function, self.arguments


def _sample_data():
    return {
        "keypoints": [np.random.default_rng(0).random((1, 133, 2), dtype=np.float32) for _ in range(3)],
        "scores": np.ones((3, 1, 133), dtype=np.float64),
        "mask": np.array([True, False]),
        "ids": np.arange(4, dtype=np.int64),
        "start": np.int64(2),
        "ratio": np.float32(0.5),
        "name": "S000020_P0000_T00",
        "gloss": ["他", "今天"],
        "pair": (1, 2.5, None),
        "ordered": OrderedDict(a=1),
        "tags": {"x", "y"},
    }


def _assert_same(loaded, original):
    np.testing.assert_equal(loaded, original)
    assert loaded["keypoints"][0].dtype == np.float32 and loaded["ids"].dtype == np.int64
    assert type(loaded["pair"]) is tuple and type(loaded["ordered"]) is OrderedDict


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_plain_data_round_trips(protocol):
    data = _sample_data()
    _assert_same(safe_loads(pickle.dumps(data, protocol=protocol)), data)


def test_file_and_gzip_file_round_trip(tmp_path):
    data = _sample_data()
    (tmp_path / "plain.pkl").write_bytes(pickle.dumps(data))
    (tmp_path / "labels.dev").write_bytes(gzip.compress(pickle.dumps(data)))
    _assert_same(safe_load(tmp_path / "plain.pkl"), data)
    _assert_same(safe_load(tmp_path / "labels.dev"), data)


def test_numpy1_era_module_path_loads():
    """Official files were written with numpy 1.x, whose pickles name numpy.core.multiarray."""
    payload = pickle.dumps(np.arange(3.0), protocol=2)  # protocol 2 names globals as plain text lines
    legacy = payload.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"numpy.core.multiarray" in legacy
    np.testing.assert_array_equal(safe_loads(legacy), np.arange(3.0))


@pytest.mark.parametrize("compress", [False, True], ids=["pickle", "gzip-pickle"])
def test_os_system_pickle_is_refused_and_not_run(tmp_path, compress):
    marker = tmp_path / "executed"
    payload = pickle.dumps({"keypoints": [_Gadget(os.system, f"touch {marker}")]})
    assert b"system" in payload  # the payload really asks for os.system
    path = tmp_path / "evil.pkl"
    path.write_bytes(gzip.compress(payload) if compress else payload)
    with pytest.raises(UnsafePickleError, match=r"evil\.pkl.*system"):
        safe_load(path)
    assert not marker.exists()


@pytest.mark.parametrize("function", [builtins.eval, builtins.getattr, os.remove], ids=lambda f: f.__name__)
def test_other_callables_are_refused(function):
    with pytest.raises(UnsafePickleError, match=f"source.pkl: refusing to unpickle .*{function.__name__}"):
        safe_loads(pickle.dumps([1, _Gadget(function, "x")]), "source.pkl")


def test_unsafe_error_is_a_value_error():
    assert issubclass(UnsafePickleError, ValueError)


@pytest.mark.parametrize(
    "content",
    [pickle.dumps(_sample_data())[:-40], b"this is not a pickle", b""],
    ids=["truncated", "garbage", "empty"],
)
def test_broken_pickle_names_the_file(tmp_path, content):
    path = tmp_path / "broken.pkl"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"broken\.pkl: not a readable pickle") as error:
        safe_load(path)
    assert not isinstance(error.value, UnsafePickleError)


@pytest.mark.parametrize("damage", ["flipped", "truncated"])
def test_corrupt_gzip_names_the_file(tmp_path, damage):
    packed = gzip.compress(pickle.dumps(_sample_data()))
    if damage == "flipped":  # keep the gzip header, scramble the deflate stream
        packed = packed[:10] + bytes(byte ^ 0x55 for byte in packed[10:-8]) + packed[-8:]
    else:
        packed = packed[: len(packed) // 2]
    path = tmp_path / "labels.train"
    path.write_bytes(packed)
    with pytest.raises(ValueError, match=r"labels\.train: corrupt gzip stream"):
        safe_load(path)


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"absent\.pkl: file not found"):
        safe_load(tmp_path / "absent.pkl")
