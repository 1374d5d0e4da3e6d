// The pages in a real browser (Debian's chromium, driven by playwright-core) against a real
// loraflow stack: every scenario in one browser, one run. tests/e2e/test_browser.py starts it
// with the session's stack and checks the database afterwards; it can also be run by hand:
//   node e2e/run.mjs config.json
// config: { baseUrl, adminUrl, budgetUrl, userToken, adminToken, images: [4 paths],
//           existing: {id, name, email, label}: another user's completed LoRA,
//           training: {id, name, label}: the user's LoRA still training,
//           mine: {name}: a name the user has, others: {name}: a name only another user has,
//           trainName, artifacts, chromium? }
// It prints one JSON line per scenario and exits 1 when one failed.
import { mkdirSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { chromium } from "playwright-core";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const TRAINING_NOTICE =
  "LoRA training in progress. Video will use reference images. You can regenerate with LoRA once training completes.";
const TRAINING_TIMEOUT_MS = Number(process.env.E2E_TRAINING_TIMEOUT_MS ?? 300_000);
mkdirSync(config.artifacts, { recursive: true });

const results = [];
const started = Date.now();

async function scenario(name, body) {
  const t0 = Date.now();
  try {
    await body();
    results.push({ scenario: name, ok: true, seconds: (Date.now() - t0) / 1000 });
  } catch (error) {
    results.push({ scenario: name, ok: false, seconds: (Date.now() - t0) / 1000, error: String(error?.stack ?? error) });
  }
  console.log(JSON.stringify(results.at(-1)));
}

function assert(condition, message) {
  if (!condition) throw new Error(`assertion failed: ${message}`);
}

const shot = (page, name) => page.screenshot({ path: join(config.artifacts, `${name}.png`), fullPage: true });

/** The page's POSTs to the create route: none may leave when the page refuses a form. */
function countCreates(page) {
  const seen = { count: 0 };
  page.on("request", (request) => {
    if (request.method() === "POST" && new URL(request.url()).pathname === "/api/v1/lora-models") seen.count += 1;
  });
  return seen;
}

/** Drops files on the drop zone as a person dragging them from a file manager would. */
async function dropFiles(page, paths) {
  const files = paths.map((path) => ({ name: basename(path), data: readFileSync(path).toString("base64") }));
  const dataTransfer = await page.evaluateHandle((files) => {
    const transfer = new DataTransfer();
    for (const file of files) {
      const bytes = Uint8Array.from(atob(file.data), (c) => c.charCodeAt(0));
      transfer.items.add(new File([bytes], file.name, { type: "image/png" }));
    }
    return transfer;
  }, files);
  await page.getByTestId("drop-zone").dispatchEvent("dragover", { dataTransfer });
  await page.getByTestId("drop-zone").dispatchEvent("drop", { dataTransfer });
}

/** Sign in the way Supabase's redirect (and the dev stack's /dev/sign-in) does: the fragment. */
async function open(context, url, path, token) {
  const page = await context.newPage();
  page.on("pageerror", (error) => console.error(`page error on ${path}: ${error}`));
  await page.goto(`${url}${path}#access_token=${token}&token_type=bearer`);
  return page;
}

const browser = await chromium.launch({
  executablePath: config.chromium ?? "/usr/bin/chromium",
  headless: true,
  // Playwright gives each launch a fresh --user-data-dir of its own.
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
});
const viewport = { width: 1100, height: 900 };
const user = await browser.newContext({ viewport });
const admin = await browser.newContext({ viewport });
const budget = await browser.newContext({ viewport });

let upload;
let creates;
try {
  upload = await open(user, config.baseUrl, "/upload", config.userToken);
  creates = countCreates(upload);
  await upload.getByRole("heading", { name: "Train a character LoRA", exact: true }).waitFor();
  const radio = (name) => upload.getByRole("radio", { name });

  await scenario("keyboard path through the radio group", async () => {
    assert(await radio("Train new LoRA").isChecked(), "Train new LoRA is the default");
    await radio("Train new LoRA").focus();
    await upload.keyboard.press("ArrowUp");
    assert(await radio("Use existing LoRA").isChecked(), "ArrowUp chose Use existing LoRA");
    await upload.keyboard.press("ArrowUp");
    assert(await radio("No LoRA").isChecked(), "ArrowUp chose No LoRA");
    assert(await upload.evaluate(() => document.activeElement?.getAttribute("value")) === "none", "focus moved with the choice");
    await upload.keyboard.press("ArrowDown");
    assert(await radio("Use existing LoRA").isChecked(), "ArrowDown chose Use existing LoRA");
    // Tab leaves the group for the search box, then the sort, then the LoRA list.
    await upload.keyboard.press("Tab");
    assert((await upload.evaluate(() => document.activeElement?.getAttribute("type"))) === "search", "Tab reached the search box");
  });

  await scenario("pick an existing LoRA with the keyboard", async () => {
    await upload.keyboard.type(config.existing.name);
    const list = upload.getByRole("combobox", { name: "LoRA", exact: true });
    // The search has answered: the placeholder and the one LoRA that matches.
    await upload.waitForFunction(
      (label) => {
        const options = [...document.querySelectorAll('.lora-picker select[id$="-lora"] option')];
        return options.length === 2 && options[1].textContent === label;
      },
      config.existing.label,
    );
    await upload.keyboard.press("Tab"); // sort
    await upload.keyboard.press("Tab"); // the list
    assert(await list.evaluate((el) => el === document.activeElement), "the LoRA list has the focus");
    await upload.keyboard.press("ArrowDown");
    await upload.waitForFunction((id) => document.activeElement?.value === id, config.existing.id);
    const label = await list.evaluate((el) => el.selectedOptions[0].textContent);
    assert(label === config.existing.label, `shown as "Name (by email)": ${label}`);
    await upload.getByRole("button", { name: "Continue" }).click();
    await upload.getByText(`The video job will use LoRA ${config.existing.id}`).waitFor();
    assert((await upload.getByText(TRAINING_NOTICE).count()) === 0, "no training notice for a completed LoRA");
    await shot(upload, "upload-existing");
  });

  await scenario("choosing a LoRA still training shows its status and the notice", async () => {
    await upload.getByRole("searchbox").fill(config.training.name);
    const list = upload.getByRole("combobox", { name: "LoRA", exact: true });
    await upload.getByRole("option", { name: `${config.training.label} (training)` }).waitFor({ state: "attached" });
    await list.selectOption(config.training.id);
    await upload.getByText(TRAINING_NOTICE).waitFor();
    await upload.getByTestId("status-badge").filter({ hasText: "Training" }).waitFor();
    await shot(upload, "upload-existing-training");
  });

  await scenario("a duplicate name gets the warning and nothing is created", async () => {
    await radio("Train new LoRA").check();
    await upload.getByLabel("Character name").fill(config.mine.name);
    await upload.getByText(`You already have a LoRA named “${config.mine.name}”`).waitFor();
    await upload.locator('input[type="file"]').setInputFiles(config.images);
    await upload.getByText("4 of 3–10 images.").waitFor();
    const submit = upload.getByRole("button", { name: "Train LoRA" });
    assert(await submit.isDisabled(), "submit is disabled");
    await upload.getByLabel("Character name").press("Enter");
    await upload.waitForTimeout(300);
    assert(creates.count === 0, "no create request left the page");
    await shot(upload, "upload-duplicate");
    // Another user's name is allowed, with a warning.
    await upload.getByLabel("Character name").fill(config.others.name);
    await upload.getByText(`Another user has a LoRA named “${config.others.name}”`).waitFor();
    await submit.waitFor({ state: "visible" });
    assert(await submit.isEnabled(), "another user's name may be used");
  });

  await scenario("two images are refused before upload", async () => {
    const removes = upload.getByRole("button", { name: /^Remove / });
    while ((await removes.count()) > 0) await removes.first().click();
    await dropFiles(upload, config.images.slice(0, 2));
    await upload.getByRole("img", { name: "character-1.png" }).waitFor();
    await upload.getByText("Add at least 3 images of the character (2 so far).").waitFor();
    assert(await upload.getByRole("button", { name: "Train LoRA" }).isDisabled(), "submit is disabled with 2 images");
    assert(creates.count === 0, "no create request left the page");
    await shot(upload, "upload-two-images");
  });

  await scenario("train a new LoRA from the upload page: started", async () => {
    await upload.locator('input[type="file"]').setInputFiles(config.images.slice(2));
    await upload.getByText("4 of 3–10 images.").waitFor();
    await upload.getByLabel("Character name").fill(config.trainName);
    await upload.getByText(`“${config.trainName}” is available.`).waitFor();
    await upload.getByLabel("Description (optional)").fill("trained in a browser by the end-to-end test");
    await upload.getByRole("button", { name: "Train LoRA" }).click();
    await upload.getByRole("heading", { name: `Training “${config.trainName}”` }).waitFor();
    assert(creates.count === 1, "one create request");
    await upload.getByText(TRAINING_NOTICE).waitFor();
  });
} catch (error) {
  results.push({ scenario: "upload page", ok: false, error: String(error?.stack ?? error) });
}

// While the LoRA trains: the library, a rating, a report, the review page, the budget refusal.
await scenario("library: search, filters, sort, pages, detail, rating, report", async () => {
  const page = await open(user, config.baseUrl, "/library", config.userToken);
  await page.getByRole("heading", { name: "LoRA library", exact: true }).waitFor();
  await page.getByTestId("library-state").filter({ hasText: / of \d+/ }).waitFor();
  await shot(page, "library");
  await page.getByLabel("Search").fill(config.existing.name);
  await page.getByTestId("library-state").filter({ hasText: "1–1 of 1" }).waitFor();
  await page.getByLabel("Sort by").selectOption("name");
  await page.getByLabel("Status").selectOption("completed");
  await page.getByLabel("Rating").selectOption("4");
  await page.getByTestId("library-state").filter({ hasText: "No LoRAs match." }).waitFor();
  await page.getByLabel("Rating").selectOption("");
  await page.getByLabel("Base model").fill("sdxl");
  await page.getByLabel("Created after").fill("2020-01-01");
  await page.getByTestId("library-state").filter({ hasText: "1–1 of 1" }).waitFor();
  await page.getByLabel("Only mine").check();
  await page.getByTestId("library-state").filter({ hasText: "No LoRAs match." }).waitFor();
  await page.getByLabel("Only mine").uncheck();
  await page.getByLabel("Search").fill("");
  await page.getByLabel("Base model").fill("");
  await page.getByTestId("library-state").filter({ hasText: /^1–\d+ of \d+$/ }).waitFor();
  const total = Number((await page.getByTestId("library-state").textContent()).split(" of ")[1]);
  if (total > 12) {
    await page.getByRole("button", { name: "Next" }).click();
    await page.getByTestId("library-state").filter({ hasText: /^13–/ }).waitFor();
    await page.getByRole("button", { name: "Previous" }).click();
  }
  await page.getByLabel("Search").fill(config.existing.name);
  await page.getByRole("link", { name: config.existing.name }).click();
  await page.getByRole("heading", { name: config.existing.name }).waitFor();
  await page.getByText(`by ${config.existing.email}`).waitFor();
  await page.getByRole("button", { name: "4 stars" }).click();
  await page.getByTestId("rating").filter({ hasText: "4.0 ★ (1 rating)" }).waitFor();
  await page.getByRole("button", { name: "Remove my rating" }).click();
  await page.getByTestId("rating").filter({ hasText: "not rated yet" }).waitFor();
  await page.getByRole("button", { name: "5 stars" }).click();
  await page.getByTestId("rating").filter({ hasText: "5.0 ★ (1 rating)" }).waitFor();
  await page.getByRole("button", { name: "Report this LoRA" }).click();
  await page.getByLabel("Reason").selectOption("spam");
  await page.getByLabel("Details (optional)").fill("reported by the end-to-end test");
  await page.getByRole("button", { name: "Send report" }).click();
  await page.getByText(/your report \(#\d+\) is with the moderators/).waitFor();
  await shot(page, "library-detail");
  // Not an admin: the review page says so.
  await page.goto(`${config.baseUrl}/admin`);
  await page.getByText("Only admins can review reports.").waitFor();
  assert((await page.getByRole("link", { name: "Review" }).count()) === 0, "no Review link for a user");
  await page.close();
});

await scenario("admin review page", async () => {
  const page = await open(admin, config.adminUrl, "/admin", config.adminToken);
  await page.getByRole("heading", { name: "Review", exact: true }).waitFor();
  const card = page.locator(".review-card").filter({ hasText: config.existing.name });
  await card.getByText("reported by the end-to-end test").waitFor();
  await shot(page, "admin");
  await card.getByLabel(/^Reason/).fill("checked by the end-to-end test: not spam");
  await card.getByRole("button", { name: "Restore" }).click();
  await card.waitFor({ state: "detached" });
  await page.close();
});

await scenario("a 503 budget refusal is shown", async () => {
  const page = await open(budget, config.budgetUrl, "/upload", config.userToken);
  await page.getByLabel("Character name").fill(`${config.trainName} (over budget)`);
  await page.locator('input[type="file"]').setInputFiles(config.images.slice(0, 3));
  await page.getByText("3 of 3–10 images.").waitFor();
  await page.getByText("is available.").waitFor();
  await page.getByRole("button", { name: "Train LoRA" }).click();
  const alert = page.locator('[role="alert"][data-code="budget_exhausted"]');
  await alert.getByText("Training is paused for this month").waitFor();
  assert((await alert.textContent()).includes("use an existing LoRA"), "it says what the user can do");
  await shot(page, "upload-budget");
  await page.close();
});

if (upload) {
  await scenario("train a new LoRA from the upload page: live progress", async () => {
    // Over the event stream: the bar moves before the training ends.
    const moving = await upload.waitForFunction(() => {
      const bar = document.querySelector("progress");
      if (bar && Number(bar.value) > 0 && Number(bar.value) < 100) return "moving";
      const badge = document.querySelector('[data-testid="status-badge"]')?.textContent;
      return ["Validating", "Completed", "Failed"].includes(badge ?? "") ? `already ${badge}` : false;
    }, null, { timeout: TRAINING_TIMEOUT_MS });
    const seen = await moving.jsonValue();
    assert(seen === "moving", `the progress was seen moving (it was ${seen} before the other scenarios ended)`);
    await upload.getByText(/min left|less than a minute left/).waitFor({ timeout: 10_000 });
    await shot(upload, "upload-training");
  });

  await scenario("train a new LoRA from the upload page: completed, with the validation", async () => {
    await upload.getByTestId("status-badge").filter({ hasText: /Completed|Failed/ }).waitFor({ timeout: TRAINING_TIMEOUT_MS });
    const badge = await upload.getByTestId("status-badge").textContent();
    await upload.getByRole("heading", { name: "Validation", exact: true }).waitFor();
    await upload.locator(".validation-images img").first().waitFor();
    await upload.waitForFunction(() => [...document.querySelectorAll(".validation-images img")].every((img) => img.complete && img.naturalWidth > 0));
    await shot(upload, "upload-completed");
    assert(badge === "Completed", `the training completed (the badge says ${badge})`);
    await upload.getByText("Training complete: the LoRA is ready to use.").waitFor();
    assert((await upload.getByText(TRAINING_NOTICE).count()) === 0, "the notice is gone");
  });
}

await browser.close();
console.log(JSON.stringify({ done: true, seconds: (Date.now() - started) / 1000, failed: results.filter((r) => !r.ok).length }));
process.exit(results.every((r) => r.ok) ? 0 : 1);
