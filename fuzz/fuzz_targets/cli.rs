//! The command line on arbitrary arguments: clap's parser, then every
//! check of `train`'s flags that needs no file (the model, the flags it
//! uses, counts, the learning rate, the bounded model they describe).
#![no_main]

use clap::Parser;
use gradtape_examples::cli::{train, Cli, Command};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Arguments separated by NUL bytes, as a process receives them.
    let text = String::from_utf8_lossy(data);
    let args = std::iter::once("gradtape").chain(text.split('\0'));
    let Ok(cli) = Cli::try_parse_from(args) else { return };
    if let Command::Train(a) = cli.command {
        let _ = train::check_flags(&a);
    }
});
