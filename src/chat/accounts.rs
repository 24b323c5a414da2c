//! Accounts and devices: sign-up, sign-in (one device per login), tokens, sign-out.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use super::{Chat, ChatError, ChatResult};
use crate::fast_map::FastMap;
use crate::model::{DeviceId, Pos, User, UserId};
use crate::store::StoreError;

/// Who is calling: the device behind a valid token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Auth {
    /// The signed-in user.
    pub user: UserId,
    /// The device (login) the token belongs to.
    pub device: DeviceId,
    /// The token's hash, which identifies the login in the store.
    pub token_hash: [u8; 32],
    /// The acknowledged cursor when the device was loaded.
    pub acked: Pos,
}

/// The answer to a successful login.
#[derive(Debug, Clone)]
pub struct LoggedIn {
    /// The bearer token; shown once, stored only as a hash.
    pub token: String,
    /// The new device.
    pub device_id: DeviceId,
    /// Who signed in.
    pub user: User,
    /// Where this device's message connection starts.
    pub cursor: Pos,
}

/// Valid tokens seen recently, so a poll costs no query to authenticate.
#[derive(Default)]
pub(super) struct TokenCache(Mutex<FastMap<[u8; 32], Auth>>);

/// The same work for a wrong password and an unknown user, so timing reveals nothing.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$N5KRNgiwzmtJx0m5Cv9OmTyOQB7Fmi5plJ9c9/Gz+5I";

/// Lower-cases and checks a username: 3–32 of `[a-z0-9_]`.
pub fn normalize_username(raw: &str) -> ChatResult<String> {
    let name = raw.trim().to_ascii_lowercase();
    let ok = (3..=32).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(name)
    } else {
        Err(ChatError::invalid("invalid_username", "username must be 3 to 32 characters of a-z, 0-9 and _"))
    }
}

/// Trims and checks a display name: 1–64 characters.
pub fn normalize_display_name(raw: &str) -> ChatResult<String> {
    let name = raw.trim();
    let n = name.chars().count();
    if (1..=64).contains(&n) && !name.chars().any(char::is_control) {
        Ok(name.to_owned())
    } else {
        Err(ChatError::invalid(
            "invalid_display_name",
            "display name must be 1 to 64 characters, without control characters",
        ))
    }
}

pub(super) fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

pub(super) fn new_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random source works");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn argon2(memory_kib: u32) -> Argon2<'static> {
    let params = Params::new(memory_kib, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Runs argon2 off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> ChatResult<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ChatError::internal(format!("hashing task failed: {e}")))
}

impl Chat {
    /// Creates an account. The username is unique ignoring case.
    pub async fn register(&self, username: &str, password: &str, display_name: Option<&str>) -> ChatResult<User> {
        let username = normalize_username(username)?;
        let n = password.chars().count();
        if !(8..=1024).contains(&n) {
            return Err(ChatError::invalid("invalid_password", "password must be 8 to 1024 characters"));
        }
        let display_name = normalize_display_name(display_name.unwrap_or(&username))?;
        let password = password.to_owned();
        let memory = self.config().argon2_memory_kib;
        let hash = blocking(move || {
            let mut salt = [0u8; 16];
            getrandom::fill(&mut salt).expect("the OS random source works");
            let salt = SaltString::encode_b64(&salt)?;
            argon2(memory).hash_password(password.as_bytes(), &salt).map(|h| h.to_string())
        })
        .await?
        .map_err(|e| ChatError::internal(format!("hashing failed: {e}")))?;
        match self.store().create_user(username, display_name, hash).await {
            Ok(row) => Ok(self.user_view(&row)),
            Err(StoreError::Conflict(_)) => Err(ChatError::conflict("username_taken", "that username is taken")),
            Err(e) => Err(e.into()),
        }
    }

    /// Signs in: a new device with its own token, starting at the current head.
    pub async fn login(&self, username: &str, password: &str, device_name: Option<&str>) -> ChatResult<LoggedIn> {
        let found = match normalize_username(username) {
            Ok(name) => self.store().user_by_username(&name).await?,
            Err(_) => None,
        };
        let (row, hash) = match found {
            Some((row, hash)) => (Some(row), hash),
            None => (None, DUMMY_HASH.to_owned()),
        };
        let password = password.to_owned();
        let verified = blocking(move || {
            PasswordHash::new(&hash)
                .is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
        })
        .await?;
        let row = row.filter(|_| verified).ok_or(ChatError::BadCredentials)?;
        let name = device_name.map(str::trim).filter(|n| !n.is_empty()).unwrap_or("web");
        let name: String = name.chars().take(64).collect();
        let token = new_token();
        let cursor = self.hub().head();
        let device = self.store().create_device(row.id, name, hash_token(&token), cursor).await?;
        Ok(LoggedIn { token, device_id: device.id, user: self.user_view(&row), cursor })
    }

    /// The device behind a bearer token.
    pub async fn authenticate(&self, token: &str) -> ChatResult<Auth> {
        let hash = hash_token(token);
        if let Some(auth) = self.inner.tokens.0.lock().get(&hash) {
            return Ok(*auth);
        }
        let device = self.store().device_by_token(hash).await?.ok_or(ChatError::Unauthorized)?;
        let auth = Auth { user: device.user_id, device: device.id, token_hash: hash, acked: device.acked };
        self.inner.tokens.0.lock().insert(hash, auth);
        Ok(auth)
    }

    /// Ends the login: the token stops working at once and a held poll is answered.
    pub async fn logout(&self, auth: &Auth) -> ChatResult<()> {
        self.inner.tokens.0.lock().remove(&auth.token_hash);
        self.end_session(auth.device);
        self.store().delete_device(auth.device).await?;
        // A request that authenticated just before the removal may have re-cached it.
        self.inner.tokens.0.lock().remove(&auth.token_hash);
        Ok(())
    }

    /// The signed-in user.
    pub async fn me(&self, auth: &Auth) -> ChatResult<User> {
        self.user(auth.user).await.map_err(|_| ChatError::Unauthorized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_lower_cased_and_checked() {
        assert_eq!(normalize_username(" Alice_1 ").unwrap(), "alice_1");
        for bad in ["ab", "a b c", "ålice", "bob!", &"x".repeat(33)] {
            assert!(normalize_username(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn display_names_are_trimmed_and_bounded() {
        assert_eq!(normalize_display_name("  Zoë 🙂 ").unwrap(), "Zoë 🙂");
        assert!(normalize_display_name("   ").is_err());
        assert!(normalize_display_name(&"é".repeat(65)).is_err());
        assert!(normalize_display_name("a\u{7}b").is_err());
    }

    #[test]
    fn tokens_are_long_random_and_hash_stably() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43, "256 bits in unpadded base64url");
        assert_eq!(hash_token(&a), hash_token(&a));
    }

    #[test]
    fn the_dummy_hash_parses_so_unknown_users_cost_a_real_verification() {
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    }
}
