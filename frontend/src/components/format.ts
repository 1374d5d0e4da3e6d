// Small display helpers shared by the components and pages.
import type { TrainingStatus } from "../api/client";

export const STATUS_LABEL: Record<TrainingStatus, string> = {
  pending: "Pending",
  training: "Training",
  validating: "Validating",
  completed: "Completed",
  failed: "Failed",
};

/** "about 3 min left": an ETA a person can read. */
export function formatEta(seconds: number | null): string | null {
  if (seconds === null || !Number.isFinite(seconds) || seconds < 0) return null;
  if (seconds < 60) return "less than a minute left";
  const minutes = Math.round(seconds / 60);
  if (minutes < 90) return `about ${minutes} min left`;
  return `about ${Math.round(minutes / 60)} h left`;
}

/** The spec's dropdown format: "Cyberpunk Girl (by user@example.com)". */
export function loraLabel(lora: { name: string; created_by: { email?: string | null } }): string {
  return `${lora.name} (by ${lora.created_by.email ?? "a deleted user"})`;
}

export function formatRating(rating: { mean?: number | null; count: number }): string {
  if (!rating.count || rating.mean == null) return "not rated yet";
  return `${rating.mean.toFixed(1)} ★ (${rating.count} rating${rating.count === 1 ? "" : "s"})`;
}
