//! `ledger witness`: a C2SP witness a donor can host. It follows one log
//! (the vkey it is given), keeps the last checkpoint it cosigned in a state
//! file, and answers `POST /add-checkpoint` as `c2sp.org/tlog-witness`
//! says: its timestamped cosignature, or the refusal's status. The
//! decision is `ledger_core::witness::decide`; this module keeps the state
//! and speaks HTTP.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use ed25519_dalek::SigningKey;
use ledger_core::note::{SIGNATURE_TYPE_COSIGNATURE, VerifierKey};
use ledger_core::witness::{self, AddCheckpoint, WitnessRefusal, WitnessState};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

/// Largest add-checkpoint body read, in bytes.
pub const WITNESS_BODY_BYTES_MAX: usize = 128 * 1024;
/// The witness's name when `--name` is not given.
pub const DEFAULT_WITNESS_NAME: &str = "localhost/ledger-witness";
/// The media type of a 409's body: the size last cosigned.
pub const TLOG_SIZE_CONTENT_TYPE: &str = "text/x.tlog.size";

/// The witness key file: its name and Ed25519 seed (hex), mode 0600.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WitnessKeyFile {
    name: String,
    seed: String,
}

/// A witness: the log it follows, its key and its state.
pub struct Witness {
    pub name: String,
    key: SigningKey,
    pub log_key: VerifierKey,
    state_file: PathBuf,
    /// Checked and replaced under this lock, so two requests cannot roll
    /// the state back.
    state: Mutex<Option<WitnessState>>,
}

impl Witness {
    /// Opens the witness: reads its key file (created with a new key named
    /// `name` when missing) and its state file (none yet: nothing cosigned).
    pub fn open(state_file: &Path, log_key: VerifierKey, key_file: &Path, name: &str) -> anyhow::Result<Witness> {
        let (name, key) = load_or_create_key(key_file, name)?;
        let state = match std::fs::read_to_string(state_file) {
            Ok(text) => Some(
                serde_json::from_str::<WitnessState>(&text)
                    .map_err(|error| anyhow::anyhow!("{}: {error}", state_file.display()))?,
            ),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
            Err(error) => anyhow::bail!("{}: {error}", state_file.display()),
        };
        if let Some(state) = &state {
            anyhow::ensure!(
                state.origin == log_key.name,
                "{} follows {}, not {}",
                state_file.display(),
                state.origin,
                log_key.name
            );
        }
        Ok(Witness { name, key, log_key, state_file: state_file.to_path_buf(), state: Mutex::new(state) })
    }

    /// The witness's vkey (type 0x04, cosignature/v1), for the log's verifiers.
    pub fn vkey(&self) -> VerifierKey {
        VerifierKey::new(&self.name, SIGNATURE_TYPE_COSIGNATURE, self.key.verifying_key())
            .expect("the name was checked when the key was read")
    }

    /// Decides a request, persists the new state, and returns the
    /// cosignature line. A refusal changes nothing.
    pub async fn add_checkpoint(&self, body: &[u8], now: u64) -> Result<String, WitnessRefusal> {
        let request = AddCheckpoint::parse(body)?;
        let mut state = self.state.lock().await;
        let (next, checkpoint) = witness::decide(state.as_ref(), &self.log_key, &request)?;
        if let Err(error) = write_private(&self.state_file, &serde_json::to_vec_pretty(&next).expect("a state serializes")) {
            tracing::error!(error = %error, "the witness state could not be written; nothing cosigned");
            return Err(WitnessRefusal::Malformed("the witness could not persist its state; retry".to_string()));
        }
        *state = Some(next);
        let line = witness::cosign(&checkpoint.format(), &self.name, &self.key, now)
            .expect("the name was checked when the key was read");
        Ok(line.line())
    }
}

fn load_or_create_key(path: &Path, name: &str) -> anyhow::Result<(String, SigningKey)> {
    if path.exists() {
        let file: WitnessKeyFile = serde_json::from_str(&std::fs::read_to_string(path)?)
            .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?;
        let key = ledger_core::checkpoint::parse_signing_key_hex(&file.seed)
            .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?;
        anyhow::ensure!(ledger_core::note::is_key_name_valid(&file.name), "{}: the name is not a valid key name", path.display());
        return Ok((file.name, key));
    }
    anyhow::ensure!(
        ledger_core::note::is_key_name_valid(name),
        "--name must be a schema-less URL-like name without spaces or '+'"
    );
    let key = ledger_core::checkpoint::generate_signing_key()?;
    let file = WitnessKeyFile { name: name.to_string(), seed: ledger_core::checkpoint::format_signing_key_hex(&key) };
    write_private(path, &serde_json::to_vec_pretty(&file)?)?;
    Ok((name.to_string(), key))
}

/// Writes a file with mode 0600, through a temporary file and a rename.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
}

/// `POST /add-checkpoint`, with bodies of at most `WITNESS_BODY_BYTES_MAX`.
pub fn router(witness: Arc<Witness>) -> Router {
    Router::new()
        .route("/add-checkpoint", post(add_checkpoint))
        .layer(DefaultBodyLimit::max(WITNESS_BODY_BYTES_MAX))
        .with_state(witness)
}

async fn add_checkpoint(State(witness): State<Arc<Witness>>, body: Bytes) -> Response {
    let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0);
    match witness.add_checkpoint(&body, now).await {
        Ok(line) => text_response(StatusCode::OK, "text/plain; charset=utf-8", line),
        Err(refusal) => {
            tracing::info!(refusal = %refusal, "checkpoint refused");
            let status = StatusCode::from_u16(refusal.status()).expect("the spec's statuses are valid");
            match refusal.latest_size() {
                Some(size) => text_response(status, TLOG_SIZE_CONTENT_TYPE, format!("{size}\n")),
                None => text_response(status, "text/plain; charset=utf-8", format!("{refusal}\n")),
            }
        }
    }
}

fn text_response(status: StatusCode, content_type: &'static str, body: String) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// `ledger witness`: opens the witness, prints its vkey, and serves until stopped.
pub async fn run(state_file: &Path, log_key: &str, key_file: &Path, bind: SocketAddr, name: &str) -> anyhow::Result<()> {
    let log_key = VerifierKey::parse(log_key).map_err(|error| anyhow::anyhow!("--log-key: {error}"))?;
    let witness = Arc::new(Witness::open(state_file, log_key, key_file, name)?);
    let listener = tokio::net::TcpListener::bind(bind).await?;
    println!("witness {} listening on http://{}", witness.name, listener.local_addr()?);
    println!("witness vkey {}", witness.vkey().format());
    axum::serve(listener, router(witness))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
