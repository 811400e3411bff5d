//! Misuse: cloning a borrowed `Retention` (a capability is minted only by `Call<Recording>`,
//! each with its own audit start).
use recording_status::Retention;

fn duplicate<'c>(retention: &Retention<'c>) -> Retention<'c> {
    <Retention<'c> as Clone>::clone(retention)
}

fn main() {
    let _ = duplicate;
}
