//! The emulator over real HTTP on loopback, through a plain client (hyper-util) and a plain
//! webhook (axum), checked against Microsoft's documented shapes: no Graph client involved.

mod support;

mod lifecycle;
mod notifications;
mod responses;
mod signing;
mod validation;
