// "Use existing LoRA": the library's completed LoRAs as "Name (by email)", sortable and
// searchable, with loading and empty states; the user's own LoRAs still in training are listed
// too (choosing one shows its live status and the notice). A native <select>: every keyboard,
// screen reader and phone knows it.
import { useEffect, useId, useState } from "react";
import { unwrap, type LoraSummary, type Sort } from "../api/client";
import { adviceFor } from "../api/errors";
import { useLoraflow } from "../context";
import { loraLabel } from "./format";

export const SORTS: { value: Sort; label: string }[] = [
  { value: "popular", label: "Most used" },
  { value: "recent", label: "Most recent" },
  { value: "name", label: "Name (A–Z)" },
  { value: "top_rated", label: "Top rated" },
  { value: "trending", label: "Trending (30 days)" },
];

export const PAGE_SIZE = 50;
export const SEARCH_DELAY_MS = 300;

interface Listing {
  library: LoraSummary[];
  total: number;
  training: LoraSummary[];
}

export interface LoraPickerProps {
  value: string;
  onChange(loraId: string, lora: LoraSummary | null): void;
  disabled?: boolean;
}

const inTraining = (lora: LoraSummary) => lora.training_status !== "completed" && lora.training_status !== "failed";

export function LoraPicker({ value, onChange, disabled }: LoraPickerProps) {
  const api = useLoraflow();
  const id = useId();
  const [sort, setSort] = useState<Sort>("popular");
  const [search, setSearch] = useState("");
  const [query, setQuery] = useState("");
  const [listing, setListing] = useState<Listing | null>(null);
  const [loading, setLoading] = useState(true);
  const [problem, setProblem] = useState<unknown>(null);
  const [chosen, setChosen] = useState<LoraSummary | null>(null);

  useEffect(() => {
    const timer = setTimeout(() => setQuery(search.trim()), SEARCH_DELAY_MS);
    return () => clearTimeout(timer);
  }, [search]);

  useEffect(() => {
    let live = true;
    // The last list stays usable (and focused) while the next one loads.
    setLoading(true);
    setProblem(null);
    const filter = query ? { search: query } : {};
    Promise.all([
      unwrap(
        api.client.GET("/api/v1/lora-models", {
          params: { query: { status: "completed", sort, limit: PAGE_SIZE, ...filter } },
        }),
      ),
      unwrap(
        api.client.GET("/api/v1/lora-models", {
          params: { query: { creator: "me", sort: "recent", limit: 20, ...filter } },
        }),
      ),
    ]).then(
      ([library, mine]) => {
        if (!live) return;
        setListing({ library: library.items, total: library.pagination.total, training: mine.items.filter(inTraining) });
        setLoading(false);
      },
      (error) => {
        if (!live) return;
        setProblem(error);
        setLoading(false);
      },
    );
    return () => {
      live = false;
    };
  }, [api, sort, query]);

  // The chosen LoRA stays in the list when a search or sort would leave it out.
  const known = listing ? [...listing.training, ...listing.library] : [];
  const selected = known.find((lora) => lora.id === value) ?? (chosen?.id === value ? chosen : null);
  useEffect(() => {
    if (!value || selected) return;
    let live = true;
    unwrap(api.client.GET("/api/v1/lora-models/{lora_id}", { params: { path: { lora_id: value } } })).then(
      (lora) => live && setChosen(lora),
      () => undefined,
    );
    return () => {
      live = false;
    };
  }, [api, value, selected]);

  const empty = !loading && listing !== null && listing.library.length === 0 && listing.training.length === 0;
  const extra = selected && !known.some((lora) => lora.id === selected.id) ? selected : null;

  return (
    <div className="lora-picker">
      <div className="picker-controls">
        <label htmlFor={`${id}-search`}>Search</label>
        <input
          id={`${id}-search`}
          type="search"
          placeholder="Name or description"
          value={search}
          disabled={disabled}
          maxLength={200}
          onChange={(event) => setSearch(event.target.value)}
        />
        <label htmlFor={`${id}-sort`}>Sort by</label>
        <select id={`${id}-sort`} value={sort} disabled={disabled} onChange={(event) => setSort(event.target.value as Sort)}>
          {SORTS.map((s) => (
            <option key={s.value} value={s.value}>
              {s.label}
            </option>
          ))}
        </select>
      </div>
      <label htmlFor={`${id}-lora`}>LoRA</label>
      <select
        id={`${id}-lora`}
        value={selected ? value : ""}
        disabled={disabled || listing === null}
        aria-busy={loading}
        aria-describedby={`${id}-state`}
        onChange={(event) => {
          const lora = known.find((l) => l.id === event.target.value) ?? null;
          setChosen(lora);
          onChange(event.target.value, lora);
        }}
      >
        <option value="" disabled>
          {listing === null ? "Loading LoRAs…" : empty ? "No LoRAs to choose from" : "Choose a LoRA…"}
        </option>
        {extra && <option value={extra.id}>{loraLabel(extra)}</option>}
        {listing && listing.training.length > 0 && (
          <optgroup label="Your LoRAs in training">
            {listing.training.map((lora) => (
              <option key={lora.id} value={lora.id}>
                {loraLabel(lora)} (training)
              </option>
            ))}
          </optgroup>
        )}
        {listing && listing.library.length > 0 && (
          <optgroup label="Library">
            {listing.library.map((lora) => (
              <option key={lora.id} value={lora.id}>
                {loraLabel(lora)}
              </option>
            ))}
          </optgroup>
        )}
      </select>
      <p id={`${id}-state`} className="picker-state" aria-live="polite" data-testid="picker-state">
        {loading && "Loading LoRAs…"}
        {problem != null && `The LoRAs could not be loaded: ${adviceFor(problem).text}`}
        {empty && (query ? `No completed LoRAs match “${query}”.` : "No completed LoRAs yet.")}
        {!loading && listing && listing.total > listing.library.length && `Showing ${listing.library.length} of ${listing.total}: search to narrow them down.`}
      </p>
      {selected && (
        <p className="lora-description">
          {selected.description || "No description."} · used {selected.usage_count} time{selected.usage_count === 1 ? "" : "s"}
        </p>
      )}
    </div>
  );
}
