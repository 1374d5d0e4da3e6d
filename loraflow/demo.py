"""`loraflow demo` (`make demo`): start the embedded stack, run the main job once, stop."""

from __future__ import annotations

import time
import uuid

import httpx

from loraflow.auth import issue_token
from loraflow.dev import DevStack
from loraflow.logging import get_logger
from loraflow.settings import Settings

log = get_logger(__name__)


async def run_demo(settings: Settings) -> int:
    stack = DevStack(settings)
    started = time.monotonic()
    await stack.start()
    try:
        print(stack.banner().replace("Press Ctrl-C to stop.\n", ""), flush=True)
        # A fresh demo user each run: the monthly limit (5 per user) never blocks a rerun.
        user_id = str(uuid.uuid4())
        email = f"demo+{user_id[:8]}@loraflow.local"
        token = issue_token(settings.jwt_secret.get_secret_value(), user_id=user_id, email=email)
        headers = {"Authorization": f"Bearer {token}"}
        name = f"Demo character {time.strftime('%Y-%m-%d %H:%M:%S')}"
        async with httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=30) as api:
            created = await api.post(
                "/api/v1/lora-models",
                json={"name": name, "description": "a small synthetic character drawn by the demo"},
            )
            created.raise_for_status()
            lora_id = created.json()["lora_id"]
            print(f"created LoRA {lora_id} ({name!r}) as {email}")
            status = (await api.get(f"/api/v1/lora-models/{lora_id}/status")).json()
            detail = (await api.get(f"/api/v1/lora-models/{lora_id}")).json()
            listing = (await api.get("/api/v1/lora-models", params={"limit": 5})).json()
        print(f"status: {status['training_status']} (progress {status['progress']}%)")
        print(f"created_by: {detail['created_by']['email']}")
        print(
            f"library: {listing['pagination']['total']} LoRA(s); newest: "
            + ", ".join(i["name"] for i in listing["items"])
        )
        print("training is not wired in yet: the LoRA stays pending (see the README's roadmap).")
        print(f"Temporal Web UI: {stack.ui_url}   elapsed: {time.monotonic() - started:.1f}s")
        return 0
    finally:
        stack.stop()
