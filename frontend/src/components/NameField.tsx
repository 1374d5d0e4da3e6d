// "Train new LoRA": the character's name (1-255 characters, trimmed), checked against the
// user's own LoRAs (a duplicate is refused) and everyone's (a shared name is allowed, with a
// warning), with the spec's help text.
import { useId } from "react";
import { adviceFor } from "../api/errors";
import { NAME_MAX } from "../api/names";
import { useNameCheck, type NameState } from "./useNameCheck";

export const NEW_LORA_HELP =
  "A new LoRA will be trained from character reference images. This adds ~30-60 minutes to generation time. " +
  "Training costs are covered by the system. Maximum 5 LoRAs per month per user.";

export interface NameFieldProps {
  value: string;
  onChange(value: string): void;
  disabled?: boolean;
}

function feedback(state: NameState): { tone: "error" | "warning" | "ok" | "info"; text: string } {
  switch (state.kind) {
    case "invalid":
      return state.problem === "empty"
        ? { tone: "info", text: "Enter the character's name." }
        : { tone: "error", text: `The name is too long: at most ${NAME_MAX} characters.` };
    case "checking":
      return { tone: "info", text: "Checking the name…" };
    case "error":
      return { tone: "warning", text: `The name could not be checked: ${adviceFor(state.error).text}` };
    case "checked": {
      if (state.check.mine) {
        return {
          tone: "error",
          text: `You already have a LoRA named “${state.name}”. Choose another name, or pick it under “Use existing LoRA”.`,
        };
      }
      if (state.check.others > 0) {
        const who = state.check.others === 1 ? "Another user has" : `${state.check.others} other users have`;
        return {
          tone: "warning",
          text: `${who} a LoRA named “${state.name}”. You can use the name too: the library shows each with its creator's e-mail.`,
        };
      }
      return { tone: "ok", text: `“${state.name}” is available.` };
    }
  }
}

export function NameField({ value, onChange, disabled }: NameFieldProps) {
  const id = useId();
  const state = useNameCheck(value);
  const { tone, text } = feedback(state);
  const invalid = tone === "error";
  return (
    <div className="name-field">
      <label htmlFor={`${id}-name`}>Character name</label>
      <input
        id={`${id}-name`}
        type="text"
        required
        autoComplete="off"
        maxLength={NAME_MAX + 100}
        value={value}
        disabled={disabled}
        aria-invalid={invalid || undefined}
        aria-describedby={`${id}-feedback ${id}-help`}
        onChange={(event) => onChange(event.target.value)}
      />
      <p id={`${id}-feedback`} className={`feedback feedback-${tone}`} aria-live="polite" data-testid="name-feedback">
        {text}
      </p>
      <p id={`${id}-help`} className="help">
        {NEW_LORA_HELP}
      </p>
    </div>
  );
}
