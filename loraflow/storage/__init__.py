"""Object storage for training images, LoRA files and validation images.

Keys are ``{bucket}/{path}``: ``lora-training-images/{user}/{lora}/uploaded/0.png``,
``lora-models/{lora}/{sha256}.safetensors``, ``lora-validation/{lora}/0.png``. Objects are
never overwritten: writing a key that exists succeeds only if the bytes are the same (a retry),
and fails with ``ObjectExists`` otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loraflow.errors import ObjectExists, ObjectNotFound
from loraflow.storage.base import Storage, StoredObject

if TYPE_CHECKING:
    from loraflow.settings import Settings

__all__ = ["ObjectExists", "ObjectNotFound", "Storage", "StoredObject", "build_storage"]


def build_storage(settings: Settings) -> Storage:
    """The configured backend: the local directory (embedded default) or Supabase Storage."""
    if settings.storage == "local":
        from pathlib import Path

        from loraflow.storage.local import LocalStorage

        return LocalStorage(
            Path(settings.data_dir) / "storage",
            served_at=settings.public_base_url,
            signing_key=settings.file_signing_key(),
            write_bps=settings.local_storage_write_bps,
            latency_s=settings.local_storage_latency_s,
        )
    if settings.storage == "supabase":
        from loraflow.storage.supabase import SupabaseStorage

        if not settings.supabase_url or not settings.supabase_service_role_key:
            raise ValueError("SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY must be set for Supabase Storage")
        return SupabaseStorage(settings.supabase_url, settings.supabase_service_role_key.get_secret_value())
    raise ValueError(f"unknown storage {settings.storage!r} (local, supabase)")
