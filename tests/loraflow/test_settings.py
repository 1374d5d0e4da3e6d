"""Settings: fixed choices refused when misspelt, GPU types a list, DATABASE_URL and
LORAFLOW_SMTP_URL checked once (without repeating their passwords), limits' defaults from
contracts.limits."""

from __future__ import annotations

import pydantic
import pytest

from loraflow.contracts import limits
from loraflow.mail import SmtpConfig
from loraflow.settings import Settings, settings_env


def test_gpu_types_are_a_list_read_from_a_comma_separated_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().runpod_gpu_types == ["NVIDIA L40S", "NVIDIA GeForce RTX 4090", "NVIDIA RTX A6000"]
    monkeypatch.setenv("LORAFLOW_RUNPOD_GPU_TYPES", " NVIDIA A40, NVIDIA L4 ,")
    settings = Settings()
    assert settings.runpod_gpu_types == ["NVIDIA A40", "NVIDIA L4"]
    # A child process given settings_env() reads the same list back.
    monkeypatch.setenv("LORAFLOW_RUNPOD_GPU_TYPES", settings_env(settings)["LORAFLOW_RUNPOD_GPU_TYPES"])
    assert Settings().runpod_gpu_types == ["NVIDIA A40", "NVIDIA L4"]


@pytest.mark.parametrize(
    ("variable", "value"),
    [("LORAFLOW_COMPUTE_PROVIDER", "aws"), ("LORAFLOW_STORAGE", "s3"), ("LORAFLOW_LOG_LEVEL", "loud")],
)
def test_fixed_choices_refuse_anything_else(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(pydantic.ValidationError):
        Settings()


def test_log_level_in_any_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LORAFLOW_LOG_LEVEL", "warning")
    assert Settings().log_level == "WARNING"


@pytest.mark.parametrize(
    ("dsn", "problem"),
    [
        ("mysql://app:hunter2@db/app", "must be a PostgreSQL URL"),
        ("postgresql://app:hunter2@[::1/app", "not a PostgreSQL connection string"),
        ("postgresql://app:hunter 2@db/app", "not a PostgreSQL connection string"),
        ("host=db password=hunter2 port", "not a PostgreSQL connection string"),
    ],
)
def test_a_malformed_database_url_is_refused_without_its_password(
    monkeypatch: pytest.MonkeyPatch, dsn: str, problem: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", dsn)
    with pytest.raises(pydantic.ValidationError) as refused:
        Settings()
    assert "DATABASE_URL" in str(refused.value) and problem in str(refused.value)
    assert "hunter" not in str(refused.value)


def test_database_url_unset_or_blank_is_required_only_where_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "  ")
    settings = Settings()
    assert settings.database_url is None
    with pytest.raises(RuntimeError, match="DATABASE_URL is not set"):
        settings.require_database_url()
    dsn = "postgresql://app@/loraflow?host=/tmp/pg"
    assert Settings(database_url=dsn).require_database_url() == dsn


def test_limits_defaults_come_from_the_contracts() -> None:
    settings = Settings()
    assert settings.pending_images_timeout_s == limits.PENDING_IMAGES_WAIT_S
    assert settings.training_cost_cap_usd == limits.TRAINING_COST_CAP_USD
    assert settings.max_training_s == limits.MAX_TRAINING_S
    assert settings.agent_idle_s == limits.AGENT_IDLE_S


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://me:hunter2@mail.example", "got a http:// URL"),
        ("smtp://me:hunter2@:25", "names no host"),
        ("smtp://me:hunter2@mail.example:x25", "port is not a number"),
        ("smtp://me:hunter2@mail.example?starttls=maybe", "starttls must be true or false"),
        ("smtp://me:hunter2@mail.example?tls=1", "unknown option(s) tls"),
        ("smtps://me:hunter2@mail.example?starttls=true", "smtps:// is TLS already"),
    ],
)
def test_a_malformed_smtp_url_is_refused_without_its_password(
    monkeypatch: pytest.MonkeyPatch, url: str, problem: str
) -> None:
    monkeypatch.setenv("LORAFLOW_SMTP_URL", url)
    with pytest.raises(pydantic.ValidationError) as refused:
        Settings()
    assert "LORAFLOW_SMTP_URL" in str(refused.value) and problem in str(refused.value)
    assert "hunter" not in str(refused.value)


def test_the_smtp_url_forms_and_the_link_in_the_email(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LORAFLOW_SMTP_URL", "smtps://me%40example.org:p%40ss%3Aword@mail.example")
    settings = Settings()
    assert settings.smtp == SmtpConfig("mail.example", None, "me@example.org", "p@ss:word", use_tls=True,
                                       start_tls=False)  # fmt: skip
    assert "p@ss" not in repr(settings) and "p@ss" not in repr(settings.smtp)
    # A child process given settings_env() reads the same server back.
    monkeypatch.setenv("LORAFLOW_SMTP_URL", settings_env(settings)["LORAFLOW_SMTP_URL"])
    assert Settings().smtp == settings.smtp
    assert Settings(smtp_url="smtp://mail.example:2525?starttls=true").smtp == SmtpConfig(
        "mail.example", 2525, start_tls=True
    )
    assert Settings(smtp_url="smtp://mail.example").smtp == SmtpConfig("mail.example")  # STARTTLS if offered
    assert Settings(smtp_url="smtp://mail.example?starttls=false").smtp == SmtpConfig(
        "mail.example", start_tls=False
    )
    assert Settings(smtp_url="  ").smtp is None

    assert Settings(public_url="https://loras.example/").lora_link("42") == (
        "https://loras.example/api/v1/lora-models/42"
    )
    page = Settings(lora_page_url="https://app.example/loras/{lora_id}?tab=files")
    assert page.lora_link("42") == "https://app.example/loras/42?tab=files"
    with pytest.raises(pydantic.ValidationError, match="must contain"):
        Settings(lora_page_url="https://app.example/loras")
    with pytest.raises(pydantic.ValidationError, match="must be an address"):
        Settings(smtp_from="loraflow")


def test_screening_labels_are_a_list_of_nudenet_labels(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().screening and Settings().screening_threshold == 0.6
    monkeypatch.setenv("LORAFLOW_SCREENING_LABELS", " face_female, BUTTOCKS_EXPOSED ,")
    settings = Settings()
    assert settings.screening_labels == ["FACE_FEMALE", "BUTTOCKS_EXPOSED"]
    # A child process given settings_env() reads the same list back.
    monkeypatch.setenv("LORAFLOW_SCREENING_LABELS", settings_env(settings)["LORAFLOW_SCREENING_LABELS"])
    assert Settings().screening_labels == ["FACE_FEMALE", "BUTTOCKS_EXPOSED"]
    for wrong in ("NUDITY", ""):  # a misspelt label, or none at all (LORAFLOW_SCREENING=false is off)
        monkeypatch.setenv("LORAFLOW_SCREENING_LABELS", wrong)
        with pytest.raises(pydantic.ValidationError):
            Settings()
    monkeypatch.delenv("LORAFLOW_SCREENING_LABELS")
    for threshold in ("0", "1.5"):
        monkeypatch.setenv("LORAFLOW_SCREENING_THRESHOLD", threshold)
        with pytest.raises(pydantic.ValidationError):
            Settings()
