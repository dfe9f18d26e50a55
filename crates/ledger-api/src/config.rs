//! Opening a ledger: the database (migrated) and its keys.

use std::path::PathBuf;
use std::sync::Arc;

use ledger_core::keys::KeyRing;
use ledger_core::store::{Appender, Store};
use projections::LedgerProjector;

use crate::reports::iati::ReportingOrg;

/// The origin of checkpoint notes when `LEDGER_ORIGIN` is not set. Every
/// ledger should set its own: the origin names the log to witnesses and
/// tile clients, and is the name of its note key.
pub const DEFAULT_ORIGIN: &str = "localhost/reintegration-ledger";

/// A database with its keys, ready to append and read.
#[derive(Clone, Debug)]
pub struct Ledger {
    pub store: Store,
    pub keys: Arc<KeyRing>,
    /// The log's origin: the first line of its checkpoint notes.
    pub origin: String,
    /// The witnesses each new checkpoint is sent to (`serve --witness URL`).
    pub witness_urls: Vec<String>,
    /// The organisation IATI files are published by, when configured.
    pub reporting_org: Option<ReportingOrg>,
}

/// `LEDGER_ORIGIN`, or `DEFAULT_ORIGIN`: a schema-less URL-like name
/// (`ledger.example.org/avrr`), no spaces, no '+', no `://`.
pub fn origin_from_env() -> anyhow::Result<String> {
    let origin = std::env::var("LEDGER_ORIGIN").unwrap_or_else(|_| DEFAULT_ORIGIN.to_string());
    parse_origin(&origin)
}

/// Checks an origin: a note key name without a scheme.
pub fn parse_origin(origin: &str) -> anyhow::Result<String> {
    if !ledger_core::note::is_key_name_valid(origin) || origin.contains("://") || !origin.is_ascii() {
        anyhow::bail!(
            "LEDGER_ORIGIN must be a schema-less URL-like name such as ledger.example.org/avrr: printable ascii, \
             no spaces, no '+', no scheme"
        );
    }
    Ok(origin.to_string())
}

impl Ledger {
    /// Connects, applies migrations and loads the keys: from the environment,
    /// from `LEDGER_KEY_FILE`, or, for an embedded database, from the key file
    /// beside it (created with fresh keys on first use).
    pub async fn open(database_url: &str) -> anyhow::Result<Ledger> {
        let store = Store::connect(database_url).await?;
        store.migrate().await?;
        let key_file = store.database_path.as_ref().map(|path| key_file_beside(path));
        let keys = KeyRing::load(key_file.as_deref(), true)?;
        Ok(Ledger { store, keys: Arc::new(keys), origin: origin_from_env()?, witness_urls: Vec::new(), reporting_org: None })
    }

    /// Connects and migrates with the given keys (tests, tools).
    pub async fn open_with_keys(database_url: &str, keys: KeyRing) -> anyhow::Result<Ledger> {
        let store = Store::connect(database_url).await?;
        store.migrate().await?;
        Ok(Ledger { store, keys: Arc::new(keys), origin: origin_from_env()?, witness_urls: Vec::new(), reporting_org: None })
    }

    /// The same ledger, publishing IATI files as `organisation`.
    pub fn with_reporting_org(mut self, organisation: ReportingOrg) -> Ledger {
        self.reporting_org = Some(organisation);
        self
    }

    pub fn appender(&self) -> Appender {
        Appender::new(self.store.clone(), self.keys.clone(), Arc::new(LedgerProjector))
    }
}

/// `ledger.db` keeps its keys in `ledger.db.keys`.
pub fn key_file_beside(database: &std::path::Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".keys");
    PathBuf::from(name)
}
