//! The server stubs and messages generated from `protos/` by `build.rs`, in
//! the module tree their package names ask for.

// Generated code: the messages the double never builds are kept, as generated.
#![allow(
    dead_code,
    clippy::all,
    clippy::pedantic,
    missing_debug_implementations,
    missing_docs,
    unreachable_pub
)]

pub(crate) mod event_store {
    pub(crate) mod client {
        tonic::include_proto!("event_store.client");

        pub(crate) mod streams {
            tonic::include_proto!("event_store.client.streams");
        }

        pub(crate) mod server_features {
            tonic::include_proto!("event_store.client.server_features");
        }
    }
}

pub(crate) mod google {
    pub(crate) mod rpc {
        tonic::include_proto!("google.rpc");
    }
}
