// hush-mpc: private inference with a Hush model server, in the spirit of
// onnxruntime-web. The heavy lifting is WebAssembly (hush_wasm.js).
import init, { Session } from "./hush_wasm.js";

let ready = null;

/** Loads the WebAssembly module once (from next to this file, or `wasmUrl`). */
export function initHush(wasmUrl) {
  if (!ready) {
    ready = init(wasmUrl ? { module_or_path: wasmUrl } : undefined);
  }
  return ready;
}

/** An error with a stable `code` (see the package README). */
export class HushError extends Error {
  constructor(message, code) {
    super(message);
    this.name = "HushError";
    this.code = code;
  }
}

function wrap(e) {
  if (e instanceof HushError) return e;
  const code = (e && e.code) || "INTERNAL";
  const message = (e && e.message) || String(e);
  return new HushError(message, code);
}

/**
 * A tensor's numbers as a Float32Array: floats as they are; integers, BigInts
 * included, converted (exact up to 2^24, more than any vocabulary holds).
 */
function float32(data) {
  return data instanceof Float32Array ? data : Float32Array.from(data, Number);
}

/** A private-inference session with one server. */
export class HushSession {
  #inner;
  #onProgress;
  #timeMs = null;

  constructor(inner, onProgress) {
    this.#inner = inner;
    this.#onProgress = onProgress;
  }

  /**
   * Connects to `url` (ws:// or wss://), fetches this client's preprocessing
   * seed from the server's dealer, and sets up the model's weights.
   */
  static async connect(url, options = {}) {
    await initHush(options.wasmUrl);
    try {
      const inner = await Session.connect(
        url,
        options.expectModel ?? null,
        options.token ?? null,
        options.backend ?? null,
      );
      return new HushSession(inner, options.onProgress);
    } catch (e) {
      throw wrap(e);
    }
  }

  /** The model: name, inputs/outputs ({name, dims}), commitment, insecureDealer. */
  get model() {
    return this.#inner.model;
  }

  /**
   * Evaluates the model privately on `input` (a typed array of the model's
   * input shape, or `{data, dims}`). Integers (token ids; int64 as a
   * BigInt64Array, as onnxruntime-web gives them) are taken as numbers.
   * Resolves to `{data: Float32Array, dims}`.
   */
  async run(input, options = {}) {
    let data;
    let dims;
    if (ArrayBuffer.isView(input) && !(input instanceof DataView)) {
      data = float32(input);
      dims = [];
    } else if (input && input.data) {
      data = float32(input.data);
      dims = input.dims ? Array.from(input.dims) : [];
    } else {
      throw new HushError("run() takes a typed array or {data, dims}", "BAD_REQUEST");
    }
    const onProgress = options.onProgress ?? this.#onProgress;
    const progress = onProgress
      ? (done, total, op) => onProgress({ done, total, op })
      : undefined;
    const t0 = performance.now();
    try {
      const out = await this.#inner.run(data, Uint32Array.from(dims), progress);
      this.#timeMs = performance.now() - t0;
      return { data: out.data, dims: Array.from(out.dims) };
    } catch (e) {
      throw wrap(e);
    }
  }

  /** The last inference: timeMs, bytesSent, bytesReceived, rounds; setup: the same for the weight setup. */
  get stats() {
    return { timeMs: this.#timeMs, ...this.#inner.stats };
  }

  /** Ends the session. */
  async close() {
    try {
      await this.#inner.close();
    } catch (e) {
      throw wrap(e);
    } finally {
      this.#inner.free();
    }
  }
}
