"""``dingo_serve``: low-latency alert service (HTTP, warm networks, persistent job queue).

    dingo_serve --config serve.yaml [--host 127.0.0.1] [--port 8000]

Loads the configured networks once, requeues jobs a previous run left unfinished, then serves
POST /alerts, GET /alerts/{id} (see docs/serve.md). The bound address is written to
``<state_dir>/endpoint.json`` (port 0 picks a free port). Stop it with Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import socket
import sys

from dingo_gw.cli._common import ArgumentParser, Terminated, number, run_main
from dingo_gw.errors import ConfigError


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="dingo_serve", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="serve YAML (see configs/serve.yaml)")
    p.add_argument("--host", help="address to listen on (overrides the config; default 127.0.0.1)")
    p.add_argument("--port", type=number(int, 0, 65535), help="port (overrides the config; 0 = any free port)")
    return p


@run_main
def main(argv=None) -> int:
    import uvicorn

    from dingo_gw.serve.app import create_app
    from dingo_gw.serve.config import load_serve_config
    from dingo_gw.serve.watcher import DirectoryWatcher
    from dingo_gw.serve.worker import Service

    args = build_parser().parse_args(argv)
    config = load_serve_config(args.config)
    host = args.host or config.host
    port = config.port if args.port is None else args.port
    try:
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as e:
        raise ConfigError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    service = Service(config)
    consumers = []
    if config.watch_dir:
        consumers.append(DirectoryWatcher(config.watch_dir, service.submit, config.watch_interval,
                                          config.max_body_bytes))
    if config.kafka:
        from dingo_gw.serve.kafka import KafkaConsumer

        if "url" not in config.kafka:
            raise ConfigError(f"config error in {args.config}: kafka.url: required key is missing")
        consumers.append(KafkaConsumer(config.kafka["url"], service.submit))
    bound = sock.getsockname()
    app = create_app(service, endpoint={"host": host, "port": bound[1], "url": f"http://{host}:{bound[1]}"},
                     consumers=consumers)
    print(f"dingo_serve listening on http://{host}:{bound[1]} ({len(list(service.networks))} network(s))",
          flush=True)
    try:  # uvicorn shuts down on SIGINT/SIGTERM, then raises the signal again: KeyboardInterrupt here
        uvicorn.Server(uvicorn.Config(app, log_level="info", access_log=False)).run(sockets=[sock])
    except KeyboardInterrupt as e:
        print(f"dingo_serve stopped ({'SIGTERM' if isinstance(e, Terminated) else 'SIGINT'})", flush=True)
    finally:
        service.close()  # analysis thread, waveform worker pools, job store, state lock
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
