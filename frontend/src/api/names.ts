// Is a LoRA name free for the signed-in user? Names are unique per user (a failed LoRA frees its
// name) and may be shared between users, so the check asks for the user's own LoRAs by that name
// (creator=me) and for everyone's.
import { unwrap, type LoraflowApi, type LoraSummary } from "./client";

export const NAME_MAX = 255;

export type NameProblem = "empty" | "too_long" | null;

/** The name as the API stores it (trimmed), and what is wrong with it before asking the API. */
export function cleanName(raw: string): { name: string; problem: NameProblem } {
  const name = raw.trim();
  if (!name) return { name, problem: "empty" };
  if (name.length > NAME_MAX) return { name, problem: "too_long" };
  return { name, problem: null };
}

export interface NameCheck {
  /** The user already has a LoRA of this name (not failed): the API would answer 409. */
  mine: LoraSummary | null;
  /** Other users' LoRAs of this name: allowed, shown with their creator's e-mail. */
  others: number;
}

const TTL_MS = 5_000;

const holdsName = (item: LoraSummary, name: string) => item.name === name && item.training_status !== "failed";

export function checkName(api: LoraflowApi, name: string): Promise<NameCheck> {
  const key = `name:${name}`;
  const cached = api.cache.get(key);
  if (cached && Date.now() - cached.at < TTL_MS) return cached.result as Promise<NameCheck>;
  const query = { search: name, limit: 100 };
  const result = Promise.all([
    unwrap(api.client.GET("/api/v1/lora-models", { params: { query: { ...query, creator: "me" } } })),
    unwrap(api.client.GET("/api/v1/lora-models", { params: { query } })),
  ]).then(([mine, everyone]) => {
    const own = mine.items.filter((item) => holdsName(item, name));
    const ownIds = new Set(mine.items.map((item) => item.id));
    const others = everyone.items.filter((item) => holdsName(item, name) && !ownIds.has(item.id)).length;
    return { mine: own[0] ?? null, others };
  });
  api.cache.set(key, { at: Date.now(), result });
  result.catch(() => api.cache.delete(key));
  return result;
}

/** Forget what was learned about names (after creating a LoRA). */
export function forgetNames(api: LoraflowApi): void {
  for (const key of [...api.cache.keys()]) if (key.startsWith("name:")) api.cache.delete(key);
}
