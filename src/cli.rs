//! Command-line definitions.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Meridian: an edge CDN node and multi-region load balancer.
#[derive(Debug, Parser)]
#[command(name = "meridian", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the node: proxy, cache, admin endpoint (and the demo origin if configured).
    Serve {
        /// Configuration file.
        #[arg(short, long, default_value = meridian::config::DEFAULT_PATH)]
        config: PathBuf,
        /// Take the listening sockets over from a running node (graceful binary upgrade):
        /// start this, then send the old process SIGQUIT.
        #[arg(long)]
        upgrade: bool,
        /// The Unix socket the listening sockets are handed over on.
        #[arg(long, default_value = "/tmp/meridian_upgrade.sock")]
        upgrade_sock: PathBuf,
    },
    /// Validate a configuration and print every error; exit status 1 if there is any.
    Check {
        /// Configuration file.
        #[arg(short, long, default_value = meridian::config::DEFAULT_PATH)]
        config: PathBuf,
    },
}
