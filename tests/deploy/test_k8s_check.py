"""deploy/tools/k8s-check.sh: the real deploy/ passes; a typo'd manifest or a Dockerfile with a
lint error fails.

The tools (kustomize, kubeconform, hadolint, the JSON Schemas) come from
deploy/tools/fetch-tools.sh, cached in .cache/tools/: the first run on a machine fetches them
(a few minutes), every later run is offline and takes seconds.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
TOOLS = DEPLOY / "tools"

# The first fetch compiles kustomize and kubeconform and downloads the schema sources.
pytestmark = pytest.mark.timeout(1200)


@pytest.fixture(scope="module")
def tools() -> Path:
    done = subprocess.run(
        ["bash", str(TOOLS / "fetch-tools.sh")], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"fetch-tools.sh failed:\n{done.stderr[-4000:]}"
    return Path(done.stdout.strip().splitlines()[-1])


def k8s_check(deploy_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(TOOLS / "k8s-check.sh"), str(deploy_dir)],
        capture_output=True,
        text=True,
        check=False,
    )


def copy_of_deploy(tmp_path: Path) -> Path:
    target = tmp_path / "deploy"
    for part in ("k8s", "docker"):
        shutil.copytree(DEPLOY / part, target / part)
    return target


def test_the_real_tree_passes(tools: Path) -> None:
    done = k8s_check(DEPLOY)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "overlay(s) valid" in done.stdout
    # Every kind was validated against a schema: none skipped, none missing.
    summaries = [line for line in done.stdout.splitlines() if line.startswith("Summary:")]
    assert len(summaries) == 2
    assert all("Invalid: 0, Errors: 0, Skipped: 0" in line for line in summaries)


def test_a_typo_in_a_deployment_fails(tools: Path, tmp_path: Path) -> None:
    deploy = copy_of_deploy(tmp_path)
    manifest = deploy / "k8s" / "base" / "activity.yaml"
    text = manifest.read_text()
    assert "  replicas: 1\n" in text
    manifest.write_text(text.replace("  replicas: 1\n", "  replicsa: 1\n", 1))

    done = k8s_check(deploy)

    assert done.returncode != 0
    assert "additional properties 'replicsa' not allowed" in done.stdout
    assert "FAIL: kubeconform" in done.stderr


@pytest.mark.parametrize(
    ("manifest", "field", "typo"),
    [
        ("topics.yaml", "  partitions: 6\n", "  partitons: 6\n"),  # Strimzi KafkaTopic
        ("postgres.yaml", "      database: crm\n", "      datbase: crm\n"),  # CNPG Cluster
    ],
)
def test_a_typo_in_a_custom_resource_fails(
    tools: Path, tmp_path: Path, manifest: str, field: str, typo: str
) -> None:
    deploy = copy_of_deploy(tmp_path)
    path = deploy / "k8s" / "base" / manifest
    path.write_text(path.read_text().replace(field, typo, 1))

    done = k8s_check(deploy)

    assert done.returncode != 0
    assert f"'{typo.strip().split(':')[0]}' not allowed" in done.stdout


def test_a_dockerfile_lint_error_fails(tools: Path, tmp_path: Path) -> None:
    deploy = copy_of_deploy(tmp_path)
    dockerfile = deploy / "docker" / "Dockerfile"
    text = dockerfile.read_text()
    # Unpinned apt packages without cleanup: hadolint DL3008 / DL3009 / DL3015.
    dockerfile.write_text(
        text.replace(
            "USER 10001:10001", "RUN apt-get update && apt-get install -y curl\nUSER 10001:10001"
        )
    )

    done = k8s_check(deploy)

    assert done.returncode != 0
    assert "DL3008" in done.stdout
    assert "FAIL: hadolint" in done.stderr
    assert "FAIL: kubeconform" not in done.stderr


def _converter() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "openapi2jsonschema", TOOLS / "openapi2jsonschema.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_strict_closes_objects_and_accepts_int_or_string() -> None:
    strict = _converter().strict
    schema = {
        "type": "object",
        "properties": {
            "port": {"x-kubernetes-int-or-string": True},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "open": {
                "type": "object",
                "properties": {"a": {"type": "string"}},
                "x-kubernetes-preserve-unknown-fields": True,
            },
        },
    }
    out = strict(schema)
    assert out["additionalProperties"] is False
    assert out["properties"]["port"] == {"oneOf": [{"type": "string"}, {"type": "integer"}]}
    assert out["properties"]["labels"]["additionalProperties"] == {"type": "string"}
    assert "additionalProperties" not in out["properties"]["open"]


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_every_process_is_probed_on_its_ops_port(tools: Path, overlay: str) -> None:
    """APIs and workers alike: the entry point serves /healthz and /readyz on --port."""
    import yaml

    rendered = subprocess.run(
        [str(tools / "bin" / "kustomize"), "build", str(DEPLOY / "k8s" / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    deployments = [
        doc for doc in yaml.safe_load_all(rendered) if doc and doc["kind"] == "Deployment"
    ]
    assert len(deployments) >= 10
    for deployment in deployments:
        app = deployment["spec"]["template"]["spec"]["containers"][0]
        name = deployment["metadata"]["name"]
        args = app["args"]
        assert args[args.index("--port") + 1] == "8000", name
        assert args[args.index("--host") + 1] == "0.0.0.0", name
        assert app["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        assert app["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        assert [p["containerPort"] for p in app["ports"]] == [8000], name
