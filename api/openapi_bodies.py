"""OpenAPI documentation of the request bodies that routes read themselves (JSON or multipart,
decided by the content type), which FastAPI therefore cannot infer from a signature."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.schemas import CreateLoraRequest
from loraflow.contracts import limits
from loraflow.domain import images

__all__ = ["ADD_IMAGES_BODY", "CREATE_LORA_BODY", "document_manual_bodies"]

_IMAGE_FILES = {
    "type": "array",
    "items": {"type": "string", "format": "binary"},
    "description": f"{limits.MIN_IMAGES}-{limits.MAX_IMAGES} character images: JPEG, PNG or WebP, "
    f"at most {images.MAX_BYTES // 2**20} MiB and {images.MAX_PIXELS // 10**6} MP each, shorter side "
    "at least LORAFLOW_MIN_IMAGE_SIDE (256) px.",
}

#: ``POST /lora-models``: the JSON body, or the same fields and the images as multipart.
CREATE_LORA_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/CreateLoraRequest"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string", "description": "As in the JSON body."},
                        "description": {"type": "string"},
                        "training_params": {"type": "string", "description": "TrainingParams as JSON text."},
                        "images": _IMAGE_FILES,
                        "character_images": {
                            **_IMAGE_FILES,
                            "description": "The spec's name for `images` (either, or both, may be sent). "
                            "No images at all: a pending LoRA, as with the JSON body.",
                        },
                    },
                }
            },
        },
    }
}

#: ``POST /lora-models/{id}/images``: multipart with the images.
ADD_IMAGES_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {"type": "object", "required": ["images"], "properties": {"images": _IMAGE_FILES}}
            }
        },
    }
}


def document_manual_bodies(app: FastAPI) -> None:
    """``CREATE_LORA_BODY`` refers to ``CreateLoraRequest``, which no route signature names: add
    that model (and the ones inside it) to the OpenAPI components."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            body = CreateLoraRequest.model_json_schema(ref_template="#/components/schemas/{model}")
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(body.pop("$defs", {}))
            components["CreateLoraRequest"] = body
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
