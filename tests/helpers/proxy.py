"""nginx (Debian's package) in front of API replicas on this machine, passing requests on with the same
settings as the compose proxy (deploy/nginx/proxy.conf): for the rolling-update test and the load benchmark."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROXY_CONF = ROOT / "deploy" / "nginx" / "proxy.conf"

CONFIG = """\
worker_processes {workers};
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
daemon off;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' ''; }}
    upstream distilbot_api {{
        least_conn;
{servers}
        keepalive 32;
        keepalive_timeout 4s;  # as in deploy/nginx/compose.conf
    }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 64k;
        location / {{
            proxy_pass http://distilbot_api;
            include {proxy_conf};
        }}
    }}
}}
"""


def nginx_binary() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if not found:
        raise RuntimeError("nginx is not installed (Debian: apt-get install nginx; `make test` installs it)")
    return found


@contextlib.contextmanager
def nginx_in_front(upstreams: list[str], port: int, workers: int = 1) -> Iterator[str]:
    """nginx on 127.0.0.1:`port` sending each request to the one of `upstreams` ("127.0.0.1:8001", …) with
    the fewest in flight; yields its URL, stops it afterwards. A replica that refuses connections is skipped."""
    nginx = nginx_binary()
    with tempfile.TemporaryDirectory(prefix="distilbot-nginx-") as tmp:
        Path(tmp).chmod(0o755)  # nginx's worker processes may run as another user
        servers = "\n".join(f"        server {address} max_fails=1 fail_timeout=2s;" for address in upstreams)
        conf = Path(tmp) / "nginx.conf"
        conf.write_text(CONFIG.format(workers=workers, tmp=tmp, servers=servers, port=port, proxy_conf=PROXY_CONF))
        check = subprocess.run([nginx, "-t", "-q", "-p", tmp, "-c", str(conf)], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"nginx refused its configuration: {check.stderr}")
        process = subprocess.Popen([nginx, "-p", tmp, "-c", str(conf)], stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 10
            while True:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"nginx did not start: {process.stderr.read()}")
                time.sleep(0.1)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
