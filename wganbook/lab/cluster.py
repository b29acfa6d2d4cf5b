r"""Independent runs on a Dask cluster: the scheduler's address, a check that it answers, the runs sent to it.

A *cluster* here is Dask's: a scheduler (``dask scheduler``) and workers (``dask worker ADDRESS``,
one per GPU or CPU core, started by hand, by ``dask-jobqueue`` on Slurm, or by any Dask deployment).
:func:`wganbook.lab.sweeps.map_runs` sends its runs to the cluster when a scheduler is configured --
the ``scheduler`` argument, or the environment variable ``$WGANBOOK_SCHEDULER`` (how
``python -m wganbook book --scheduler ADDRESS`` reaches every chapter's kernel):

* an address ``tcp://host:port`` (also ``tls://``, ``ws://``, ``wss://``, ``inproc://``), or
* the path of a *scheduler file* (``dask scheduler --scheduler-file FILE`` writes one; a JSON
  object with an ``"address"``).

Every run is one task (``client.submit(..., pure=False)``): the workers should run one thread each
(``--nthreads 1``), so that a worker trains one run at a time. When the workers advertise a
``GPU`` resource (``dask worker ... --resources GPU=1``), each run asks for ``{"GPU": 1}``, so a
GPU holds one run at a time. Results come back in the order of the runs; the first run that fails
stops the others and its own exception is re-raised, with a note naming the run. A run whose worker
process died (killed, out of memory) is resubmitted by the scheduler to another worker
(``distributed.scheduler.allowed-failures`` times, 3 by default); a run given a ``checkpoint_root``
on a path every worker sees then resumes from its last checkpoint
(:func:`wganbook.train.loop.train`).

``dask`` and ``distributed`` are an optional dependency: ``pip install 'wganbook[cluster]'``. The
address is checked (its form at once, then a connection with a short timeout) before any run starts.
"""

from __future__ import annotations

import json
import os
import re
import socket
from pathlib import Path
from typing import Any, Callable, List, Optional, Sequence

__all__ = [
    "SCHEDULER_ENV",
    "INSTALL_HINT",
    "resolve_scheduler",
    "scheduler_address",
    "check_scheduler",
    "require_dask",
    "get_client",
    "run_on_cluster",
]

#: Environment variable naming the Dask scheduler (an address or a scheduler file).
SCHEDULER_ENV = "WGANBOOK_SCHEDULER"
#: How to install the optional dependency.
INSTALL_HINT = "pip install 'wganbook[cluster]'"
#: Seconds to wait for the scheduler to answer.
CONNECT_TIMEOUT = 5.0

_PROTOCOLS = ("tcp", "tls", "ws", "wss", "inproc")
_ADDRESS = re.compile(r"^(?P<proto>[a-z]+)://(?P<host>\[[0-9a-fA-F:]+\]|[^:/\s\[\]]+):(?P<port>[0-9]+)/?$")
_FORMS = "an address tcp://host:port (or tls://, ws://, wss://) or the path of an existing scheduler file"
_clients: dict = {}


def _check_form(value: str, name: str) -> str:
    text = value.strip()
    if "://" in text:
        m = _ADDRESS.match(text)
        if m is None or m.group("proto") not in _PROTOCOLS or not 0 < int(m.group("port")) < 65536:
            raise ValueError(f"{name} must be {_FORMS}, got {value!r}")
        return text.rstrip("/")
    path = Path(text).expanduser()
    if text and path.is_file():
        return str(path.resolve())
    raise ValueError(f"{name} must be {_FORMS}, got {value!r} (no such file)")


def resolve_scheduler(scheduler: Optional[str] = None) -> Optional[str]:
    """The configured Dask scheduler: the argument, else ``$WGANBOOK_SCHEDULER``, else ``None``.

    Only the form is checked here (no connection): an address ``proto://host:port`` with a known
    protocol and a port in 1..65535, or the path of an existing file (a scheduler file).

    Parameters
    ----------
    scheduler : str, optional
        An address (``tcp://127.0.0.1:8786``) or a scheduler file; ``None`` reads the environment
        variable (unset or empty: no cluster).

    Returns
    -------
    str or None
        The address (without a trailing ``/``) or the scheduler file's absolute path; ``None`` when
        no scheduler is configured.

    Raises
    ------
    TypeError
        If ``scheduler`` is neither ``None`` nor a str.
    ValueError
        If the value has another form, naming ``scheduler`` or ``WGANBOOK_SCHEDULER``.
    """
    if scheduler is not None:
        if not isinstance(scheduler, (str, os.PathLike)):
            raise TypeError(f"scheduler must be None, an address or a scheduler file path, got {scheduler!r}")
        return _check_form(os.fspath(scheduler), "scheduler")
    env = os.environ.get(SCHEDULER_ENV, "")
    if env.strip() == "":
        return None
    return _check_form(env, SCHEDULER_ENV)


def scheduler_address(scheduler: str) -> str:
    """The address of ``scheduler``: itself, or the ``"address"`` in a scheduler file.

    Raises
    ------
    ValueError
        If a scheduler file is not JSON with an ``"address"`` of the form ``proto://host:port``.
    """
    if "://" in scheduler:
        return scheduler
    try:
        address = json.loads(Path(scheduler).read_text()).get("address")
    except (OSError, ValueError, AttributeError) as exc:
        raise ValueError(
            f"scheduler file {scheduler} is not a Dask scheduler file (JSON with an 'address'): {exc}"
        ) from None
    if not isinstance(address, str):
        raise ValueError(f"scheduler file {scheduler} has no 'address'; is it a Dask scheduler file?")
    return _check_form(address, f"the address in the scheduler file {scheduler}")


def check_scheduler(scheduler: str, timeout: float = CONNECT_TIMEOUT) -> str:
    """Check that a scheduler accepts connections (a plain TCP connection, no Dask needed).

    Parameters
    ----------
    scheduler : str
        An address or a scheduler file (as returned by :func:`resolve_scheduler`).
    timeout : float, optional
        Seconds to wait (default 5).

    Returns
    -------
    str
        The scheduler's address.

    Raises
    ------
    ConnectionError
        If nothing answers at the address within ``timeout`` seconds, naming the address.
    """
    address = scheduler_address(scheduler)
    m = _ADDRESS.match(address)
    if m is None or m.group("proto") == "inproc":
        return address
    host, port = m.group("host").strip("[]"), int(m.group("port"))
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        raise ConnectionError(
            f"cannot reach the Dask scheduler at {address} ({exc.strerror or exc}); start one with "
            f"'dask scheduler' and workers with 'dask worker {address} --nthreads 1', or unset {SCHEDULER_ENV}"
        ) from None
    return address


def require_dask():
    """The ``distributed`` module.

    Raises
    ------
    ImportError
        If dask/distributed are not installed, with ``pip install 'wganbook[cluster]'``.
    """
    return _distributed()


def _distributed():
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(
            f"running on a Dask cluster needs dask and distributed ({exc}); install them with {INSTALL_HINT}"
        ) from None
    return distributed


def get_client(scheduler: str, timeout: float = CONNECT_TIMEOUT):
    """A ``distributed.Client`` connected to ``scheduler`` (one per scheduler, reused while it runs).

    Parameters
    ----------
    scheduler : str
        An address or a scheduler file (:func:`resolve_scheduler`).
    timeout : float, optional
        Seconds to wait for the connection.

    Returns
    -------
    distributed.Client

    Raises
    ------
    ImportError
        If ``distributed`` is not installed (naming ``pip install 'wganbook[cluster]'``).
    ConnectionError
        If the scheduler does not answer, naming its address.
    """
    distributed = _distributed()
    address = check_scheduler(scheduler, timeout)
    client = _clients.get(address)
    if client is not None and client.status == "running":
        return client
    try:
        client = distributed.Client(address, timeout=f"{timeout}s", set_as_default=False)
    except OSError as exc:
        raise ConnectionError(f"cannot connect to the Dask scheduler at {address}: {exc}") from None
    _clients[address] = client
    return client


def _wants_gpu(client) -> bool:
    workers = client.scheduler_info().get("workers", {})
    return any("GPU" in (w.get("resources") or {}) for w in workers.values())


def _note(err: BaseException, text: str) -> None:
    if hasattr(err, "add_note") and text not in getattr(err, "__notes__", ()):
        err.add_note(text)


def run_on_cluster(
    calls: Sequence[Callable[[], Any]], names: Sequence[str], scheduler: str, timeout: float = CONNECT_TIMEOUT
) -> List[Any]:
    """Run ``call()`` for every call on the cluster, one task each; the results in order.

    Parameters
    ----------
    calls : list of callable
        Argument-free callables (picklable by cloudpickle), one per run.
    names : list of str
        How each run is named when it fails (e.g. ``"run 3 of 8 failed: configuration {...}"``).
    scheduler : str
        An address or a scheduler file (:func:`resolve_scheduler`).
    timeout : float, optional
        Seconds to wait for the scheduler.

    Returns
    -------
    list
        ``[call() for call in calls]``.

    Raises
    ------
    ImportError, ConnectionError
        As :func:`get_client` (before any run starts).
    Exception
        The first failing run's own exception with a note naming it; a run whose workers kept dying
        raises ``distributed.KilledWorker`` with the same note.
    """
    if len(calls) != len(names):
        raise ValueError(f"calls and names must have the same length, got {len(calls)} and {len(names)}")
    if not calls:
        return []
    distributed = _distributed()
    client = get_client(scheduler, timeout)
    resources = {"GPU": 1} if _wants_gpu(client) else None
    futures = [client.submit(call, pure=False, resources=resources) for call in calls]
    index = {f.key: i for i, f in enumerate(futures)}
    try:
        for future in distributed.as_completed(futures, loop=client.loop):
            if future.status == "error":
                i = index[future.key]
                err = future.exception()
                _note(err, f"{names[i]} (on the Dask cluster at {client.scheduler.address})")
                raise err
        return client.gather(futures)
    finally:
        client.cancel([f for f in futures if not f.done()])
