"""The trainer image cannot be built here (no Docker engine), so its Dockerfile is linted with
hadolint and checked by construction: PyTorch's image for the torch the tests train with and the
CUDA floor RunPod is sent, the pod agent as entrypoint on the port the RunPod provider exposes, a
health check that does not keep the dead-man switch from firing, every copied file present, and
every package the pod's code imports pinned at the version the tests train with."""

from __future__ import annotations

import ast
import json
import re
import shlex
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from loraflow.compute.runpod import AGENT_PORT, RunPodConfig
from loraflow.settings import Settings

ROOT = Path(__file__).resolve().parent.parent.parent
DOCKERFILE = ROOT / "training_scripts" / "Dockerfile"
REQUIREMENTS = ROOT / "training_scripts" / "requirements.txt"
#: import name -> distribution name, where they differ
_DISTRIBUTIONS = {"PIL": "pillow"}
_STDLIB_OR_LOCAL = {"training_scripts", "torch"}  # torch comes with the base image


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    text = re.sub(r"<<PY\n.*?\nPY\n", "<<PY\n", text, flags=re.S)  # heredoc bodies
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def _one(keyword: str) -> str:
    values = [rest for k, rest in _instructions() if k == keyword]
    assert values, f"no {keyword}"
    return values[-1]


def _pins() -> dict[str, str]:
    pins = {}
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"{line!r} is not pinned"
            pins[name.lower()] = version
    return pins


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_base_is_pytorchs_image_for_the_tested_torch_and_the_cuda_runpod_is_sent() -> None:
    base_arg = next(rest for k, rest in _instructions() if k == "ARG" and rest.startswith("TORCH_IMAGE="))
    match = re.fullmatch(
        r"TORCH_IMAGE=pytorch/pytorch:(\d+\.\d+\.\d+)-cuda(\d+\.\d+)-cudnn9-runtime", base_arg
    )
    assert match, base_arg
    torch_version, cuda = match.groups()
    assert torch_version == metadata.version("torch").split("+")[0]
    # PyTorch 2.13 publishes CUDA 12.6 and 13.0 builds (stable) and 13.2 (experimental), no 12.8.
    assert cuda in {"12.6", "13.0", "13.2"}
    assert RunPodConfig.min_cuda_version == Settings().runpod_min_cuda_version == cuda
    assert _one("FROM") == "${TORCH_IMAGE}"


def test_agent_entrypoint_on_the_exposed_port() -> None:
    assert json.loads(_one("ENTRYPOINT")) == ["python", "-m", "training_scripts.pod_agent"]
    cmd = json.loads(_one("CMD"))
    assert cmd[cmd.index("--port") + 1] == str(AGENT_PORT) and _one("EXPOSE") == str(AGENT_PORT)
    # /livez: /healthz would count as the workflow's contact and keep an orphaned pod alive.
    assert "/livez" in _one("HEALTHCHECK") and "/healthz" not in _one("HEALTHCHECK")
    env = " ".join(rest for k, rest in _instructions() if k == "ENV")
    assert f"LORAFLOW_BASE_MODEL={RunPodConfig.base_model}" in env
    assert f"LORAFLOW_BASE_MODEL={Settings().runpod_base_model}" in env
    assert _one("USER") != "root"


def test_every_copied_file_exists() -> None:
    for keyword, rest in _instructions():
        if keyword == "COPY":
            *sources, _ = shlex.split(rest)
            for source in sources:
                assert (ROOT / source).is_file(), f"COPY {source}: no such file"


def test_every_import_of_the_pod_code_is_pinned_at_the_tested_version() -> None:
    pins = _pins()
    imported = set()
    for name in ("agent_protocol.py", "pod_agent.py", "train_lora.py", "save_base_model.py"):
        tree = ast.parse((ROOT / "training_scripts" / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module.split(".")[0])
    third_party = {m for m in imported if m not in sys.stdlib_module_names and m not in _STDLIB_OR_LOCAL}
    assert third_party, "the scan found nothing: it is broken"
    for module in sorted(third_party):
        distribution = _DISTRIBUTIONS.get(module, module).lower()
        assert distribution in pins, f"{module} is imported by the pod code but not in requirements.txt"
        try:
            tested = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            continue  # an optional optimiser the tests do not install (bitsandbytes, prodigyopt)
        assert pins[distribution] == tested, f"{distribution}: pinned {pins[distribution]}, tested {tested}"
