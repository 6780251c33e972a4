"""Safe unpickling of the released MOSI/MOSEI feature files.

The community feature files (MulT-style ``mosi_data_noalign.pkl``, MMSA-style
``unaligned_50.pkl``) are plain pickles passed around on shared drives. A pickle can
name any importable callable and call it while it is being read, so ``pickle.load`` on
an untrusted file can run arbitrary code. :class:`SafeUnpickler` resolves only the
handful of globals that numpy arrays, dtypes and scalars (and builtin containers) need;
every other global is refused *before* anything is called, with
:class:`UnsafePickleError` naming the refused ``module.name``.

Both numpy layouts load: numpy 1.x pickles name ``numpy.core.multiarray`` and numpy 2
pickles name ``numpy._core.multiarray``; both map to the running numpy's functions.
"""

from __future__ import annotations

import os
import pickle
from typing import Any, BinaryIO, Callable

import numpy as np

__all__ = ["DatasetFormatError", "UnsafePickleError", "SafeUnpickler", "safe_load"]


class DatasetFormatError(ValueError):
    """A dataset file is not in the expected format.

    The message names the file, the split and key where relevant, and what was
    expected versus what was found.
    """


class UnsafePickleError(DatasetFormatError, pickle.UnpicklingError):
    """A pickle asked for a global outside the allow-list; nothing was executed."""


def _safe_codecs_encode(obj: Any, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it for ``bytes`` (str -> latin-1 bytes)."""
    if not isinstance(obj, str) or encoding.lower().replace("_", "-") not in ("latin1", "latin-1"):
        raise UnsafePickleError("refused call _codecs.encode with arguments other than (str, 'latin1')")
    return obj.encode("latin-1", errors)


def _no_int_size(kind: type) -> Callable[..., Any]:
    """``bytes``/``bytearray`` constructors that refuse an integer size (memory exhaustion)."""

    def build(*args: Any) -> Any:
        if args and isinstance(args[0], int):
            raise UnsafePickleError(f"refused call builtins.{kind.__name__}(int)")
        return kind(*args)

    return build


def _allowed_globals() -> dict[tuple[str, str], Any]:
    """The allow-list: (module, name) as written in the pickle -> object to return."""
    try:  # numpy >= 2
        from numpy._core import multiarray as ma
        from numpy._core import numeric as nm
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray as ma  # type: ignore[no-redef]
        from numpy.core import numeric as nm  # type: ignore[no-redef]
    import collections

    table: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("_codecs", "encode"): _safe_codecs_encode,
    }
    for prefix in ("numpy.core", "numpy._core"):
        for sub in ("multiarray", "_multiarray_umath"):
            table[(f"{prefix}.{sub}", "_reconstruct")] = ma._reconstruct
            table[(f"{prefix}.{sub}", "scalar")] = ma.scalar
        if hasattr(nm, "_frombuffer"):  # protocol-5 arrays
            table[(f"{prefix}.numeric", "_frombuffer")] = nm._frombuffer
    for mod in ("builtins", "__builtin__"):  # __builtin__: Python 2 pickles
        table[(mod, "set")] = set
        table[(mod, "frozenset")] = frozenset
        table[(mod, "complex")] = complex
        table[(mod, "bytes")] = _no_int_size(bytes)
        table[(mod, "bytearray")] = _no_int_size(bytearray)
    return table


_ALLOWED: dict[tuple[str, str], Any] | None = None


class SafeUnpickler(pickle.Unpickler):
    """A :class:`pickle.Unpickler` whose ``find_class`` only returns allow-listed globals.

    ``source`` is used in error messages (the file name). ``encoding="latin1"`` lets
    Python 2 pickles of numpy arrays load; it does not affect Python 3 pickles.
    """

    def __init__(self, file: BinaryIO, source: str = "<stream>") -> None:
        super().__init__(file, encoding="latin1")
        self.source = source

    def find_class(self, module: str, name: str) -> Any:  # noqa: D401 - pickle hook
        global _ALLOWED
        if _ALLOWED is None:
            _ALLOWED = _allowed_globals()
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"{self.source}: refused to unpickle global '{module}.{name}': only numpy "
                "arrays, dtypes, scalars and builtin containers may be reconstructed; "
                "nothing was executed"
            ) from None


def safe_load(path: str | os.PathLike[str]) -> Any:
    """Read one pickle from ``path`` with :class:`SafeUnpickler`.

    Raises :class:`UnsafePickleError` for a refused global and
    :class:`DatasetFormatError` for a missing, truncated or non-pickle file.
    """
    source = os.fspath(path)
    try:
        f = open(source, "rb")
    except OSError as exc:
        raise DatasetFormatError(f"{source}: cannot open file ({exc.strerror})") from None
    with f:
        try:
            return SafeUnpickler(f, source).load()
        except UnsafePickleError:
            raise
        except Exception as exc:  # any malformed stream: truncated, not a pickle, ...
            raise DatasetFormatError(
                f"{source}: expected a pickle file, found unreadable data "
                f"(truncated or not a pickle: {type(exc).__name__}: {exc})"
            ) from None
