//! Bearer tokens: shown once at creation, stored only as SHA-256 hashes.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use ledger_core::domain::DonorCode;
use ledger_core::store::Store;
use sha2::{Digest, Sha256};
use sqlx::Row;
use subtle::ConstantTimeEq;

/// Random bytes in a token.
pub const TOKEN_BYTES: usize = 32;
/// Prefix that makes a ledger token recognisable in a secret scanner.
pub const TOKEN_PREFIX: &str = "rlt_";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Admin,
    FinanceOfficer,
    Auditor,
    Donor,
}

impl Role {
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "admin" => Some(Role::Admin),
            "finance_officer" => Some(Role::FinanceOfficer),
            "auditor" => Some(Role::Auditor),
            "donor" => Some(Role::Donor),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::FinanceOfficer => "finance_officer",
            Role::Auditor => "auditor",
            Role::Donor => "donor",
        }
    }
}

/// Who a request acts as.
#[derive(Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's name; recorded as the actor of every event it appends.
    pub name: String,
    pub role: Role,
    /// Set for donor tokens only.
    pub donor: Option<DonorCode>,
}

impl fmt::Debug for Principal {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "Principal({}, {})", self.name, self.role.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("a token named {0} already exists: choose another name")]
    NameTaken(String),
    #[error("no token named {0}")]
    UnknownName(String),
    #[error("{0}")]
    Invalid(String),
}

/// The SHA-256 of a token, in hex: what the tokens table stores.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Creates a token and returns it; only its hash is stored.
pub async fn create(store: &Store, role: Role, donor: Option<&str>, name: &str) -> Result<String, TokenError> {
    let name = name.trim();
    let valid_name =
        !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c));
    if !valid_name {
        return Err(TokenError::Invalid("name: use 1 to 64 letters, digits, '-', '_', '.' or '@'".to_string()));
    }
    let donor = match (role, donor) {
        (Role::Donor, Some(code)) => Some(DonorCode::parse(code).map_err(|error| TokenError::Invalid(error.to_string()))?),
        (Role::Donor, None) => return Err(TokenError::Invalid("a donor token needs --donor CODE".to_string())),
        (_, Some(_)) => return Err(TokenError::Invalid("--donor is only for donor tokens".to_string())),
        (_, None) => None,
    };
    if let Some(code) = &donor {
        let known =
            sqlx::query("SELECT code FROM donors WHERE code = $1").bind(code.as_str()).fetch_optional(store.pool()).await?;
        if known.is_none() {
            return Err(TokenError::Invalid(format!("unknown donor {code}: register it first")));
        }
    }
    let mut secret = [0u8; TOKEN_BYTES];
    getrandom::getrandom(&mut secret).map_err(|error| TokenError::Invalid(format!("no randomness: {error}")))?;
    let token = format!("{TOKEN_PREFIX}{}", hex::encode(secret));
    let inserted =
        sqlx::query("INSERT INTO tokens (id, name, role, donor, token_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(name)
            .bind(role.as_str())
            .bind(donor.as_ref().map(|code| code.to_string()))
            .bind(hash_token(&token))
            .bind(chrono::Utc::now().to_rfc3339())
            .execute(store.pool())
            .await;
    match inserted {
        Ok(_) => Ok(token),
        Err(sqlx::Error::Database(error)) if error.is_unique_violation() => Err(TokenError::NameTaken(name.to_string())),
        Err(error) => Err(error.into()),
    }
}

/// Revokes a token by name; it stops working at once.
pub async fn revoke(store: &Store, name: &str) -> Result<(), TokenError> {
    let result = sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL")
        .bind(chrono::Utc::now().to_rfc3339())
        .bind(name)
        .execute(store.pool())
        .await?;
    if result.rows_affected() == 0 {
        return Err(TokenError::UnknownName(name.to_string()));
    }
    Ok(())
}

/// The principal a bearer token stands for, if it is valid and not revoked.
pub async fn authenticate(store: &Store, token: &str) -> Result<Option<Principal>, TokenError> {
    authenticate_hash(store, &hash_token(token)).await
}

/// Whether the token with this hash is on record and not revoked.
pub async fn is_valid(store: &Store, token_hash: &str) -> Result<bool, TokenError> {
    Ok(authenticate_hash(store, token_hash).await?.is_some())
}

async fn authenticate_hash(store: &Store, token_hash: &str) -> Result<Option<Principal>, TokenError> {
    let row = sqlx::query("SELECT name, role, donor, token_hash FROM tokens WHERE token_hash = $1 AND revoked_at IS NULL")
        .bind(token_hash)
        .fetch_optional(store.pool())
        .await?;
    let Some(row) = row else { return Ok(None) };
    let stored: String = row.try_get("token_hash")?;
    if !bool::from(stored.as_bytes().ct_eq(token_hash.as_bytes())) {
        return Ok(None);
    }
    let role_text: String = row.try_get("role")?;
    let role = Role::parse(&role_text).ok_or_else(|| TokenError::Invalid(format!("stored role {role_text} is unknown")))?;
    let donor: Option<String> = row.try_get("donor")?;
    let donor = donor.map(|code| DonorCode::parse(&code)).transpose().map_err(|error| TokenError::Invalid(error.to_string()))?;
    Ok(Some(Principal { name: row.try_get("name")?, role, donor }))
}

/// Tokens found valid, by hash, with the principal each stands for. A
/// token's name, role and donor never change, only its revocation, so a
/// write may take its principal from here and leave the revocation check to
/// the append's own transaction (`AppendUnit::token_hash`).
#[derive(Debug, Default)]
pub struct TokenCache {
    principals: Mutex<HashMap<String, Principal>>,
}

/// Tokens a `TokenCache` holds before it starts again empty.
pub const TOKEN_CACHE_ENTRIES_MAX: usize = 10_000;

impl TokenCache {
    /// The principal of a token: from memory when it was found valid
    /// before, else from the database (and then remembered). Whether it is
    /// still valid is for the caller to check where it matters.
    pub async fn principal(&self, store: &Store, token_hash: &str) -> Result<Option<Principal>, TokenError> {
        if let Some(principal) = self.lock().get(token_hash) {
            return Ok(Some(principal.clone()));
        }
        let principal = authenticate_hash(store, token_hash).await?;
        if let Some(principal) = &principal {
            let mut principals = self.lock();
            if principals.len() >= TOKEN_CACHE_ENTRIES_MAX {
                principals.clear();
            }
            principals.insert(token_hash.to_string(), principal.clone());
        }
        Ok(principal)
    }

    /// Forgets a token found revoked.
    pub fn forget(&self, token_hash: &str) {
        self.lock().remove(token_hash);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Principal>> {
        self.principals.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
