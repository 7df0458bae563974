"""The Kubernetes manifests render with kustomize and every object is valid against the Kubernetes schemas
(offline, from the kubernetes-validate package), and carry what operations rely on."""

from __future__ import annotations

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


def test_the_configuration_reference_is_the_settings_class():
    from bot.cli import settings_table
    from bot.settings import Settings

    guide = (ROOT / "deploy" / "README.md").read_text()
    documented = guide.split("<!-- settings:begin -->\n")[1].split("\n<!-- settings:end -->")[0]
    assert documented == settings_table(Settings), "regenerate it with `python -m bot settings`"
