// The API client's types, generated from loraflow's OpenAPI document (`loraflow openapi`, no
// server needed) with openapi-typescript.
//   node scripts/api-types.mjs           rewrite src/api/schema.d.ts
//   node scripts/api-types.mjs --check   fail (exit 1) when it is stale against the API
// LORAFLOW_PYTHON names the Python that has loraflow installed (default: python3).
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import openapiTS, { astToString } from "openapi-typescript";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../..");
const target = resolve(here, "../src/api/schema.d.ts");
const python = process.env.LORAFLOW_PYTHON || "python3";

const document = execFileSync(python, ["-m", "loraflow.cli", "openapi"], {
  cwd: repo,
  env: { ...process.env, PYTHONPATH: [repo, process.env.PYTHONPATH].filter(Boolean).join(":") },
  maxBuffer: 64 * 1024 * 1024,
  encoding: "utf8",
});
const header =
  "// Generated from loraflow's OpenAPI document by scripts/api-types.mjs: do not edit.\n" +
  "// Regenerate with `npm run api:generate`; `npm run api:check` (make test) fails when stale.\n\n";
const generated = header + astToString(await openapiTS(JSON.parse(document)));

if (process.argv.includes("--check")) {
  let current = "";
  try {
    current = readFileSync(target, "utf8");
  } catch {
    // missing counts as stale
  }
  if (current !== generated) {
    console.error(
      "frontend/src/api/schema.d.ts is stale against the API's OpenAPI document: " +
        "run `npm run api:generate` in frontend/ and commit the result",
    );
    process.exit(1);
  }
  console.log("frontend/src/api/schema.d.ts matches the API's OpenAPI document");
} else {
  writeFileSync(target, generated);
  console.log(`wrote ${target}`);
}
