//! `muster`, the office command line. Its commands arrive with the sync
//! issue (#3); until then it says so instead of pretending.

fn main() {
    eprintln!("muster: the office command line is not built yet (see issue 3 in the tracker)");
    std::process::exit(2);
}
