// One LoRA: its creator, use, ratings (rate it, take the rating back), validation images, live
// training while it trains, and a report form.
import { useCallback, useEffect, useState, type FormEvent } from "react";
import { unwrap, type LoraDetail, type ReportReason } from "../api/client";
import { ErrorNotice } from "../components/ErrorNotice";
import { formatRating, STATUS_LABEL } from "../components/format";
import { TrainingStatusView } from "../components/TrainingStatus";
import type { TrainingState } from "../components/useTraining";
import { ValidationView } from "../components/ValidationView";
import { useLoraflow } from "../context";
import { onLinkClick } from "./router";

export const REPORT_REASONS: { value: ReportReason; label: string }[] = [
  { value: "sexual", label: "Sexual content" },
  { value: "minor", label: "Involves a minor" },
  { value: "violence", label: "Violence" },
  { value: "hate", label: "Hate" },
  { value: "impersonation", label: "Impersonates a real person" },
  { value: "copyright", label: "Copyright" },
  { value: "spam", label: "Spam" },
  { value: "other", label: "Something else" },
];

export function LoraDetailPage({ loraId }: { loraId: string }) {
  const api = useLoraflow();
  const [lora, setLora] = useState<LoraDetail | null>(null);
  const [error, setError] = useState<unknown>(null);

  const load = useCallback(() => {
    unwrap(api.client.GET("/api/v1/lora-models/{lora_id}", { params: { path: { lora_id: loraId } } })).then(
      (detail) => (setLora(detail), setError(null)),
      setError,
    );
  }, [api, loraId]);
  useEffect(load, [load]);

  const onTraining = useCallback(
    (state: TrainingState) => {
      if (lora && state.status && state.status !== lora.training_status) load();
    },
    [lora, load],
  );

  if (!lora) {
    return (
      <main className="page">
        {error ? <ErrorNotice error={error} /> : <p aria-live="polite">Loading…</p>}
      </main>
    );
  }
  const finished = lora.training_status === "completed" || lora.training_status === "failed";
  return (
    <main className="page detail-page">
      <p>
        <a href="/library" onClick={onLinkClick("/library")}>
          ← Library
        </a>
      </p>
      <h1>{lora.name}</h1>
      <p className="creator">by {lora.created_by.email ?? "a deleted user"}</p>
      {lora.hidden_reason && <p className="failed">Hidden from the library: {lora.hidden_reason}</p>}
      {lora.description && <p className="description">{lora.description}</p>}
      <dl className="facts">
        <dt>Status</dt>
        <dd>
          <span className={`badge badge-${lora.training_status}`}>{STATUS_LABEL[lora.training_status]}</span>
        </dd>
        <dt>Used</dt>
        <dd>
          {lora.usage_count} clips ({lora.uses_30d} in the last 30 days)
        </dd>
        <dt>Rating</dt>
        <dd data-testid="rating">{formatRating(lora.rating)}</dd>
        <dt>Base model</dt>
        <dd>{lora.base_model}</dd>
        {lora.trigger_word && (
          <>
            <dt>Trigger word</dt>
            <dd>
              <code>{lora.trigger_word}</code>
            </dd>
          </>
        )}
        <dt>Created</dt>
        <dd>{new Date(lora.created_at).toLocaleString()}</dd>
      </dl>
      {!finished && <TrainingStatusView loraId={lora.id} onChange={onTraining} />}
      {lora.training_status === "failed" && lora.error_message && <p className="failed">{lora.error_message}</p>}
      {lora.training_status === "completed" && <Rating lora={lora} onRated={load} />}
      {lora.validation && <ValidationView validation={lora.validation} />}
      <ReportForm loraId={lora.id} />
    </main>
  );
}

function Rating({ lora, onRated }: { lora: LoraDetail; onRated(): void }) {
  const api = useLoraflow();
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const run = async (call: Promise<unknown>) => {
    setBusy(true);
    setError(null);
    try {
      await call;
      onRated();
    } catch (exc) {
      setError(exc);
    } finally {
      setBusy(false);
    }
  };
  const path = { params: { path: { lora_id: lora.id } } };
  return (
    <section className="rating" aria-labelledby="rating-heading">
      <h2 id="rating-heading">Your rating</h2>
      <div role="group" aria-label="Rate this LoRA" className="stars">
        {[1, 2, 3, 4, 5].map((stars) => (
          <button
            key={stars}
            type="button"
            disabled={busy}
            aria-pressed={lora.my_rating === stars}
            aria-label={`${stars} star${stars === 1 ? "" : "s"}`}
            onClick={() => run(unwrap(api.client.PUT("/api/v1/lora-models/{lora_id}/rating", { ...path, body: { stars } })))}
          >
            {lora.my_rating && stars <= lora.my_rating ? "★" : "☆"}
          </button>
        ))}
        {lora.my_rating && (
          <button type="button" disabled={busy} className="link" onClick={() => run(unwrap(api.client.DELETE("/api/v1/lora-models/{lora_id}/rating", path)))}>
            Remove my rating
          </button>
        )}
      </div>
      <ErrorNotice error={error} />
    </section>
  );
}

function ReportForm({ loraId }: { loraId: string }) {
  const api = useLoraflow();
  const [open, setOpen] = useState(false);
  const [reason, setReason] = useState<ReportReason>("other");
  const [note, setNote] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState<number | null>(null);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    try {
      const body = { reason, ...(note.trim() ? { note: note.trim() } : {}) };
      const report = await unwrap(api.client.POST("/api/v1/lora-models/{lora_id}/reports", { params: { path: { lora_id: loraId } }, body }));
      setDone(report.id);
    } catch (exc) {
      setError(exc);
    }
  };

  if (done !== null) return <p role="status">Thank you: your report (#{done}) is with the moderators.</p>;
  if (!open) {
    return (
      <button type="button" className="link" onClick={() => setOpen(true)}>
        Report this LoRA
      </button>
    );
  }
  return (
    <form className="report-form" onSubmit={submit} aria-labelledby="report-heading">
      <h2 id="report-heading">Report this LoRA</h2>
      <div className="field">
        <label htmlFor="report-reason">Reason</label>
        <select id="report-reason" value={reason} onChange={(e) => setReason(e.target.value as ReportReason)}>
          {REPORT_REASONS.map((r) => (
            <option key={r.value} value={r.value}>
              {r.label}
            </option>
          ))}
        </select>
      </div>
      <div className="field">
        <label htmlFor="report-note">Details (optional)</label>
        <textarea id="report-note" rows={2} maxLength={1000} value={note} onChange={(e) => setNote(e.target.value)} />
      </div>
      <ErrorNotice error={error} />
      <button type="submit">Send report</button>
    </form>
  );
}
