//! Every RPC of the provider server with arbitrary config, plan and state values: a handler
//! may answer with diagnostics, never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(finding) = adf::fuzzing::provider_rpc(data) {
        panic!("{finding}");
    }
});
