/** Stable error codes; see the package README. */
export type HushErrorCode =
  | "VERSION"
  | "UNAUTHORIZED"
  | "BUSY"
  | "MODEL_MISMATCH"
  | "DEALER"
  | "PROTOCOL"
  | "TIMEOUT"
  | "CLOSED"
  | "BAD_REQUEST"
  | "INTERNAL";

export class HushError extends Error {
  readonly code: HushErrorCode;
}

export interface TensorInfo {
  name: string;
  dims: number[];
}

export interface ModelInfo {
  name: string;
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  inputNames: string[];
  outputNames: string[];
  /** `sha256:<hex>` of the weights. */
  commitment: string;
  parameters: number;
  nodes: number;
  /** True when the server runs its own dealer: it could learn your inputs. */
  insecureDealer: boolean;
  /** Where this client's products run, e.g. `"cpu"` or `"gpu: ... (BrowserWebGpu, ..., u32x2 arithmetic)"`. */
  backend: string;
}

export interface Progress {
  done: number;
  total: number;
  op: string;
}

export interface ConnectOptions {
  /** Refuse a model whose commitment differs (`sha256:<hex>`). */
  expectModel?: string;
  /** Access token, for servers that require one. */
  token?: string;
  /**
   * Where the client's share products run: `"cpu"` (default); `"gpu"`
   * (WebGPU; rejects with code `INTERNAL` when the browser has no adapter);
   * `"auto"` (WebGPU for products at least as large as the size where it
   * measured faster than the CPU when connecting, the CPU otherwise).
   */
  backend?: "cpu" | "gpu" | "auto";
  /** Called after every layer of every inference. */
  onProgress?: (p: Progress) => void;
  /** Where to load `hush_wasm_bg.wasm` from (default: next to this module). */
  wasmUrl?: string | URL;
}

/**
 * A tensor's numbers in a typed array: floats, or integers (token ids; int64
 * as a BigInt64Array, as onnxruntime-web gives them), taken as numbers.
 */
export type TypedTensorData = Float32Array | Float64Array | Int32Array | BigInt64Array;

/** A tensor's numbers: a typed array, or any array-like of numbers or BigInts. */
export type TensorData = TypedTensorData | ArrayLike<number> | ArrayLike<bigint>;

export interface Tensor {
  data: Float32Array;
  dims: number[];
}

/** One input tensor: its numbers, with dims (default: the model's input's). */
export type TensorInput = TypedTensorData | { data: TensorData; dims?: readonly number[] };

/** The model's inputs by name, e.g. `{input_ids, attention_mask}`. */
export type Feeds = Record<string, TensorInput>;

export interface RunOptions {
  onProgress?: (p: Progress) => void;
}

export interface TrafficStats {
  bytesSent: number;
  bytesReceived: number;
  rounds: number;
}

export interface SessionStats extends Partial<TrafficStats> {
  /** Wall time of the last inference, in milliseconds. */
  timeMs: number | null;
  /** The once-per-session weight setup. */
  setup: TrafficStats;
}

export class HushSession {
  static connect(url: string, options?: ConnectOptions): Promise<HushSession>;
  readonly model: ModelInfo;
  readonly stats: SessionStats;
  /** One tensor, for a model with one input: resolves to the first output. */
  run(input: TensorInput, options?: RunOptions): Promise<Tensor>;
  /**
   * One tensor per model input, by name (as onnxruntime-web's feeds):
   * resolves to every output, by name.
   */
  run(feeds: Feeds, options?: RunOptions): Promise<Record<string, Tensor>>;
  close(): Promise<void>;
}

/** Loads the WebAssembly module (done by `connect` on first use). */
export function initHush(wasmUrl?: string | URL): Promise<unknown>;
