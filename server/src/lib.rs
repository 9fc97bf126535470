//! The library behind the `hush` binary: model loading, `.npy` files, and the
//! networked roles — model server, dealer service and native client — over
//! WebSockets ([`net`]).

pub mod compute;
pub mod inputs;
pub mod model;
pub mod net;
pub mod npy;
pub mod resnet;
