pub mod proto;
pub mod session;
