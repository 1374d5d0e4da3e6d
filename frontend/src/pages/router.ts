// The pages' routes (the API serves index.html at each: api/web.py's PAGE_PATHS).
import { useEffect, useState, type MouseEvent } from "react";

export type Route =
  | { page: "upload" }
  | { page: "library" }
  | { page: "lora"; loraId: string }
  | { page: "admin" }
  | { page: "not-found" };

export function parseRoute(pathname: string): Route {
  const path = pathname.replace(/\/+$/, "") || "/";
  if (path === "/" || path === "/upload") return { page: "upload" };
  if (path === "/library") return { page: "library" };
  if (path === "/admin") return { page: "admin" };
  const lora = /^\/library\/([0-9a-fA-F-]{36})$/.exec(path);
  if (lora) return { page: "lora", loraId: lora[1] };
  return { page: "not-found" };
}

export function navigate(path: string): void {
  history.pushState(null, "", path);
  window.dispatchEvent(new PopStateEvent("popstate"));
  window.scrollTo?.(0, 0);
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(window.location.pathname));
  useEffect(() => {
    const update = () => setRoute(parseRoute(window.location.pathname));
    window.addEventListener("popstate", update);
    return () => window.removeEventListener("popstate", update);
  }, []);
  return route;
}

/** A link that changes page without reloading it. */
export function onLinkClick(path: string) {
  return (event: MouseEvent<HTMLAnchorElement>) => {
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    navigate(path);
  };
}
