//! Command-line definitions.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Meridian: an edge CDN node and multi-region load balancer.
#[derive(Debug, Parser)]
#[command(
    name = "meridian",
    version,
    about,
    long_about = "Meridian: an edge CDN node and multi-region load balancer. It caches, \
                  minifies and compresses, routes each request to the nearest healthy region \
                  of origins, and answers geo-DNS for the same names.\n\n\
                  Signals to a running node: SIGHUP reloads the configuration, SIGTERM stops \
                  gracefully, SIGQUIT hands the listening sockets to a successor started with \
                  `serve --upgrade`.",
    after_help = "Documentation: docs/ in the source tree (start with README.md)."
)]
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
    /// The cluster's shared configuration (sites, regions, dns, limits).
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Print a shell completion script, e.g. `meridian completions bash > /etc/bash_completion.d/meridian`.
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `meridian manpage > meridian.1 && man ./meridian.1`.
    Manpage,
}

#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Validate FILE and store its shared part (sites, regions, dns, limits) in the cluster's
    /// JetStream key-value bucket: every node whose [cluster] has shared_config = true applies
    /// it through its reload path. Prints the new revision.
    Publish {
        /// A whole configuration file; its [cluster] names the cluster and its NATS servers.
        file: PathBuf,
    },
}
