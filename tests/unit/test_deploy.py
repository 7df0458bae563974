"""The Kubernetes manifests render with kustomize and every object is valid against the Kubernetes schemas
(offline, from the kubernetes-validate package), and carry what operations rely on; the compose files are valid
Compose files; both keep secrets out of files and command lines, confine their containers, let only the API
reach PostgreSQL and Redis, and trust X-Forwarded-For only from their proxy. (What runs for real, nginx and
Redis: tests/e2e/test_deploy.py.)"""

from __future__ import annotations

import re
import subprocess

import kubernetes_validate
import pytest
import yaml

from tests.helpers.compose import COMPOSE, interpolated, redis_script
from tests.helpers.constants import ROOT

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
    assert kinds == sorted(["ConfigMap", *["PersistentVolumeClaim"] * 3, "Deployment", "Deployment",
                            "Service", "Service", "HorizontalPodAutoscaler", "Ingress", "CronJob", "NetworkPolicy",
                            "NetworkPolicy", "NetworkPolicy"])


def named(rendered: list[dict], kind: str, name: str) -> dict:
    return next(doc for doc in rendered if doc["kind"] == kind and doc["metadata"]["name"] == name)


def test_the_validator_refuses_a_broken_object(rendered):
    deployment = named(rendered, "Deployment", "distilbot-api")
    broken = {**deployment, "spec": {**deployment["spec"], "replicas": "two"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_the_api_has_probes_resources_and_the_registry_and_the_job_a_gpu(rendered):
    by_kind = {doc["kind"]: doc for doc in rendered}
    api = named(rendered, "Deployment", "distilbot-api")["spec"]["template"]["spec"]
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
    assert {v["persistentVolumeClaim"]["claimName"] for v in job["volumes"] if "persistentVolumeClaim" in v} == \
        {"distilbot-registry", "distilbot-cache", "distilbot-redistill-work"}


def test_the_multi_gpu_job_runs_accelerate_with_one_process_per_requested_gpu():
    from accelerate.commands.config.config_args import load_config_from_file

    job = yaml.safe_load((ROOT / "deploy" / "k8s" / "jobs" / "distill-multi-gpu.yaml").read_text())
    kubernetes_validate.validate(job, K8S_VERSION, strict=True)
    container = job["spec"]["template"]["spec"]["containers"][0]
    command = container["command"]
    assert command[:4] == ["accelerate", "launch", "--config_file", "/app/deploy/accelerate/multi-gpu.yaml"]
    processes = int(command[command.index("--num_processes") + 1])
    assert processes == container["resources"]["limits"]["nvidia.com/gpu"] > 1
    assert command[command.index("--device") + 1] == "cuda"  # a pod without a GPU fails instead of using CPUs
    config = load_config_from_file(str(ROOT / "deploy" / "accelerate" / "multi-gpu.yaml"))
    assert config.distributed_type == "MULTI_GPU" and config.mixed_precision == "no"  # the trainer autocasts


def test_the_configuration_reference_is_the_settings_class():
    from bot.cli import settings_table
    from bot.infra.settings import Settings

    guide = (ROOT / "deploy" / "README.md").read_text()
    documented = guide.split("<!-- settings:begin -->\n")[1].split("\n<!-- settings:end -->")[0]
    assert documented == settings_table(Settings), "regenerate it with `python -m bot settings`"


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
    work = services["redistill"]["environment"]["DISTILBOT_REDISTILL_WORK"]  # visitor text: the job's volume alone
    assert [name for name, s in services.items() if any(v.endswith(f":{work}") for v in s.get("volumes", []))] == \
        ["redistill"]
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


# ---- issue 13: secrets, confinement, who reaches what, which proxy is believed ----

JOB = ROOT / "deploy" / "k8s" / "jobs" / "distill-multi-gpu.yaml"
SECRETS_EXAMPLE = ROOT / "deploy" / "k8s" / "secrets.env.example"


def pod_specs(rendered: list[dict]) -> dict[str, dict]:
    """Every pod template of the manifests and of the multi-GPU Job, by the name of what owns it."""
    specs = {}
    for doc in [*rendered, yaml.safe_load(JOB.read_text())]:
        spec = doc.get("spec", {})
        template = spec.get("jobTemplate", {}).get("spec", spec).get("template")
        if template:
            specs[doc["metadata"].get("name") or doc["metadata"]["generateName"]] = template["spec"]
    return specs


def test_every_pod_and_job_is_non_root_read_only_without_capabilities_under_the_default_seccomp(rendered):
    specs = pod_specs(rendered)
    assert set(specs) == {"distilbot-api", "distilbot-redis", "distilbot-redistill", "distilbot-distill-"}
    for name, spec in specs.items():
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] > 0, name
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is False, name
        empty_dirs = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
        for container in spec["containers"] + spec.get("initContainers", []):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["capabilities"] == {"drop": ["ALL"]}, name
            tmp = next(m for m in container["volumeMounts"] if m["mountPath"] == "/tmp")
            assert tmp["name"] in empty_dirs, name  # the one writable place, and HOME of the training image
    assert "HOME=/tmp" in (ROOT / "deploy" / "docker" / "train.Dockerfile").read_text()


def test_no_secret_is_applied_and_the_one_the_operator_creates_has_every_key_the_pods_read(rendered, tmp_path):
    assert not [doc for doc in rendered if doc["kind"] == "Secret"]
    assert not (ROOT / "deploy" / "k8s" / "secret.yaml").exists()
    guide = (ROOT / "deploy" / "README.md").read_text()
    command = "kubectl create secret generic distilbot-secrets --from-env-file="
    assert command in guide
    done = subprocess.run([*command.split()[:-1], f"--from-env-file={SECRETS_EXAMPLE}", "--dry-run=client",
                           "-o", "yaml"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    created = yaml.safe_load(done.stdout)
    kubernetes_validate.validate(created, K8S_VERSION, strict=True)
    read = {(ref["name"], ref["key"]) for spec in pod_specs(rendered).values() for container in spec["containers"]
            for ref in [e["valueFrom"]["secretKeyRef"] for e in container.get("env", []) if "valueFrom" in e]}
    assert read == {("distilbot-secrets", key) for key in ("db-url", "redis-url", "redis-password")}
    assert set(created["data"]) == {key for _, key in read}
    assert "CHANGE_ME" in SECRETS_EXAMPLE.read_text()  # an example: no real secret committed


def shell_without_builtins(text: str) -> str:
    """A shell script less its here-documents and `: "${NAME:?…}"` checks: the shell itself writes the one and
    evaluates the other, so their text never becomes a process's arguments."""
    text = re.sub(r"<<(\w+)\n.*?\n\1(\n|$)", "", text, flags=re.DOTALL)
    return re.sub(r'^: "\$\{\w+:\?[^}]*\}"$', "", text, flags=re.MULTILINE)


SECRET_ON_A_COMMAND_LINE = re.compile(r"PASSWORD|DB_URL|REDIS_URL|--db\b|--requirepass|--pass\b|-a\s"
                                      r"|://[^@\s]*:[^@\s]*@")  # the last: a URL with user:password@


def test_no_password_or_database_url_is_on_any_command_line(rendered):
    """Anything in a process's arguments is readable by every user of the machine (ps, /proc)."""
    commands = []
    for spec in pod_specs(rendered).values():
        for container in spec["containers"]:
            commands.append(" ".join(container.get("command", []) + container.get("args", [])))
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                commands.append(" ".join(container.get(probe, {}).get("exec", {}).get("command", [])))
    for name in ("compose.yaml", "compose.gpu.yaml"):
        for service in yaml.safe_load(interpolated((ROOT / "deploy" / name).read_text()))["services"].values():
            for command in (service.get("command"), service.get("healthcheck", {}).get("test")):
                commands.append(command if isinstance(command, str) else " ".join(command or []))
    script = (ROOT / "deploy" / "redistill" / "redistill.sh").read_text()
    commands += [line for line in script.splitlines() if "python" in line]
    for command in commands:
        assert not SECRET_ON_A_COMMAND_LINE.search(shell_without_builtins(command)), command
    assert any("REDIS_PASSWORD" in command for command in commands)  # Redis's, but only in its ACL file


def test_redistill_reads_the_database_url_from_the_environment(tmp_path):
    from typer.testing import CliRunner

    from distill.cli import app

    runner = CliRunner()
    missing = runner.invoke(app, ["redistill", "--registry", str(tmp_path)], env={"DISTILBOT_DB_URL": None})
    assert missing.exit_code == 2 and "DISTILBOT_DB_URL" in missing.output
    given = runner.invoke(app, ["redistill", "--registry", str(tmp_path / "none"), "--dry-run"],
                          env={"DISTILBOT_DB_URL": f"sqlite:///{tmp_path / 'bot.db'}"})
    assert given.exit_code == 2 and "Missing option" not in given.output, given.output
    assert "none" in given.output  # it went on to read the (missing) registry


def test_only_the_api_reaches_redis_and_only_it_and_the_redistillation_reach_postgresql(rendered):
    policies = {doc["metadata"]["name"]: doc["spec"] for doc in rendered if doc["kind"] == "NetworkPolicy"}
    pods = pod_specs(rendered)
    labels = {name: named(rendered, kind, name)["spec"]["template"]["metadata"]["labels"]
              for kind, name in (("Deployment", "distilbot-api"), ("Deployment", "distilbot-redis"))}
    labels["distilbot-redistill"] = named(rendered, "CronJob", "distilbot-redistill")["spec"]["jobTemplate"][
        "spec"]["template"]["metadata"]["labels"]
    labels["distilbot-distill-"] = yaml.safe_load(JOB.read_text())["spec"]["template"]["metadata"]["labels"]
    assert set(labels) == set(pods)

    def admitted(policy: dict, pod_labels: dict) -> bool:
        """Whether a pod with these labels, in this namespace, matches one of the policy's `from` entries."""
        for rule in policy["ingress"]:
            for peer in rule["from"]:
                selector = peer.get("podSelector")
                if selector is None or "namespaceSelector" in peer:
                    continue
                if all(pod_labels.get(k) == v for k, v in selector.get("matchLabels", {}).items()) and all(
                        pod_labels.get(e["key"]) in e["values"] for e in selector.get("matchExpressions", [])):
                    return True
        return False

    redis, postgres, api = policies["distilbot-redis"], policies["distilbot-postgres"], policies["distilbot-api"]
    assert redis["podSelector"]["matchLabels"] == labels["distilbot-redis"] and redis["policyTypes"] == ["Ingress"]
    assert {name for name in labels if admitted(redis, labels[name])} == {"distilbot-api"}
    assert postgres["policyTypes"] == ["Ingress"]
    assert {name for name in labels if admitted(postgres, labels[name])} == {"distilbot-api", "distilbot-redistill"}
    assert [p["port"] for rule in postgres["ingress"] for p in rule["ports"]] == [5432]
    # the API: only from the ingress controller's namespace (the proxies DISTILBOT_TRUSTED_PROXIES names)
    assert api["podSelector"]["matchLabels"] == labels["distilbot-api"]
    assert [peer for rule in api["ingress"] for peer in rule["from"]] == \
        [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}]


def test_the_api_trusts_x_forwarded_for_only_from_its_proxy_never_from_everyone(rendered):
    from bot.infra.settings import Settings

    config = named(rendered, "ConfigMap", "distilbot-config")["data"]
    assert "FORWARDED_ALLOW_IPS" not in config
    assert Settings(trusted_proxies=config["DISTILBOT_TRUSTED_PROXIES"]).trusted_proxies[0].prefixlen >= 8
    for path in (ROOT / "deploy").rglob("*"):
        if path.suffix in (".yaml", ".conf", ".example", ".sh"):  # uvicorn's own setting: not how we configure it
            assert "FORWARDED_ALLOW_IPS" not in path.read_text(), path
    compose = yaml.safe_load(COMPOSE.read_text())
    services, networks = compose["services"], compose["networks"]
    edge = networks["edge"]["ipam"]["config"][0]["subnet"]
    assert services["api"]["environment"]["DISTILBOT_TRUSTED_PROXIES"] == edge
    assert Settings(trusted_proxies=edge).trusted_proxies  # a valid range
    assert {name for name, s in services.items() if "edge" in s.get("networks", [])} == {"api", "proxy"}
    proxy_conf = (ROOT / "deploy" / "nginx" / "proxy.conf").read_text()
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in proxy_conf
    assert "$proxy_add_x_forwarded_for" not in proxy_conf.split("proxy_set_header X-Forwarded-For")[1].split("\n")[0]


def test_compose_lets_only_the_api_reach_postgres_and_redis_and_confines_its_own_containers():
    compose = yaml.safe_load(COMPOSE.read_text())
    services, networks = compose["services"], compose["networks"]

    def on(network: str) -> set[str]:
        return {name for name, s in services.items() if network in s.get("networks", [])}

    assert services["postgres"]["networks"] == ["db"] and services["redis"]["networks"] == ["cache"]
    assert on("db") == {"postgres", "api", "redistill"} and on("cache") == {"redis", "api"}
    assert networks["db"]["internal"] is True and networks["cache"]["internal"] is True
    assert services["model-init"]["network_mode"] == "none"
    for name in ("api", "redis", "model-init", "redistill"):
        service = services[name]
        assert service["cap_drop"] == ["ALL"] and "no-new-privileges:true" in service["security_opt"], name
        assert service["read_only"] is True and "/tmp" in service["tmpfs"], name
    assert services["redis"]["user"] == "redis"
    assert "REDIS_PASSWORD=" in (COMPOSE.parent / "compose.env.example").read_text()


def test_kubernetes_runs_redis_with_the_same_acl_as_compose(rendered):
    compose = redis_script(yaml.safe_load(COMPOSE.read_text())["services"]["redis"]["command"])
    container = named(rendered, "Deployment", "distilbot-redis")["spec"]["template"]["spec"]["containers"][0]
    k8s = redis_script(container["command"])
    assert re.sub(r":\?[^}]*}", "}", k8s) == re.sub(r":\?[^}]*}", "}", interpolated(compose))
    assert named(rendered, "Deployment", "distilbot-redis")["spec"]["replicas"] == 1
