// The public library: search, filters (mine, base model, rating, age, status), sorts, pages.
import { useEffect, useState } from "react";
import { unwrap, type ListQuery, type LoraList, type Sort, type TrainingStatus } from "../api/client";
import { ErrorNotice } from "../components/ErrorNotice";
import { formatRating, STATUS_LABEL } from "../components/format";
import { SORTS } from "../components/LoraPicker";
import { useLoraflow } from "../context";
import { onLinkClick } from "./router";

export const LIBRARY_PAGE_SIZE = 12;

interface Filters {
  search: string;
  mine: boolean;
  baseModel: string;
  minRating: string;
  createdAfter: string;
  status: "" | TrainingStatus;
  sort: Sort;
}

const START: Filters = { search: "", mine: false, baseModel: "", minRating: "", createdAfter: "", status: "", sort: "recent" };

export function toQuery(filters: Filters, offset: number): ListQuery {
  const query: ListQuery = { sort: filters.sort, limit: LIBRARY_PAGE_SIZE, offset };
  if (filters.search.trim()) query.search = filters.search.trim();
  if (filters.mine) query.creator = "me";
  if (filters.baseModel.trim()) query.base_model = filters.baseModel.trim();
  if (filters.minRating) query.min_rating = Number(filters.minRating);
  if (filters.createdAfter) query.created_after = new Date(`${filters.createdAfter}T00:00:00`).toISOString();
  if (filters.status) query.status = filters.status;
  return query;
}

export function LibraryPage() {
  const api = useLoraflow();
  const [filters, setFilters] = useState<Filters>(START);
  const [applied, setApplied] = useState<Filters>(START);
  const [offset, setOffset] = useState(0);
  const [page, setPage] = useState<LoraList | null>(null);
  const [error, setError] = useState<unknown>(null);

  // Typing in the search box applies after a pause; the other filters at once.
  useEffect(() => {
    const timer = setTimeout(() => (setApplied(filters), setOffset(0)), filters.search === applied.search ? 0 : 300);
    return () => clearTimeout(timer);
  }, [filters]); // applied.search is read, not followed

  useEffect(() => {
    let live = true;
    setError(null);
    unwrap(api.client.GET("/api/v1/lora-models", { params: { query: toQuery(applied, offset) } })).then(
      (list) => live && setPage(list),
      (exc) => live && (setError(exc), setPage(null)),
    );
    return () => {
      live = false;
    };
  }, [api, applied, offset]);

  const set = <K extends keyof Filters>(key: K) => (value: Filters[K]) => setFilters((prev) => ({ ...prev, [key]: value }));
  const total = page?.pagination.total ?? 0;
  const loading = page === null && error === null;

  return (
    <main className="page library-page">
      <h1>LoRA library</h1>
      <form className="filters" role="search" onSubmit={(event) => event.preventDefault()}>
        <div className="field">
          <label htmlFor="lib-search">Search</label>
          <input id="lib-search" type="search" maxLength={200} value={filters.search} placeholder="Name or description" onChange={(e) => set("search")(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor="lib-sort">Sort by</label>
          <select id="lib-sort" value={filters.sort} onChange={(e) => set("sort")(e.target.value as Sort)}>
            {SORTS.map((s) => (
              <option key={s.value} value={s.value}>
                {s.label}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="lib-status">Status</label>
          <select id="lib-status" value={filters.status} onChange={(e) => set("status")(e.target.value as Filters["status"])}>
            <option value="">Any</option>
            {(Object.keys(STATUS_LABEL) as TrainingStatus[]).map((s) => (
              <option key={s} value={s}>
                {STATUS_LABEL[s]}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="lib-base">Base model</label>
          <input id="lib-base" type="text" value={filters.baseModel} placeholder="e.g. sdxl" pattern="[A-Za-z0-9][A-Za-z0-9._-]{0,49}" onChange={(e) => set("baseModel")(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor="lib-rating">Rating</label>
          <select id="lib-rating" value={filters.minRating} onChange={(e) => set("minRating")(e.target.value)}>
            <option value="">Any</option>
            {[4, 3, 2, 1].map((stars) => (
              <option key={stars} value={stars}>
                {stars} ★ and up
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="lib-after">Created after</label>
          <input id="lib-after" type="date" value={filters.createdAfter} onChange={(e) => set("createdAfter")(e.target.value)} />
        </div>
        <div className="field checkbox">
          <input id="lib-mine" type="checkbox" checked={filters.mine} onChange={(e) => set("mine")(e.target.checked)} />
          <label htmlFor="lib-mine">Only mine</label>
        </div>
      </form>
      <ErrorNotice error={error} />
      <p className="results-state" aria-live="polite" data-testid="library-state">
        {loading ? "Loading…" : page && (total === 0 ? "No LoRAs match." : `${offset + 1}–${offset + page.items.length} of ${total}`)}
      </p>
      {page && page.items.length > 0 && (
        <ul className="lora-cards">
          {page.items.map((lora) => (
            <li key={lora.id} className="lora-card">
              <h2>
                <a href={`/library/${lora.id}`} onClick={onLinkClick(`/library/${lora.id}`)}>
                  {lora.name}
                </a>
              </h2>
              <p className="creator">by {lora.created_by.email ?? "a deleted user"}</p>
              <p>
                <span className={`badge badge-${lora.training_status}`}>{STATUS_LABEL[lora.training_status]}</span> · {lora.base_model}
              </p>
              {lora.description && <p className="description">{lora.description}</p>}
              <p className="stats">
                used {lora.usage_count}× ({lora.uses_30d} in 30 days) · {formatRating(lora.rating)}
                {lora.my_rating ? ` · yours: ${lora.my_rating} ★` : ""}
              </p>
            </li>
          ))}
        </ul>
      )}
      <nav className="pagination" aria-label="Pages">
        <button type="button" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - LIBRARY_PAGE_SIZE))}>
          Previous
        </button>
        <button type="button" disabled={offset + LIBRARY_PAGE_SIZE >= total} onClick={() => setOffset(offset + LIBRARY_PAGE_SIZE)}>
          Next
        </button>
      </nav>
    </main>
  );
}
