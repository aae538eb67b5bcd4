#include "core/crypto/crypto.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace hmq::core::crypto {

static_assert(public_key_size == crypto_box_PUBLICKEYBYTES);
static_assert(public_key_size == crypto_sign_PUBLICKEYBYTES);
static_assert(box_secret_key_size == crypto_box_SECRETKEYBYTES);
static_assert(sign_secret_key_size == crypto_sign_SECRETKEYBYTES);
static_assert(nonce_size == crypto_box_NONCEBYTES);
static_assert(mac_size == crypto_box_MACBYTES);
static_assert(signature_size == crypto_sign_BYTES);
static_assert(shared_key_size == crypto_box_BEFORENMBYTES);

namespace {

class category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "crypto"; }
  std::string message(int c) const override {
    switch (static_cast<errc>(c)) {
      case errc::ok:
        return "ok";
      case errc::decrypt_failed:
        return "decryption failed (tampered, wrong key or wrong nonce)";
      case errc::bad_signature:
        return "bad signature";
      case errc::bad_key:
        return "bad key";
      case errc::hash_failed:
        return "password hashing failed";
      case errc::io_error:
        return "key file i/o error";
      case errc::bad_key_file:
        return "bad key file";
    }
    return "unknown crypto error " + std::to_string(c);
  }
};

error fail(errc e, std::string detail = {}) {
  return error{make_error_code(e), std::move(detail)};
}

// Key files are tiny; anything bigger is not one of ours and is not read into memory.
constexpr size_t max_key_file_bytes = 4096;

bool is_space(uint8_t c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(static_cast<uint8_t>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && is_space(static_cast<uint8_t>(s.back()))) s.remove_suffix(1);
  return s;
}

// libsodium declares its pointer arguments non-null, even for empty input; a default
// string_view has a null data().
const char* non_null(std::string_view s) {
  return s.data() != nullptr ? s.data() : "";
}

std::string errno_text(int e) {
  return std::strerror(e);
}

std::string mode_text(mode_t m) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0%03o", static_cast<unsigned>(m & 0777));
  return buf;
}

// Closes a file descriptor on every return path.
class fd_guard {
 public:
  explicit fd_guard(int fd) : fd_(fd) {}
  fd_guard(const fd_guard&) = delete;
  fd_guard& operator=(const fd_guard&) = delete;
  ~fd_guard() { close_now(); }
  int get() const { return fd_; }
  int close_now() {
    int r = 0;
    if (fd_ >= 0) r = ::close(fd_);
    fd_ = -1;
    return r;
  }

 private:
  int fd_;
};

bool write_all(int fd, const uint8_t* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// Reads a whole key file (bounded) into secret memory, since a secret key file's text is as
// sensitive as the key. `require_private` refuses files group or other may access.
result<secret> read_key_text(const std::filesystem::path& p, bool require_private) {
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    int e = errno;
    return fail(errc::io_error, p.string() + ": " + errno_text(e));
  }
  fd_guard guard(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    return fail(errc::io_error, p.string() + ": " + errno_text(e));
  }
  if (!S_ISREG(st.st_mode)) return fail(errc::bad_key_file, p.string() + ": not a regular file");
  if (require_private && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    return fail(errc::bad_key_file,
                p.string() + ": mode " + mode_text(st.st_mode) +
                    " lets group/other access a secret key; run chmod 600 on it");
  }
  if (st.st_size <= 0) return fail(errc::bad_key_file, p.string() + ": empty");
  if (static_cast<size_t>(st.st_size) > max_key_file_bytes) {
    return fail(errc::bad_key_file, p.string() + ": too large for a key file");
  }
  secret text(static_cast<size_t>(st.st_size));
  size_t got = 0;
  while (got < text.size()) {
    ssize_t r = ::read(fd, text.data() + got, text.size() - got);
    if (r < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      return fail(errc::io_error, p.string() + ": " + errno_text(e));
    }
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  if (got != text.size()) return fail(errc::io_error, p.string() + ": file shrank while reading");
  return text;
}

// Decodes one line of base64 into secret memory.
result<secret> decode_key_text(const std::filesystem::path& p, const secret& text) {
  std::string_view s = trim({reinterpret_cast<const char*>(text.data()), text.size()});
  if (s.empty()) return fail(errc::bad_key_file, p.string() + ": empty");
  secret buf(s.size() / 4 * 3 + 3);
  size_t n = 0;
  if (sodium_base642bin(buf.data(), buf.size(), s.data(), s.size(), nullptr, &n, nullptr,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      n == 0) {
    return fail(errc::bad_key_file, p.string() + ": not one line of base64");
  }
  secret out(n);
  std::memcpy(out.data(), buf.data(), n);
  return out;
}

const char base32_alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";

std::string base32_lower(std::span<const uint8_t> in) {
  std::string out;
  out.reserve((in.size() * 8 + 4) / 5);
  uint32_t acc = 0;
  int bits = 0;
  for (uint8_t b : in) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out.push_back(base32_alphabet[(acc >> (bits - 5)) & 31]);
      bits -= 5;
    }
  }
  if (bits > 0) out.push_back(base32_alphabet[(acc << (5 - bits)) & 31]);
  return out;
}

}  // namespace

const std::error_category& category() {
  static const category_impl c;
  return c;
}

std::error_code make_error_code(errc e) {
  return {static_cast<int>(e), category()};
}

void init() {
  // sodium_init() is idempotent and thread-safe; the static just saves the call afterwards.
  static const bool ready = [] {
    if (sodium_init() < 0) {
      std::fprintf(stderr,
                   "fatal: libsodium failed to initialise (sodium_init); cannot run without "
                   "cryptography\n");
      std::exit(EXIT_FAILURE);
    }
    return true;
  }();
  (void)ready;
}

// Plain heap memory plus sodium_mlock rather than sodium_malloc: sodium_malloc spends three
// pages and three memory mappings per allocation, and a fleet simulator holding thousands of
// identities and session keys would run into vm.max_map_count. sodium_mlock also excludes the
// pages from core dumps. Locking is best effort (RLIMIT_MEMLOCK); zeroing is not.
secret::secret(size_t n) {
  init();
  if (n == 0) return;
  data_ = new uint8_t[n]();
  size_ = n;
  (void)sodium_mlock(data_, size_);
}

secret::secret(secret&& o) noexcept
    : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}

secret& secret::operator=(secret&& o) noexcept {
  if (this != &o) {
    wipe();
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}

secret::~secret() {
  wipe();
}

void secret::wipe() {
  if (data_ == nullptr) return;
  // sodium_munlock zeroes before unlocking, even when the lock had failed.
  if (sodium_munlock(data_, size_) != 0) sodium_memzero(data_, size_);
  delete[] data_;
  data_ = nullptr;
  size_ = 0;
}

box_keypair box_keypair::generate() {
  init();
  box_keypair kp;
  kp.sk = secret(box_secret_key_size);
  crypto_box_keypair(kp.pk.data(), kp.sk.data());
  return kp;
}

result<box_keypair> box_keypair::from_secret(std::span<const uint8_t> sk) {
  init();
  if (sk.size() != box_secret_key_size) {
    return fail(errc::bad_key, "box secret key must be 32 bytes, got " + std::to_string(sk.size()));
  }
  box_keypair kp;
  kp.sk = secret(box_secret_key_size);
  std::memcpy(kp.sk.data(), sk.data(), sk.size());
  if (crypto_scalarmult_base(kp.pk.data(), kp.sk.data()) != 0) {
    return fail(errc::bad_key, "cannot derive the public key");
  }
  return kp;
}

sign_keypair sign_keypair::generate() {
  init();
  sign_keypair kp;
  kp.sk = secret(sign_secret_key_size);
  crypto_sign_keypair(kp.pk.data(), kp.sk.data());
  return kp;
}

// Accepts libsodium's 64-byte form (seed || pk, checked for consistency) or a 32-byte seed.
result<sign_keypair> sign_keypair::from_secret(std::span<const uint8_t> sk) {
  init();
  if (sk.size() != sign_secret_key_size && sk.size() != crypto_sign_SEEDBYTES) {
    return fail(errc::bad_key, "signing secret key must be 64 (or a 32-byte seed), got " +
                                   std::to_string(sk.size()));
  }
  sign_keypair kp;
  kp.sk = secret(sign_secret_key_size);
  crypto_sign_seed_keypair(kp.pk.data(), kp.sk.data(), sk.data());
  if (sk.size() == sign_secret_key_size &&
      sodium_memcmp(kp.pk.data(), sk.data() + crypto_sign_SEEDBYTES, public_key_size) != 0) {
    return fail(errc::bad_key, "signing secret key: embedded public key does not match its seed");
  }
  return kp;
}

nonce random_nonce() {
  init();
  nonce n;
  randombytes_buf(n.data(), n.size());
  return n;
}

uint64_t random_u64() {
  init();
  uint64_t v = 0;
  randombytes_buf(&v, sizeof v);
  return v;
}

void random_bytes(std::span<uint8_t> out) {
  init();
  if (out.empty()) return;  // randombytes_buf's pointer must not be null
  randombytes_buf(out.data(), out.size());
}

bool canonical_box_key(const public_key& pk) {
  if (pk[31] & 0x80) return false;
  // Little-endian value >= p = 2^255 - 19 means 0x7f, thirty 0xff bytes, and a first byte >= 0xed.
  if (pk[31] != 0x7f || pk[0] < 0xed) return true;
  for (size_t i = 1; i < 31; ++i) {
    if (pk[i] != 0xff) return true;
  }
  return false;
}

bool usable_box_key(const public_key& pk) {
  init();
  if (!canonical_box_key(pk)) return false;
  // crypto_box refuses peers whose shared point is all zeros (small-order keys); try it with a
  // throwaway secret, which is exactly what crypto_box_beforenm checks.
  static const box_keypair probe = box_keypair::generate();
  secret k(shared_key_size);
  return crypto_box_beforenm(k.data(), pk.data(), probe.sk.data()) == 0;
}

bytes box_seal(std::span<const uint8_t> plain, const nonce& n, const public_key& recipient,
               const secret& sender_sk) {
  assert(sender_sk.size() == box_secret_key_size);
  bytes out(plain.size() + mac_size);
  if (crypto_box_easy(out.data(), plain.data(), plain.size(), n.data(), recipient.data(),
                      sender_sk.data()) != 0) {
    return {};
  }
  return out;
}

result<bytes> box_open(std::span<const uint8_t> boxed, const nonce& n, const public_key& sender,
                       const secret& recipient_sk) {
  assert(recipient_sk.size() == box_secret_key_size);
  if (boxed.size() < mac_size) return fail(errc::decrypt_failed, "shorter than the MAC");
  bytes out(boxed.size() - mac_size);
  if (crypto_box_open_easy(out.data(), boxed.data(), boxed.size(), n.data(), sender.data(),
                           recipient_sk.data()) != 0) {
    return fail(errc::decrypt_failed);
  }
  return out;
}

shared_key precompute(const public_key& peer, const secret& own_sk) {
  assert(own_sk.size() == box_secret_key_size);
  shared_key k{secret(shared_key_size)};
  if (crypto_box_beforenm(k.k.data(), peer.data(), own_sk.data()) != 0) return {};
  return k;
}

bytes box_seal_with(std::span<const uint8_t> plain, const nonce& n, const shared_key& k) {
  if (k.k.size() != shared_key_size) return {};
  bytes out(plain.size() + mac_size);
  if (crypto_box_easy_afternm(out.data(), plain.data(), plain.size(), n.data(), k.k.data()) != 0) {
    return {};
  }
  return out;
}

result<bytes> box_open_with(std::span<const uint8_t> boxed, const nonce& n, const shared_key& k) {
  if (k.k.size() != shared_key_size) return fail(errc::bad_key, "empty shared key");
  if (boxed.size() < mac_size) return fail(errc::decrypt_failed, "shorter than the MAC");
  bytes out(boxed.size() - mac_size);
  if (crypto_box_open_easy_afternm(out.data(), boxed.data(), boxed.size(), n.data(), k.k.data()) !=
      0) {
    return fail(errc::decrypt_failed);
  }
  return out;
}

signature sign_detached(std::span<const uint8_t> msg, const secret& sign_sk) {
  assert(sign_sk.size() == sign_secret_key_size);
  signature sig{};
  crypto_sign_detached(sig.data(), nullptr, msg.data(), msg.size(), sign_sk.data());
  return sig;
}

result<void> verify_detached(std::span<const uint8_t> msg, std::span<const uint8_t> sig,
                             std::span<const uint8_t> sign_pk) {
  init();
  if (sign_pk.size() != public_key_size) {
    return fail(errc::bad_key,
                "signing public key must be 32 bytes, got " + std::to_string(sign_pk.size()));
  }
  if (sig.size() != signature_size) {
    return fail(errc::bad_signature,
                "signature must be 64 bytes, got " + std::to_string(sig.size()));
  }
  if (crypto_sign_verify_detached(sig.data(), msg.data(), msg.size(), sign_pk.data()) != 0) {
    return fail(errc::bad_signature);
  }
  return ok();
}

result<std::string> hash_password(std::string_view password, hash_strength s) {
  init();
  unsigned long long ops = crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE;
  size_t mem = crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE;
  switch (s) {
    case hash_strength::interactive:
      break;
    case hash_strength::moderate:
      ops = crypto_pwhash_argon2id_OPSLIMIT_MODERATE;
      mem = crypto_pwhash_argon2id_MEMLIMIT_MODERATE;
      break;
    case hash_strength::minimum:
      ops = crypto_pwhash_argon2id_OPSLIMIT_MIN;
      mem = crypto_pwhash_argon2id_MEMLIMIT_MIN;
      break;
  }
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(out, non_null(password), password.size(), ops, mem,
                            crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return fail(errc::hash_failed, "Argon2id could not allocate its memory");
  }
  return std::string(out);
}

result<bytes> derive_key(std::string_view password, std::span<const uint8_t> salt, size_t out_len,
                         kdf_cost cost) {
  init();
  if (salt.size() != crypto_pwhash_SALTBYTES)
    return fail(errc::hash_failed, "salt must be " + std::to_string(crypto_pwhash_SALTBYTES) +
                                       " bytes, got " + std::to_string(salt.size()));
  const bool small = cost == kdf_cost::small_memory;
  const unsigned long long ops = small ? 5 : crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE;
  const size_t mem = small ? size_t{7} << 20 : crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE;
  bytes out(out_len);
  if (crypto_pwhash(out.data(), out.size(), non_null(password), password.size(), salt.data(), ops,
                    mem, crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return fail(errc::hash_failed, "Argon2id could not allocate its memory");
  }
  return out;
}

bool verify_password(std::string_view hash, std::string_view password) {
  init();
  // crypto_pwhash_str_verify wants a NUL-terminated string that fits its buffer.
  if (hash.empty() || hash.size() >= crypto_pwhash_STRBYTES) return false;
  if (hash.find('\0') != std::string_view::npos) return false;
  char buf[crypto_pwhash_STRBYTES] = {};
  std::memcpy(buf, hash.data(), hash.size());
  return crypto_pwhash_str_verify(buf, non_null(password), password.size()) == 0;
}

bytes generic_hash(std::span<const uint8_t> in, size_t out_len, std::span<const uint8_t> key) {
  init();
  assert(out_len >= crypto_generichash_BYTES_MIN && out_len <= crypto_generichash_BYTES_MAX);
  assert(key.empty() || (key.size() >= crypto_generichash_KEYBYTES_MIN &&
                         key.size() <= crypto_generichash_KEYBYTES_MAX));
  bytes out(out_len);
  if (crypto_generichash(out.data(), out.size(), in.data(), in.size(),
                         key.empty() ? nullptr : key.data(), key.size()) != 0) {
    return {};
  }
  return out;
}

// BLAKE2b cannot output 10 bytes (its minimum is 16), so the id is the first 10 bytes of the
// default 32-byte BLAKE2b of the key. 80 bits encode to exactly 16 base32 characters.
std::string mailbox_id(const public_key& pk) {
  bytes h = generic_hash(pk, crypto_generichash_BYTES);
  return base32_lower(std::span<const uint8_t>(h).first(mailbox_hash_bytes));
}

std::string to_hex(std::span<const uint8_t> b) {
  std::string out(b.size() * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), b.data(), b.size());
  out.pop_back();
  return out;
}

result<bytes> from_hex(std::string_view hex) {
  init();
  if (hex.size() % 2 != 0) return fail(errc::bad_key, "hex has an odd number of digits");
  if (hex.empty()) return bytes{};  // libsodium's pointers must not be null
  bytes out(hex.size() / 2);
  size_t n = 0;
  // A null hex_end makes libsodium fail unless every character was consumed.
  if (sodium_hex2bin(out.data(), out.size(), hex.data(), hex.size(), nullptr, &n, nullptr) != 0 ||
      n != out.size()) {
    return fail(errc::bad_key, "not hex");
  }
  return out;
}

std::string to_base64(std::span<const uint8_t> b) {
  const size_t len = sodium_base64_ENCODED_LEN(b.size(), sodium_base64_VARIANT_ORIGINAL);
  std::string out(len, '\0');
  sodium_bin2base64(out.data(), out.size(), b.data(), b.size(), sodium_base64_VARIANT_ORIGINAL);
  out.resize(len - 1);  // drop the NUL libsodium writes
  return out;
}

result<bytes> from_base64(std::string_view b64) {
  init();
  bytes out(b64.size() / 4 * 3 + 3);
  size_t n = 0;
  if (sodium_base642bin(out.data(), out.size(), b64.data(), b64.size(), nullptr, &n, nullptr,
                        sodium_base64_VARIANT_ORIGINAL) != 0) {
    return fail(errc::bad_key, "not base64");
  }
  out.resize(n);
  return out;
}

result<public_key> parse_public_key(std::string_view text) {
  text = trim(text);
  // 64 characters can only be hex (base64 of 32 bytes is 44); fall back to base64 otherwise.
  result<bytes> raw = text.size() == public_key_size * 2 ? from_hex(text) : from_base64(text);
  if (!raw) return fail(errc::bad_key, "public key is neither hex nor base64");
  if (raw->size() != public_key_size) {
    return fail(errc::bad_key, "public key must be 32 bytes, got " + std::to_string(raw->size()));
  }
  public_key pk;
  std::memcpy(pk.data(), raw->data(), pk.size());
  return pk;
}

bool equal(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  init();
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

// Written to a temporary file in the same directory (created 0600/0644 with O_EXCL and fchmod-ed
// to exactly that mode before any byte is written, whatever the umask), synced, then renamed
// over `p`: a crash never leaves a half-written key, and the key never exists with a wider mode.
result<void> write_key_file(const std::filesystem::path& p, std::span<const uint8_t> key,
                            bool is_secret) {
  init();
  if (key.empty()) return fail(errc::bad_key, "empty key");
  const mode_t mode = is_secret ? 0600 : 0644;
  const size_t len = sodium_base64_ENCODED_LEN(key.size(), sodium_base64_VARIANT_ORIGINAL);
  secret text(len);  // base64 of a secret key is as secret as the key
  sodium_bin2base64(reinterpret_cast<char*>(text.data()), len, key.data(), key.size(),
                    sodium_base64_VARIANT_ORIGINAL);
  text.data()[len - 1] = '\n';  // replaces the NUL: one line of base64

  std::filesystem::path tmp = p;
  tmp += ".tmp-" + to_hex(std::span<const uint8_t>(random_nonce()).first(6));
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) {
    int e = errno;
    return fail(errc::io_error, p.string() + ": " + errno_text(e));
  }
  fd_guard guard(fd);
  auto io_fail = [&](int e) {
    ::unlink(tmp.c_str());
    return fail(errc::io_error, p.string() + ": " + errno_text(e));
  };
  if (::fchmod(fd, mode) != 0) return io_fail(errno);
  if (!write_all(fd, text.data(), text.size())) return io_fail(errno);
  if (::fsync(fd) != 0) return io_fail(errno);
  if (guard.close_now() != 0) return io_fail(errno);
  if (::rename(tmp.c_str(), p.c_str()) != 0) return io_fail(errno);
  return ok();
}

result<secret> read_secret_key_file(const std::filesystem::path& p) {
  auto text = read_key_text(p, true);
  if (!text) return text.err();
  return decode_key_text(p, *text);
}

result<bytes> read_public_key_file(const std::filesystem::path& p) {
  auto text = read_key_text(p, false);
  if (!text) return text.err();
  auto key = decode_key_text(p, *text);
  if (!key) return key.err();
  return bytes(key->data(), key->data() + key->size());
}

result<public_key> load_public_key(std::string_view spec) {
  std::string path;
  std::error_code ec;
  if (!spec.empty() && spec.front() == '@') {
    path = std::string(spec.substr(1));
  } else if (std::filesystem::is_regular_file(std::filesystem::path(spec), ec)) {
    path = std::string(spec);
  } else {
    return parse_public_key(spec);
  }
  auto b = read_public_key_file(path);
  if (!b) return b.err();
  if (b->size() != public_key_size) return fail(errc::bad_key, path + ": not a 32-byte public key");
  public_key k{};
  std::copy(b->begin(), b->end(), k.begin());
  return k;
}

result<box_keypair> load_or_create_box_keypair(const std::filesystem::path& p) {
  std::error_code ec;
  if (std::filesystem::exists(p, ec)) {
    auto sk = read_secret_key_file(p);
    if (!sk) return sk.err();
    auto kp = box_keypair::from_secret(sk->view());
    if (!kp) return fail(errc::bad_key_file, p.string() + ": " + kp.err().message());
    return kp;
  }
  if (ec) return fail(errc::io_error, p.string() + ": " + ec.message());
  if (p.has_parent_path()) {
    const auto dir = p.parent_path();
    if (std::filesystem::create_directories(dir, ec)) {
      // Only the directory we created is narrowed; an existing one is the operator's choice.
      std::filesystem::permissions(dir, std::filesystem::perms::owner_all, ec);
    }
    if (ec) return fail(errc::io_error, dir.string() + ": " + ec.message());
  }
  box_keypair kp = box_keypair::generate();
  if (auto r = write_key_file(p, kp.sk.view(), true); !r) return r.err();
  // The public half next to it, as ssh-keygen does, so operators can hand it out.
  std::filesystem::path pub = p;
  pub += ".pub";
  if (auto r = write_key_file(pub, kp.pk, false); !r) return r.err();
  return kp;
}

}  // namespace hmq::core::crypto
