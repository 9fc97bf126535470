/* tslint:disable */
/* eslint-disable */

/**
 * A connected session with a Hush model server: the model is known, the
 * weights are set up, and [`Session::run`] evaluates it privately.
 */
export class Session {
    private constructor();
    free(): void;
    [Symbol.dispose](): void;
    /**
     * Ends the session politely.
     */
    close(): Promise<any>;
    /**
     * Connects to the server at `url` (`ws://host:port` or the full session
     * address), fetches this client's seed from the dealer the server names,
     * and sets up the weights. Refuses a model whose commitment differs from
     * `expect_model` (`sha256:<hex>`). `backend` (`cpu`, the default;
     * `gpu`: WebGPU, an error without an adapter; `auto`: WebGPU for the
     * products where it measured faster than the CPU here) says where the
     * client's products run.
     */
    static connect(url: string, expect_model?: string | null, token?: string | null, backend?: string | null): Promise<Session>;
    /**
     * Evaluates the model on its inputs, in the model's order: `data`
     * holds their values one after another (each row-major), `dims` their
     * dimensions one after another, and `ranks` how many dimensions each
     * has. Resolves to an array of `{name, data: Float32Array, dims}`, one
     * per model output; calls `on_progress(done, total, op)` after every
     * node. One inference at a time per session.
     */
    run(data: Float32Array | number[], dims: Uint32Array | number[], ranks: Uint32Array | number[], on_progress?: Function | null): Promise<any>;
    /**
     * The model: `name`, `inputs`/`outputs` (`{name, dims}`), `inputNames`,
     * `outputNames`, `commitment`, `parameters`, `nodes`, `insecureDealer`.
     */
    readonly model: object;
    /**
     * Traffic of the last inference and of the weight setup:
     * `{bytesSent, bytesReceived, rounds, setup: {...}}`.
     */
    readonly stats: object;
}

export type InitInput = RequestInfo | URL | Response | BufferSource | WebAssembly.Module;

export interface InitOutput {
    readonly memory: WebAssembly.Memory;
    readonly __wbg_session_free: (a: number, b: number) => void;
    readonly session_close: (a: number) => any;
    readonly session_connect: (a: number, b: number, c: number, d: number, e: number, f: number, g: number, h: number) => any;
    readonly session_model: (a: number) => any;
    readonly session_run: (a: number, b: number, c: number, d: number, e: number, f: number, g: number, h: number) => any;
    readonly session_stats: (a: number) => any;
    readonly wasm_bindgen__convert__closures_____invoke__h0bf075fa01c67f12: (a: number, b: number, c: any) => [number, number];
    readonly wasm_bindgen__convert__closures_____invoke__h34067ae4a0ff3f55: (a: number, b: number, c: any, d: any) => void;
    readonly wasm_bindgen__convert__closures_____invoke__h3d4295c5aa41d05e: (a: number, b: number, c: any) => [number, number];
    readonly wasm_bindgen__convert__closures_____invoke__h3d4295c5aa41d05e_12: (a: number, b: number, c: any) => [number, number];
    readonly wasm_bindgen__convert__closures_____invoke__h3d4295c5aa41d05e_13: (a: number, b: number, c: any) => [number, number];
    readonly wasm_bindgen__convert__closures_____invoke__h03c503426876f50b: (a: number, b: number, c: any) => void;
    readonly wasm_bindgen__convert__closures_____invoke__h17a3ea26b7bc2332: (a: number, b: number, c: any) => void;
    readonly wasm_bindgen__convert__closures_____invoke__h17a3ea26b7bc2332_11: (a: number, b: number, c: any) => void;
    readonly wasm_bindgen__convert__closures_____invoke__h17a3ea26b7bc2332_8: (a: number, b: number, c: any) => void;
    readonly __wbindgen_malloc: (a: number, b: number) => number;
    readonly __wbindgen_realloc: (a: number, b: number, c: number, d: number) => number;
    readonly __wbindgen_free: (a: number, b: number, c: number) => void;
    readonly __wbindgen_exn_store: (a: number) => void;
    readonly __externref_table_alloc: () => number;
    readonly __wbindgen_externrefs: WebAssembly.Table;
    readonly __wbindgen_destroy_closure: (a: number, b: number) => void;
    readonly __externref_table_dealloc: (a: number) => void;
    readonly __wbindgen_start: () => void;
}

export type SyncInitInput = BufferSource | WebAssembly.Module;

/**
 * Instantiates the given `module`, which can either be bytes or
 * a precompiled `WebAssembly.Module`.
 *
 * @param {{ module: SyncInitInput }} module - Passing `SyncInitInput` directly is deprecated.
 *
 * @returns {InitOutput}
 */
export function initSync(module: { module: SyncInitInput } | SyncInitInput): InitOutput;

/**
 * If `module_or_path` is {RequestInfo} or {URL}, makes a request and
 * for everything else, calls `WebAssembly.instantiate` directly.
 *
 * @param {{ module_or_path: InitInput | Promise<InitInput> }} module_or_path - Passing `InitInput` directly is deprecated.
 *
 * @returns {Promise<InitOutput>}
 */
export default function __wbg_init (module_or_path?: { module_or_path: InitInput | Promise<InitInput> } | InitInput | Promise<InitInput>): Promise<InitOutput>;
