// Shared by the browser tests and the browser benchmark: the hush binary,
// Chromium, .npy files and a static file server.

import { chromium } from "playwright-core";
import { spawn, execFileSync } from "node:child_process";
import { createServer } from "node:http";
import { existsSync, readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join, resolve, dirname, extname } from "node:path";
import { fileURLToPath } from "node:url";

export const here = dirname(fileURLToPath(import.meta.url));
export const root = resolve(here, "../..");
export const HUSH = resolve(root, process.env.HUSH_BIN ?? "target/release/hush");
export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
export const OUT = resolve(root, process.env.OUT ?? "target/browser");
mkdirSync(OUT, { recursive: true });

for (const [what, path] of [["hush binary", HUSH], ["Chromium", CHROMIUM]]) {
  if (!existsSync(path)) {
    console.error(`missing ${what} at ${path} (see shared/ENVIRONMENT.md; .ci/run installs it)`);
    process.exit(2);
  }
}

const children = [];

/** Starts `hush <args>`; resolves when it prints its `listening on` URL. */
export function start(args) {
  return new Promise((ok, fail) => {
    const p = spawn(HUSH, args, { stdio: ["ignore", "pipe", "pipe"] });
    children.push(p);
    let log = "";
    p.stderr.on("data", (d) => (log += d));
    let buf = "";
    p.stdout.on("data", (d) => {
      buf += d;
      const m = /listening on (\S+)/.exec(buf);
      if (m) ok({ proc: p, url: m[1], log: () => log });
    });
    p.on("exit", (code) => fail(new Error(`hush ${args.join(" ")} exited ${code}: ${log}`)));
    setTimeout(() => fail(new Error(`hush ${args.join(" ")} did not start`)), 120000);
  });
}

/** Kills a started process and waits for it. */
export function stop(p) {
  return new Promise((ok) => {
    if (p.proc.exitCode !== null) return ok();
    p.proc.once("exit", ok);
    p.proc.kill("SIGKILL");
  });
}

/** Kills everything `start` started. */
export function stopAll() {
  for (const c of children) c.kill("SIGKILL");
}

export const httpOf = (ws) => ws.replace(/^ws/, "http");

/** Writes a .npy file: float32, or int64 with `dtype` "<i8". */
export function writeNpy(path, data, dims, dtype = "<f4") {
  let header = `{'descr': '${dtype}', 'fortran_order': False, 'shape': (${dims.join(", ")}${dims.length === 1 ? "," : ""}), }`;
  while ((10 + header.length + 1) % 64 !== 0) header += " ";
  header += "\n";
  const h = Buffer.from(header, "latin1");
  const width = dtype === "<i8" ? 8 : 4;
  const body = Buffer.alloc(data.length * width);
  if (dtype === "<i8") data.forEach((v, i) => body.writeBigInt64LE(BigInt(v), i * 8));
  else data.forEach((v, i) => body.writeFloatLE(v, i * 4));
  const pre = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, h.length & 0xff, h.length >> 8]);
  writeFileSync(path, Buffer.concat([pre, h, body]));
}

/** `hush infer --json` on `data` of shape `dims`. */
export function inferJson(serverUrl, data, dims, dir, extra = []) {
  const npy = join(dir, "x.npy");
  writeNpy(npy, data, dims);
  const out = execFileSync(HUSH, ["infer", "--server", serverUrl, "--input", npy, "--json", ...extra], {
    encoding: "utf8",
  });
  return JSON.parse(out.trim().split("\n").pop());
}

export const maxDiff = (a, b) => Math.max(...a.map((x, i) => Math.abs(x - b[i])));

/** Headless Chromium with the flags this machine needs (shared/ENVIRONMENT.md). */
export function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--no-sandbox",
      // WebGPU on SwiftShader, for the { backend: "gpu" } sessions.
      "--enable-unsafe-webgpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      "--disable-quic",
      "--disable-dev-shm-usage",
    ],
  });
}

/** A new page that reports its errors on stdout. */
export async function newPage(browser) {
  const page = await browser.newPage();
  page.on("pageerror", (e) => console.log(`  [page error] ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().includes("favicon")) console.log(`  [console] ${m.text()}`);
  });
  return page;
}

/** Serves the files under `dir` (pages, the package) on a free port. */
export async function staticServer(dir) {
  const types = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm" };
  const http = createServer((req, res) => {
    const path = join(dir, decodeURIComponent(new URL(req.url, "http://x").pathname));
    if (!path.startsWith(dir) || !existsSync(path)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": types[extname(path)] ?? "application/octet-stream" });
    res.end(readFileSync(path));
  });
  await new Promise((ok) => http.listen(0, "127.0.0.1", ok));
  return { url: `http://127.0.0.1:${http.address().port}`, close: () => http.close() };
}
