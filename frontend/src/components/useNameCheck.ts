// The name check as React state: debounced, and only the latest name's answer counts.
import { useEffect, useState } from "react";
import { checkName, cleanName, type NameCheck, type NameProblem } from "../api/names";
import { useLoraflow } from "../context";

export type NameState =
  | { kind: "invalid"; name: string; problem: Exclude<NameProblem, null> }
  | { kind: "checking"; name: string }
  | { kind: "checked"; name: string; check: NameCheck }
  | { kind: "error"; name: string; error: unknown };

export const NAME_CHECK_DELAY_MS = 300;

export function useNameCheck(raw: string, enabled = true): NameState {
  const api = useLoraflow();
  const { name, problem } = cleanName(raw);
  const [state, setState] = useState<NameState>({ kind: "checking", name });

  useEffect(() => {
    if (!enabled || problem) return;
    let live = true;
    setState({ kind: "checking", name });
    const timer = setTimeout(() => {
      checkName(api, name).then(
        (check) => live && setState({ kind: "checked", name, check }),
        (error) => live && setState({ kind: "error", name, error }),
      );
    }, NAME_CHECK_DELAY_MS);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [api, name, problem, enabled]);

  if (problem) return { kind: "invalid", name, problem };
  // Until the effect has run for a new name, say it is being checked (never the last name's answer).
  return state.name === name ? state : { kind: "checking", name };
}
