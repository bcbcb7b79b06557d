//! Failing and hostile conditions: store faults fail closed, hostile input never
//! panics, and invariants hold under concurrent traffic and key churn.

mod faults;
mod hostile;
mod soak;
