// A LoRA's training, live: a badge for each status, the progress, the time left (pushed by the
// event stream), "Validating quality…", and the outcome. Status changes are announced
// (aria-live) without announcing every percent.
import { useEffect, useState } from "react";
import { adviceFor } from "../api/errors";
import { formatEta, STATUS_LABEL } from "./format";
import { useTraining, type TrainingState } from "./useTraining";

export interface TrainingStatusProps {
  loraId: string;
  /** Called with each new state (the upload page shows the result once it has completed). */
  onChange?: (state: TrainingState) => void;
}

export function TrainingStatusView({ loraId, onChange }: TrainingStatusProps) {
  const state = useTraining(loraId);
  useEffect(() => onChange?.(state), [state, onChange]);
  return <TrainingStatusDisplay state={state} />;
}

function announcement(state: TrainingState): string {
  switch (state.status) {
    case null:
      return "";
    case "pending":
      return "LoRA training is pending.";
    case "training":
      return "LoRA training has started.";
    case "validating":
      return "LoRA training finished. Validating quality.";
    case "completed":
      return "LoRA training completed. The LoRA is ready to use.";
    case "failed":
      return `LoRA training failed${state.error ? `: ${state.error}` : "."}`;
  }
}

export function TrainingStatusDisplay({ state }: { state: TrainingState }) {
  // Announced once per status (a polite live region re-reads only what changed).
  const [spoken, setSpoken] = useState("");
  useEffect(() => setSpoken(announcement(state)), [state.status, state.error]); // the announcement changes with these alone
  const eta = formatEta(state.eta);
  const status = state.status;
  return (
    <div className="training-status" data-status={status ?? "loading"}>
      <div className="training-status-head">
        {status ? (
          <span className={`badge badge-${status}`} data-testid="status-badge">
            {STATUS_LABEL[status]}
          </span>
        ) : (
          <span className="badge">Loading…</span>
        )}
        {state.connection === "reconnecting" && <span className="muted"> reconnecting…</span>}
      </div>
      {(status === "pending" || status === "training") && (
        <div className="progress-row">
          <progress max={100} value={state.progress} aria-label="Training progress" />
          <span className="progress-text">{state.progress}%</span>
          {eta && <span className="eta">{eta}</span>}
        </div>
      )}
      {status === "pending" && <p className="muted">Waiting for a GPU…</p>}
      {status === "validating" && <p className="validating">Validating quality…</p>}
      {status === "completed" && <p className="done">Training complete: the LoRA is ready to use.</p>}
      {status === "failed" && <p className="failed">Training failed{state.error ? `: ${state.error}` : "."}</p>}
      {state.problem != null && status === null && <p className="failed">{adviceFor(state.problem).text}</p>}
      <p className="visually-hidden" role="status" aria-live="polite">
        {spoken}
      </p>
    </div>
  );
}
