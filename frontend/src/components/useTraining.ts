// A LoRA's training as React state: its status once (GET .../status, which has the phase and
// the ETA), then live over the event stream (GET .../events) until the outcome.
import { useEffect, useState } from "react";
import { unwrap, type TrainingStatus } from "../api/client";
import { followEvents } from "../api/sse";
import { useLoraflow } from "../context";

export interface TrainingState {
  status: TrainingStatus | null;
  progress: number;
  /** Seconds left, when known. */
  eta: number | null;
  error: string | null;
  validationPassed: boolean | null;
  connection: "connecting" | "open" | "reconnecting" | "closed";
  problem: unknown;
}

const INITIAL: TrainingState = {
  status: null,
  progress: 0,
  eta: null,
  error: null,
  validationPassed: null,
  connection: "connecting",
  problem: null,
};

export const isFinished = (status: TrainingStatus | null) => status === "completed" || status === "failed";

type EventData = {
  status?: TrainingStatus;
  progress?: number;
  estimated_remaining?: number | null;
  error_message?: string | null;
  validation_passed?: boolean | null;
};

export function applyEvent(state: TrainingState, event: string, data: EventData): TrainingState {
  switch (event) {
    case "status":
      return { ...state, status: data.status ?? state.status };
    case "progress":
      return { ...state, progress: data.progress ?? state.progress, eta: data.estimated_remaining ?? null };
    case "outcome":
      return {
        ...state,
        status: data.status ?? state.status,
        progress: data.status === "completed" ? 100 : state.progress,
        eta: null,
        error: data.error_message ?? null,
        validationPassed: data.validation_passed ?? null,
        connection: "closed",
      };
    default:
      return state;
  }
}

export function useTraining(loraId: string | null): TrainingState {
  const api = useLoraflow();
  const [state, setState] = useState<TrainingState>(INITIAL);

  useEffect(() => {
    setState(INITIAL);
    if (!loraId) return;
    const abort = new AbortController();
    const path = `/api/v1/lora-models/${encodeURIComponent(loraId)}`;
    unwrap(api.client.GET("/api/v1/lora-models/{lora_id}/status", { params: { path: { lora_id: loraId } } })).then(
      (s) =>
        !abort.signal.aborted &&
        setState((prev) =>
          // The stream may already have said more; the snapshot only fills in what it has not.
          prev.status && prev.status !== s.training_status
            ? prev
            : {
                ...prev,
                status: s.training_status,
                progress: Math.max(prev.progress, s.progress),
                eta: s.estimated_remaining ?? prev.eta,
                error: s.error_message ?? prev.error,
              },
        ),
      (problem) => !abort.signal.aborted && setState((prev) => ({ ...prev, problem })),
    );
    void followEvents(api, `${path}/events`, {
      signal: abort.signal,
      isLast: (event) => event.event === "outcome",
      onConnection: (connection) => setState((prev) => ({ ...prev, connection })),
      onError: (problem) => setState((prev) => ({ ...prev, problem })),
      onEvent: (event) => {
        let data: EventData = {};
        try {
          data = JSON.parse(event.data) as EventData;
        } catch {
          return;
        }
        setState((prev) => applyEvent({ ...prev, problem: null }, event.event, data));
      },
    });
    return () => abort.abort();
  }, [api, loraId]);

  return state;
}
