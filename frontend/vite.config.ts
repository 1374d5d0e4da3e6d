import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

// The API that `npm run dev` proxies to (a running `loraflow dev`).
const api = process.env.LORAFLOW_API_URL ?? "http://127.0.0.1:8000";

export default defineConfig({
  plugins: [react()],
  build: { outDir: "dist", emptyOutDir: true, reportCompressedSize: false },
  server: { proxy: { "/api": api, "/dev": api } },
  test: {
    environment: "jsdom",
    include: ["src/**/*.test.{ts,tsx}"],
    // One worker, one environment for all files: the machine has two cores and the suite is small.
    pool: "threads",
    maxWorkers: 1,
    isolate: false,
  },
});
