"""The Kubernetes manifests render with kustomize and every object is valid against the Kubernetes schemas
(offline, from the kubernetes-validate package), and carry what operations rely on."""

from __future__ import annotations

import os
import re
import subprocess

import kubernetes_validate
import pytest
import yaml

from tests.conftest import ROOT

K8S_VERSION = "1.32"


@pytest.fixture(scope="module")
def rendered() -> list[dict]:
    done = subprocess.run(["kubectl", "kustomize", str(ROOT / "deploy" / "k8s")], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def test_every_object_is_valid_against_the_kubernetes_schemas(rendered):
    for doc in rendered:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    kinds = sorted(doc["kind"] for doc in rendered)
    assert kinds == sorted(["ConfigMap", "Secret", "PersistentVolumeClaim", "PersistentVolumeClaim", "Deployment",
                            "Service", "HorizontalPodAutoscaler", "Ingress", "CronJob"])


def test_the_validator_refuses_a_broken_object(rendered):
    deployment = next(doc for doc in rendered if doc["kind"] == "Deployment")
    broken = {**deployment, "spec": {**deployment["spec"], "replicas": "two"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_the_api_has_probes_resources_and_the_registry_and_the_job_a_gpu(rendered):
    by_kind = {doc["kind"]: doc for doc in rendered}
    api = by_kind["Deployment"]["spec"]["template"]["spec"]
    container = api["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["lifecycle"]["preStop"]["sleep"]["seconds"] > 0  # out of the Service before SIGTERM
    assert container["resources"]["requests"]["cpu"] and container["image"] == "distilbot-serve:0.1.0"
    assert {v["persistentVolumeClaim"]["claimName"] for v in api["volumes"] if "persistentVolumeClaim" in v} == \
        {"distilbot-registry"}
    assert by_kind["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"] == "distilbot-api"
    assert "proxy-read-timeout" in " ".join(by_kind["Ingress"]["metadata"]["annotations"])  # live sockets stay open
    job = by_kind["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert job["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert {v["persistentVolumeClaim"]["claimName"] for v in job["volumes"]} == {"distilbot-registry",
                                                                                 "distilbot-cache"}
    assert "CHANGE_ME" in by_kind["Secret"]["stringData"]["db-url"]  # a template: no real secret committed


def test_the_multi_gpu_job_runs_accelerate_with_one_process_per_requested_gpu():
    from accelerate.commands.config.config_args import load_config_from_file

    job = yaml.safe_load((ROOT / "deploy" / "k8s" / "jobs" / "distill-multi-gpu.yaml").read_text())
    kubernetes_validate.validate(job, K8S_VERSION, strict=True)
    container = job["spec"]["template"]["spec"]["containers"][0]
    command = container["command"]
    assert command[:4] == ["accelerate", "launch", "--config_file", "/app/deploy/accelerate/multi-gpu.yaml"]
    processes = int(command[command.index("--num_processes") + 1])
    assert processes == container["resources"]["limits"]["nvidia.com/gpu"] > 1
    config = load_config_from_file(str(ROOT / "deploy" / "accelerate" / "multi-gpu.yaml"))
    assert config.distributed_type == "MULTI_GPU" and config.mixed_precision == "no"  # the trainer autocasts


def test_the_configuration_reference_is_the_settings_class():
    from bot.cli import settings_table
    from bot.settings import Settings

    guide = (ROOT / "deploy" / "README.md").read_text()
    documented = guide.split("<!-- settings:begin -->\n")[1].split("\n<!-- settings:end -->")[0]
    assert documented == settings_table(Settings), "regenerate it with `python -m bot settings`"


COMPOSE = ROOT / "deploy" / "compose.yaml"


def interpolated(text: str) -> str:
    """What compose reads after its variable interpolation: ${NAME:-default} from the environment or the
    default, $$ for a literal $."""
    return re.sub(r"\$\$|\$\{(\w+)(?::?-([^}]*))?\}",
                  lambda m: "$" if m[0] == "$$" else os.environ.get(m[1]) or m[2] or "", text)


@pytest.mark.parametrize("name", ["compose.yaml", "compose.gpu.yaml"])
def test_the_compose_files_are_valid_compose_specification_files(name):
    """Docker (and so `docker compose config`) does not run here; the compose_spec parser (Rust, from PyPI)
    validates against the Compose Specification instead, and refuses a broken file."""
    from compose_spec import PyCompose

    text = interpolated((ROOT / "deploy" / name).read_text())
    assert PyCompose.from_yaml(text).service_names()
    if name == "compose.yaml":
        with pytest.raises(ValueError, match="replicas"):
            PyCompose.from_yaml(text.replace("deploy: {replicas: 2}", "deploy: {replicas: two}"))


def test_the_compose_file_runs_replicas_behind_the_proxy_with_secrets_only_in_an_env_file():
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    assert set(services) == {"postgres", "redis", "model-init", "api", "proxy", "redistill"}
    api = services["api"]
    assert api["deploy"]["replicas"] == 2 and "registry:/registry:ro" in api["volumes"]
    assert api["build"]["dockerfile"] == "deploy/docker/serve.Dockerfile"
    assert services["model-init"]["build"]["dockerfile"] == "deploy/docker/train.Dockerfile"
    assert {"postgres", "redis", "model-init"} <= set(api["depends_on"])
    assert "/app/deploy/redistill/redistill.sh" in " ".join(services["redistill"]["command"])
    for name, service in services.items():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: unpinned image {image}"
        environment = service.get("environment", {})
        assert not any("PASSWORD" in key or "URL" in key for key in environment), f"{name}: a secret in the file"
    for mount in services["proxy"]["volumes"]:
        assert (COMPOSE.parent / mount.split(":")[0]).is_file()
    example = (COMPOSE.parent / "compose.env.example").read_text()
    assert "CHANGE_ME" in example and "deploy/compose.env" in (ROOT / ".gitignore").read_text().splitlines()
    gpu = yaml.safe_load((ROOT / "deploy" / "compose.gpu.yaml").read_text())["services"]
    assert "accelerate launch --config_file deploy/accelerate/multi-gpu.yaml" in gpu["model-init"]["command"][2]


def test_the_compose_proxy_configuration_passes_nginx_t(tmp_path):
    """With Debian's nginx 1.22; `resolve` (Docker's DNS, nginx >= 1.27.3) and the `api` host are swapped for
    a fixed address, everything else is checked as written."""
    from tests.proxy import PROXY_CONF, nginx_binary

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
