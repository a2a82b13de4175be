//! `tg-init`: the init (PID 1) of every netns node; see
//! `tg::platform::netns::init`. tg starts it; it is not run by hand.

fn main() {
    tg::platform::netns::init::main()
}
