"""`loraflow demo` (`make demo`): start the embedded stack, train one LoRA through the HTTP API
exactly as the frontend would, show its progress live, print the result, stop."""

from __future__ import annotations

import asyncio
import io
import os
import sys
import time
import uuid

import httpx

from loraflow.auth import dev_identity, issue_token
from loraflow.devstack.dev import DevStack
from loraflow.logging import configure_logging, get_logger
from loraflow.settings import Settings

log = get_logger(__name__)


def draw_character(i: int, size: int = 384) -> bytes:
    """One view of a small synthetic character: a round face over a red shirt on a blue
    backdrop, shifted and tinted a little in each view (what reference images vary by)."""
    from PIL import Image, ImageDraw

    scale = size / 384
    im = Image.new("RGB", (size, size), (30 + 15 * i, 110, 200))
    draw = ImageDraw.Draw(im)
    dx = 12 * i * scale
    draw.ellipse((96 * scale + dx, 24 * scale, 280 * scale + dx, 200 * scale), fill=(240, 200, 150))
    draw.rectangle((120 * scale + dx, 200 * scale, 256 * scale + dx, size), fill=(200, 30, 30))
    out = io.BytesIO()
    im.save(out, format="PNG")
    return out.getvalue()


def _print_validation(report: dict | None) -> None:
    """The judge's view: each checkpoint's verdict, and the kept one's images against the control."""
    if not report:
        return
    print(f"judge         {report['judge']} (each image against the base model's, same prompt and seed)")
    for c in report["checkpoints"]:
        likeness = _num(c["likeness"])
        kept = "  <- kept" if c["name"] == report["chosen"] else ""
        print(f"checkpoint    step {c['step']:>5}: {c['shown']}/{len(report['prompts'])} show the character, "
              f"likeness {likeness}{kept}")  # fmt: skip
    shown = report["chosen"] or "final"
    for p in report["prompts"]:
        (image,) = [i for i in p["checkpoints"] if i["checkpoint"] == shown]
        control = _num(p["control"]["score"])
        verdict = "shows the character" if image["shows_character"] else "does not show the character"
        print(f"validation {p['index']}  {_num(image['score'])} with the LoRA, {control} without: "
              f"{verdict}   ({p['prompt']!r})")  # fmt: skip


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _bar(status: dict) -> str:
    width = 30
    filled = int(width * status["progress"] / 100)
    line = f"[{'#' * filled}{'.' * (width - filled)}] {status['progress']:3d}%  {status['training_status']}"
    if status.get("phase"):
        line += f" / {status['phase']}"
    if status.get("total_steps"):
        line += f"  step {status['step']}/{status['total_steps']}"
    if status.get("loss") is not None:
        line += f"  loss {status['loss']:.4f}"
    if status.get("estimated_remaining") is not None:
        line += f"  ETA {status['estimated_remaining']}s"
    return line


async def run_demo(settings: Settings) -> int:
    from temporalio.client import Client

    from loraflow.contracts.lora_training import TrainingOutcome
    from loraflow.contracts.names import train_workflow_id

    started = time.monotonic()
    # The demo's output is its progress bar: the stack's processes log warnings and errors only.
    os.environ.setdefault("LORAFLOW_LOG_LEVEL", "WARNING")
    configure_logging(os.environ["LORAFLOW_LOG_LEVEL"])
    stack = DevStack(settings)
    await stack.start()
    try:
        print(stack.banner().replace("Press Ctrl-C to stop.\n", ""), flush=True)
        # A fresh demo user each run: the monthly limit (5 per user) never blocks a rerun.
        user_id, email = dev_identity(str(uuid.uuid4()))
        token = issue_token(settings.jwt_secret.get_secret_value(), user_id=user_id, email=email)
        name = f"Red shirt {time.strftime('%Y-%m-%d %H:%M:%S')}"
        files = [("images", (f"view{i}.png", draw_character(i), "image/png")) for i in range(4)]
        async with httpx.AsyncClient(
            base_url=stack.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as api:
            created = await api.post(
                "/api/v1/lora-models",
                data={"name": name, "description": "a small synthetic character drawn by the demo"},
                files=files,
            )
            if created.status_code != 201:
                print(f"create failed: {created.status_code} {created.text}", file=sys.stderr)
                return 1
            lora_id = created.json()["lora_id"]
            print(f"created LoRA {lora_id} ({name!r}) as {email}: {created.json()['message']}")
            if (settings.web_dir / "index.html").is_file():
                print(f"watch it in a browser (signs you in as {email}):")
                print(f"  {stack.sign_in_url(user_id, f'/library/{lora_id}')}")
            print()
            last = ""
            while True:
                status = (await api.get(f"/api/v1/lora-models/{lora_id}/status")).json()
                line = _bar(status)
                if line != last:
                    print("\r" + line.ljust(110), end="", flush=True)
                    last = line
                if status["training_status"] in ("completed", "failed"):
                    break
                await asyncio.sleep(0.5)
            print()
            detail = (await api.get(f"/api/v1/lora-models/{lora_id}")).json()

        client = await Client.connect(
            f"127.0.0.1:{settings.dev_temporal_port}", namespace=settings.temporal_namespace
        )
        handle = client.get_workflow_handle(train_workflow_id(lora_id), result_type=TrainingOutcome)
        outcome = await handle.result()
        print(
            f"\nstatus        {detail['training_status']}"
            + (f" ({detail['error_message']})" if detail["error_message"] else "")
        )
        print(f"storage       {detail['storage_path']}")
        print(f"size          {detail['file_size']} bytes")
        print(f"sha256        {detail['sha256']}")
        print(f"trigger word  {detail['trigger_word']}")
        _print_validation(detail.get("validation"))
        print(f"validation    {'passed' if detail['validation_passed'] else 'failed'}")
        print(f"cost          ${outcome.cost_usd:.4f} ({outcome.pod_seconds:.0f} pod-seconds)")
        print(f"elapsed       {time.monotonic() - started:.0f}s")
        print(
            f"Web UI        {stack.ui_url}/namespaces/{settings.temporal_namespace}"
            f"/workflows/{train_workflow_id(lora_id)}"
        )
        if sys.stdin.isatty() and (settings.web_dir / "index.html").is_file():
            # The pages need the stack: keep it up until the person at the terminal is done.
            await asyncio.to_thread(input, f"\nThe pages are at {stack.api_url}/ ; press Enter to stop. ")
        return 0 if detail["training_status"] == "completed" else 1
    finally:
        stack.stop()
