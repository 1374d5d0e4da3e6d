// The pages' sign-in: a Supabase access token, taken from where Supabase Auth leaves it, from the
// fragment of a sign-in redirect (Supabase's implicit flow, and the dev stack's /dev/sign-in), or
// pasted by hand (`loraflow token --user UUID`).
const KEY = "loraflow.access_token";

export interface Claims {
  sub?: string;
  email?: string;
  exp?: number;
  app_metadata?: { role?: string };
}

/** The JWT's claims, for display only (the API verifies the token). */
export function readClaims(token: string): Claims | null {
  try {
    const part = token.split(".")[1];
    const json = atob(part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "="));
    return JSON.parse(decodeURIComponent(escape(json))) as Claims;
  } catch {
    return null;
  }
}

const expired = (token: string) => {
  const exp = readClaims(token)?.exp;
  return typeof exp === "number" && exp * 1000 < Date.now();
};

/** A token in the URL's fragment (`#access_token=...`) is kept, and taken off the URL. */
export function takeTokenFromUrl(): void {
  const fragment = new URLSearchParams(window.location.hash.replace(/^#/, ""));
  const token = fragment.get("access_token");
  if (!token) return;
  localStorage.setItem(KEY, token);
  history.replaceState(history.state, "", window.location.pathname + window.location.search);
}

/** Supabase JS keeps its session under `sb-<project>-auth-token`. */
function supabaseToken(): string | null {
  for (let i = 0; i < localStorage.length; i++) {
    const key = localStorage.key(i) ?? "";
    if (!/^sb-.+-auth-token$/.test(key)) continue;
    try {
      const session = JSON.parse(localStorage.getItem(key) ?? "null");
      const token = session?.access_token ?? session?.currentSession?.access_token;
      if (typeof token === "string") return token;
    } catch {
      // not a session
    }
  }
  return null;
}

export function currentToken(): string | null {
  const token = localStorage.getItem(KEY) ?? supabaseToken();
  return token && !expired(token) ? token : null;
}

export function signIn(token: string): void {
  localStorage.setItem(KEY, token.trim());
}

export function signOut(): void {
  localStorage.removeItem(KEY);
}

export const isAdmin = (claims: Claims | null) => claims?.app_metadata?.role === "admin";
