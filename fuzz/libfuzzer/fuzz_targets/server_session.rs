#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| hush_fuzz::targets::server_session(data));
