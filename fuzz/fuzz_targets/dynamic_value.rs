//! `DynamicValue` decoding, msgpack and JSON: any bytes may fail to decode, none may panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| adf::fuzzing::dynamic_value(data));
