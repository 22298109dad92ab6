//! The gRPC services the plugin serves. The machinery's own are the same for every plugin
//! kind: the broker (dial-back connections to the server's services), the controller and
//! stdio (shutdown, the server's view of our output). Each kind adds its face here: `backend`
//! for secrets engines and auth methods, with the conversions between the wire and the API.

pub(crate) mod backend;
pub(crate) mod broker;
pub(crate) mod controller;
