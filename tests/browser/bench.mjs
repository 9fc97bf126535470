// The browser party's speed against the native client, same machine, same
// server: ResNet-18 on 1×3×32×32 (built in, seeded weights) and the digits
// CNN. Both parties use the CPU; the browser's WebAssembly runs on one
// thread. Reports the median per-inference time of each client, their
// ratio (issue 6's target: browser within 3× of native), bytes and rounds,
// and writes target/browser/bench.json.
// Usage: node tests/browser/bench.mjs [--reps N]

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { writeFileSync } from "node:fs";
import { OUT, root, start, stopAll, inferJson, launch, newPage, staticServer } from "./harness.mjs";

const reps = Number(process.argv[process.argv.indexOf("--reps") + 1] || 5) || 5;
const work = mkdtempSync(join(tmpdir(), "hush-bench-"));
const dealer = await start(["dealer", "--addr", "127.0.0.1:0"]);
const browser = await launch();
// The page imports the package straight from wasm/pkg.
const files = await staticServer(resolve(root, "wasm/pkg"));

const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

async function measure(model, dims) {
  const args = ["serve", "--addr", "127.0.0.1:0", "--dealer", dealer.url];
  if (model) args.push("--model", model);
  const server = await start(args);
  const n = dims.reduce((a, d) => a * d, 1);
  const x = Array.from({ length: n }, (_, i) => Math.sin(i * 0.37) * 0.8);
  const page = await newPage(browser);
  await page.goto(`${files.url}/hush.js`);
  const b = await page.evaluate(
    async ({ url, x, dims, reps, pkg }) => {
      const { HushSession } = await import(`${pkg}/hush.js`);
      const t0 = performance.now();
      const session = await HushSession.connect(url);
      const connectMs = performance.now() - t0;
      const times = [];
      for (let i = 0; i < reps + 1; i++) {
        await session.run({ data: Float32Array.from(x), dims });
        times.push(session.stats.timeMs);
      }
      const stats = session.stats;
      await session.close();
      return { connectMs, times: times.slice(1), stats };
    },
    { url: server.url, x, dims, reps, pkg: files.url },
  );
  const native = inferJson(server.url, x, dims, work, ["--repeat", String(reps + 1)]);
  await page.close();
  server.proc.kill("SIGKILL");
  const browserMs = median(b.times);
  const nativeMs = native.inference_s * 1e3;
  return {
    model: model ?? "digits",
    browser_ms: browserMs,
    browser_connect_ms: b.connectMs,
    native_ms: nativeMs,
    ratio: browserMs / nativeMs,
    rounds: b.stats.rounds,
    bytes_sent: b.stats.bytesSent,
    bytes_received: b.stats.bytesReceived,
    native_rounds: native.online.rounds,
  };
}

const rows = [];
rows.push(await measure(null, [1, 1, 8, 8]));
rows.push(await measure("builtin:resnet18-32", [1, 3, 32, 32]));
await browser.close();
files.close();
stopAll();

console.log(`| model | browser (median of ${reps}) | native hush infer | browser / native | rounds | sent | received |`);
console.log("| --- | --- | --- | --- | --- | --- | --- |");
for (const r of rows) {
  console.log(
    `| ${r.model} | ${r.browser_ms.toFixed(1)} ms | ${r.native_ms.toFixed(1)} ms | ${r.ratio.toFixed(2)}× | ${r.rounds} | ${(r.bytes_sent / 1e6).toFixed(2)} MB | ${(r.bytes_received / 1e6).toFixed(2)} MB |`,
  );
}
writeFileSync(join(OUT, "bench.json"), JSON.stringify(rows, null, 2));
