// Server-sent events over fetch: EventSource cannot send the Authorization header the API needs
// (GET /api/v1/lora-models/{id}/events takes a bearer token like every other route). Reconnects
// with Last-Event-ID after a dropped connection, as EventSource would.
import { toApiError, type LoraflowApi } from "./client";

export interface StreamEvent {
  id: string | null;
  event: string;
  data: string;
}

/** Parses `text/event-stream` incrementally; push chunks, get whole events. */
export class EventStreamParser {
  private buffer = "";
  private id: string | null = null;
  private event = "";
  private data: string[] = [];

  push(chunk: string): StreamEvent[] {
    this.buffer += chunk;
    const out: StreamEvent[] = [];
    let newline: number;
    while ((newline = this.buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = this.buffer.slice(0, newline);
      const width = this.buffer.startsWith("\r\n", newline) ? 2 : 1;
      this.buffer = this.buffer.slice(newline + width);
      if (line === "") {
        if (this.data.length) out.push({ id: this.id, event: this.event || "message", data: this.data.join("\n") });
        this.event = "";
        this.data = [];
        continue;
      }
      if (line.startsWith(":")) continue; // a comment: the server's keep-alive
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "data") this.data.push(value);
      else if (field === "event") this.event = value;
      else if (field === "id") this.id = value;
    }
    return out;
  }
}

export interface StreamOptions {
  /** Called with each event; the stream ends after `isLast(event)` is true. */
  onEvent(event: StreamEvent): void;
  isLast(event: StreamEvent): boolean;
  /** A failure that reconnecting cannot fix (404, 401), or the connection state for display. */
  onError?(error: unknown): void;
  onConnection?(state: "open" | "reconnecting"): void;
  signal: AbortSignal;
  retryMs?: number;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
  });

/** Follows an event stream until its last event or until `signal` aborts. */
export async function followEvents(api: LoraflowApi, path: string, options: StreamOptions): Promise<void> {
  const { signal, retryMs = 2000 } = options;
  let lastId: string | null = null;
  while (!signal.aborted) {
    try {
      const headers: Record<string, string> = { Accept: "text/event-stream" };
      if (lastId !== null) headers["Last-Event-ID"] = lastId;
      const response = await api.authorizedFetch(path, { headers, signal });
      if (!response.ok) {
        const body = await response.json().catch(() => null);
        const error = toApiError(response.status, body);
        if (response.status < 500) {
          options.onError?.(error);
          return;
        }
        throw error;
      }
      options.onConnection?.("open");
      const reader = response.body!.getReader();
      const decoder = new TextDecoder();
      const parser = new EventStreamParser();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        for (const event of parser.push(decoder.decode(value, { stream: true }))) {
          if (event.id !== null) lastId = event.id;
          options.onEvent(event);
          if (options.isLast(event)) {
            await reader.cancel().catch(() => undefined);
            return;
          }
        }
      }
    } catch (exc) {
      if (signal.aborted) return;
      options.onError?.(exc);
    }
    if (signal.aborted) return;
    options.onConnection?.("reconnecting");
    await sleep(retryMs, signal);
  }
}
