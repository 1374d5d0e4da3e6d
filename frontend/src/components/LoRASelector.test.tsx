import { act, cleanup, render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { useState } from "react";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LoraflowApiError } from "../api/client";
import { LoraflowProvider } from "../context";
import { FakeApi, lora } from "../test/fakeApi";
import { ErrorNotice } from "./ErrorNotice";
import { LoRASelector, TRAINING_NOTICE, type LoRASelection } from "./LoRASelector";
import { NEW_LORA_HELP } from "./NameField";

// user-event moves between radios with CSS.escape, which jsdom lacks.
globalThis.CSS ??= {} as typeof CSS;
CSS.escape ??= (value: string) => value.replace(/[^\w-]/g, (ch) => `\\${ch}`);

let api: FakeApi;
let changes: LoRASelection[];

function Harness({ initial, disabled }: { initial: LoRASelection; disabled?: boolean }) {
  const [value, setValue] = useState(initial);
  return (
    <LoRASelector
      value={value}
      disabled={disabled}
      onChange={(next) => {
        changes.push(next);
        setValue(next);
      }}
    />
  );
}

function setup(initial: LoRASelection = { type: "none" }, disabled = false) {
  const user = userEvent.setup();
  render(
    <LoraflowProvider baseUrl="http://loraflow.test" accessToken={() => "the-token"} fetch={api.fetch}>
      <Harness initial={initial} disabled={disabled} />
    </LoraflowProvider>,
  );
  return user;
}

const loraList = () => screen.getByRole("combobox", { name: "LoRA" });
const optionLabels = () => within(loraList()).queryAllByRole("option").map((o) => o.textContent);

beforeEach(() => {
  api = new FakeApi();
  changes = [];
});
afterEach(cleanup);

describe("the radio group", () => {
  it("offers the three choices, labelled, and reports the one chosen", async () => {
    const user = setup({ type: "new", characterName: "" });
    const radios = screen.getAllByRole("radio");
    expect(radios.map((r) => r.closest("div")?.querySelector("label")?.textContent)).toEqual([
      "No LoRA",
      "Use existing LoRA",
      "Train new LoRA",
    ]);
    expect((screen.getByRole("radio", { name: "Train new LoRA" }) as HTMLInputElement).checked).toBe(true);
    await user.click(screen.getByRole("radio", { name: "No LoRA" }));
    expect(changes.at(-1)).toEqual({ type: "none" });
    expect(screen.getByRole("radio", { name: "No LoRA" })).toHaveProperty("checked", true);
  });

  it("is one group for the keyboard: Tab reaches the chosen option, arrows move the choice", async () => {
    const user = setup({ type: "none" });
    await user.tab();
    expect(document.activeElement).toBe(screen.getByRole("radio", { name: "No LoRA" }));
    await user.keyboard("{ArrowDown}");
    expect(changes.at(-1)).toEqual({ type: "existing", loraId: "" });
    expect(document.activeElement).toBe(screen.getByRole("radio", { name: "Use existing LoRA" }));
    await user.keyboard("{ArrowDown}");
    expect(changes.at(-1)).toEqual({ type: "new", characterName: "" });
  });

  it("disables everything when disabled", () => {
    setup({ type: "new", characterName: "Hero" }, true);
    for (const radio of screen.getAllByRole("radio")) expect(radio.matches(":disabled")).toBe(true);
    expect(screen.getByLabelText("Character name").matches(":disabled")).toBe(true);
  });
});

describe("use an existing LoRA", () => {
  it("shows a loading state, then the completed LoRAs as 'Name (by email)'", async () => {
    api.loras = [
      lora({ name: "Cyberpunk Girl", usage_count: 3, created_by: { id: "u1", email: "user@example.com" } }),
      lora({ name: "Cyberpunk Girl", usage_count: 9, created_by: { id: "u2", email: "other@example.com" } }),
      lora({ name: "Unfinished", training_status: "training" }),
    ];
    api.holdLists = true;
    setup({ type: "existing", loraId: "" });
    expect(await screen.findByTestId("picker-state")).toHaveProperty("textContent", "Loading LoRAs…");
    expect(loraList()).toHaveProperty("disabled", true);
    act(() => api.release());
    await waitFor(() =>
      expect(optionLabels()).toEqual(["Choose a LoRA…", "Cyberpunk Girl (by other@example.com)", "Cyberpunk Girl (by user@example.com)"]),
    );
    const asked = api.seen.find((s) => s.path === "/api/v1/lora-models" && s.query.get("status") === "completed")!;
    expect(asked.query.get("sort")).toBe("popular");
    expect(asked.authorization).toBe("Bearer the-token");
  });

  it("sorts and searches through the API, and says when nothing matches", async () => {
    api.loras = [lora({ name: "Zed" }), lora({ name: "Amy", usage_count: 1 })];
    const user = setup({ type: "existing", loraId: "" });
    await waitFor(() => expect(optionLabels()).toHaveLength(3));
    await user.selectOptions(screen.getByLabelText("Sort by"), "name");
    await waitFor(() => expect(api.seen.at(-2)?.query.get("sort")).toBe("name"));
    await user.type(screen.getByLabelText("Search"), "zzz");
    await waitFor(() => expect(screen.getByTestId("picker-state").textContent).toBe("No completed LoRAs match “zzz”."));
    expect(api.seen.some((s) => s.query.get("search") === "zzz" && s.query.get("sort") === "name")).toBe(true);
  });

  it("says when the library is empty", async () => {
    setup({ type: "existing", loraId: "" });
    await waitFor(() => expect(screen.getByTestId("picker-state").textContent).toBe("No completed LoRAs yet."));
  });

  it("reports the LoRA chosen in the dropdown", async () => {
    const hero = lora({ name: "Hero" });
    api.loras = [hero];
    const user = setup({ type: "existing", loraId: "" });
    await waitFor(() => expect(optionLabels()).toHaveLength(2));
    await user.selectOptions(loraList(), hero.id);
    expect(changes.at(-1)).toEqual({ type: "existing", loraId: hero.id });
    expect(screen.queryByText(TRAINING_NOTICE)).toBeNull();
  });

  it("shows a LoRA still training live, with the notice, until it completes", async () => {
    const mine = lora({ name: "Mine", training_status: "training", created_by: { id: api.me, email: "me@example.com" } });
    api.loras = [mine];
    const user = setup({ type: "existing", loraId: "" });
    await waitFor(() => expect(optionLabels()).toEqual(["Choose a LoRA…", "Mine (by me@example.com) (training)"]));
    await user.selectOptions(loraList(), mine.id);
    expect(await screen.findByText(TRAINING_NOTICE)).toBeTruthy();
    expect((await screen.findByTestId("status-badge")).textContent).toBe("Training");
    const live = screen.getByRole("status");
    await waitFor(() => expect(live.textContent).toBe("LoRA training has started."));
    await waitFor(() => expect(api.hasStream(mine.id)).toBe(true));
    // The stream asked with the token: EventSource could not have sent it.
    expect(api.seen.find((s) => s.path.endsWith("/events"))?.authorization).toBe("Bearer the-token");

    act(() => api.emit(mine.id, "progress", { progress: 42, estimated_remaining: 185 }));
    expect(await screen.findByText("42%")).toBeTruthy();
    expect(screen.getByText("about 3 min left")).toBeTruthy();
    expect(screen.getByRole("progressbar", { name: "Training progress" })).toHaveProperty("value", 42);

    act(() => api.emit(mine.id, "status", { status: "validating" }));
    expect(await screen.findByText("Validating quality…")).toBeTruthy();
    expect(screen.getByTestId("status-badge").textContent).toBe("Validating");
    await waitFor(() => expect(screen.getByRole("status").textContent).toBe("LoRA training finished. Validating quality."));

    act(() => api.emit(mine.id, "outcome", { status: "completed", validation_passed: true }));
    expect(await screen.findByText("Training complete: the LoRA is ready to use.")).toBeTruthy();
    expect(screen.getByTestId("status-badge").textContent).toBe("Completed");
    expect(screen.queryByText(TRAINING_NOTICE)).toBeNull();
    await waitFor(() => expect(screen.getByRole("status").textContent).toBe("LoRA training completed. The LoRA is ready to use."));
  });

  it("shows why a training failed", async () => {
    const mine = lora({ name: "Broken", training_status: "validating", created_by: { id: api.me, email: "me@example.com" } });
    api.loras = [mine];
    setup({ type: "existing", loraId: mine.id });
    await waitFor(() => expect(api.hasStream(mine.id)).toBe(true));
    act(() => api.emit(mine.id, "outcome", { status: "failed", error_message: "validation failed: 1 of 3 show the character" }));
    expect(await screen.findByText("Training failed: validation failed: 1 of 3 show the character")).toBeTruthy();
  });
});

describe("train a new LoRA", () => {
  it("shows the spec's help text and reports the trimmed name", async () => {
    const user = setup({ type: "new", characterName: "" });
    expect(screen.getByText(NEW_LORA_HELP)).toBeTruthy();
    expect(NEW_LORA_HELP).toBe(
      "A new LoRA will be trained from character reference images. This adds ~30-60 minutes to generation time. " +
        "Training costs are covered by the system. Maximum 5 LoRAs per month per user.",
    );
    expect(screen.getByTestId("name-feedback").textContent).toBe("Enter the character's name.");
    await user.type(screen.getByLabelText("Character name"), "  Nova  ");
    expect(changes.at(-1)).toEqual({ type: "new", characterName: "Nova" });
    expect(screen.getByLabelText("Character name")).toHaveProperty("value", "  Nova  ");
    await waitFor(() => expect(screen.getByTestId("name-feedback").textContent).toBe("“Nova” is available."));
    const checks = api.seen.filter((s) => s.query.get("search") === "Nova");
    expect(checks.map((s) => s.query.get("creator"))).toEqual(["me", null]);
  });

  it("refuses a name the user already has", async () => {
    api.loras = [lora({ name: "Nova", created_by: { id: api.me, email: "me@example.com" } })];
    const user = setup({ type: "new", characterName: "" });
    await user.type(screen.getByLabelText("Character name"), "Nova");
    await waitFor(() =>
      expect(screen.getByTestId("name-feedback").textContent).toBe(
        "You already have a LoRA named “Nova”. Choose another name, or pick it under “Use existing LoRA”.",
      ),
    );
    expect(screen.getByLabelText("Character name").getAttribute("aria-invalid")).toBe("true");
  });

  it("allows a name only other users have, with a warning", async () => {
    api.loras = [lora({ name: "Nova" }), lora({ name: "Nova", training_status: "failed", created_by: { id: api.me, email: "me@example.com" } })];
    const user = setup({ type: "new", characterName: "" });
    await user.type(screen.getByLabelText("Character name"), "Nova");
    await waitFor(() => expect(screen.getByTestId("name-feedback").textContent).toMatch(/^Another user has a LoRA named “Nova”/));
    expect(screen.getByLabelText("Character name").getAttribute("aria-invalid")).toBeNull();
  });

  it("refuses more than 255 characters", async () => {
    setup({ type: "new", characterName: "x".repeat(256) });
    expect(screen.getByTestId("name-feedback").textContent).toBe("The name is too long: at most 255 characters.");
  });
});

describe("API errors, as the user can act on them", () => {
  it.each([
    [409, "duplicate_name", "You already have a LoRA with this name", "pick your existing LoRA"],
    [429, "monthly_limit_reached", "Monthly limit reached", "train this one next month"],
    [503, "budget_exhausted", "Training is paused for this month", "use an existing LoRA"],
  ])("%i %s", (status, code, title, action) => {
    render(<ErrorNotice error={new LoraflowApiError(status, code, "from the API")} />);
    const alert = screen.getByRole("alert");
    expect(alert.textContent).toContain(title);
    expect(alert.textContent).toContain(action);
  });
});
