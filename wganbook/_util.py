"""The package's one set of argument checks (parameter specs), its one atomic write and its JSON helpers."""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Optional, Tuple, Union

__all__ = [
    "Spec",
    "Int",
    "Float",
    "Bool",
    "Str",
    "Choice",
    "Seq",
    "Device",
    "check_value",
    "atomic_write",
    "jsonable",
    "fsync_dir",
    "temp_path",
]


# ---------------------------------------------------------------------------------------------
# Schema
# ---------------------------------------------------------------------------------------------
Choices = Union[Tuple[str, ...], Callable[[], Tuple[str, ...]]]


@dataclass(frozen=True)
class Spec:
    """Type and constraint of one parameter.

    Parameters
    ----------
    kind : str
        One of ``"int"``, ``"float"``, ``"bool"``, ``"str"``, ``"choice"``, ``"seq"``, ``"device"``.
    lo, hi : float, optional
        Inclusive bounds (``lo_open`` / ``hi_open`` make them strict).
    choices : tuple or callable, optional
        Allowed strings for ``"choice"`` (a callable is evaluated lazily).
    item : Spec, optional
        Item spec of a ``"seq"``.
    length : int, optional
        Required length of a ``"seq"``.
    none_ok : bool, optional
        ``None`` is a valid final value (e.g. "use the method's default").
    """

    kind: str
    lo: Optional[float] = None
    hi: Optional[float] = None
    lo_open: bool = False
    hi_open: bool = False
    choices: Optional[Choices] = None
    item: Optional["Spec"] = None
    length: Optional[int] = None
    none_ok: bool = False

    def allowed(self) -> Tuple[str, ...]:
        """Allowed values of a choice spec."""
        c = self.choices() if callable(self.choices) else self.choices
        return tuple(c or ())

    def describe(self) -> str:
        """Human-readable constraint, used in error messages."""
        if self.kind == "choice":
            return "one of: " + ", ".join(self.allowed())
        if self.kind == "device":
            return "one of: auto, cpu, cuda, cuda:N, mps"
        if self.kind == "seq":
            n = f" of length {self.length}" if self.length else ""
            return f"a list{n} of items, each {self.item.describe()}"
        rng = ""
        if self.lo is not None and self.hi is not None:
            rng = f" in {'(' if self.lo_open else '['}{self.lo}, {self.hi}{')' if self.hi_open else ']'}"
        elif self.lo is not None:
            rng = f" {'>' if self.lo_open else '>='} {self.lo}"
        elif self.hi is not None:
            rng = f" {'<' if self.hi_open else '<='} {self.hi}"
        article = "an" if self.kind[0] in "aeiou" else "a"
        return f"{article} {self.kind}{rng}"


def Int(lo: Optional[int] = None, hi: Optional[int] = None, none_ok: bool = False) -> Spec:
    """An int (bool is not an int) with optional inclusive bounds."""
    return Spec("int", lo=lo, hi=hi, none_ok=none_ok)


def Float(
    lo: Optional[float] = None,
    hi: Optional[float] = None,
    lo_open: bool = False,
    hi_open: bool = False,
    none_ok: bool = False,
) -> Spec:
    """A finite real number (ints accepted and converted) with optional bounds."""
    return Spec("float", lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open, none_ok=none_ok)


def Bool(none_ok: bool = False) -> Spec:
    """A bool."""
    return Spec("bool", none_ok=none_ok)


def Str(none_ok: bool = False) -> Spec:
    """Any string."""
    return Spec("str", none_ok=none_ok)


def Choice(choices: Choices, none_ok: bool = False) -> Spec:
    """One string out of ``choices`` (a tuple, or a callable returning one)."""
    return Spec("choice", choices=choices, none_ok=none_ok)


def Seq(item: Spec, length: Optional[int] = None, none_ok: bool = False) -> Spec:
    """A non-empty list (or tuple) whose items satisfy ``item``."""
    return Spec("seq", item=item, length=length, none_ok=none_ok)


def Device(none_ok: bool = False) -> Spec:
    """A device string: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``."""
    return Spec("device", none_ok=none_ok)


def _infer(value: Any) -> Optional[Spec]:
    if isinstance(value, bool):
        return Bool()
    if isinstance(value, numbers.Integral):
        return Int()
    if isinstance(value, numbers.Real):
        return Float()
    if isinstance(value, str):
        return Str()
    if isinstance(value, (list, tuple)) and value:
        item = _infer(value[0])
        return Seq(item) if item is not None else None
    return None


def check_value(name: str, value: Any, spec: Spec) -> Any:
    """Check one value against its spec and return it normalised.

    ints stay ints (``bool`` is rejected), reals become ``float`` (NaN and infinities rejected),
    sequences become lists (tuples for fixed-length sequences such as ``betas``).

    Parameters
    ----------
    name : str
        The parameter's name (used in the error message).
    value : object
        The value.
    spec : Spec
        Its constraint.

    Returns
    -------
    object
        The normalised value.

    Raises
    ------
    TypeError
        Wrong type, naming the parameter and the expected type.
    ValueError
        Out of range or not an allowed value, naming the parameter and the allowed values.
    """
    if value is None:
        if spec.none_ok:
            return None
        raise TypeError(f"{name} must be {spec.describe()}, got None")
    kind = spec.kind
    if kind == "bool":
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be a bool (True or False), got {type(value).__name__} {value!r}")
        return value
    if kind in ("int", "float"):
        if (
            isinstance(value, bool)
            or not isinstance(value, numbers.Real)
            or (kind == "int" and not isinstance(value, numbers.Integral))
        ):
            raise TypeError(f"{name} must be {spec.describe()}, got {type(value).__name__} {value!r}")
        value = int(value) if kind == "int" else float(value)
        if kind == "float" and not math.isfinite(value):
            raise ValueError(f"{name} must be {spec.describe()} (finite), got {value!r}")
        if spec.lo is not None and (value < spec.lo or (spec.lo_open and value == spec.lo)):
            raise ValueError(f"{name} must be {spec.describe()}, got {value!r}")
        if spec.hi is not None and (value > spec.hi or (spec.hi_open and value == spec.hi)):
            raise ValueError(f"{name} must be {spec.describe()}, got {value!r}")
        return value
    if kind in ("str", "choice", "device"):
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a str ({spec.describe()}), got {type(value).__name__} {value!r}")
        if kind == "choice" and value not in spec.allowed():
            raise ValueError(f"unknown {name} {value!r}; {name} must be {spec.describe()}")
        if kind == "device":
            base, _, index = value.partition(":")
            ok = value in ("auto", "cpu", "cuda", "mps") or (base == "cuda" and index.isdigit())
            if not ok:
                raise ValueError(f"unknown {name} {value!r}; {name} must be {spec.describe()}")
        return value
    if kind == "seq":
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise TypeError(f"{name} must be {spec.describe()}, got {type(value).__name__} {value!r}")
        if len(value) == 0:
            raise ValueError(f"{name} must be a non-empty list, got {value!r}")
        if spec.length is not None and len(value) != spec.length:
            raise ValueError(f"{name} must be {spec.describe()}, got {value!r}")
        items = [check_value(f"{name}[{i}]", v, spec.item) for i, v in enumerate(value)]
        return tuple(items) if spec.length is not None else items
    raise ValueError(f"internal error: unknown spec kind {kind!r} for {name}")  # pragma: no cover


# ---------------------------------------------------------------------------------------------
# The one atomic write
# ---------------------------------------------------------------------------------------------
def temp_path(path: Union[str, os.PathLike]) -> Path:
    """The temporary file ``atomic_write`` writes before renaming: ``.<name>.<pid>.tmp`` next to ``path``.

    A process killed mid-write leaves it behind; ``train.checkpoint.remove_stale_temp_files`` removes
    those of dead processes.
    """
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def fsync_dir(folder: Union[str, os.PathLike]) -> None:
    """fsync a folder, so that a rename inside it survives a crash (silently skipped where unsupported)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Union[str, os.PathLike], content: Union[str, bytes, Callable[[IO[bytes]], Any]]) -> None:
    """Write ``path`` atomically: readers see the old file or the new one, never a part.

    The content goes to ``temp_path(path)`` in the same folder (created if missing), which is flushed
    and fsynced, renamed over ``path`` with ``os.replace``, and then the folder is fsynced. On any
    failure the temporary file is removed and ``path`` is left as it was.

    Parameters
    ----------
    path : str or path-like
        The file to write.
    content : str, bytes or callable
        Text (written as UTF-8), bytes, or a callable ``write(f)`` that writes to the binary file
        object ``f`` (e.g. ``lambda f: torch.save(obj, f)``).

    Raises
    ------
    TypeError
        ``content`` is none of the three kinds (before anything is written).
    OSError
        The folder cannot be created or written (nothing is left behind).
    """
    if isinstance(content, str):
        data: Optional[bytes] = content.encode("utf-8")
    elif isinstance(content, (bytes, bytearray, memoryview)):
        data = bytes(content)
    elif callable(content):
        data = None
    else:
        raise TypeError(f"content must be a str, bytes or a callable write(f), got {type(content).__name__}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        with open(tmp, "wb") as f:
            if data is None:
                content(f)
            else:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    finally:
        try:
            tmp.unlink()
        except FileNotFoundError:  # renamed: nothing to clean
            pass


# ---------------------------------------------------------------------------------------------
# JSON
# ---------------------------------------------------------------------------------------------
def jsonable(value: Any) -> Any:
    """``value`` in plain JSON types, recursively.

    Arrays and tensors (anything with ``tolist()``) become lists; ``bool``, ``None`` and ``str``
    stay; integers become ``int``; reals become ``float``, except non-finite ones, which become the
    strings ``'inf'``, ``'-inf'``, ``'nan'`` (strict JSON has no such numbers); mappings become dicts
    with ``str`` keys; lists and tuples become lists; anything else becomes ``str(value)``.

    Parameters
    ----------
    value : object

    Returns
    -------
    object
        Something ``json.dumps(..., allow_nan=False)`` accepts.
    """
    if hasattr(value, "tolist") and callable(value.tolist):
        value = value.tolist()
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        v = float(value)
        return v if math.isfinite(v) else repr(v)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return str(value)
