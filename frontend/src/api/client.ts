// The typed client of loraflow's HTTP API: openapi-fetch over the types generated from its
// OpenAPI document (schema.d.ts), with the caller's bearer token on every request and the API's
// one error shape turned into a LoraflowApiError.
import createClient, { type Client } from "openapi-fetch";
import type { components, paths } from "./schema";

export type Schemas = components["schemas"];
export type LoraSummary = Schemas["LoraSummary"];
export type LoraDetail = Schemas["LoraDetail"];
export type LoraList = Schemas["LoraList"];
export type LoraStatus = Schemas["LoraStatus"];
export type TrainingStatus = Schemas["TrainingStatus"];
export type Sort = Schemas["Sort"];
export type ValidationResult = Schemas["ValidationResult"];
export type ReviewItem = Schemas["ReviewItem"];
export type ReportReason = Schemas["ReportReason"];
export type ListQuery = NonNullable<paths["/api/v1/lora-models"]["get"]["parameters"]["query"]>;

/** A Supabase access token, or how to get the current one (called before every request). */
export type TokenSource = string | null | undefined | (() => string | null | undefined | Promise<string | null | undefined>);

export interface ErrorDetail {
  field: string;
  message: string;
}

/** An error the API answered with: `{"error": {"status", "code", "message", "details"}}`. */
export class LoraflowApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: ErrorDetail[] | null;

  constructor(status: number, code: string, message: string, details: ErrorDetail[] | null = null) {
    super(message);
    this.name = "LoraflowApiError";
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export function toApiError(status: number, body: unknown): LoraflowApiError {
  const error = (body as { error?: Partial<ErrorDetail & { status: number; code: string; details: ErrorDetail[] }> })?.error;
  if (error && typeof error.code === "string") {
    return new LoraflowApiError(status, error.code, String(error.message ?? ""), error.details ?? null);
  }
  return new LoraflowApiError(status, status === 0 ? "network_error" : "unexpected", `the API answered ${status}`);
}

export interface LoraflowApi {
  readonly baseUrl: string;
  readonly client: Client<paths>;
  /** The current access token (null when signed out). */
  token(): Promise<string | null>;
  /** fetch with the token: for what openapi-fetch does not cover (the event stream). */
  authorizedFetch(path: string, init?: RequestInit): Promise<Response>;
  /** A LoRA-name check shared by the components that ask at the same moment (see names.ts). */
  readonly cache: Map<string, { at: number; result: Promise<unknown> }>;
}

export interface ApiOptions {
  baseUrl?: string;
  accessToken: TokenSource;
  fetch?: typeof globalThis.fetch;
}

export function createLoraflowApi({ baseUrl = "", accessToken, fetch: fetchImpl }: ApiOptions): LoraflowApi {
  const root = baseUrl.replace(/\/+$/, "");
  const doFetch: typeof globalThis.fetch = (input, init) => (fetchImpl ?? globalThis.fetch)(input, init);
  const token = async () => (typeof accessToken === "function" ? await accessToken() : accessToken) ?? null;
  const client = createClient<paths>({ baseUrl: root, fetch: (request: Request) => doFetch(request) });
  client.use({
    async onRequest({ request }) {
      const value = await token();
      if (value) request.headers.set("Authorization", `Bearer ${value}`);
      return request;
    },
  });
  return {
    baseUrl: root,
    client,
    token,
    async authorizedFetch(path, init = {}) {
      const headers = new Headers(init.headers);
      const value = await token();
      if (value) headers.set("Authorization", `Bearer ${value}`);
      return doFetch(root + path, { ...init, headers });
    },
    cache: new Map(),
  };
}

/** The data of an openapi-fetch call, or its error as a LoraflowApiError. */
export async function unwrap<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  let result;
  try {
    result = await call;
  } catch (exc) {
    throw new LoraflowApiError(0, "network_error", exc instanceof Error ? exc.message : String(exc));
  }
  if (result.error !== undefined || !result.response.ok) throw toApiError(result.response.status, result.error);
  return result.data as T;
}
