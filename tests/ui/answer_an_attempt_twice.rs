//! Misuse: giving one attempt two answers (a `running` one, then a `completed` one that Graph
//! never sent for it): `answer` consumes the attempt in flight.
use std::time::Instant;

use recording_status::exchange::SentUpdate;
use recording_status::transport::HttpResponse;

fn twice<O>(sent: SentUpdate<O>, running: &HttpResponse, completed: &HttpResponse) {
    let _ = sent.answer(running, Instant::now());
    let _ = sent.answer(completed, Instant::now());
}

fn main() {
    let _ = twice::<()>;
}
