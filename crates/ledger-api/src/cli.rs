//! The `ledger` command line. Exit codes: 0 success (chain valid), 1 chain
//! invalid or projections differ, 2 usage or I/O error.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use ledger_core::store::DEFAULT_DATABASE_URL;

use crate::config::Ledger;
use crate::reports::iati::ReportingOrg;
use crate::tokens::{self, Role};

#[derive(Debug, Parser)]
#[command(
    name = "ledger",
    version,
    about = "The reintegration assistance ledger: hash-chained accounts of donor money paid to returnees"
)]
pub struct Cli {
    /// sqlite://PATH (embedded, the default) or postgres://USER@HOST/DATABASE
    #[arg(long, global = true, env = "LEDGER_DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,
    /// The IATI organisation identifier IATI files are published under, such as XM-DAC-47066
    #[arg(long, global = true, env = "LEDGER_IATI_ORG_REF")]
    pub iati_org_ref: Option<String>,
    /// The name of the organisation publishing IATI files
    #[arg(long, global = true, env = "LEDGER_IATI_ORG_NAME")]
    pub iati_org_name: Option<String>,
    /// Its IATI OrganisationType code (40: multilateral)
    #[arg(long, global = true, env = "LEDGER_IATI_ORG_TYPE", default_value = "40")]
    pub iati_org_type: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API
    Serve {
        #[arg(long, env = "LEDGER_BIND", default_value = "127.0.0.1:8080")]
        bind: SocketAddr,
        /// Load the demo data into an empty ledger and print one token per role
        #[arg(long)]
        demo: bool,
        /// Sign a checkpoint every SECONDS whenever the chain has grown
        #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(crate::audit::CHECKPOINT_INTERVAL_SECONDS_MIN..))]
        checkpoint_every: Option<u64>,
        /// A witness (c2sp.org/tlog-witness) each new checkpoint is sent to; repeat it for several
        #[arg(long = "witness", value_name = "URL")]
        witnesses: Vec<String>,
    },
    /// Apply database migrations
    Migrate,
    /// Manage bearer tokens
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Load the demo data into an empty ledger
    Demo,
    /// Verify the whole chain: seq continuity, links, hashes and tags; with --export, an export file instead
    Verify {
        /// Verify this JSON Lines export offline instead of the database (no database is opened)
        #[arg(long, value_name = "FILE")]
        export: Option<PathBuf>,
        /// With --export: an HMAC key (64 hex characters) to check tags with; repeat it for rotated keys
        #[arg(long = "hmac-key", value_name = "HEX", requires = "export")]
        hmac_keys: Vec<String>,
        /// With --export: a signed checkpoint (JSON) the export must match
        #[arg(long, value_name = "FILE", requires_all = ["export", "public_key"])]
        checkpoint: Option<PathBuf>,
        /// The Ed25519 public key (64 hex characters), or the log's vkey for a checkpoint note
        #[arg(long, value_name = "HEX|VKEY", requires = "checkpoint")]
        public_key: Option<String>,
        /// A witness's vkey (type 0x04) whose cosignature a checkpoint note must carry; repeat it for several
        #[arg(long = "witness-key", value_name = "VKEY")]
        witness_keys: Vec<String>,
        /// How many of the --witness-key witnesses must have cosigned (default: all)
        #[arg(long, value_name = "N", requires = "witness_keys")]
        witnesses_required: Option<usize>,
    },
    /// Write every event as JSON Lines, for auditors
    Export {
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Only events with a seq greater than this
        #[arg(long, value_name = "SEQ", default_value_t = 0)]
        after: u64,
    },
    /// Verify the chain, then sign and store a checkpoint of its Merkle root; print it as JSON
    Checkpoint {
        /// Write the checkpoint to FILE instead of standard output
        #[arg(long, value_name = "FILE", conflicts_with = "public_key")]
        out: Option<PathBuf>,
        /// Print the public key checkpoints are signed with (hex) instead
        #[arg(long)]
        public_key: bool,
        /// json (the ledger's own form) or note (a C2SP checkpoint note, origin LEDGER_ORIGIN)
        #[arg(long, value_enum, default_value = "json")]
        format: crate::audit::CheckpointFormat,
    },
    /// Print an inclusion proof (--seq N [--size S]) or a consistency proof (--from A --to B) as JSON
    Prove {
        #[arg(long, value_name = "N", required_unless_present = "from", conflicts_with_all = ["from", "to"])]
        seq: Option<u64>,
        /// The tree size (default: the whole chain)
        #[arg(long, value_name = "S", requires = "seq")]
        size: Option<u64>,
        #[arg(long, value_name = "A", requires = "to")]
        from: Option<u64>,
        #[arg(long, value_name = "B", requires = "from")]
        to: Option<u64>,
    },
    /// Verify a proof file offline, optionally against signed checkpoints
    VerifyProof {
        #[arg(long, value_name = "FILE")]
        proof: PathBuf,
        /// A signed checkpoint (JSON or a checkpoint note) the proof's root must match; repeat it for both ends of a consistency proof
        #[arg(long = "checkpoint", value_name = "FILE", requires = "public_key")]
        checkpoints: Vec<PathBuf>,
        /// The Ed25519 public key (64 hex characters), or the log's vkey for checkpoint notes
        #[arg(long, value_name = "HEX|VKEY")]
        public_key: Option<String>,
        /// A witness's vkey (type 0x04) whose cosignature a checkpoint note must carry; repeat it for several
        #[arg(long = "witness-key", value_name = "VKEY")]
        witness_keys: Vec<String>,
        /// How many of the --witness-key witnesses must have cosigned (default: all)
        #[arg(long, value_name = "N", requires = "witness_keys")]
        witnesses_required: Option<usize>,
    },
    /// Run a C2SP witness of a ledger's checkpoints (no database)
    Witness {
        /// The file holding the last checkpoint cosigned (created on the first)
        #[arg(long, value_name = "FILE")]
        state: PathBuf,
        /// The log's vkey (`vkey` of GET /v1/checkpoints/public-key)
        #[arg(long, value_name = "VKEY")]
        log_key: String,
        /// The witness's key file (created with a new key when missing)
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8090")]
        bind: SocketAddr,
        /// The witness's name, when its key file is created
        #[arg(long, default_value = crate::witness::DEFAULT_WITNESS_NAME)]
        name: String,
    },
    /// Write a report: a financial statement (CSV, XLSX or JSON)
    Report {
        #[command(subcommand)]
        command: ReportCommand,
    },
    /// Payment cycles: import a payment list
    Payments {
        #[command(subcommand)]
        command: PaymentsCommand,
    },
    /// Rebuild the projections from the events
    Rebuild {
        /// Compare a rebuild with the live projections instead; exit 1 on any difference
        #[arg(long)]
        check: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// The IATI 2.03 activity file (needs --iati-org-ref and --iati-org-name)
    Iati {
        /// Only this programme (default: every programme)
        #[arg(long)]
        programme: Option<String>,
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// A programme's financial statement for one donor over a period of UTC days
    Statement {
        #[arg(long)]
        programme: String,
        #[arg(long)]
        donor: String,
        /// The first day of the period, YYYY-MM-DD
        #[arg(long)]
        from: String,
        /// The last day of the period, YYYY-MM-DD (at most today, UTC)
        #[arg(long)]
        to: String,
        /// csv, xlsx or json (default: from the file's extension, else csv)
        #[arg(long)]
        format: Option<String>,
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum PaymentsCommand {
    /// Import a payment list (CSV) for one budget line and hold its total; exit 1 with the report if refused
    Import {
        /// The CSV file: case_id, amount, paid_amount, paid_currency, method and optionally row_reference
        file: PathBuf,
        #[arg(long)]
        programme: String,
        #[arg(long)]
        donor: String,
        /// The budget line's country (ISO 3166-1 alpha-2)
        #[arg(long)]
        country: String,
        /// The day the payments are planned for, YYYY-MM-DD
        #[arg(long)]
        planned_on: String,
        /// The finance officer's token: the list's importer for four-eyes
        #[arg(long, env = "LEDGER_TOKEN", hide_env_values = true)]
        token: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it once (only its hash is stored)
    Create {
        /// admin, finance_officer, auditor or donor
        #[arg(long)]
        role: String,
        /// The donor code a donor token is bound to
        #[arg(long)]
        donor: Option<String>,
        /// The token's name, recorded as the actor of the events it appends
        #[arg(long)]
        name: String,
    },
    /// Revoke a token by name
    Revoke {
        #[arg(long)]
        name: String,
    },
}

/// Runs a parsed command line and returns the process exit code.
pub async fn run(cli: Cli) -> ExitCode {
    match run_command(cli).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

async fn run_command(cli: Cli) -> anyhow::Result<ExitCode> {
    // Offline checks open no database: they run on an auditor's own machine.
    match &cli.command {
        Command::Verify { export: Some(export), hmac_keys, checkpoint, public_key, witness_keys, witnesses_required } => {
            let witnesses = crate::audit::WitnessPolicy::parse(witness_keys, *witnesses_required)?;
            return crate::audit::run_verify_export(export, hmac_keys, checkpoint.as_deref(), public_key.as_deref(), &witnesses);
        }
        Command::VerifyProof { proof, checkpoints, public_key, witness_keys, witnesses_required } => {
            let witnesses = crate::audit::WitnessPolicy::parse(witness_keys, *witnesses_required)?;
            return crate::audit::run_verify_proof(proof, checkpoints, public_key.as_deref(), &witnesses);
        }
        Command::Witness { state, log_key, key, bind, name } => {
            return crate::witness::run(state, log_key, key, *bind, name).await.map(|()| ExitCode::SUCCESS);
        }
        _ => {}
    }
    let mut ledger = Ledger::open(&cli.database_url).await?;
    match (&cli.iati_org_ref, &cli.iati_org_name) {
        (Some(reference), Some(name)) => {
            let organisation =
                ReportingOrg::parse(reference, name, &cli.iati_org_type).map_err(|reason| anyhow::anyhow!(reason))?;
            ledger = ledger.with_reporting_org(organisation);
        }
        (None, None) => {}
        _ => anyhow::bail!("give both --iati-org-ref and --iati-org-name (LEDGER_IATI_ORG_REF, LEDGER_IATI_ORG_NAME)"),
    }
    match cli.command {
        Command::Serve { bind, demo, checkpoint_every, witnesses } => {
            let every = checkpoint_every.map(std::time::Duration::from_secs);
            let mut ledger = ledger;
            ledger.witness_urls = witnesses;
            crate::http::serve_with(ledger, bind, demo, every).await.map(|()| ExitCode::SUCCESS)
        }
        Command::Migrate => {
            println!("migrations applied");
            Ok(ExitCode::SUCCESS)
        }
        Command::Token { command: TokenCommand::Create { role, donor, name } } => {
            let role =
                Role::parse(&role).ok_or_else(|| anyhow::anyhow!("--role must be admin, finance_officer, auditor or donor"))?;
            let token = tokens::create(&ledger.store, role, donor.as_deref(), &name).await?;
            println!("{token}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Token { command: TokenCommand::Revoke { name } } => {
            tokens::revoke(&ledger.store, &name).await?;
            println!("token {name} revoked");
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo => {
            let events = crate::demo::load(&ledger, "demo").await?;
            println!("demo data loaded: {events} events");
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify { .. } => verify(&ledger).await,
        Command::Export { out, after } => crate::audit::run_export(&ledger, &out, after).await,
        Command::Checkpoint { out, public_key, format } => {
            crate::audit::run_checkpoint(&ledger, out.as_deref(), public_key, format).await
        }
        Command::Prove { seq: Some(seq), size, .. } => {
            crate::audit::run_prove(&ledger, crate::audit::ProveRequest::Inclusion { seq, size }).await
        }
        Command::Prove { from: Some(from), to: Some(to), .. } => {
            crate::audit::run_prove(&ledger, crate::audit::ProveRequest::Consistency { from, to }).await
        }
        Command::Prove { .. } => anyhow::bail!("give --seq N [--size S], or --from A --to B"),
        Command::VerifyProof { .. } | Command::Witness { .. } => {
            unreachable!("verify-proof and witness run without a database, above")
        }
        Command::Report { command } => crate::reports::cli::run(&ledger, command).await,
        Command::Payments { command: PaymentsCommand::Import { file, programme, donor, country, planned_on, token } } => {
            let arguments = crate::payments::cli::ImportArguments {
                file: &file,
                programme: &programme,
                donor: &donor,
                country: &country,
                planned_on: &planned_on,
                token: &token,
            };
            crate::payments::cli::import(&ledger, arguments).await
        }
        Command::Rebuild { check } => rebuild(&ledger, check).await,
    }
}

fn progress_bar(total: u64, message: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} events ({per_sec}, {eta})")
            .expect("the template is valid")
            .progress_chars("=> "),
    );
    bar.set_message(message);
    bar
}

async fn verify(ledger: &Ledger) -> anyhow::Result<ExitCode> {
    let (head, _) = ledger.store.head().await?;
    let bar = progress_bar(head, "verifying");
    let report = ledger.store.verify_chain(Some(&ledger.keys), |seq| bar.set_position(seq)).await?;
    bar.finish_and_clear();
    match report.failure {
        None => {
            println!("chain valid: {} events, head hash {}", report.head_seq, hex::encode(report.head_hash));
            Ok(ExitCode::SUCCESS)
        }
        Some(failure) => {
            println!("chain INVALID at seq {}: {}", failure.seq, failure.fault);
            Ok(ExitCode::from(1))
        }
    }
}

async fn rebuild(ledger: &Ledger, check: bool) -> anyhow::Result<ExitCode> {
    let (head, _) = ledger.store.head().await?;
    if check {
        let bar = progress_bar(head, "checking");
        let report = projections::rebuild::check(&ledger.store, |seq| bar.set_position(seq)).await?;
        bar.finish_and_clear();
        return Ok(match report.difference {
            None => {
                println!("projections match a rebuild from {} events", report.events);
                ExitCode::SUCCESS
            }
            Some(difference) => {
                println!("projections DIFFER from a rebuild: {difference}");
                ExitCode::from(1)
            }
        });
    }
    let bar = progress_bar(head, "rebuilding");
    let events = projections::rebuild::rebuild(&ledger.store, |seq| bar.set_position(seq)).await?;
    bar.finish_and_clear();
    println!("projections rebuilt from {events} events");
    Ok(ExitCode::SUCCESS)
}
