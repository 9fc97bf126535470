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

/**
 * One tensor as `{data: Float32Array, dims?}`: a typed array, or an object
 * with `data` (a typed array or an array) and optional `dims` (an
 * onnxruntime-web `Tensor` is one); `null` for anything else.
 */
function tensorOf(t) {
  if (ArrayBuffer.isView(t) && !(t instanceof DataView)) {
    return { data: float32(t) };
  }
  if (t && (ArrayBuffer.isView(t.data) || Array.isArray(t.data))) {
    return { data: float32(t.data), dims: t.dims ? Array.from(t.dims, Number) : undefined };
  }
  return null;
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
   * Evaluates the model privately. `input` is one tensor for a model with
   * one input — a typed array of the model's input shape, or `{data, dims}`
   * — and then resolves to the first output, `{data: Float32Array, dims}`;
   * or, as onnxruntime-web takes them, feeds `{[inputName]: tensor}` with
   * one tensor per model input, and then resolves to `{[outputName]:
   * {data, dims}}` with every output. Integers (token ids; int64 as a
   * BigInt64Array, as onnxruntime-web gives them) are taken as numbers.
   */
  async run(input, options = {}) {
    const model = this.#inner.model;
    // Feeds name an input (other than `data` and `dims`, the one-tensor
    // form's keys, which an input called `data` shares harmlessly).
    const feeds =
      input &&
      typeof input === "object" &&
      !ArrayBuffer.isView(input) &&
      Object.keys(input).some((k) => k !== "data" && k !== "dims" && model.inputNames.includes(k));
    const single = feeds ? null : tensorOf(input);
    let tensors;
    if (single) {
      if (model.inputs.length !== 1) {
        throw new HushError(
          `the model takes ${model.inputs.length} inputs (${model.inputNames.join(", ")}): ` +
            "pass them as {name: tensor}",
          "BAD_REQUEST",
        );
      }
      tensors = [single];
    } else if (input && typeof input === "object" && !Array.isArray(input)) {
      const unknown = Object.keys(input).filter((k) => !model.inputNames.includes(k));
      if (unknown.length) {
        throw new HushError(
          `the model has no input ${unknown.join(", ")} (its inputs: ${model.inputNames.join(", ")})`,
          "BAD_REQUEST",
        );
      }
      tensors = model.inputNames.map((name) => {
        const t = tensorOf(input[name]);
        if (!t) {
          throw new HushError(`no tensor for the model's input ${name}`, "BAD_REQUEST");
        }
        return t;
      });
    } else {
      throw new HushError(
        "run() takes a typed array, {data, dims}, or {[inputName]: tensor}",
        "BAD_REQUEST",
      );
    }
    // Flat, as the WebAssembly side takes them: values, dims and ranks one
    // input after another (a tensor without dims has its input's).
    const dims = tensors.map((t, i) => t.dims ?? model.inputs[i].dims);
    const total = tensors.reduce((n, t) => n + t.data.length, 0);
    const data = new Float32Array(total);
    let at = 0;
    for (const t of tensors) {
      data.set(t.data, at);
      at += t.data.length;
    }
    const onProgress = options.onProgress ?? this.#onProgress;
    const progress = onProgress
      ? (done, total, op) => onProgress({ done, total, op })
      : undefined;
    const t0 = performance.now();
    try {
      const outs = await this.#inner.run(
        data,
        Uint32Array.from(dims.flat()),
        Uint32Array.from(dims, (d) => d.length),
        progress,
      );
      this.#timeMs = performance.now() - t0;
      const tensor = (o) => ({ data: o.data, dims: Array.from(o.dims) });
      if (single) return tensor(outs[0]);
      return Object.fromEntries(outs.map((o) => [o.name, tensor(o)]));
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
