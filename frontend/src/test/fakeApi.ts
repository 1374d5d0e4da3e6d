// A stand-in for loraflow's API in the component tests: the routes the components call, the
// requests they made, and event streams the test writes to.
import type { LoraDetail, LoraSummary, TrainingStatus } from "../api/client";

export interface Seen {
  method: string;
  path: string;
  query: URLSearchParams;
  authorization: string | null;
}

export function lora(partial: Partial<LoraSummary> & { name: string }): LoraDetail {
  return {
    id: crypto.randomUUID(),
    description: null,
    training_status: "completed",
    created_at: "2026-01-01T00:00:00Z",
    created_by: { id: crypto.randomUUID(), email: "someone@example.com" },
    usage_count: 0,
    uses_30d: 0,
    base_model: "sdxl",
    trigger_word: null,
    validation_passed: true,
    rating: { mean: null, count: 0 },
    my_rating: null,
    storage_url: null,
    storage_path: null,
    file_size: null,
    sha256: null,
    reference_image_urls: null,
    validation_image_urls: null,
    training_params: {},
    training_cost: 0,
    error_message: null,
    completed_at: null,
    updated_at: "2026-01-01T00:00:00Z",
    ...partial,
  } as LoraDetail;
}

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

export class FakeApi {
  /** Everyone's LoRAs; `me` is the signed-in user's id. */
  loras: LoraDetail[] = [];
  me = "00000000-0000-4000-8000-000000000001";
  seen: Seen[] = [];
  /** Answer list requests only when released (the loading state). */
  holdLists = false;
  private held: (() => void)[] = [];
  private streams = new Map<string, ReadableStreamDefaultController<Uint8Array>>();
  private encoder = new TextEncoder();

  release(): void {
    this.holdLists = false;
    for (const go of this.held.splice(0)) go();
  }

  /** Write one server-sent event to a LoRA's open stream. */
  emit(loraId: string, event: string, data: unknown, id = String(Date.now())): void {
    const stream = this.streams.get(loraId);
    if (!stream) throw new Error(`no open event stream for ${loraId}`);
    stream.enqueue(this.encoder.encode(`id: ${id}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`));
  }

  hasStream(loraId: string): boolean {
    return this.streams.has(loraId);
  }

  fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const isRequest = typeof input === "object" && "url" in input && "headers" in input;
    const url = new URL(isRequest ? (input as Request).url : String(input), "http://loraflow.test");
    const headers = new Headers(isRequest ? (input as Request).headers : init?.headers);
    const method = (isRequest ? (input as Request).method : init?.method) ?? "GET";
    this.seen.push({ method, path: url.pathname, query: url.searchParams, authorization: headers.get("Authorization") });
    const parts = url.pathname.replace(/^\/api\/v1\/lora-models\/?/, "").split("/").filter(Boolean);
    if (url.pathname === "/api/v1/lora-models" && method === "GET") {
      if (this.holdLists) await new Promise<void>((go) => this.held.push(go));
      return json(this.list(url.searchParams));
    }
    const found = this.loras.find((l) => l.id === parts[0]);
    if (!found) return json({ error: { status: 404, code: "not_found", message: "no such LoRA", details: null } }, 404);
    if (parts.length === 1) return json(found);
    if (parts[1] === "status") {
      return json({ id: found.id, training_status: found.training_status, progress: 0, estimated_remaining: null, source: "database" });
    }
    if (parts[1] === "events") {
      const body = new ReadableStream<Uint8Array>({
        start: (controller) => {
          this.streams.set(found.id, controller);
          controller.enqueue(this.encoder.encode(`: ping\n\nid: 1\nevent: status\ndata: {"status": "${found.training_status}"}\n\n`));
        },
      });
      return new Response(body, { headers: { "Content-Type": "text/event-stream" } });
    }
    return json({ error: { status: 404, code: "not_found", message: "no route", details: null } }, 404);
  };

  private list(query: URLSearchParams) {
    let items = [...this.loras];
    const status = query.get("status") as TrainingStatus | null;
    if (status) items = items.filter((l) => l.training_status === status);
    if (query.get("creator") === "me") items = items.filter((l) => l.created_by.id === this.me);
    const search = query.get("search")?.toLowerCase();
    if (search) items = items.filter((l) => `${l.name} ${l.description ?? ""}`.toLowerCase().includes(search));
    if (query.get("sort") === "name") items.sort((a, b) => a.name.localeCompare(b.name));
    if (query.get("sort") === "popular") items.sort((a, b) => b.usage_count - a.usage_count);
    const limit = Number(query.get("limit") ?? 50);
    return { items: items.slice(0, limit), pagination: { total: items.length, limit, offset: 0 } };
  }
}
