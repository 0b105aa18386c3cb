//! `signalling`: Veil's signalling service.
//!
//! Today it mints access tokens:
//!
//! ```text
//! signalling token --room standup --identity alice --grants join,publish,subscribe,publish-data --ttl 3600
//! ```
//!
//! with the API key and secret from `--api-key`/`--api-secret` or
//! `VEIL_API_KEY`/`VEIL_API_SECRET`.

use clap::{Parser, Subcommand};
use signalling::auth::{Authenticator, Grants, TokenRequest};

#[derive(Debug, Parser)]
#[command(version, about = "Veil's signalling service")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a signed access token.
    Token {
        /// Room the token admits to (omit only with --grants admin).
        #[arg(long)]
        room: Option<String>,
        /// Participant identity.
        #[arg(long)]
        identity: String,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// Comma-separated: join, publish, subscribe, publish-data, admin.
        #[arg(long, default_value = "join,publish,subscribe,publish-data")]
        grants: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
        /// API key (the token's `kid`).
        #[arg(long, env = "VEIL_API_KEY")]
        api_key: String,
        /// API secret (at least 32 bytes).
        #[arg(long, env = "VEIL_API_SECRET", hide_env_values = true)]
        api_secret: String,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Token {
            room,
            identity,
            name,
            grants,
            ttl,
            api_key,
            api_secret,
        } => {
            let grants = Grants::parse(&grants).map_err(anyhow::Error::msg)?;
            if room.is_none() && !grants.admin {
                anyhow::bail!(
                    "--room is required unless the token is an admin token (--grants admin)"
                );
            }
            let auth = Authenticator::new([(api_key.as_str(), api_secret.as_str())])?;
            let request = TokenRequest {
                identity,
                name,
                room,
                grants,
            };
            println!("{}", auth.mint(&api_key, request, ttl)?);
        }
    }
    Ok(())
}
