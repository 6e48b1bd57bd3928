//! Session ids.

/// 128 random bits from the OS-seeded CSPRNG, base64url (22 chars): the
/// engine's session ids, and an id for anything else that must not collide
/// or be guessed (Socket.IO socket ids, chatgate's node ids).
pub fn random_id() -> String {
    use base64::Engine as _;
    use rand::Rng as _;
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
