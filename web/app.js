// The Hush browser app: draw a digit (or load a tensor), evaluate it
// privately with the server, show the answer. Uses the npm package's API.
import { HushSession, initHush } from "/pkg/hush.js";

const $ = (id) => document.getElementById(id);
const wsUrl = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}`;

let model = null; // /model
let session = null; // HushSession, kept across evaluations
let input = null; // {data: Float32Array, dims}: the digits pad's
let inputs = []; // one {data, dims, file} or null per model input: loaded files

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = false;
}

function clearError() {
  $("error").hidden = true;
}

function describe(e) {
  const code = e && e.code ? ` (${e.code})` : "";
  if (e && e.code === "CLOSED") {
    return `The Hush server at ${wsUrl} is not reachable or closed the connection: ${e.message}${code}`;
  }
  if (e && e.code === "DEALER") {
    return `The server's dealer is not available, so no private evaluation can run: ${e.message}${code}`;
  }
  return `${(e && e.message) || e}${code}`;
}

// ---- model -------------------------------------------------------------

async function loadModel() {
  try {
    const r = await fetch("/model", { cache: "no-store" });
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    model = await r.json();
  } catch (e) {
    $("model-name").textContent = "Model unavailable";
    showError(`Cannot reach the Hush server: ${e.message}. Is \`hush serve\` running?`);
    return;
  }
  $("model-name").textContent = `Model: ${model.name}`;
  $("commitment").textContent = model.commitment;
  const list = (ts) => ts.map((t) => `${t.name} ${JSON.stringify(t.shape)}`).join(", ");
  $("model-shape").textContent =
    `Input${model.inputs.length > 1 ? "s" : ""} ${list(model.inputs)} → output${model.outputs.length > 1 ? "s" : ""} ${list(model.outputs)}; ${model.parameters} weights, ${model.nodes} operators.`;
  inputs = model.inputs.map(() => null);
  $("insecure").hidden = !model.insecure_dealer;
  if (isDigits()) {
    $("digits").hidden = false;
    setupPad();
  } else {
    $("generic").hidden = false;
    $("input-file").addEventListener("change", onInputFile);
  }
  try {
    // Load the WebAssembly now, while the server is surely up.
    await initHush();
  } catch (e) {
    showError(`Cannot load the WebAssembly module: ${e.message}`);
    return;
  }
  $("evaluate").disabled = false;
}

function isDigits() {
  return JSON.stringify(model.inputs[0].shape) === "[1,1,8,8]";
}

// ---- drawing pad -----------------------------------------------------------

const pad = () => $("pad");

function setupPad() {
  const c = pad();
  const ctx = c.getContext("2d");
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, c.width, c.height);
  let drawing = false;
  const at = (e) => {
    const r = c.getBoundingClientRect();
    return [((e.clientX - r.left) * c.width) / r.width, ((e.clientY - r.top) * c.height) / r.height];
  };
  c.addEventListener("pointerdown", (e) => {
    drawing = true;
    c.setPointerCapture(e.pointerId);
    const [x, y] = at(e);
    ctx.beginPath();
    ctx.moveTo(x, y);
  });
  c.addEventListener("pointermove", (e) => {
    if (!drawing) return;
    const [x, y] = at(e);
    ctx.strokeStyle = "#fff";
    ctx.lineWidth = 26;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.lineTo(x, y);
    ctx.stroke();
    updatePreview();
  });
  const end = () => {
    drawing = false;
    updatePreview();
  };
  c.addEventListener("pointerup", end);
  c.addEventListener("pointerleave", end);
  $("clear").addEventListener("click", () => {
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, c.width, c.height);
    updatePreview();
  });
  $("upload").addEventListener("change", async (e) => {
    const file = e.target.files[0];
    if (!file) return;
    const img = await createImageBitmap(file);
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, c.width, c.height);
    ctx.drawImage(img, 0, 0, c.width, c.height);
    // Dark digits on a light background are inverted to the model's convention.
    const px = ctx.getImageData(0, 0, c.width, c.height).data;
    let mean = 0;
    for (let i = 0; i < px.length; i += 4) mean += px[i];
    if (mean / (px.length / 4) > 127) {
      ctx.globalCompositeOperation = "difference";
      ctx.fillStyle = "#fff";
      ctx.fillRect(0, 0, c.width, c.height);
      ctx.globalCompositeOperation = "source-over";
    }
    updatePreview();
  });
  updatePreview();
}

// The 256×256 pad averaged over 32×32 blocks: ink intensity in [0, 1], as
// scikit-learn's digits (0..16) divided by 16.
function padPixels() {
  const c = pad();
  const px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  const out = new Float32Array(64);
  const b = c.width / 8;
  for (let y = 0; y < c.height; y++) {
    for (let x = 0; x < c.width; x++) {
      out[Math.floor(y / b) * 8 + Math.floor(x / b)] += px[(y * c.width + x) * 4] / 255;
    }
  }
  for (let i = 0; i < 64; i++) out[i] = Math.round((out[i] / (b * b)) * 16) / 16;
  return out;
}

function updatePreview() {
  const v = padPixels();
  const p = $("preview").getContext("2d");
  const img = p.createImageData(8, 8);
  for (let i = 0; i < 64; i++) {
    const g = Math.round(v[i] * 255);
    img.data.set([g, g, g, 255], i * 4);
  }
  const tmp = document.createElement("canvas");
  tmp.width = 8;
  tmp.height = 8;
  tmp.getContext("2d").putImageData(img, 0, 0);
  p.imageSmoothingEnabled = false;
  p.clearRect(0, 0, 64, 64);
  p.drawImage(tmp, 0, 0, 64, 64);
  input = { data: v, dims: [1, 1, 8, 8] };
}

// ---- generic input ----------------------------------------------------------

// The chosen files, one per model input: a file whose name holds an
// input's name (the longest such) goes to that input, the others to the
// inputs left, in order.
async function onInputFile(e) {
  clearError();
  const files = Array.from(e.target.files);
  if (!files.length) return;
  const names = model.inputs.map((t) => t.name);
  const slot = new Array(names.length).fill(null);
  const rest = [];
  for (const f of files) {
    const stem = f.name.replace(/\.(npy|json)$/, "");
    const hits = names
      .map((n, i) => [n, i])
      .filter(([n, i]) => stem.includes(n) && !slot[i])
      .sort((a, b) => b[0].length - a[0].length);
    if (hits.length && names.length > 1) slot[hits[0][1]] = f;
    else rest.push(f);
  }
  for (const f of rest) {
    const i = slot.indexOf(null);
    if (i < 0) {
      showError(`${files.length} files for a model with ${names.length} input${names.length > 1 ? "s" : ""} (${names.join(", ")}).`);
      return;
    }
    slot[i] = f;
  }
  const loaded = [];
  for (const [i, file] of slot.entries()) {
    if (!file) {
      loaded.push(inputs[i]); // keep an input loaded before
      continue;
    }
    try {
      const bytes = new Uint8Array(await file.arrayBuffer());
      const t = file.name.endsWith(".npy") ? parseNpy(bytes) : parseJson(new TextDecoder().decode(bytes), i);
      loaded.push({ ...t, file: file.name });
    } catch (err) {
      showError(`Cannot read ${file.name}: ${err.message}`);
      return;
    }
  }
  inputs = loaded;
  $("status").textContent =
    "Loaded " +
    inputs
      .map((t, i) => (t ? `${names[i]} ← ${t.file} (dims ${JSON.stringify(t.dims)})` : `${names[i]}: not yet`))
      .join("; ") +
    ".";
}

function parseJson(text, i) {
  const v = JSON.parse(text);
  const dims = [];
  for (let a = v; Array.isArray(a); a = a[0]) dims.push(a.length);
  const flat = Array.isArray(v) ? v.flat(Infinity) : [v];
  return { data: Float32Array.from(flat), dims: dims.length ? dims : model.inputs[i].shape };
}

function parseNpy(b) {
  if (b[0] !== 0x93 || String.fromCharCode(...b.slice(1, 6)) !== "NUMPY") throw new Error("not a .npy file");
  const major = b[6];
  const hlen = major === 1 ? b[8] | (b[9] << 8) : b[8] | (b[9] << 8) | (b[10] << 16) | (b[11] << 24);
  const start = major === 1 ? 10 : 12;
  const header = new TextDecoder().decode(b.slice(start, start + hlen));
  const descr = /'descr':\s*'([^']+)'/.exec(header)[1];
  if (/'fortran_order':\s*True/.test(header)) throw new Error("Fortran order is not supported");
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)[1].split(",").map((s) => s.trim()).filter(Boolean).map(Number);
  const body = b.slice(start + hlen);
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const n = shape.reduce((a, d) => a * d, 1);
  const data = new Float32Array(n);
  if (descr === "<f4") for (let i = 0; i < n; i++) data[i] = view.getFloat32(i * 4, true);
  else if (descr === "<f8") for (let i = 0; i < n; i++) data[i] = view.getFloat64(i * 8, true);
  else if (descr === "<i4") for (let i = 0; i < n; i++) data[i] = view.getInt32(i * 4, true);
  else if (descr === "<i8") for (let i = 0; i < n; i++) data[i] = Number(view.getBigInt64(i * 8, true));
  else throw new Error(`dtype ${descr} is not supported (float32, float64, int32 or int64)`);
  return { data, dims: shape };
}

// ---- evaluation -----------------------------------------------------------

function softmax(v) {
  const m = Math.max(...v);
  const e = v.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

function fmtBytes(b) {
  return b >= 1e6 ? `${(b / 1e6).toFixed(2)} MB` : b >= 1e3 ? `${(b / 1e3).toFixed(1)} KB` : `${b} B`;
}

let reused = false; // whether the last ensureSession() returned an old session

async function ensureSession() {
  reused = session !== null;
  if (!session) {
    $("status").textContent = "Connecting: handshake, seed from the dealer, weight setup…";
    session = await HushSession.connect(wsUrl, {
      expectModel: model.commitment,
      backend: $("backend").value,
      onProgress: ({ done, total }) => {
        $("bar").style.width = `${((100 * done) / total).toFixed(1)}%`;
        $("status").textContent = `Evaluating privately: layer ${done} of ${total}`;
      },
    });
    $("insecure").hidden = !session.model.insecureDealer;
  }
  return session;
}

async function evaluate() {
  clearError();
  const missing = isDigits() ? [] : model.inputs.filter((_, i) => !inputs[i]).map((t) => t.name);
  if (isDigits() ? !input : missing.length) {
    showError(
      missing.length > 1 || (missing.length && model.inputs.length > 1)
        ? `Load an input for ${missing.join(", ")} first.`
        : "Load an input first.",
    );
    return;
  }
  const button = $("evaluate");
  button.disabled = true;
  $("bar").style.width = "0%";
  const t0 = performance.now();
  try {
    const copy = (t) => ({ data: Float32Array.from(t.data), dims: t.dims });
    // Feeds by name, so that every output comes back by name.
    const used = isDigits() ? [copy(input)] : inputs.map(copy);
    const feeds = Object.fromEntries(model.inputs.map((t, i) => [t.name, used[i]]));
    let outs;
    try {
      outs = await (await ensureSession()).run(feeds);
    } catch (e) {
      // A session left idle is closed by the server: reconnect once.
      if (!["TIMEOUT", "CLOSED"].includes(e.code) || !reused) throw e;
      await session.close().catch(() => {});
      session = null;
      outs = await (await ensureSession()).run(feeds);
    }
    const total = performance.now() - t0;
    show(outs, used, total);
  } catch (e) {
    if (session) {
      try {
        await session.close();
      } catch (_) {
        // The session is gone either way.
      }
      session = null;
    }
    $("status").textContent = "";
    showError(describe(e));
  } finally {
    button.disabled = false;
  }
}

// Text for HTML: output names come from the model, not from this page.
function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

// The outputs in the model's order (the first drives the chart).
function show(outs, used, totalMs) {
  const listed = model.outputs.map((t) => [t.name, outs[t.name]]).filter(([, o]) => o);
  const out = listed[0][1];
  const values = Array.from(out.data);
  $("result").hidden = false;
  const s = session.stats;
  $("stats").textContent =
    `Inference ${s.timeMs.toFixed(1)} ms (${totalMs.toFixed(1)} ms from the click), ${s.rounds} rounds, ` +
    `sent ${fmtBytes(s.bytesSent)}, received ${fmtBytes(s.bytesReceived)}, computed on ${session.model.backend}. ` +
    `Commitment ${session.model.commitment}.`;
  $("status").textContent = "Done.";
  $("bar").style.width = "100%";
  let prediction = null;
  if (values.length > 1 && out.dims.length === 2 && out.dims[0] === 1) {
    const p = softmax(values);
    prediction = p.indexOf(Math.max(...p));
    $("prediction").textContent = isDigits() ? `It is a ${prediction}` : `Class ${prediction}`;
    const chart = $("chart");
    chart.replaceChildren(
      ...p.map((q, i) => {
        const row = document.createElement("div");
        row.className = "barrow";
        row.innerHTML = `<span>${i}</span><div><div class="fill" style="width:${(q * 100).toFixed(1)}%"></div></div><span>${(q * 100).toFixed(1)}%</span>`;
        return row;
      }),
    );
  } else {
    $("prediction").textContent = "";
    $("chart").replaceChildren();
  }
  const table = $("table");
  table.hidden = isDigits();
  // Each output's first 1000 values, under its name where there are several.
  const shown = 1000;
  table.innerHTML = listed
    .map(([name, o]) => {
      const head =
        listed.length > 1
          ? `<tr><th colspan="2">${escapeHtml(name)} [${o.dims.join("×")}]` +
            `${o.data.length > shown ? ` (first ${shown} of ${o.data.length})` : ""}</th></tr>`
          : "";
      return (
        head +
        `<tr><th>index</th><th>value</th></tr>` +
        Array.from(o.data.slice(0, shown))
          .map((v, i) => `<tr><td>${i}</td><td>${v.toFixed(5)}</td></tr>`)
          .join("")
      );
    })
    .join("");
  // For tests and scripts: what was evaluated (the first input, and every
  // input by name) and what came back (the first output, and every output
  // by name).
  window.hushLast = {
    input: Array.from(used[0].data),
    dims: used[0].dims,
    inputs: Object.fromEntries(model.inputs.map((t, i) => [t.name, Array.from(used[i].data)])),
    output: values,
    outputs: Object.fromEntries(listed.map(([name, o]) => [name, Array.from(o.data)])),
    prediction,
  };
}

$("evaluate").addEventListener("click", evaluate);
// A new compute choice takes effect with a new session.
$("backend").addEventListener("change", async () => {
  const old = session;
  session = null;
  if (old) await old.close().catch(() => {});
});
loadModel();
