//! Personal data sealed at rest, a key per contact (crypto-shredding).
//!
//! Each contact's personal data is encrypted with the contact's own key
//! (XChaCha20-Poly1305, the event id bound in as associated data, so a
//! sealed value cannot be moved to another event). Contact keys are kept
//! wrapped by the ledger's master key, which lives outside the ledger file.
//! Destroying a contact's key makes every copy of their sealed data, in
//! the ledger, its backups and its exports, unreadable for good.
//!
//! The digest the hash chain covers is keyed by a key derived from the
//! contact key, so it cannot be searched by trying every phone number, and
//! it is destroyed with the key.

use std::io::Write;
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::StoreError;

const KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 24;
/// The environment variable that may hold the master key (64 hex digits).
pub const MASTER_KEY_VARIABLE: &str = "RAPPORT_MASTER_KEY";
/// The environment variable naming the master key file, when it is not
/// `<ledger>.key`.
pub const MASTER_KEY_FILE_VARIABLE: &str = "RAPPORT_KEY_FILE";

/// The ledger's master key: wraps every contact key. Never stored in the
/// ledger; the ledger keeps only a check value to refuse a wrong one.
#[derive(Clone)]
pub struct MasterKey([u8; KEY_BYTES]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

/// One contact's key: seals their personal data and keys its digest.
#[derive(Clone)]
pub struct ContactKey([u8; KEY_BYTES]);

impl std::fmt::Debug for ContactKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContactKey(..)")
    }
}

fn derive(label: &[u8], key: &[u8; KEY_BYTES]) -> [u8; KEY_BYTES] {
    let mut hasher = Sha256::new();
    hasher.update(label);
    hasher.update(key);
    hasher.finalize().into()
}

fn seal_with(key: &[u8; KEY_BYTES], associated: &[u8], plain: &[u8]) -> Vec<u8> {
    let cipher = XChaCha20Poly1305::new(key.into());
    let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
    let sealed = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: plain,
                aad: associated,
            },
        )
        .expect("XChaCha20-Poly1305 encrypts any message that fits in memory");
    let mut out = Vec::with_capacity(NONCE_BYTES + sealed.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    out
}

/// `None` when the value was not sealed with this key for this place.
fn open_with(key: &[u8; KEY_BYTES], associated: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE_BYTES {
        return None;
    }
    let (nonce, body) = sealed.split_at(NONCE_BYTES);
    XChaCha20Poly1305::new(key.into())
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: body,
                aad: associated,
            },
        )
        .ok()
}

impl MasterKey {
    pub fn generate() -> Self {
        MasterKey(XChaCha20Poly1305::generate_key(&mut OsRng).into())
    }

    /// Reads 64 hex digits (surrounding white space ignored).
    pub fn from_hex(text: &str) -> Result<Self, StoreError> {
        let bytes = hex::decode(text.trim())
            .ok()
            .and_then(|bytes| <[u8; KEY_BYTES]>::try_from(bytes).ok())
            .ok_or_else(|| StoreError::MasterKey("a master key is 64 hexadecimal digits".to_owned()))?;
        Ok(MasterKey(bytes))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Stored in the ledger to recognise the right key; reveals nothing of it.
    pub fn check_value(&self) -> [u8; KEY_BYTES] {
        derive(b"rapport/master-key-check/v1", &self.0)
    }

    /// The secret behind ids derived from personal data during import: a
    /// keyed derivation, so an id does not confirm a guessed phone number.
    pub fn pseudonym_key(&self) -> [u8; KEY_BYTES] {
        derive(b"rapport/pseudonyms/v1", &self.0)
    }

    /// Seals the personal data in the read-model snapshot.
    pub fn snapshot_key(&self) -> SealingKey {
        SealingKey(derive(b"rapport/snapshot/v1", &self.0))
    }

    pub fn wrap(&self, stream: &str, key: &ContactKey) -> Vec<u8> {
        seal_with(&self.0, stream.as_bytes(), &key.0)
    }

    pub fn unwrap(&self, stream: &str, wrapped: &[u8]) -> Option<ContactKey> {
        open_with(&self.0, stream.as_bytes(), wrapped)
            .and_then(|bytes| <[u8; KEY_BYTES]>::try_from(bytes).ok())
            .map(ContactKey)
    }
}

impl ContactKey {
    pub fn generate() -> Self {
        ContactKey(XChaCha20Poly1305::generate_key(&mut OsRng).into())
    }

    pub fn seal(&self, event_id: Uuid, plain: &[u8]) -> Vec<u8> {
        seal_with(&self.0, event_id.as_bytes(), plain)
    }

    pub fn open(&self, event_id: Uuid, sealed: &[u8]) -> Option<Vec<u8>> {
        open_with(&self.0, event_id.as_bytes(), sealed)
    }

    /// Keys the personal-data digest the chain covers.
    pub fn digest_key(&self) -> [u8; KEY_BYTES] {
        derive(b"rapport/pii-digest-key/v1", &self.0)
    }
}

/// A key of the ledger's own, derived from the master key, for what rapport
/// keeps beside the ledger (the read-model snapshot's directory).
#[derive(Clone)]
pub struct SealingKey([u8; KEY_BYTES]);

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey(..)")
    }
}

impl SealingKey {
    pub fn seal(&self, associated: &[u8], plain: &[u8]) -> Vec<u8> {
        seal_with(&self.0, associated, plain)
    }

    pub fn open(&self, associated: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        open_with(&self.0, associated, sealed)
    }
}

/// An id derived from `what` under the ledger's pseudonym key (shaped as a
/// random UUIDv4, which to anyone without the key it is):
/// the same content gives the same id in this ledger, and nobody without
/// the key can tell which content an id came from.
pub fn pseudonymous_id(key: &[u8; KEY_BYTES], what: &str) -> Uuid {
    let mut hasher = Sha256::new();
    hasher.update(b"rapport/pseudonymous-id/v1");
    hasher.update(key);
    hasher.update(what.as_bytes());
    let digest: [u8; 32] = hasher.finalize().into();
    let mut bytes = [0; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// Where the master key of the ledger at `ledger` is looked for:
/// `RAPPORT_MASTER_KEY`, else the file `RAPPORT_KEY_FILE` names, else
/// `<ledger>.key`.
pub fn master_key_file(ledger: &Path) -> PathBuf {
    match std::env::var_os(MASTER_KEY_FILE_VARIABLE) {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => {
            let mut name = ledger.as_os_str().to_owned();
            name.push(".key");
            PathBuf::from(name)
        }
    }
}

/// The master key if one is configured or its file exists.
pub fn find_master_key(ledger: &Path) -> Result<Option<MasterKey>, StoreError> {
    if let Ok(text) = std::env::var(MASTER_KEY_VARIABLE)
        && !text.trim().is_empty()
    {
        return MasterKey::from_hex(&text).map(Some);
    }
    let path = master_key_file(ledger);
    match std::fs::read_to_string(&path) {
        Ok(text) => MasterKey::from_hex(&text)
            .map(Some)
            .map_err(|e| StoreError::MasterKey(format!("{}: {e}", path.display()))),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(StoreError::MasterKey(format!(
            "reading the master key {}: {error}",
            path.display()
        ))),
    }
}

/// Creates a master key file readable by its owner only, and says where,
/// so the operator backs it up apart from the ledger.
pub fn create_master_key(ledger: &Path) -> Result<MasterKey, StoreError> {
    let path = master_key_file(ledger);
    let key = MasterKey::generate();
    let failed =
        |error: std::io::Error| StoreError::MasterKey(format!("creating the master key {}: {error}", path.display()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path).map_err(failed)?;
    file.write_all(format!("{}\n", key.to_hex()).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(failed)?;
    tracing::warn!(
        path = %path.display(),
        "created the master key that seals personal data: back it up, apart from the ledger's backups; without it no personal data can be read"
    );
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_data_opens_only_with_its_key_and_for_its_event() {
        let key = ContactKey::generate();
        let event = Uuid::from_u128(7);
        let sealed = key.seal(event, b"{\"phone\":\"13800138000\"}");
        assert!(!sealed.windows(11).any(|w| w == b"13800138000"));
        assert_eq!(
            key.open(event, &sealed).as_deref(),
            Some(&b"{\"phone\":\"13800138000\"}"[..])
        );
        assert_eq!(key.open(Uuid::from_u128(8), &sealed), None);
        assert_eq!(ContactKey::generate().open(event, &sealed), None);
        let mut flipped = sealed.clone();
        flipped[NONCE_BYTES] ^= 1;
        assert_eq!(key.open(event, &flipped), None);
    }

    #[test]
    fn a_contact_key_unwraps_only_under_its_master_key_and_stream() {
        let master = MasterKey::generate();
        let key = ContactKey::generate();
        let wrapped = master.wrap("contact-a", &key);
        let unwrapped = master.unwrap("contact-a", &wrapped).expect("unwraps");
        assert_eq!(unwrapped.digest_key(), key.digest_key());
        assert!(master.unwrap("contact-b", &wrapped).is_none());
        assert!(MasterKey::generate().unwrap("contact-a", &wrapped).is_none());
    }

    #[test]
    fn a_master_key_reads_back_from_its_text_and_refuses_anything_else() {
        let key = MasterKey::generate();
        assert_eq!(
            MasterKey::from_hex(&key.to_hex()).expect("reads back").check_value(),
            key.check_value()
        );
        assert_eq!(MasterKey::from_hex("abc").expect_err("too short").code(), "MASTER_KEY");
    }
}
