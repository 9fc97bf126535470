/* tslint:disable */
/* eslint-disable */
export const memory: WebAssembly.Memory;
export const __wbg_session_free: (a: number, b: number) => void;
export const session_close: (a: number) => any;
export const session_connect: (a: number, b: number, c: number, d: number, e: number, f: number, g: number, h: number) => any;
export const session_model: (a: number) => any;
export const session_run: (a: number, b: number, c: number, d: number, e: number, f: number, g: number, h: number) => any;
export const session_stats: (a: number) => any;
export const wasm_bindgen__convert__closures_____invoke__h0bf075fa01c67f12: (a: number, b: number, c: any) => [number, number];
export const wasm_bindgen__convert__closures_____invoke__h34067ae4a0ff3f55: (a: number, b: number, c: any, d: any) => void;
export const wasm_bindgen__convert__closures_____invoke__h3d4295c5aa41d05e: (a: number, b: number, c: any) => [number, number];
export const wasm_bindgen__convert__closures_____invoke__h3d4295c5aa41d05e_12: (a: number, b: number, c: any) => [number, number];
export const wasm_bindgen__convert__closures_____invoke__h3d4295c5aa41d05e_13: (a: number, b: number, c: any) => [number, number];
export const wasm_bindgen__convert__closures_____invoke__h03c503426876f50b: (a: number, b: number, c: any) => void;
export const wasm_bindgen__convert__closures_____invoke__h17a3ea26b7bc2332: (a: number, b: number, c: any) => void;
export const wasm_bindgen__convert__closures_____invoke__h17a3ea26b7bc2332_11: (a: number, b: number, c: any) => void;
export const wasm_bindgen__convert__closures_____invoke__h17a3ea26b7bc2332_8: (a: number, b: number, c: any) => void;
export const __wbindgen_malloc: (a: number, b: number) => number;
export const __wbindgen_realloc: (a: number, b: number, c: number, d: number) => number;
export const __wbindgen_free: (a: number, b: number, c: number) => void;
export const __wbindgen_exn_store: (a: number) => void;
export const __externref_table_alloc: () => number;
export const __wbindgen_externrefs: WebAssembly.Table;
export const __wbindgen_destroy_closure: (a: number, b: number) => void;
export const __externref_table_dealloc: (a: number) => void;
export const __wbindgen_start: () => void;
