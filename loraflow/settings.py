"""One place for configuration: environment variables, read once.

Every variable is documented in the README's "Configuration" table; keep the two in step.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from loraflow.contracts import limits
from loraflow.ml.screening import DEFAULT_THRESHOLD, EXPLICIT_LABELS, LABELS

if TYPE_CHECKING:
    from loraflow.mail import SmtpConfig

REPO_ROOT = Path(__file__).resolve().parent.parent

#: A secret that is only good for a laptop; `loraflow api` logs a warning when it runs with it.
DEV_JWT_SECRET = "loraflow-dev-secret-do-not-use-in-production-0123456789"  # noqa: S105


ComputeProvider = Literal["local", "runpod"]
StorageBackend = Literal["local", "supabase"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class Settings(BaseSettings):
    # Inputs stay out of validation errors: some of them are secrets (DSNs carry passwords).
    model_config = SettingsConfigDict(env_prefix="LORAFLOW_", extra="ignore", hide_input_in_errors=True)

    # --- where things live -------------------------------------------------------------
    data_dir: Path = Field(
        default=Path(".loraflow"),
        description="Embedded stack state: Temporal's SQLite file, PostgreSQL, object storage.",
    )
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "LORAFLOW_DATABASE_URL"),
        description="PostgreSQL DSN. Unset under `loraflow dev`: the embedded server is used. "
        "Checked when read; `require_database_url()` is how a process that needs one gets it.",
    )
    temporal_address: str = Field(
        default="127.0.0.1:7233",
        validation_alias=AliasChoices("TEMPORAL_ADDRESS", "LORAFLOW_TEMPORAL_ADDRESS"),
    )
    temporal_namespace: str = Field(
        default="default",
        validation_alias=AliasChoices("TEMPORAL_NAMESPACE", "LORAFLOW_TEMPORAL_NAMESPACE"),
    )
    task_queue: str = "loraflow-training"
    gpu_task_queue: str = Field(
        default="loraflow-gpu",
        description="Task queue of the keyframe (pre-process) path's `plan_clip`, served by "
        "`loraflow worker --gpu`.",
    )
    dev_temporal_port: int = Field(default=7233, description="gRPC port of the embedded Temporal server.")
    temporal_ui_port: int = 8233

    storage: StorageBackend = Field(
        default="local", description="Object storage: `local` (DATA_DIR/storage) or `supabase`."
    )
    supabase_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("SUPABASE_URL", "LORAFLOW_SUPABASE_URL"),
        description="The Supabase project URL (storage lives at {url}/storage/v1).",
    )
    supabase_service_role_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("SUPABASE_SERVICE_ROLE_KEY", "LORAFLOW_SUPABASE_SERVICE_ROLE_KEY"),
        description="Service-role key for Storage (server side only).",
    )

    # --- HTTP API ------------------------------------------------------------------------
    public_url: str | None = Field(
        default=None,
        description="The API's base URL as clients reach it; local storage's files are served from it "
        "(default: http://API_HOST:API_PORT).",
    )
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    jwt_secret: SecretStr = Field(
        default=SecretStr(DEV_JWT_SECRET),
        description="Supabase project's JWT secret (HS256; at least 32 characters).",
    )
    #: Only ``loraflow dev``/``demo`` (and the test suite) set this: with the built-in development
    #: secret anyone can mint any user's token, ``service_role`` included.
    allow_dev_secret: bool = Field(
        default=False,
        description="Let `api`/`worker` start with the development JWT secret (set by `loraflow dev`).",
    )
    #: Only ``loraflow dev``/``demo`` set this: ``GET /dev/sign-in`` mints any user's token.
    dev_sign_in: bool = Field(
        default=False,
        description="Serve `GET /dev/sign-in`, which signs a browser in as any user (set by `loraflow dev`).",
    )
    web_dir: Path = Field(
        default=REPO_ROOT / "frontend" / "dist",
        description="The built pages (`frontend/dist`): served at `/` when the folder holds an index.html.",
    )
    jwt_audience: str = "authenticated"
    jwks_url: str | None = Field(
        default=None,
        description="JWKS URL for asymmetric JWTs (Supabase: {project}/auth/v1/.well-known/jwks.json).",
    )
    api_workers: int = Field(default=1, ge=1, description="uvicorn worker processes for `loraflow api`.")
    db_pool_min: int = 2
    db_pool_max: int = 16

    image_check_threads: int = Field(
        default=2, ge=1, description="Uploaded images the API decodes at once (off its event loop)."
    )

    # --- training --------------------------------------------------------------------------
    base_model: str = Field(
        default="tiny",
        description="Diffusers SDXL pipeline folder the pods train on and validation generates with; "
        "`tiny` builds the tiny random-weight test model into DATA_DIR/models.",
    )
    compute_provider: ComputeProvider = Field(
        default="local", description="Where pods run: `local` or `runpod`."
    )
    runpod_api_key: SecretStr | None = Field(default=None, description="RunPod API key.")
    runpod_base_url: str = Field(default="https://api.runpod.io", description="RunPod REST API v2 base URL.")
    runpod_image: str = Field(
        default="ghcr.io/loraflow/trainer:latest",
        description="The trainer image (training_scripts/Dockerfile).",
    )
    runpod_gpu_types: Annotated[list[str], NoDecode] = Field(
        default=["NVIDIA L40S", "NVIDIA GeForce RTX 4090", "NVIDIA RTX A6000"],
        min_length=1,
        description="GPU types to try, in order (in the environment: comma-separated).",
    )
    runpod_cloud_type: Literal["SECURE", "COMMUNITY"] = Field(
        default="SECURE", description="RunPod's cloud tier (`cloud` in a pod create): SECURE or COMMUNITY."
    )
    runpod_min_cuda_version: str = Field(
        default="12.6",
        pattern=r"^\d+\.\d+$",
        description="Lowest host CUDA version a pod may land on (the trainer image's CUDA build).",
    )
    runpod_proxy_url: str = Field(
        default="https://{pod_id}-{port}.proxy.runpod.net",
        description="How a pod's HTTP port is reached (RunPod's proxy), with `{pod_id}` and `{port}`.",
    )
    runpod_timeout_s: float = Field(default=30.0, gt=0, description="Timeout of each RunPod API call.")
    runpod_base_model: str = Field(
        default="/models/sdxl-base", description="The base model's folder inside the trainer image."
    )
    replicate_api_token: SecretStr | None = Field(
        default=None, description="Replicate API token; set, it is the fallback when RunPod has no GPU."
    )
    replicate_base_url: str | None = Field(
        default=None, description="Replicate API base URL (default theirs)."
    )
    replicate_destination: str = Field(
        default="loraflow/character-loras", description="Replicate model (owner/name) trainings push to."
    )
    replicate_trainer_version: str = Field(
        default="stability-ai/sdxl:7762fd07cf82c948538e41f63f77d685e02b063e37e496e96eefd46c929f9bdc",
        description="The SDXL trainer version (owner/name:version).",
    )
    replicate_price_per_hour: float = Field(
        default=3.51, ge=0, description="USD per hour of a Replicate training."
    )
    pod_token_secret: SecretStr | None = Field(
        default=None, description="Derives each pod agent's token from its name (HMAC). Required for RunPod."
    )
    local_price_per_hour: float = Field(default=0.0, ge=0, description="USD per hour billed for a local pod.")
    local_storage_write_bps: int | None = Field(
        default=None,
        gt=0,
        description="Local storage writes at most this many bytes/s, like a remote store's link: for "
        "fault drills (a worker killed mid-download or mid-store on a small LoRA). Off by default.",
    )
    local_storage_latency_s: float = Field(
        default=0.0,
        ge=0,
        le=60,
        description="Each local storage read or write waits this many seconds first, like a remote "
        "store's round trip: for fault drills (a worker killed mid-upload of a few small images). "
        "Off by default.",
    )
    local_provider_latency_s: float = Field(
        default=0.0,
        ge=0,
        le=60,
        description="Creating or terminating a local pod takes this many seconds more, like a cloud "
        "provider's API call: for fault drills (a worker killed mid-create or mid-cleanup). Off by default.",
    )
    min_image_side: int = Field(
        default=256, ge=64, description="Shortest side a character image may have, px."
    )

    agent_idle_s: float = Field(
        default=limits.AGENT_IDLE_S,
        gt=0,
        description="A pod whose agent hears nothing from its workflow for this long removes itself.",
    )
    max_training_s: float = Field(
        default=limits.MAX_TRAINING_S,
        gt=0,
        description="A pod older than this is terminated by the orphan sweeper.",
    )
    pending_images_timeout_s: float = Field(
        default=limits.PENDING_IMAGES_WAIT_S,
        gt=0,
        description="Seconds a pending LoRA waits for its images before it fails.",
    )
    validation_image_days: int = Field(
        default=30, ge=1, description="Days validation images are kept before the daily purge."
    )

    webhook_url: str | None = Field(
        default=None, description="POSTed a signed payload when a LoRA completes or fails."
    )
    webhook_secret: SecretStr | None = Field(
        default=None, description="Signs the webhook (Standard Webhooks: HMAC-SHA256)."
    )
    smtp_url: SecretStr | None = Field(
        default=None,
        description="The SMTP server that e-mails a LoRA's creator when it completes or fails: "
        "`smtp://[user:password@]host[:port]` (STARTTLS when offered; `?starttls=true` requires it, "
        "`?starttls=false` never) or `smtps://...` (implicit TLS); user and password percent-encoded. "
        "Unset: no e-mail.",
    )
    smtp_from: str = Field(default="loraflow <noreply@localhost>", description="The From of those e-mails.")
    lora_page_url: str | None = Field(
        default=None,
        description="The link to a LoRA in those e-mails, with `{lora_id}` "
        "(default: PUBLIC_URL/api/v1/lora-models/{lora_id}).",
    )
    lora_cache_files: int = Field(
        default=16, ge=1, description="Downloaded LoRA files kept for the keyframe pre-process path."
    )
    keyframes: Literal["local", "replicate"] = Field(
        default="local",
        description="Where the GPU worker makes keyframes: `local` (it loads the SDXL pipeline) or "
        "`replicate` (predictions of the LoRA's Replicate version; the worker needs no GPU).",
    )

    # --- validation ------------------------------------------------------------------------
    judge_model: str | None = Field(
        default=None,
        description="Local folder of a CLIP or DINOv2 image model (transformers): the judge of "
        "characters whose references show no face.",
    )
    face_judge: bool = Field(
        default=True, description="Judge characters whose references show a face by face identity (dlib)."
    )
    validation_steps: int | None = Field(
        default=None,
        ge=1,
        le=100,
        description="Denoising steps of each validation image (default 25; 10 on the tiny model).",
    )

    # --- automatic screening (loraflow.ml.screening) -------------------------------------------
    screening: bool = Field(
        default=True,
        description="Screen training images (at upload, and before training) and validation images "
        "with NudeNet's detector.",
    )
    screening_threshold: float = Field(
        default=DEFAULT_THRESHOLD,
        gt=0,
        le=1,
        description="A blocked label detected with at least this score flags the image.",
    )
    screening_labels: Annotated[list[str], NoDecode] = Field(
        default=list(EXPLICIT_LABELS),
        min_length=1,
        description="NudeNet labels that flag an image (in the environment: comma-separated).",
    )

    # --- product rules -------------------------------------------------------------------
    monthly_budget_usd: float = Field(
        default=200.0, ge=0, description="Training spend per UTC month; at it new trainings get 503."
    )
    budget_alert_usd: float = Field(default=150.0, ge=0, description="Spend at which the alert fires.")
    budget_alert_webhook_url: str | None = Field(default=None, description="POSTed when the alert fires.")
    training_cost_cap_usd: float = Field(
        default=limits.TRAINING_COST_CAP_USD,
        gt=0,
        description="A running training that costs more is cancelled (with cleanup).",
    )
    monthly_limit: int = Field(default=5, ge=0, description="LoRAs a user may start per month.")

    # --- observability ---------------------------------------------------------------------
    metrics_port: int | None = Field(
        default=None, description="Serve Prometheus metrics (Temporal SDK's and loraflow's) on this port."
    )

    # --- logging -------------------------------------------------------------------------
    log_level: LogLevel = "INFO"
    log_json: bool = False

    @field_validator("jwt_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        # An empty or short HS256 secret is guessed (an empty one verifies a token anyone signs
        # with the empty key); Supabase's are 40 characters or more.
        if len(value.get_secret_value()) < 32:
            raise ValueError(
                "LORAFLOW_JWT_SECRET must be at least 32 characters (your Supabase project's JWT secret)"
            )
        return value

    @field_validator("database_url", mode="before")
    @classmethod
    def _check_database_url(cls, value: Any) -> str | None:
        """A PostgreSQL URL (``postgresql://user:password@host:5432/db``) or libpq key=value
        string, or unset (blank counts as unset)."""
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not isinstance(value, str):
            raise ValueError("DATABASE_URL must be a string")
        value = value.strip()
        if "://" in value and not value.startswith(("postgresql://", "postgres://")):
            raise ValueError(
                "DATABASE_URL must be a PostgreSQL URL (postgresql://user:password@host:5432/dbname); "
                f"got a {value.split('://', 1)[0]}:// URL"
            )
        from psycopg import ProgrammingError
        from psycopg.conninfo import conninfo_to_dict

        try:
            conninfo_to_dict(value)
        except ProgrammingError as exc:
            problem = _without_password(str(exc).strip(), value)
            raise ValueError(f"DATABASE_URL is not a PostgreSQL connection string: {problem}") from None
        return value

    @field_validator("smtp_url", mode="before")
    @classmethod
    def _check_smtp_url(cls, value: Any) -> Any:
        """An ``smtp://`` or ``smtps://`` URL (``loraflow.mail.parse_smtp_url``), or unset (blank
        counts as unset)."""
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            return None
        if not isinstance(raw, str):
            raise ValueError("LORAFLOW_SMTP_URL must be a string")
        from loraflow.mail import parse_smtp_url

        parse_smtp_url(raw)  # its errors never repeat the password
        return raw.strip()

    @field_validator("smtp_from")
    @classmethod
    def _check_smtp_from(cls, value: str) -> str:
        from email.utils import parseaddr

        if "@" not in parseaddr(value)[1] or "\n" in value or "\r" in value:
            raise ValueError("LORAFLOW_SMTP_FROM must be an address: `name <user@domain>` or `user@domain`")
        return value

    @field_validator("lora_page_url")
    @classmethod
    def _check_lora_page_url(cls, value: str | None) -> str | None:
        if value is not None and "{lora_id}" not in value:
            raise ValueError("LORAFLOW_LORA_PAGE_URL must contain {lora_id}")
        return value

    @field_validator("runpod_gpu_types", mode="before")
    @classmethod
    def _split_gpu_types(cls, value: Any) -> Any:
        """The environment gives ``NVIDIA L40S,NVIDIA GeForce RTX 4090``: a list, in order."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("screening_labels", mode="before")
    @classmethod
    def _split_screening_labels(cls, value: Any) -> Any:
        """``FEMALE_BREAST_EXPOSED,BUTTOCKS_EXPOSED``: a list, upper-cased."""
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list | tuple):
            return [str(part).strip().upper() for part in value if str(part).strip()]
        return value

    @field_validator("screening_labels")
    @classmethod
    def _known_screening_labels(cls, value: list[str]) -> list[str]:
        unknown = [label for label in value if label not in LABELS]
        if unknown:
            raise ValueError(f"unknown NudeNet labels {unknown}; known: {', '.join(LABELS)}")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @property
    def resolved_validation_steps(self) -> int:
        if self.validation_steps is not None:
            return self.validation_steps
        return 10 if self.base_model == "tiny" else 25

    def require_database_url(self) -> str:
        """The DSN, for a process that cannot run without PostgreSQL (API, worker, migrate)."""
        if not self.database_url:
            raise RuntimeError(
                "DATABASE_URL is not set: point it at PostgreSQL "
                "(`loraflow dev` sets it for the embedded stack)"
            )
        return self.database_url

    @property
    def sql_dir(self) -> Path:
        return REPO_ROOT / "sql"

    @property
    def uses_dev_secret(self) -> bool:
        return self.jwt_secret.get_secret_value() == DEV_JWT_SECRET

    @property
    def public_base_url(self) -> str:
        return (self.public_url or f"http://{self.api_host}:{self.api_port}").rstrip("/")

    @property
    def smtp(self) -> SmtpConfig | None:
        """The SMTP server of the creators' e-mails; None when LORAFLOW_SMTP_URL is unset."""
        if self.smtp_url is None:
            return None
        from loraflow.mail import parse_smtp_url

        return parse_smtp_url(self.smtp_url.get_secret_value())

    def lora_link(self, lora_id: str) -> str:
        """Where a creator's e-mail links to for their LoRA."""
        if self.lora_page_url:
            return self.lora_page_url.replace("{lora_id}", lora_id)
        return f"{self.public_base_url}/api/v1/lora-models/{lora_id}"

    def file_signing_key(self) -> bytes:
        """Signs local storage's private URLs (derived from the JWT secret: one secret to keep)."""
        return hashlib.sha256(b"loraflow-file-urls\0" + self.jwt_secret.get_secret_value().encode()).digest()

    def refuse_dev_secret(self) -> None:
        """For `loraflow api`/`worker`: never run on the public development secret outside the
        dev stack."""
        if self.uses_dev_secret and not self.allow_dev_secret:
            raise RuntimeError(
                "LORAFLOW_JWT_SECRET is not set, and the built-in development secret lets anyone "
                "mint any user's token: set it to your Supabase project's JWT secret "
                "(`loraflow dev` and `loraflow demo` run on the development secret)"
            )
        if self.dev_sign_in and not self.uses_dev_secret:
            raise RuntimeError(
                "LORAFLOW_DEV_SIGN_IN mints tokens for any user: it runs only on the development "
                "JWT secret (the `loraflow dev` stack), never with a real one"
            )


def _without_password(message: str, dsn: str) -> str:
    """libpq's parse errors may quote the DSN: never repeat its password."""
    secrets = re.findall(r"://[^:@/]*:([^@/]*)@", dsn) + re.findall(r"password\s*=\s*'?([^'\s]+)", dsn)
    for secret in filter(None, secrets):
        message = message.replace(secret, "***")
    return message


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a child process's Settings() equal to ``settings``."""
    env = {}
    for name, field in Settings.model_fields.items():
        value = getattr(settings, name)
        if value is None:
            continue
        choices = getattr(field.validation_alias, "choices", None)
        key = str(choices[0]) if choices else f"LORAFLOW_{name.upper()}"
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, list):
            value = ",".join(value)
        env[key] = str(value)
    return env


@lru_cache
def get_settings() -> Settings:
    return Settings()
