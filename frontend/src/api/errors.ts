// What an API error means to the person looking at the page, and what they can do about it.
import { LoraflowApiError } from "./client";

export interface ErrorAdvice {
  /** A short heading. */
  title: string;
  /** What happened and what to do next. */
  text: string;
}

export function adviceFor(error: unknown): ErrorAdvice {
  if (!(error instanceof LoraflowApiError)) {
    return { title: "Something went wrong", text: error instanceof Error ? error.message : String(error) };
  }
  switch (error.code) {
    case "duplicate_name":
      return {
        title: "You already have a LoRA with this name",
        text: "Choose another name, or pick your existing LoRA under “Use existing LoRA”.",
      };
    case "monthly_limit_reached":
      return {
        title: "Monthly limit reached",
        text: "You have started 5 LoRAs this month, the most allowed. Use an existing LoRA, or train this one next month.",
      };
    case "budget_exhausted":
      return {
        title: "Training is paused for this month",
        text: "This month's training budget is spent, so no new LoRA can be trained until next month. You can still use an existing LoRA, or go on with reference images only (No LoRA).",
      };
    case "unavailable":
      return { title: "Training could not start", text: `${error.message} Please try again in a minute.` };
    case "invalid_image":
    case "image_refused":
      return { title: "An image was not accepted", text: `${error.message} Replace it and submit again.` };
    case "invalid_request":
      return {
        title: "Please check the form",
        text: (error.details ?? []).map((d) => `${d.field.replace(/^body\./, "")}: ${d.message}`).join("; ") || error.message,
      };
    case "payload_too_large":
      return { title: "Upload too large", text: `${error.message} Use fewer or smaller images.` };
    case "unauthorized":
      return { title: "Please sign in again", text: "Your session has expired or is not valid." };
    case "forbidden":
      return { title: "Not allowed", text: error.message };
    case "not_found":
      return { title: "Not found", text: error.message };
    case "network_error":
      return { title: "Cannot reach loraflow", text: "Check your connection and try again." };
    default:
      return { title: "Something went wrong", text: error.message || `The API answered ${error.status}.` };
  }
}
