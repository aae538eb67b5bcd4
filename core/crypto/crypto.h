#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "core/common/result.h"

// The one libsodium wrapper of the project. Nothing else includes <sodium.h>.
namespace hmq::core::crypto {

enum class errc {
  ok = 0,
  decrypt_failed = 1,  // MAC check failed: tampered, wrong key or wrong nonce
  bad_signature = 2,
  bad_key = 3,       // wrong length or not parseable
  hash_failed = 4,   // Argon2id could not allocate its memory
  io_error = 5,      // key file could not be read or written
  bad_key_file = 6,  // key file has the wrong size, format or permissions
};
const std::error_category& category();
std::error_code make_error_code(errc e);

constexpr size_t public_key_size = 32;  // X25519 and Ed25519 public keys
constexpr size_t box_secret_key_size = 32;
constexpr size_t sign_secret_key_size = 64;
constexpr size_t nonce_size = 24;
constexpr size_t mac_size = 16;
constexpr size_t signature_size = 64;
constexpr size_t shared_key_size = 32;
constexpr size_t mailbox_hash_bytes = 10;  // mailbox id = base32(BLAKE2b-80(pk)) = 16 chars

using bytes = std::vector<uint8_t>;
using public_key = std::array<uint8_t, public_key_size>;
using nonce = std::array<uint8_t, nonce_size>;
using signature = std::array<uint8_t, signature_size>;

// Calls sodium_init(); exits the process with a clear message if libsodium cannot start.
// Safe to call many times; every constructor below calls it.
void init();

// Secret bytes: locked against swapping where possible, zeroed when destroyed. Move-only.
class secret {
 public:
  secret() = default;
  explicit secret(size_t n);
  secret(secret&& o) noexcept;
  secret& operator=(secret&& o) noexcept;
  secret(const secret&) = delete;
  secret& operator=(const secret&) = delete;
  ~secret();

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  std::span<const uint8_t> view() const { return {data_, size_}; }

 private:
  void wipe();
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// X25519 key pair for crypto_box.
struct box_keypair {
  public_key pk{};
  secret sk;
  static box_keypair generate();
  // From a 32-byte secret key (the public key is derived).
  static result<box_keypair> from_secret(std::span<const uint8_t> sk);
};

// Ed25519 key pair for deployment signatures.
struct sign_keypair {
  public_key pk{};
  secret sk;  // 64 bytes (libsodium's seed+pk form)
  static sign_keypair generate();
  // From the 64-byte form (its embedded public key must match) or a 32-byte seed.
  static result<sign_keypair> from_secret(std::span<const uint8_t> sk);
};

// Precomputed crypto_box shared key (crypto_box_beforenm) for session traffic such as heartbeats.
struct shared_key {
  secret k;
};

nonce random_nonce();
uint64_t random_u64();
void random_bytes(std::span<uint8_t> out);

// True for an X25519 public key in the one encoding libsodium generates: bit 255 clear and the
// value below 2^255-19. Other encodings alias a canonical key (X25519 ignores bit 255 and reduces
// mod p), so accepting them would give one sender several identities and let a replay with a
// re-encoded sender key slip past duplicate detection. Cheap: no curve arithmetic.
bool canonical_box_key(const public_key& pk);

// False for keys crypto_box refuses (small-order points) or that are not canonical: check keys
// that come from the network (e.g. at registration) so sealing to them cannot fail later.
bool usable_box_key(const public_key& pk);

// crypto_box_easy: returns mac || ciphertext (plain.size() + mac_size bytes), or an empty vector
// when the recipient key is unusable (see usable_box_key).
bytes box_seal(std::span<const uint8_t> plain, const nonce& n, const public_key& recipient,
               const secret& sender_sk);
// crypto_box_open_easy: errc::decrypt_failed on any tampering or wrong key.
result<bytes> box_open(std::span<const uint8_t> boxed, const nonce& n, const public_key& sender,
                       const secret& recipient_sk);

// An empty shared_key (k.size() == 0) when the peer key is unusable; sealing with it returns
// an empty vector and opening fails with errc::bad_key.
shared_key precompute(const public_key& peer, const secret& own_sk);
bytes box_seal_with(std::span<const uint8_t> plain, const nonce& n, const shared_key& k);
result<bytes> box_open_with(std::span<const uint8_t> boxed, const nonce& n, const shared_key& k);

// Ed25519 detached signatures.
signature sign_detached(std::span<const uint8_t> msg, const secret& sign_sk);
result<void> verify_detached(std::span<const uint8_t> msg, std::span<const uint8_t> sig,
                             std::span<const uint8_t> sign_pk);

// Argon2id password/token hashing (crypto_pwhash_str). `strength` picks libsodium's limits.
enum class hash_strength { interactive, moderate, minimum /* tests only */ };
result<std::string> hash_password(std::string_view password,
                                  hash_strength s = hash_strength::interactive);
bool verify_password(std::string_view hash, std::string_view password);

// The cost of derive_key. `interactive`: libsodium's interactive limits (64 MiB, 2 passes).
// `small_memory`: 7 MiB and 5 passes, the row of OWASP's Argon2id table with the least memory
// (equal strength by its measure), for edge devices that cannot spare 64 MiB at start.
enum class kdf_cost { interactive, small_memory };

// Argon2id key derivation (crypto_pwhash): `out_len` bytes from `password` and a 16-byte `salt`.
// Deterministic: both ends of a shared password derive the same key (core/bus/credentials.h:
// broker identities).
result<bytes> derive_key(std::string_view password, std::span<const uint8_t> salt, size_t out_len,
                         kdf_cost cost = kdf_cost::interactive);

// BLAKE2b (crypto_generichash) of `out_len` bytes, optionally keyed.
bytes generic_hash(std::span<const uint8_t> in, size_t out_len, std::span<const uint8_t> key = {});

// Opaque mailbox id of a public key: lowercase RFC 4648 base32 (no padding) of the first
// mailbox_hash_bytes of BLAKE2b(pk). Never reveals a name or an address.
std::string mailbox_id(const public_key& pk);

std::string to_hex(std::span<const uint8_t> b);
result<bytes> from_hex(std::string_view hex);
std::string to_base64(std::span<const uint8_t> b);
result<bytes> from_base64(std::string_view b64);
result<public_key> parse_public_key(std::string_view b64_or_hex);

// Constant-time equality.
bool equal(std::span<const uint8_t> a, std::span<const uint8_t> b);

// Key files. Secret key files are written with mode 0600 (created so, never chmod-ed after the
// fact) and refused on load if group/other can read them. Public key files are 0644. The
// format is one line of base64.
result<void> write_key_file(const std::filesystem::path& p, std::span<const uint8_t> key,
                            bool is_secret);
result<secret> read_secret_key_file(const std::filesystem::path& p);
result<bytes> read_public_key_file(const std::filesystem::path& p);

// A public key given on a command line or in a config, in the one syntax every binary accepts:
// `@FILE` (a public key file), the path of an existing file, or the key itself in base64 or hex.
// Errors name the argument so a typo is easy to spot.
result<public_key> load_public_key(std::string_view spec);

// Load the box key pair at `p` (secret key file) or create and save one if it does not exist
// (creating the parent directory, 0700, and writing the public key to `p`.pub, 0644).
result<box_keypair> load_or_create_box_keypair(const std::filesystem::path& p);

}  // namespace hmq::core::crypto

template <>
struct std::is_error_code_enum<hmq::core::crypto::errc> : std::true_type {};
