// End-to-end tests of the browser party in headless Chromium, against real
// `hush dealer` and `hush serve` processes:
//  1. the web app: draw a digit, click, and the page's prediction equals
//     `hush infer`'s on the same pixels (screenshot saved);
//  2. the insecure local dealer is visibly announced on the page;
//  3. the npm package: `npm pack`, installed by an example app outside the
//     workspace, type-checked with tsc, and run in the browser; a model with
//     two inputs through the web app (a file each) and the package (feeds);
//  4. the page says clearly when the server is down.
// Usage: node tests/browser/e2e.mjs   (HUSH_BIN: the hush binary,
// CHROMIUM: the browser; OUT: where screenshots go).

import { execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import assert from "node:assert/strict";
import {
  OUT, here, root, start, stop, stopAll, httpOf, inferJson, maxDiff, launch, newPage as openPage, staticServer, writeNpy,
} from "./harness.mjs";

// Tolerance of secure vs secure outputs on the digits model (16 fractional
// bits, randomized truncation): see tests/native/sessions.rs.
const TOL = 5e-3;

// A little-endian float32 .npy (as make_models.py writes them).
function readNpyF32(path) {
  const b = readFileSync(path);
  const hlen = b.readUInt16LE(8);
  const body = b.subarray(10 + hlen);
  return Array.from({ length: body.length / 4 }, (_, i) => body.readFloatLE(i * 4));
}

const results = [];
async function test(name, f) {
  const t = performance.now();
  try {
    await f();
    results.push([name, "ok", performance.now() - t]);
    console.log(`test ${name} ... ok (${((performance.now() - t) / 1000).toFixed(1)} s)`);
  } catch (e) {
    results.push([name, "FAILED", performance.now() - t]);
    console.log(`test ${name} ... FAILED\n${e.stack ?? e}`);
  }
}

const browser = await launch();
const newPage = () => openPage(browser);

// Draws a "7": a bar across the top, then a stroke down to the lower left.
async function drawSeven(page) {
  const box = await page.locator("#pad").boundingBox();
  const at = (x, y) => [box.x + (x * box.width) / 256, box.y + (y * box.height) / 256];
  await page.mouse.move(...at(50, 45));
  await page.mouse.down();
  for (const [x, y] of [[120, 42], [200, 40], [175, 100], [145, 160], [120, 225]]) {
    await page.mouse.move(...at(x, y), { steps: 8 });
  }
  await page.mouse.up();
}

const work = mkdtempSync(join(tmpdir(), "hush-browser-"));
const dealer = await start(["dealer", "--addr", "127.0.0.1:0"]);
let server = await start(["serve", "--addr", "127.0.0.1:0", "--dealer", dealer.url]);

await test("web app: a drawn digit's prediction equals hush infer's", async () => {
  const page = await newPage();
  await page.goto(httpOf(server.url));
  await page.waitForSelector("#evaluate:not([disabled])");
  assert.equal(await page.locator("#insecure").isVisible(), false);
  const commitment = await page.locator("#commitment").textContent();
  assert.match(commitment, /^sha256:[0-9a-f]{64}$/);
  await drawSeven(page);
  // The first click connects (handshake, seed, weight setup) and evaluates;
  // the second is an inference on the open session.
  await page.click("#evaluate");
  await page.waitForFunction(() => window.hushLast, null, { timeout: 60000 });
  await page.evaluate(() => (window.hushLast = null));
  const t0 = Date.now();
  await page.click("#evaluate");
  await page.waitForFunction(() => window.hushLast, null, { timeout: 60000 });
  const clickToAnswer = Date.now() - t0;
  const last = await page.evaluate(() => window.hushLast);
  await page.screenshot({ path: join(OUT, "digit.png"), fullPage: true });
  const shown = await page.locator("#prediction").textContent();
  assert.equal(shown, `It is a ${last.prediction}`);
  assert.ok(last.input.some((v) => v > 0), "the drawing reached the input");
  const native = inferJson(server.url, last.input, last.dims, work);
  assert.equal(native.class, last.prediction, `hush infer says ${native.class}`);
  assert.ok(maxDiff(native.output, last.output) < TOL, `logits ${native.output} vs ${last.output}`);
  const stats = await page.locator("#stats").textContent();
  assert.match(stats, /54 rounds/);
  console.log(`  drawn digit classified as ${last.prediction}; click to answer ${clickToAnswer} ms (target <= 200 ms)`);
  writeFileSync(join(OUT, "timing.json"), JSON.stringify({ digits_click_to_answer_ms: clickToAnswer }));
  assert.match(stats, /computed on cpu\./);
  // The same drawing with the products on WebGPU (SwiftShader here): a new session.
  await page.selectOption("#backend", "gpu");
  await page.evaluate(() => (window.hushLast = null));
  await page.click("#evaluate");
  await page.waitForFunction(() => window.hushLast, null, { timeout: 120000 });
  const onGpu = await page.evaluate(() => window.hushLast);
  assert.ok(maxDiff(native.output, onGpu.output) < TOL, `WebGPU logits ${onGpu.output} vs ${native.output}`);
  assert.match(await page.locator("#stats").textContent(), /computed on gpu: .*u32x2 arithmetic/);
  await page.close();
});

await test("web app: the insecure local dealer is announced", async () => {
  const insecure = await start(["serve", "--addr", "127.0.0.1:0", "--insecure-local-dealer"]);
  try {
    const page = await newPage();
    await page.goto(httpOf(insecure.url));
    await page.waitForSelector("#evaluate:not([disabled])");
    assert.equal(await page.locator("#insecure").isVisible(), true);
    await page.click("#evaluate");
    await page.waitForFunction(() => window.hushLast, null, { timeout: 60000 });
    assert.equal(await page.locator("#insecure").isVisible(), true);
    await page.screenshot({ path: join(OUT, "insecure.png"), fullPage: true });
    await page.close();
  } finally {
    await stop(insecure);
  }
});

await test("web app: a session the server closed for idleness is reopened", async () => {
  const quick = await start(["serve", "--addr", "127.0.0.1:0", "--dealer", dealer.url, "--idle-timeout", "1"]);
  try {
    const page = await newPage();
    await page.goto(httpOf(quick.url));
    await page.waitForSelector("#evaluate:not([disabled])");
    await drawSeven(page);
    await page.click("#evaluate");
    await page.waitForFunction(() => window.hushLast, null, { timeout: 60000 });
    const first = await page.evaluate(() => window.hushLast.prediction);
    await page.evaluate(() => (window.hushLast = null));
    await new Promise((ok) => setTimeout(ok, 2500)); // past the server's idle timeout
    await page.click("#evaluate");
    await page.waitForFunction(() => window.hushLast || !document.getElementById("error").hidden, null, {
      timeout: 60000,
    });
    assert.equal(await page.locator("#error").isVisible(), false, await page.locator("#error").textContent());
    assert.equal(await page.evaluate(() => window.hushLast.prediction), first);
    await page.close();
  } finally {
    await stop(quick);
  }
});

await test("web app: any other model takes a .npy (float, or int64 token ids) and shows an output table", async () => {
  const models = resolve(root, "models/test");
  const lenet = await start(["serve", "--addr", "127.0.0.1:0", "--dealer", dealer.url, "--model", join(models, "lenet5.onnx")]);
  try {
    const page = await newPage();
    await page.goto(httpOf(lenet.url));
    await page.waitForSelector("#evaluate:not([disabled])");
    assert.equal(await page.locator("#digits").isVisible(), false);
    await page.setInputFiles("#input-file", join(models, "lenet5.input.npy"));
    await page.waitForFunction(() => document.getElementById("status").textContent.includes("Loaded"));
    await page.click("#evaluate");
    await page.waitForFunction(() => window.hushLast, null, { timeout: 60000 });
    const last = await page.evaluate(() => window.hushLast);
    const rows = await page.locator("#table tr").count();
    assert.equal(rows, last.output.length + 1);
    // onnxruntime's output for the same input (models/test/make_models.py).
    const ort = readNpyF32(join(models, "lenet5.ort.npy"));
    assert.ok(maxDiff(ort, last.output) < 1e-3, `${last.output} vs ${ort}`);
    await page.screenshot({ path: join(OUT, "generic.png"), fullPage: true });
    await page.close();
  } finally {
    await stop(lenet);
  }
  // A text model takes its token ids as an int64 .npy.
  const text = await start(["serve", "--addr", "127.0.0.1:0", "--dealer", dealer.url, "--model", join(models, "text_classifier.onnx")]);
  try {
    const page = await newPage();
    await page.goto(httpOf(text.url));
    await page.waitForSelector("#evaluate:not([disabled])");
    const ids = readNpyF32(join(models, "text_classifier.input.npy"));
    const npy = join(work, "ids.npy");
    writeNpy(npy, ids, [1, ids.length], "<i8");
    await page.setInputFiles("#input-file", npy);
    await page.waitForFunction(() => document.getElementById("status").textContent.includes("Loaded"));
    await page.click("#evaluate");
    await page.waitForFunction(() => window.hushLast, null, { timeout: 60000 });
    const last = await page.evaluate(() => window.hushLast);
    const ort = readNpyF32(join(models, "text_classifier.ort.npy"));
    assert.ok(maxDiff(ort, last.output) < 1e-3, `${last.output} vs ${ort}`);
    await page.close();
  } finally {
    await stop(text);
  }
});

await test("a model with two outputs (logits of tens, their softmax): the web app shows both", async () => {
  const models = resolve(root, "models/test");
  const heads = await start(["serve", "--addr", "127.0.0.1:0", "--dealer", dealer.url, "--model", join(models, "two_heads.onnx")]);
  try {
    const page = await newPage();
    await page.goto(httpOf(heads.url));
    await page.waitForSelector("#evaluate:not([disabled])");
    await page.setInputFiles("#input-file", join(models, "two_heads.input.npy"));
    await page.waitForFunction(() => document.getElementById("status").textContent.includes("Loaded"));
    await page.click("#evaluate");
    await page.waitForFunction(() => window.hushLast, null, { timeout: 60000 });
    const last = await page.evaluate(() => window.hushLast);
    assert.deepEqual(Object.keys(last.outputs), ["logits", "probs"]);
    // onnxruntime's outputs; the logits come through weights of about 10
    // (onnx/tests/models.rs states the tolerances).
    const logits = readNpyF32(join(models, "two_heads.ort.npy"));
    const probs = readNpyF32(join(models, "two_heads.ort1.npy"));
    assert.ok(maxDiff(logits, last.outputs.logits) < 5e-3, `${last.outputs.logits} vs ${logits}`);
    assert.ok(maxDiff(probs, last.outputs.probs) < 1e-3, `${last.outputs.probs} vs ${probs}`);
    assert.deepEqual(last.output, last.outputs.logits);
    // One table, each output under its name: 2 × (name, header, 30 values).
    const heads_ = await page.locator("#table th[colspan]").allTextContents();
    assert.deepEqual(heads_, ["logits [3×10]", "probs [3×10]"]);
    assert.equal(await page.locator("#table tr").count(), 2 * (2 + 30));
    await page.close();
  } finally {
    await stop(heads);
  }
});

await test("a model with two inputs (input_ids, attention_mask): the web app takes a file each, the package takes feeds", async () => {
  const models = resolve(root, "models/test");
  const enc = await start(["serve", "--addr", "127.0.0.1:0", "--dealer", dealer.url, "--model", join(models, "text_encoder.onnx")]);
  try {
    const ids = readNpyF32(join(models, "text_encoder.input.npy"));
    const mask = readNpyF32(join(models, "text_encoder.input1.npy"));
    const ort = readNpyF32(join(models, "text_encoder.ort.npy"));
    const page = await newPage();
    await page.goto(httpOf(enc.url));
    await page.waitForSelector("#evaluate:not([disabled])");
    // The mask's file is named for its input; the ids' file goes to the input left.
    const maskNpy = join(work, "attention_mask.npy");
    const idsNpy = join(work, "tokens.npy");
    writeNpy(maskNpy, mask, [1, mask.length], "<i8");
    writeNpy(idsNpy, ids, [1, ids.length], "<i8");
    await page.setInputFiles("#input-file", [maskNpy, idsNpy]);
    await page.waitForFunction(() => document.getElementById("status").textContent.includes("Loaded"));
    const status = await page.locator("#status").textContent();
    assert.match(status, /input_ids ← tokens\.npy.*attention_mask ← attention_mask\.npy/);
    await page.click("#evaluate");
    await page.waitForFunction(() => window.hushLast, null, { timeout: 60000 });
    const last = await page.evaluate(() => window.hushLast);
    assert.deepEqual(last.inputs.attention_mask, mask);
    assert.ok(maxDiff(ort, last.output) < 1e-3, `${last.output} vs ${ort}`);
    // The package, as onnxruntime-web is called: feeds by name, outputs by name.
    const r = await page.evaluate(
      async ([ids, mask]) => {
        const { HushSession } = await import("/pkg/hush.js");
        const url = `ws://${location.host}`;
        const session = await HushSession.connect(url);
        const out = await session.run({
          input_ids: BigInt64Array.from(ids, (v) => BigInt(v)),
          attention_mask: BigInt64Array.from(mask, (v) => BigInt(v)),
        });
        const code = async (f) => {
          try {
            await f();
            return "resolved";
          } catch (e) {
            return `${e.code}: ${e.message}`;
          }
        };
        const missing = await code(() => session.run({ input_ids: new Float32Array(ids) }));
        const bare = await code(() => session.run(new Float32Array(ids)));
        const unknown = await code(() => session.run({ input_ids: new Float32Array(ids), mask: new Float32Array(mask) }));
        await session.close();
        return { keys: Object.keys(out), y: Array.from(out.y.data), dims: out.y.dims, missing, bare, unknown };
      },
      [ids, mask],
    );
    assert.deepEqual(r.keys, ["y"]);
    assert.deepEqual(r.dims, [1, 3]);
    assert.ok(maxDiff(ort, r.y) < 1e-3, `${r.y} vs ${ort}`);
    assert.match(r.missing, /^BAD_REQUEST: .*attention_mask/);
    assert.match(r.bare, /^BAD_REQUEST: the model takes 2 inputs \(input_ids, attention_mask\)/);
    assert.match(r.unknown, /^BAD_REQUEST: the model has no input mask/);
    await page.close();
  } finally {
    await stop(enc);
  }
});

await test("npm package: packed, installed outside the workspace, typed, run in the browser", async () => {
  const pkgDir = resolve(root, "wasm/pkg");
  const tgz = execFileSync("npm", ["pack", pkgDir, "--pack-destination", work, "--silent"], {
    encoding: "utf8",
  })
    .trim()
    .split("\n")
    .pop();
  const app = join(work, "example-app");
  mkdirSync(app, { recursive: true });
  writeFileSync(
    join(app, "package.json"),
    JSON.stringify({ name: "example-app", private: true, type: "module", dependencies: { "hush-mpc": `file:${join(work, tgz)}` } }),
  );
  execFileSync("npm", ["install", "--no-audit", "--no-fund", "--offline"], { cwd: app, stdio: "inherit" });
  // The example's TypeScript, checked against the package's types.
  writeFileSync(
    join(app, "main.ts"),
    `import { HushSession, HushError, type Tensor } from "hush-mpc";
export async function classify(url: string, pixels: Float32Array): Promise<number> {
  const session = await HushSession.connect(url, { onProgress: (p) => console.log(p.done, p.total, p.op) });
  const dims: number[] = session.model.inputs[0].dims;
  const out: Tensor = await session.run({ data: pixels, dims });
  const s = session.stats;
  console.log(s.timeMs, s.bytesSent, s.rounds, s.setup.bytesReceived, session.model.commitment);
  await session.close();
  return out.data.indexOf(Math.max(...out.data));
}
export async function classifyIds(session: HushSession, ids: BigInt64Array): Promise<Tensor> {
  return session.run({ data: ids, dims: [1, ids.length] });
}
export async function encode(session: HushSession, ids: BigInt64Array, mask: BigInt64Array): Promise<Tensor | undefined> {
  const outs: Record<string, Tensor> = await session.run({ input_ids: ids, attention_mask: mask });
  return outs[session.model.outputNames[0]];
}
export function isMismatch(e: unknown): boolean {
  return e instanceof HushError && e.code === "MODEL_MISMATCH";
}
`,
  );
  execFileSync(
    process.execPath,
    [resolve(here, "node_modules/typescript/bin/tsc"), "--noEmit", "--strict", "--target", "es2022", "--module", "nodenext", "--moduleResolution", "nodenext", join(app, "main.ts")],
    { cwd: app, stdio: "inherit" },
  );
  writeFileSync(
    join(app, "index.html"),
    `<!doctype html><script type="module">
import { HushSession } from "./node_modules/hush-mpc/hush.js";
const url = new URLSearchParams(location.search).get("server");
const x = new Float32Array(64).map((_, i) => ((i * 7) % 17) / 16);
try {
  const session = await HushSession.connect(url);
  const out = await session.run({ data: x, dims: [1, 1, 8, 8] });
  const result = { input: Array.from(x), output: Array.from(out.data), dims: out.dims, model: session.model, stats: session.stats };
  // Integers as an int64 tensor (BigInt64Array), taken as numbers.
  const ints = BigInt64Array.from(x, (v) => BigInt(Math.round(v * 16)));
  const outInts = await session.run({ data: ints, dims: [1, 1, 8, 8] });
  result.ints = { input: Array.from(ints, Number), output: Array.from(outInts.data) };
  try { await HushSession.connect(url, { expectModel: "sha256:" + "00".repeat(32) }); } catch (e) { result.refused = e.code; }
  await session.close();
  // The same input with the client's products on WebGPU.
  const gpu = await HushSession.connect(url, { backend: "gpu" });
  const outGpu = await gpu.run({ data: x, dims: [1, 1, 8, 8] });
  result.gpu = { output: Array.from(outGpu.data), backend: gpu.model.backend };
  await gpu.close();
  window.result = result;
} catch (e) { window.result = { error: e.message, code: e.code }; }
</script>`,
  );
  const http = await staticServer(app);
  try {
    const page = await newPage();
    await page.goto(`${http.url}/index.html?server=${encodeURIComponent(server.url)}`);
    await page.waitForFunction(() => window.result, null, { timeout: 60000 });
    const r = await page.evaluate(() => window.result);
    assert.ok(!r.error, `${r.code}: ${r.error}`);
    assert.deepEqual(r.dims, [1, 10]);
    assert.equal(r.model.name, "digits");
    assert.equal(r.model.insecureDealer, false);
    assert.equal(r.stats.rounds, 54);
    assert.equal(r.refused, "MODEL_MISMATCH");
    const native = inferJson(server.url, r.input, [1, 1, 8, 8], work);
    assert.ok(maxDiff(native.output, r.output) < TOL, `${native.output} vs ${r.output}`);
    const nativeInts = inferJson(server.url, r.ints.input, [1, 1, 8, 8], work);
    assert.ok(maxDiff(nativeInts.output, r.ints.output) < TOL, `${nativeInts.output} vs ${r.ints.output}`);
    assert.equal(r.model.backend, "cpu");
    assert.match(r.gpu.backend, /^gpu: .*u32x2 arithmetic/);
    assert.ok(maxDiff(native.output, r.gpu.output) < TOL, `${native.output} vs WebGPU ${r.gpu.output}`);
    await page.close();
  } finally {
    http.close();
  }
});

await test("web app: a clear message when the server is down", async () => {
  const page = await newPage();
  await page.goto(httpOf(server.url));
  await page.waitForSelector("#evaluate:not([disabled])");
  await drawSeven(page);
  await stop(server);
  await page.click("#evaluate");
  await page.waitForSelector("#error:not([hidden])", { timeout: 30000 });
  const message = await page.locator("#error").textContent();
  assert.match(message, /not reachable/);
  assert.match(message, /CLOSED/);
  await page.screenshot({ path: join(OUT, "server-down.png"), fullPage: true });
  await page.close();
});

await browser.close();
stopAll();
const failed = results.filter((r) => r[1] !== "ok");
console.log(`\nbrowser tests: ${results.length - failed.length} passed, ${failed.length} failed; screenshots in ${OUT}`);
process.exit(failed.length ? 1 : 0);
