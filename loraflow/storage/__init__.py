"""Object storage for training images, LoRA files and validation images.

Keys are ``{bucket}/{path}``: ``lora-training-images/{user}/{lora}/uploaded/0.png``,
``lora-models/{lora}/{sha256}.safetensors``, ``lora-validation/{lora}/0.png``. Objects are
never overwritten: writing a key that exists succeeds only if the bytes are the same (a retry),
and fails with ``ObjectExists`` otherwise.
"""

from loraflow.storage.base import ObjectExists, ObjectNotFound, Storage, StoredObject

__all__ = ["ObjectExists", "ObjectNotFound", "Storage", "StoredObject"]
