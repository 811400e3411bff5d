//! Misuse: cloning an attempt in flight, to give the copy an answer of one's own choosing
//! (`SentUpdate` is not `Clone`: one attempt has one answer).
use recording_status::exchange::SentUpdate;

fn copy<O>(sent: &SentUpdate<O>) -> SentUpdate<O> {
    sent.clone()
}

fn main() {
    let _ = copy::<()>;
}
