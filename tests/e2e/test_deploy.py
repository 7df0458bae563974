"""The deployment's configuration run for real where this machine can: the compose proxy configuration through
Debian's nginx (`nginx -t`), and compose's Redis command with its ACL in front of a real API server. (The
manifests and compose files checked as files: tests/unit/test_deploy.py.)"""

from __future__ import annotations

import os
import subprocess

import pytest
import yaml

from tests.helpers.compose import COMPOSE, interpolated, redis_script
from tests.helpers.constants import ROOT


def test_the_compose_proxy_configuration_passes_nginx_t(tmp_path):
    """With Debian's nginx 1.22; `resolve` (Docker's DNS, nginx >= 1.27.3) and the `api` host are swapped for
    a fixed address, everything else is checked as written."""
    from tests.helpers.proxy import PROXY_CONF, nginx_binary

    site = (ROOT / "deploy" / "nginx" / "compose.conf").read_text()
    assert "server api:8000 resolve" in site and "include /etc/nginx/distilbot/proxy.conf;" in site
    site = site.replace("server api:8000 resolve", "server 127.0.0.1:8000").replace(
        "/etc/nginx/distilbot/proxy.conf", str(PROXY_CONF))
    site = "\n".join(line for line in site.splitlines() if not line.startswith("resolver "))
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
                    f"http {{\n{site}\n}}\n")
    done = subprocess.run([nginx_binary(), "-t", "-p", str(tmp_path), "-c", str(conf)], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr


def test_the_compose_redis_acl_admits_the_api_with_its_password_and_nobody_else(demo_registry, tmp_path):
    """Compose's Redis command, run here (redis-server of this machine, /tmp moved to a temporary folder): the
    API with REDIS_URL's user and password serves, rate-limits and reports ready; without the password, or
    with a wrong one, nothing but PING gets through."""
    import httpx
    import redis

    from tests.helpers.servers import free_port, served

    script = redis_script(yaml.safe_load(COMPOSE.read_text())["services"]["redis"]["command"])
    script = interpolated(script).replace("/tmp", str(tmp_path))
    password, port = "s3cretPassw0rd", free_port()
    unset = subprocess.run(["sh", "-c", script, "redis-server", "--port", str(port)], env={"PATH": os.environ["PATH"]},
                           capture_output=True, text=True, timeout=30)
    assert unset.returncode != 0 and "set REDIS_PASSWORD" in unset.stderr  # never a Redis without a password
    server = subprocess.Popen(["sh", "-c", script, "redis-server", "--port", str(port), "--bind", "127.0.0.1"],
                              env={"PATH": os.environ["PATH"], "REDIS_PASSWORD": password},
                              stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        anonymous = redis.Redis(port=port, socket_connect_timeout=2)
        for _ in range(50):
            try:
                assert anonymous.ping()
                break
            except redis.ConnectionError:
                subprocess.run(["sleep", "0.1"])
        assert (tmp_path / "users.acl").stat().st_mode & 0o077 == 0  # the ACL file is the server's only
        with pytest.raises(redis.exceptions.NoPermissionError):
            anonymous.get("anything")
        with pytest.raises(redis.exceptions.AuthenticationError):
            redis.Redis(port=port, username="distilbot", password="wrong").ping()
        with pytest.raises(redis.exceptions.NoPermissionError):
            redis.Redis(port=port, username="distilbot", password=password).config_get("dir")
        env = {"REDIS_URL": f"redis://distilbot:{password}@127.0.0.1:{port}/0", "DISTILBOT_RATE_LIMIT": "3/minute"}
        with served(demo_registry, f"sqlite:///{tmp_path / 'bot.db'}", env) as (url, _):
            answers = [httpx.post(f"{url}/api/chat", json={"message": "how much does shipping cost?"},
                                  timeout=30).status_code for _ in range(4)]
            assert answers == [200, 200, 200, 429]
            assert httpx.get(f"{url}/ready", timeout=30).status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=10)
