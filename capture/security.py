"""ZeroMQ CURVE for networked rigs: key generation and socket set-up.

Key folder layout (what :func:`make_keys` writes, ZeroMQ's own certificate format)::

    keys/
      server.key              recorder + clock public key   (copy to every camera machine)
      server.key_secret       recorder + clock secret key   (stays on the recorder machine)
      clients/<camera>.key         node public key          (recorder machine: the allow-list)
      clients/<camera>.key_secret  node secret key          (only on that camera's machine)

Secret files are mode 0600. The recorder (PULL) and the clock (PUB) are CURVE servers that accept only clients
whose public key is in ``clients/``; nodes are CURVE clients. Traffic is encrypted and authenticated; with CURVE on
the clock binds the recorder's interface (:func:`clock_endpoint`). Without CURVE every socket binds 127.0.0.1 only,
and binding another address is refused (see :func:`check_bind_allowed`).
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Iterable
from urllib.parse import urlparse

import zmq

from reconstruct.errors import CaptureError, ConfigError

log = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def make_keys(folder: str | Path, clients: Iterable[str]) -> Path:
    """Create a server key pair and one client key pair per name in ``folder``; returns the folder.

    Secret key files (``*.key_secret``) are mode 0600 from the moment they exist; public ones follow the umask.
    Existing pairs are kept, and an existing secret that other users can read is made 0600."""
    folder = Path(folder)
    try:
        (folder / "clients").mkdir(parents=True, exist_ok=True)
        _key_pair(folder, "server")
        for name in clients:
            _key_pair(folder / "clients", name)
    except OSError as exc:
        raise ConfigError(f"cannot write CURVE keys to {folder}: {exc.strerror}", hint="pick a writable folder") from exc
    return folder


def _key_pair(folder: Path, name: str) -> None:
    import zmq.auth

    secret = folder / f"{name}.key_secret"
    if secret.exists():
        if secret.stat().st_mode & 0o077:
            log.warning("%s was readable by other users; made it private (mode 0600)", secret)
            os.chmod(secret, 0o600)
        return
    # written in a private (0700) temporary folder and made 0600 there, so no other user can ever read the secret
    with tempfile.TemporaryDirectory(dir=folder, prefix=".new-key-") as tmp:
        public_tmp, secret_tmp = zmq.auth.create_certificates(tmp, name)
        os.chmod(secret_tmp, 0o600)
        os.replace(public_tmp, folder / f"{name}.key")
        os.replace(secret_tmp, secret)


def _check_private(path: Path) -> None:
    if path.name.endswith("_secret") and path.stat().st_mode & 0o077:
        log.warning("CURVE secret key %s is readable by other users: run `chmod 600 %s` (or `capture keys` again)",
                    path, path)


def _load(path: Path) -> tuple[bytes, bytes | None]:
    import zmq.auth

    if not path.exists():
        raise ConfigError(f"CURVE key file {path} is missing",
                          hint="create keys with `capture keys <folder> --rig <rig.toml>` and copy them as docs/capture.md says")
    _check_private(path)
    return zmq.auth.load_certificate(str(path))


class CurveServer:
    """Makes sockets CURVE servers that accept only the public keys in ``<folder>/clients``.

    Starts ZeroMQ's authenticator thread for ``ctx``; call :meth:`stop` when done.
    """

    def __init__(self, ctx: zmq.Context, folder: str | Path) -> None:
        from zmq.auth.thread import ThreadAuthenticator

        self.folder = Path(folder)
        self.public, self.secret = _load(self.folder / "server.key_secret")
        if self.secret is None:
            raise ConfigError(f"{self.folder / 'server.key_secret'} holds no secret key")
        if not any((self.folder / "clients").glob("*.key")):
            raise ConfigError(f"no client public keys in {self.folder / 'clients'}",
                              hint="`capture keys` writes one per camera; the recorder refuses everyone without them")
        self.auth = ThreadAuthenticator(ctx)
        self.auth.start()
        self.auth.configure_curve(domain="*", location=str(self.folder / "clients"))

    def apply(self, sock: zmq.Socket) -> None:
        sock.curve_secretkey = self.secret
        sock.curve_publickey = self.public
        sock.curve_server = True

    def stop(self) -> None:
        self.auth.stop()


def curve_client(sock: zmq.Socket, folder: str | Path, camera: str) -> None:
    """Make ``sock`` a CURVE client of the rig's server with the camera's key pair."""
    folder = Path(folder)
    server_public, _ = _load(folder / "server.key")
    key = folder / "clients" / f"{camera}.key_secret"
    public, secret = _load(key)
    if secret is None:
        raise ConfigError(f"{key} holds no secret key")
    sock.curve_secretkey = secret
    sock.curve_publickey = public
    sock.curve_serverkey = server_public


def check_bind_allowed(endpoint: str, curve: bool, insecure: bool = False) -> None:
    """Refuse to bind a non-loopback TCP address without CURVE (unless the operator insists with ``insecure``)."""
    if not endpoint.startswith("tcp://"):
        return
    host = urlparse(endpoint).hostname or ""
    if host in LOOPBACK or curve or insecure:
        return
    raise ConfigError(f"refusing to bind {endpoint} without encryption: any machine on that network could inject "
                      "or read frames",
                      hint="use --curve-keys <folder> (see `capture keys`), or bind 127.0.0.1; "
                           "--insecure-network overrides on an isolated rig network")


def bind(sock: zmq.Socket, endpoint: str, what: str) -> str:
    """Bind and return the actual endpoint (``tcp://127.0.0.1:0`` picks a free port)."""
    ep = endpoint[:-2] + ":*" if endpoint.startswith("tcp://") and endpoint.endswith(":0") else endpoint
    try:
        sock.bind(ep)
    except zmq.ZMQError as exc:
        if exc.errno == zmq.EADDRINUSE:
            raise CaptureError(f"{what}: address {endpoint} is already in use (another `capture record` running?)",
                               hint="stop the other recording, or choose another port (--data-endpoint / the rig's "
                                    "trigger.tick_endpoint; port 0 picks a free one)") from exc
        raise CaptureError(f"{what}: cannot bind {endpoint}: {exc}",
                           hint="use an endpoint like tcp://127.0.0.1:5551 on an address this machine owns") from exc
    return sock.getsockopt_string(zmq.LAST_ENDPOINT)


def clock_endpoint(tick_ep: str, data_ep: str, curve: bool, explicit: bool = False) -> str:
    """Where the trigger clock binds. With CURVE on, a loopback tick endpoint (the rig's default) moves to the
    interface the recorder listens on (``data_ep``, as bound), keeping its port, so that cameras on other
    machines reach the clock as they reach the recorder. An ``explicit`` endpoint (``--tick-endpoint``) is kept."""
    if explicit or not curve or not (tick_ep.startswith("tcp://") and data_ep.startswith("tcp://")):
        return tick_ep
    tick, data = urlparse(tick_ep), urlparse(data_ep)
    if (tick.hostname or "") not in LOOPBACK or (data.hostname or "") in LOOPBACK:
        return tick_ep
    host = data.netloc.rsplit(":", 1)[0]  # keeps the brackets of an IPv6 address
    port = tick.netloc.rsplit(":", 1)[1] if tick.netloc.rsplit("]", 1)[-1].count(":") else "0"
    log.info("CURVE on %s: the trigger clock binds the same interface (%s:%s)", data_ep, host, port)
    return f"tcp://{host}:{port}"
