"""Run the Braze sandbox: in a background thread (tests) or in the foreground (the CLI)."""

from __future__ import annotations

import json
import socket
import threading
from typing import Any

from airflow_provider_braze.sandbox.state import Faults, SandboxState

LOOPBACK = "127.0.0.1"


class BrazeSandbox:
    """A running Braze sandbox on loopback.

    .. code-block:: python

        with BrazeSandbox() as sandbox:
            os.environ["AIRFLOW_CONN_BRAZE_DEFAULT"] = sandbox.connection_json()
            ...
            assert sandbox.ledger("POST /sends/id/create")[0]["response"]["send_id"]

    :param host: Address to bind; loopback by default (the sandbox has no real security).
    :param port: Port to bind; 0 picks a free one.
    :param state: The state to serve; a fresh :class:`SandboxState` (with ``api_key``) if omitted.
    :param api_key: The primary API key when ``state`` is not given; random if omitted.
    """

    def __init__(
        self,
        host: str = LOOPBACK,
        port: int = 0,
        *,
        state: SandboxState | None = None,
        api_key: str | None = None,
    ) -> None:
        self.state = state or SandboxState(api_key)
        self._host = host
        self._port = port
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> BrazeSandbox:
        """Start serving in a daemon thread; return once the server accepts connections."""
        import uvicorn

        from airflow_provider_braze.sandbox.app import create_app

        if self._thread is not None:
            raise RuntimeError("the sandbox is already running")
        sock = socket.socket(socket.AF_INET6 if ":" in self._host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))
        self._socket = sock
        config = uvicorn.Config(
            create_app(self.state),
            log_level="warning",
            access_log=False,
            timeout_keep_alive=30,
            # The app writes Date from the sandbox's own clock (which tests may set off).
            date_header=False,
        )
        self._server = uvicorn.Server(config)
        started = threading.Event()

        def serve() -> None:
            try:
                self._server.run(sockets=[sock])
            finally:
                started.set()

        self._thread = threading.Thread(target=serve, name="braze-sandbox", daemon=True)
        self._thread.start()
        while not started.wait(0.01):
            if self._server.started:
                break
        if not self._server.started:
            raise RuntimeError("the Braze sandbox failed to start; see the log above")
        return self

    def stop(self) -> None:
        """Stop serving and wait for the server thread to end."""
        if self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._thread = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def __enter__(self) -> BrazeSandbox:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ what clients need

    @property
    def port(self) -> int:
        if self._socket is None:
            raise RuntimeError("the sandbox is not running")
        return int(self._socket.getsockname()[1])

    @property
    def url(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    @property
    def api_key(self) -> str:
        return self.state.primary_key

    def connection_json(self, **extra: Any) -> str:
        """The Braze connection in Airflow's JSON form, for ``AIRFLOW_CONN_<ID>``."""
        conn: dict[str, Any] = {"conn_type": "braze", "host": self.url, "password": self.api_key}
        if extra:
            conn["extra"] = extra
        return json.dumps(conn)

    # ------------------------------------------------------------------ shortcuts into the state

    def ledger(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        """Accepted calls, oldest first, optionally for one endpoint (e.g. ``"POST /sends/id/create"``)."""
        return self.state.ledger(endpoint)

    def set_faults(self, **settings: Any) -> Faults:
        """Replace the injected faults, e.g. ``set_faults(server_error=0.1, latency_ms=50)``."""
        faults = Faults.from_dict(settings)
        self.state.set_faults(faults)
        return faults

    def reset(self) -> None:
        """Forget keys (except the primary one), campaigns added, quotas, faults and the ledger."""
        self.state.reset()


def serve_forever(
    host: str, port: int, *, state: SandboxState, announce: Any = print, ready_file: str | None = None
) -> None:
    """Serve in the foreground until interrupted (Ctrl-C or SIGTERM)."""
    sandbox = BrazeSandbox(host, port, state=state).start()
    try:
        announce(f"Braze sandbox listening on {sandbox.url}")
        announce(f"API key: {sandbox.api_key}")
        announce(f"Airflow connection: export AIRFLOW_CONN_BRAZE_DEFAULT='{sandbox.connection_json()}'")
        if ready_file:
            with open(ready_file, "w") as fh:
                json.dump({"url": sandbox.url, "api_key": sandbox.api_key}, fh)
        assert sandbox._thread is not None
        while sandbox._thread.is_alive():
            sandbox._thread.join(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
