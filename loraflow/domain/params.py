"""Training parameters: what a user may choose, within which bounds, and the defaults.

``lora_models.training_params`` holds exactly what ``resolve_params`` returns (the dataset lives
in its own table); the API shows a LoRA's ``PUBLIC_PARAMS`` only.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from loraflow.settings import Settings

__all__ = [
    "PRODUCTION_DEFAULTS",
    "PUBLIC_PARAMS",
    "TrainingParams",
    "params_problem",
    "public_params",
    "resolve_params",
]

#: Character-LoRA defaults for full-size SDXL (see the README for where the numbers come from).
PRODUCTION_DEFAULTS: dict[str, Any] = {
    "steps": 1000,
    "rank": 16,
    "alpha": 16,
    "learning_rate": 1e-4,
    "resolution": 1024,
    "seed": 42,
    "trigger_word": "ohwx",
}


class TrainingParams(BaseModel):
    """What a user may override, within bounds that keep a training sane and affordable."""

    model_config = ConfigDict(extra="forbid")

    steps: int | None = Field(default=None, ge=1, le=5000, description="Optimizer steps (default 1000).")
    rank: int | None = Field(default=None, ge=1, le=128, description="LoRA rank (default 16).")
    alpha: int | None = Field(default=None, ge=1, le=256, description="LoRA alpha (default = rank).")
    learning_rate: float | None = Field(default=None, ge=1e-6, le=1e-2, description="Default 1e-4.")
    resolution: int | None = Field(default=None, ge=512, le=1536, multiple_of=64, description="Default 1024.")
    trigger_word: str | None = Field(
        default=None,
        pattern=r"^[a-z][a-z0-9]{1,19}$",
        description="Token that invokes the character (default ohwx).",
    )
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1, description="Default 42.")


#: The parameters a user chooses, and so the ones anyone may see (a preset's internals are not).
PUBLIC_PARAMS: tuple[str, ...] = tuple(TrainingParams.model_fields)


def resolve_params(settings: Settings, overrides: TrainingParams | None) -> dict[str, Any]:
    """The parameters a training runs with: the base model's defaults and the user's overrides."""
    if settings.base_model == "tiny":
        from training_scripts.tiny_model import TINY_TRAINING_PARAMS

        # The tiny model has its own preset; only the trigger word, seed and steps carry over.
        base = {**PRODUCTION_DEFAULTS, **TINY_TRAINING_PARAMS}
        allowed = {"trigger_word", "seed", "steps"}
    else:
        base = dict(PRODUCTION_DEFAULTS)
        allowed = set(PUBLIC_PARAMS)
    chosen = overrides.model_dump(exclude_none=True) if overrides else {}
    params = {**base, **{k: v for k, v in chosen.items() if k in allowed}}
    if "alpha" not in chosen and "rank" in chosen:
        params["alpha"] = params["rank"]
    return params


def params_problem(settings: Settings, params: dict[str, Any]) -> str | None:
    """Why a workflow cannot train with ``params`` (as it received them), or None.

    Checked again where training starts, not only at the API: a workflow's input may come from
    a job, an operator or an old record, and a pod must never be rented for ``steps=999999`` or
    ``resolution=8192``. The preset's own values pass; anything else must be a choice a user
    may make, within ``TrainingParams``' bounds."""
    preset = resolve_params(settings, None)
    unknown = sorted(set(params) - set(preset))
    if unknown:
        return f"unknown training parameters: {', '.join(unknown)}"
    chosen = {k: v for k, v in params.items() if v != preset[k]}
    not_choosable = sorted(set(chosen) - set(PUBLIC_PARAMS))
    if not_choosable:
        return f"training parameters that cannot be chosen: {', '.join(not_choosable)}"
    try:
        TrainingParams.model_validate(chosen)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
        return f"training parameters out of bounds: {problems}"
    return None


def public_params(params: dict[str, Any] | None) -> dict[str, Any]:
    """Of a LoRA's stored parameters, the ones a user chooses."""
    return {k: params[k] for k in PUBLIC_PARAMS if params and k in params}
