"""Does the LoRA show the character? Generate with the base model and with base + LoRA, same
prompt and seed, and compare each with the character's reference images.

The score is an image similarity that needs no weights: 1 - mean absolute pixel difference to
the closest reference, where the references are first passed through the same VAE (so both
sides went through the same decoder). An image "shows the character" when the LoRA's image is
closer to the references than the base model's image for the same prompt and seed, by at least
``MARGIN``. For full-size models an image-embedding model (CLIP, DINOv2) is the better judge;
it slots in here where its weights are at hand.
"""

from __future__ import annotations

import io
import json
import re
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from loraflow.contracts.lora_training import ValidationRequest, ValidationScore
from loraflow.storage import Storage

MARGIN = 0.003
PROMPTS = (
    "a photo of {trigger} character",
    "{trigger} character standing in a park",
    "portrait of {trigger} character, smiling",
)
#: One pipeline per worker process, used by one generation (validation or keyframe) at a time.
PIPELINE_LOCK = threading.Lock()
_base_model_path: str | None = None


def configure(base_model_path: str) -> None:
    global _base_model_path
    _base_model_path = base_model_path


@lru_cache(maxsize=1)
def pipeline(path: str) -> Any:
    import warnings

    import diffusers
    import transformers
    from diffusers import StableDiffusionXLPipeline

    # Progress bars and "no LoRA keys for the text encoders" notices are noise in a worker's log.
    for library in (diffusers, transformers):
        library.utils.logging.set_verbosity_error()
        library.utils.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=RuntimeWarning, module="peft")

    pipe = StableDiffusionXLPipeline.from_pretrained(path)
    pipe.set_progress_bar_config(disable=True)
    return pipe


# -- trained tokens --------------------------------------------------------------------------
# A LoRA trained together with textual-inversion tokens (Replicate's SDXL trainer trains
# "<s0><s1>" in place of the trigger word) carries their embeddings in the same .safetensors:
#   loraflow.embeddings.clip_l  [tokens, CLIP ViT-L width]    -> text_encoder / tokenizer
#   loraflow.embeddings.clip_g  [tokens, OpenCLIP bigG width] -> text_encoder_2 / tokenizer_2
# and __metadata__["loraflow.token_map"] = '{"<trigger>": "<s0><s1>"}': what the trigger word in
# a prompt becomes (special_params.json's form), the rows in the order of its tokens. One file,
# so the library's one URL, size and sha256 cover the tokens too. The key names contain "lora"
# because diffusers' load_lora_weights refuses a file with any key that does not; they match no
# module prefix, so it ignores them, and a plain load_lora_weights(file) still works.
EMBEDDING_PREFIX = "loraflow.embeddings."
TOKEN_MAP_KEY = "loraflow.token_map"  # noqa: S105 - a metadata key, not a secret
#: Our name for each embedding → the pipeline's (text encoder, tokenizer) attributes.
EMBEDDING_TARGETS = {"clip_l": ("text_encoder", "tokenizer"), "clip_g": ("text_encoder_2", "tokenizer_2")}
_TOKENS = re.compile(r"<[^<>\s]+>")


def split_tokens(text: str) -> tuple[str, ...]:
    """Split ``"<s0><s1>"`` into ``("<s0>", "<s1>")``; () unless ``text`` is only such tokens."""
    tokens = tuple(_TOKENS.findall(text))
    return tokens if "".join(tokens) == text else ()


def token_map_of(metadata: Mapping[str, str]) -> dict[str, str]:
    """The trigger word → tokens map a LoRA file declares ({} if none). ValueError if malformed."""
    raw = metadata.get(TOKEN_MAP_KEY)
    if raw is None:
        return {}
    try:
        mapping = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{TOKEN_MAP_KEY} is not JSON") from exc
    valid = isinstance(mapping, dict) and len(mapping) == 1
    if not valid or not all(k and isinstance(v, str) and split_tokens(v) for k, v in mapping.items()):
        raise ValueError(f"{TOKEN_MAP_KEY} maps one trigger word to its tokens: {{'ohwx': '<s0><s1>'}}")
    return mapping


def with_tokens(prompt: str, token_map: Mapping[str, str]) -> str:
    """The prompt with each trigger word replaced by its trained tokens (as the trainer
    captioned the images); unchanged for a LoRA without tokens."""
    for trigger, tokens in token_map.items():
        prompt = re.sub(rf"(?<![\w<]){re.escape(trigger)}(?![\w>])", tokens, prompt)
    return prompt


@dataclass(frozen=True)
class TrainedTokens:
    """A LoRA file's trained tokens: its token map, and each text encoder's rows for them."""

    token_map: dict[str, str]
    tokens: tuple[str, ...]
    embeddings: dict[str, Any]  # "clip_l"/"clip_g" → tensor [len(tokens), width]


def read_trained_tokens(lora_path: str) -> TrainedTokens | None:
    """The trained tokens in a LoRA file, or None if it has none."""
    from safetensors import safe_open

    with safe_open(lora_path, "pt") as f:
        token_map = token_map_of(f.metadata() or {})
        if not token_map:
            return None
        (text,) = token_map.values()
        embeddings = {name: f.get_tensor(EMBEDDING_PREFIX + name) for name in EMBEDDING_TARGETS}
    return TrainedTokens(token_map, split_tokens(text), embeddings)


def use_trained_tokens(pipe: Any, trained: TrainedTokens | None) -> dict[str, str]:
    """Put trained tokens into both tokenizers and text encoders; returns the token map for
    ``with_tokens`` ({} for None). Call under PIPELINE_LOCK.

    The first time, ``load_textual_inversion`` adds the tokens; later LoRAs overwrite their
    rows (every Replicate LoRA calls them "<s0><s1>", and diffusers refuses to add a token
    twice), so the tokens hold the embeddings of the LoRA used last."""
    import torch

    if trained is None:
        return {}
    tokens = trained.tokens
    for name, (encoder_attr, tokenizer_attr) in EMBEDDING_TARGETS.items():
        embeds = trained.embeddings[name]
        encoder, tokenizer = getattr(pipe, encoder_attr), getattr(pipe, tokenizer_attr)
        width = encoder.get_input_embeddings().weight.shape[1]
        if tuple(embeds.shape) != (len(tokens), width):
            raise ValueError(f"{name} embeddings are {tuple(embeds.shape)}, not {(len(tokens), width)}")
        vocab = tokenizer.get_vocab()
        missing = [i for i, t in enumerate(tokens) if t not in vocab]
        if missing:
            names = [tokens[i] for i in missing]
            pipe.load_textual_inversion(
                embeds[missing], token=names, tokenizer=tokenizer, text_encoder=encoder
            )
        weight = encoder.get_input_embeddings().weight
        with torch.no_grad():
            for token, row in zip(tokens, embeds, strict=True):
                weight[tokenizer.convert_tokens_to_ids(token)] = row.to(weight.dtype)
    return trained.token_map


def load_trained_tokens(pipe: Any, lora_path: str) -> dict[str, str]:
    """``use_trained_tokens`` of the file's tokens."""
    return use_trained_tokens(pipe, read_trained_tokens(lora_path))


def _to_array(pipe: Any, data: bytes, size: int) -> Any:
    import numpy as np
    import torch
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        im = im.convert("RGB").resize((size, size), Image.Resampling.LANCZOS)
        x = torch.from_numpy(np.asarray(im, dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)[None]
    with torch.no_grad():
        r = pipe.vae.decode(pipe.vae.encode(x.to(pipe.vae.dtype)).latent_dist.mean).sample
    return ((r[0].permute(1, 2, 0).float().numpy() + 1) / 2).clip(0, 1)


def similarity(image: Any, references: list[Any]) -> float:
    import numpy as np

    return float(max(1 - np.abs(image - r).mean() for r in references))


def score_one(request: ValidationRequest, storage: Storage) -> ValidationScore:
    import numpy as np
    import torch
    from PIL import Image

    if _base_model_path is None:
        raise RuntimeError("validation.configure(base_model_path) was not called")
    with PIPELINE_LOCK:
        pipe = pipeline(_base_model_path)
        size = int(pipe.unet.config.sample_size * pipe.vae_scale_factor)
        references = [_to_array(pipe, b"".join(storage.get(k)), size) for k in request.reference_keys]

        def generate(prompt: str) -> Any:
            return pipe(
                prompt,
                num_inference_steps=20,
                height=size,
                width=size,
                guidance_scale=1.0,
                generator=torch.Generator().manual_seed(request.seed),
                output_type="np",
            ).images[0]

        pipe.unload_lora_weights()  # the keyframe path's resident adapters must not colour the base image
        base_image = generate(request.prompt)
        with tempfile.TemporaryDirectory() as tmp:
            # Through a file, so that diffusers reads the adapter metadata (alpha) too.
            path = f"{tmp}/lora.safetensors"
            with open(path, "wb") as f:
                for chunk in storage.get(request.lora_key):
                    f.write(chunk)
            pipe.load_lora_weights(path, adapter_name="validation")
            token_map = load_trained_tokens(pipe, path)
        try:
            lora_image = generate(with_tokens(request.prompt, token_map))
        finally:
            pipe.unload_lora_weights()

    lora_sim, base_sim = similarity(lora_image, references), similarity(base_image, references)
    png = io.BytesIO()
    Image.fromarray((lora_image * 255).round().astype(np.uint8)).save(png, format="PNG")
    key = f"lora-validation/{request.lora_id}/{request.index}.png"
    storage.delete(key)  # a retry regenerates the same image; validation images are not archival
    storage.put(key, [png.getvalue()])
    return ValidationScore(
        index=request.index,
        prompt=request.prompt,
        image_key=key,
        image_url=storage.url(key),
        lora_similarity=round(lora_sim, 5),
        base_similarity=round(base_sim, 5),
        shows_character=lora_sim > base_sim + MARGIN,
    )
