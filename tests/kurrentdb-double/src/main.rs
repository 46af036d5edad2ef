//! `rapport-kurrentdb-double [--port P]`: serves the KurrentDB test double on
//! 127.0.0.1 (port 2113 by default, the server's own) until SIGINT, so a
//! person or the bench can run rapport against it. Prints the connection
//! string on standard output.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use rapport_kurrentdb_double::Double;

const USAGE: &str = "usage: rapport-kurrentdb-double [--port P]";
const DEFAULT_PORT: u16 = 2113;

fn port(mut arguments: impl Iterator<Item = String>) -> Result<u16, String> {
    let mut port = DEFAULT_PORT;
    while let Some(argument) = arguments.next() {
        match argument.as_str() {
            "--port" => {
                let value = arguments.next().ok_or("--port needs a value")?;
                port = value.parse().map_err(|_| format!("'{value}' is not a port"))?;
            }
            "--help" | "-h" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument '{other}'\n{USAGE}")),
        }
    }
    Ok(port)
}

#[tokio::main]
async fn main() -> ExitCode {
    let port = match port(std::env::args().skip(1)) {
        Ok(port) => port,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let double = match Double::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await {
        Ok(double) => double,
        Err(error) => {
            eprintln!("rapport-kurrentdb-double: cannot listen on 127.0.0.1:{port}: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", double.url());
    if let Err(error) = tokio::signal::ctrl_c().await {
        eprintln!("rapport-kurrentdb-double: cannot wait for SIGINT: {error}");
    }
    double.stop().await;
    ExitCode::SUCCESS
}
