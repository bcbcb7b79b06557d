//! Rate limits shared by several instances through a real Redis: one quota across
//! instances, and what happens while Redis is down.

mod outage;
mod quota;
