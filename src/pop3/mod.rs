pub mod maildrop;
pub mod proto;
pub mod session;
