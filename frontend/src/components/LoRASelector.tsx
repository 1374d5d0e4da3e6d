// The spec's LoRA selector (components/LoRASelector.tsx): no LoRA, an existing one from the
// library, or a new one to train; with the live status and the notice when the chosen LoRA is
// still training.
import { useEffect, useId, useRef, useState } from "react";
import { LoraPicker } from "./LoraPicker";
import { NameField } from "./NameField";
import { TrainingStatusDisplay } from "./TrainingStatus";
import { isFinished, useTraining } from "./useTraining";

export type LoRASelection =
  | { type: "none" }
  | { type: "existing"; loraId: string }
  | { type: "new"; characterName: string };

export interface LoRASelectorProps {
  value: LoRASelection;
  onChange: (value: LoRASelection) => void;
  disabled?: boolean;
}

export const TRAINING_NOTICE =
  "LoRA training in progress. Video will use reference images. You can regenerate with LoRA once training completes.";

const OPTIONS: { type: LoRASelection["type"]; label: string; hint: string }[] = [
  { type: "none", label: "No LoRA", hint: "Use reference images only." },
  { type: "existing", label: "Use existing LoRA", hint: "Pick a trained character from the library." },
  { type: "new", label: "Train new LoRA", hint: "Train one from this character's images." },
];

export function LoRASelector({ value, onChange, disabled = false }: LoRASelectorProps) {
  const id = useId();
  // What each option held, so switching back and forth loses nothing.
  const lastLora = useRef(value.type === "existing" ? value.loraId : "");
  const [draft, setDraft] = useState(value.type === "new" ? value.characterName : "");
  if (value.type === "existing") lastLora.current = value.loraId;
  // The value carries the trimmed name; the input keeps what was typed unless the host changed it.
  if (value.type === "new" && value.characterName.trim() !== draft.trim()) setDraft(value.characterName);

  const choose = (type: LoRASelection["type"]) => {
    if (type === value.type) return;
    if (type === "none") onChange({ type });
    else if (type === "existing") onChange({ type, loraId: lastLora.current });
    else onChange({ type, characterName: draft.trim() });
  };

  return (
    <fieldset className="lora-selector" disabled={disabled}>
      <legend>Character LoRA</legend>
      <div className="radio-group">
        {OPTIONS.map((option) => (
          <div className="radio-option" key={option.type}>
            <input
              type="radio"
              id={`${id}-${option.type}`}
              name={`${id}-lora-choice`}
              value={option.type}
              checked={value.type === option.type}
              aria-describedby={`${id}-${option.type}-hint`}
              onChange={() => choose(option.type)}
            />
            <label htmlFor={`${id}-${option.type}`}>{option.label}</label>
            <span id={`${id}-${option.type}-hint`} className="hint">
              {option.hint}
            </span>
          </div>
        ))}
      </div>
      {value.type === "existing" && (
        <>
          <LoraPicker
            value={value.loraId}
            disabled={disabled}
            onChange={(loraId) => onChange({ type: "existing", loraId })}
          />
          {value.loraId && <SelectedLoraStatus loraId={value.loraId} />}
        </>
      )}
      {value.type === "new" && (
        <NameField
          value={draft}
          disabled={disabled}
          onChange={(raw) => {
            setDraft(raw);
            onChange({ type: "new", characterName: raw.trim() });
          }}
        />
      )}
    </fieldset>
  );
}

/** The chosen LoRA's training, while it trains (and its completion, once seen here). */
function SelectedLoraStatus({ loraId }: { loraId: string }) {
  const state = useTraining(loraId);
  const [sawTraining, setSawTraining] = useState(false);
  useEffect(() => setSawTraining(false), [loraId]);
  const training = state.status !== null && !isFinished(state.status);
  useEffect(() => {
    if (training) setSawTraining(true);
  }, [training]);
  if (!training && !(sawTraining && isFinished(state.status)) && state.status !== "failed") return null;
  return (
    <div className="selected-status">
      <TrainingStatusDisplay state={state} />
      {training && (
        <p className="notice" role="note">
          {TRAINING_NOTICE}
        </p>
      )}
    </div>
  );
}
