//! Entry point: parse the command line, run, and map outcomes to exit codes
//! (0 done, 1 runtime failure, 2 bad usage, or an explicit --precision the
//! kernel or privileges cannot give). A closed stdout pipe is not an
//! error.

use std::io::{BufWriter, Write};
use std::process::ExitCode;

use tcpipstat::cli::{self, CliOutcome};
use tcpipstat::report::is_broken_pipe;

fn main() -> ExitCode {
    let config = match cli::parse(std::env::args()) {
        CliOutcome::Run(config) => config,
        CliOutcome::Display(text) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        CliOutcome::Usage(message) => {
            eprintln!("tcpipstat: error: {message}");
            return ExitCode::from(2);
        }
    };
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(256 * 1024, stdout.lock());
    let result = tcpipstat::run::run(&config, &mut out).and_then(|()| Ok(out.flush()?));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err)
            if err
                .downcast_ref::<std::io::Error>()
                .is_some_and(is_broken_pipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(err) if err.downcast_ref::<tcpipstat::run::StartError>().is_some() => {
            eprintln!("tcpipstat: error: {err:#}");
            ExitCode::from(2)
        }
        Err(err) => {
            eprintln!("tcpipstat: error: {err:#}");
            ExitCode::from(1)
        }
    }
}
