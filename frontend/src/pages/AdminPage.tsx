// The review queue (admins: app_metadata.role "admin"): reported and screening-hidden LoRAs,
// oldest first, each with its validation images and reports; hide or restore with a reason.
import { useCallback, useEffect, useState } from "react";
import { LoraflowApiError, unwrap, type ReviewItem } from "../api/client";
import { ErrorNotice } from "../components/ErrorNotice";
import { ValidationView } from "../components/ValidationView";
import { useLoraflow } from "../context";
import { onLinkClick } from "./router";

export function AdminPage() {
  const api = useLoraflow();
  const [items, setItems] = useState<ReviewItem[] | null>(null);
  const [error, setError] = useState<unknown>(null);

  const load = useCallback(() => {
    unwrap(api.client.GET("/api/v1/admin/reports", { params: { query: { limit: 50 } } })).then(
      (queue) => (setItems(queue.items), setError(null)),
      (exc) => (setError(exc), setItems(null)),
    );
  }, [api]);
  useEffect(load, [load]);

  if (error instanceof LoraflowApiError && error.status === 403) {
    return (
      <main className="page admin-page">
        <h1>Review</h1>
        <p role="alert">Only admins can review reports.</p>
      </main>
    );
  }
  return (
    <main className="page admin-page">
      <h1>Review</h1>
      <ErrorNotice error={error} />
      <p aria-live="polite" data-testid="review-state">
        {items === null ? (error ? "" : "Loading…") : items.length === 0 ? "Nothing to review." : `${items.length} to review, oldest first.`}
      </p>
      <ul className="review-items">
        {items?.map((item) => (
          <ReviewCard key={item.lora.id} item={item} onDecided={load} />
        ))}
      </ul>
    </main>
  );
}

function ReviewCard({ item, onDecided }: { item: ReviewItem; onDecided(): void }) {
  const api = useLoraflow();
  const [reason, setReason] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const { lora } = item;
  const hidden = !!lora.hidden_reason;

  const decide = async (action: "hide" | "restore") => {
    setBusy(true);
    setError(null);
    try {
      await unwrap(
        api.client.POST("/api/v1/admin/lora-models/{lora_id}/moderation", {
          params: { path: { lora_id: lora.id } },
          body: { action, reason },
        }),
      );
      onDecided();
    } catch (exc) {
      setError(exc);
    } finally {
      setBusy(false);
    }
  };

  return (
    <li className="review-card">
      <h2>
        <a href={`/library/${lora.id}`} onClick={onLinkClick(`/library/${lora.id}`)}>
          {lora.name}
        </a>{" "}
        <span className="muted">by {lora.created_by.email ?? "a deleted user"}</span>
      </h2>
      <p className="muted">
        In the queue since {new Date(item.since).toLocaleString()}
        {hidden ? ` · hidden: ${lora.hidden_reason}` : ""}
      </p>
      {item.reports.length ? (
        <ul className="reports">
          {item.reports.map((r) => (
            <li key={r.id}>
              <strong>{r.reason}</strong>
              {r.note ? `: ${r.note}` : ""} <span className="muted">({new Date(r.created_at).toLocaleString()})</span>
            </li>
          ))}
        </ul>
      ) : (
        <p>Hidden by automatic screening; no reports.</p>
      )}
      {lora.validation && <ValidationView validation={lora.validation} />}
      <div className="decision">
        <label htmlFor={`reason-${lora.id}`}>Reason (kept in the audit log; shown to the creator on hide)</label>
        <input id={`reason-${lora.id}`} type="text" maxLength={1000} value={reason} onChange={(e) => setReason(e.target.value)} />
        <button type="button" disabled={busy || !reason.trim()} onClick={() => decide("hide")}>
          Hide
        </button>
        <button type="button" disabled={busy || !reason.trim()} onClick={() => decide("restore")}>
          Restore
        </button>
      </div>
      <ErrorNotice error={error} />
    </li>
  );
}
