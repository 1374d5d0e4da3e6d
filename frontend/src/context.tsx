// How a host app gives the components loraflow's API base URL and the user's Supabase access
// token: <LoraflowProvider baseUrl="https://loraflow.example" accessToken={() => session.access_token}>.
import { createContext, useContext, useMemo, useRef, type ReactNode } from "react";
import { createLoraflowApi, type LoraflowApi, type TokenSource } from "./api/client";

const LoraflowContext = createContext<LoraflowApi | null>(null);

export interface LoraflowProviderProps {
  /** Where loraflow's API is ("" or omitted: the page's own origin). */
  baseUrl?: string;
  /** The Supabase session's access token, or a function returning the current one. */
  accessToken: TokenSource;
  /** A fetch to use instead of the global one (tests, instrumentation). */
  fetch?: typeof globalThis.fetch;
  children: ReactNode;
}

export function LoraflowProvider({ baseUrl = "", accessToken, fetch, children }: LoraflowProviderProps) {
  // The token may change on every render (Supabase refreshes it); the client reads the latest.
  const tokenRef = useRef(accessToken);
  tokenRef.current = accessToken;
  const api = useMemo(
    () =>
      createLoraflowApi({
        baseUrl,
        fetch,
        accessToken: () => {
          const current = tokenRef.current;
          return typeof current === "function" ? current() : current;
        },
      }),
    [baseUrl, fetch],
  );
  return <LoraflowContext.Provider value={api}>{children}</LoraflowContext.Provider>;
}

export function useLoraflow(): LoraflowApi {
  const api = useContext(LoraflowContext);
  if (!api) throw new Error("loraflow components must be inside <LoraflowProvider>");
  return api;
}
