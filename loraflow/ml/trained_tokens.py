"""Trained tokens: a LoRA trained together with textual-inversion tokens carries them in its file.

Replicate's SDXL trainer trains ``<s0><s1>`` in place of the trigger word. The stored LoRA keeps
their embeddings in the same .safetensors:

    loraflow.embeddings.clip_l  [tokens, CLIP ViT-L width]    -> text_encoder / tokenizer
    loraflow.embeddings.clip_g  [tokens, OpenCLIP bigG width] -> text_encoder_2 / tokenizer_2

and ``__metadata__["loraflow.token_map"] = '{"<trigger>": "<s0><s1>"}'``: what the trigger word in
a prompt becomes (special_params.json's form), the rows in the order of its tokens. One file, so
the library's one URL, size and sha256 cover the tokens too. The key names contain "lora"
because diffusers' load_lora_weights refuses a file with any key that does not; they match no
module prefix, so it ignores them, and a plain load_lora_weights(file) still works.

The format half (names, parsing) needs only the standard library; torch and safetensors are
imported where tensors are read or written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "EMBEDDING_PREFIX",
    "EMBEDDING_TARGETS",
    "TOKEN_MAP_KEY",
    "TrainedTokens",
    "load_trained_tokens",
    "read_trained_tokens",
    "split_tokens",
    "token_map_of",
    "use_trained_tokens",
    "with_tokens",
]

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
    ``with_tokens`` ({} for None). Call while holding the pipeline (``SdxlPipeline.use()``).

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
