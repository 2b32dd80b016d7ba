//! Entry point: parse the command line, run, and map outcomes to exit codes
//! as the manual's EXIT STATUS gives them (`manual::EXIT_STATUS`): 0 done,
//! 1 a failure while running, 2 bad usage or a start the run cannot have
//! (a `StartError`: an explicit --precision the kernel or privileges cannot
//! give, a --netns that cannot be entered). Output that cannot be written never
//! panics: a closed stdout pipe ends the run quietly with 0, any other
//! write error with one line on stderr (if stderr works) and 1.

use std::io::{BufWriter, Write};
use std::os::fd::AsFd;
use std::process::ExitCode;

use tcpipstat::cli::{self, CliOutcome};
use tcpipstat::report::is_broken_pipe;

fn main() -> ExitCode {
    let config = match cli::parse(std::env::args_os()) {
        CliOutcome::Run(config) => config,
        CliOutcome::Display(text) => {
            let mut stdout = std::io::stdout().lock();
            let written = stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush());
            return match written {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => output_failed(&err.into()),
            };
        }
        CliOutcome::Usage(message) => {
            say(&format!("tcpipstat: error: {}", cli::error_line(&message)));
            return ExitCode::from(2);
        }
    };
    // Reports go to a duplicate of fd 1 rather than through std's stdout,
    // whose line buffering searches every block written for a newline (2%
    // of a 100k-socket --once snapshot).
    let stdout = std::io::stdout();
    let sink: Box<dyn Write> = match stdout.as_fd().try_clone_to_owned() {
        Ok(fd) => Box::new(std::fs::File::from(fd)),
        Err(_) => Box::new(stdout.lock()),
    };
    let mut out = BufWriter::with_capacity(256 * 1024, sink);
    let result = tcpipstat::run::run(&config, &mut out).and_then(|()| Ok(out.flush()?));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if err.downcast_ref::<std::io::Error>().is_some() => output_failed(&err),
        Err(err) if err.downcast_ref::<tcpipstat::run::StartError>().is_some() => {
            say(&format!("tcpipstat: error: {err:#}"));
            ExitCode::from(2)
        }
        Err(err) => {
            say(&format!("tcpipstat: error: {err:#}"));
            ExitCode::from(1)
        }
    }
}

/// Stdout could not be written: a reader that went away is no failure.
fn output_failed(err: &anyhow::Error) -> ExitCode {
    match err.downcast_ref::<std::io::Error>() {
        Some(io) if is_broken_pipe(io) => ExitCode::SUCCESS,
        _ => {
            say(&format!("tcpipstat: error: writing the output: {err:#}"));
            ExitCode::from(1)
        }
    }
}

/// One line on stderr, if stderr can take it.
fn say(line: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{line}");
}
