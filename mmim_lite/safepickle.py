"""Safe unpickling of the released feature files, and the dataset format errors:
:class:`SafeUnpickler` resolves only the globals numpy arrays, dtypes, scalars and builtin
containers need (numpy 1.x and 2); others are refused."""

from __future__ import annotations

import collections
import os
import pickle
from collections.abc import Callable
from typing import Any, BinaryIO

import numpy as np

try:  # numpy >= 2
    from numpy._core import multiarray as _ma
    from numpy._core import numeric as _nm
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _ma  # type: ignore[no-redef]
    from numpy.core import numeric as _nm

__all__ = ["DatasetFormatError", "UnsafePickleError", "SafeUnpickler", "safe_load"]


class DatasetFormatError(ValueError):
    """A dataset file is not in the expected format; the message names the file (split, key),
    expected and found."""


class UnsafePickleError(DatasetFormatError, pickle.UnpicklingError):
    """A pickle asked for a global outside the allow-list; nothing was executed."""


def _safe_codecs_encode(
    obj: Any, encoding: str = "utf-8", errors: str = "strict"
) -> bytes:  # protocol-2 bytes
    if not isinstance(obj, str) or encoding.lower().replace("_", "-") not in ("latin1", "latin-1"):
        raise UnsafePickleError(
            "refused call _codecs.encode with arguments other than (str, 'latin1')"
        )
    return obj.encode("latin-1", errors)


def _no_int_size(kind: type) -> Callable[..., Any]:  # bytes(n) / bytearray(n) would exhaust memory
    def build(*args: Any) -> Any:
        if args and hasattr(args[0], "__index__"):  # int, bool, numpy integers
            raise UnsafePickleError(f"refused call builtins.{kind.__name__}(int)")
        return kind(*args)

    return build


# (module, name) as written in the pickle -> the object to return
_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("_codecs", "encode"): _safe_codecs_encode,
}
for _p in ("numpy.core", "numpy._core"):
    _ALLOWED[(f"{_p}.numeric", "_frombuffer")] = _nm._frombuffer  # protocol-5 arrays
    for _s in ("multiarray", "_multiarray_umath"):
        _ALLOWED.update(
            {(f"{_p}.{_s}", "_reconstruct"): _ma._reconstruct, (f"{_p}.{_s}", "scalar"): _ma.scalar}
        )
for _mod in ("builtins", "__builtin__"):  # __builtin__: Python 2 pickles
    _ALLOWED.update(
        {
            (_mod, "set"): set,
            (_mod, "frozenset"): frozenset,
            (_mod, "complex"): complex,
            (_mod, "bytes"): _no_int_size(bytes),
            (_mod, "bytearray"): _no_int_size(bytearray),
        }
    )


class SafeUnpickler(pickle.Unpickler):
    """An unpickler whose ``find_class`` returns only allow-listed globals; ``source`` names the
    file in errors."""

    def __init__(self, file: BinaryIO, source: str = "<stream>") -> None:
        super().__init__(file, encoding="latin1")  # lets Python 2 pickles of numpy arrays load
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise UnsafePickleError(
                f"{self.source}: refused to unpickle global '{module}.{name}': only numpy arrays, "
                "dtypes, scalars and builtin containers may be reconstructed; nothing was executed"
            )
        return _ALLOWED[(module, name)]


def safe_load(path: str | os.PathLike[str]) -> Any:
    """One pickle read with :class:`SafeUnpickler`; a missing, truncated or non-pickle file:
    DatasetFormatError."""
    source = os.fspath(path)
    try:
        with open(source, "rb") as f:
            return SafeUnpickler(f, source).load()
    except UnsafePickleError:
        raise
    except OSError as exc:
        raise DatasetFormatError(f"{source}: cannot open or read file ({exc.strerror})") from None
    except Exception as exc:  # any malformed stream: truncated, not a pickle, ...
        raise DatasetFormatError(
            f"{source}: expected a pickle file, found unreadable data "
            f"(truncated or not a pickle: {type(exc).__name__}: {exc})"
        ) from None
