#include "core/crypto/crypto.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>

namespace hmq::core::crypto {
namespace {

bytes to_bytes(std::string_view s) {
  return bytes(s.begin(), s.end());
}

// A fresh directory per test, removed afterwards.
class temp_dir {
 public:
  temp_dir() {
    path_ = std::filesystem::temp_directory_path() /
            ("hmq-crypto-test-" + to_hex(std::span<const uint8_t>(random_nonce()).first(8)));
    std::filesystem::create_directories(path_);
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

mode_t mode_of(const std::filesystem::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777;
}

TEST(crypto_box, round_trips_between_two_key_pairs) {
  // The envelope relies on crypto_box authenticating the sender and hiding the plaintext.
  auto alice = box_keypair::generate();
  auto bob = box_keypair::generate();
  const bytes plain = to_bytes("proposal for node 7");
  const nonce n = random_nonce();
  bytes boxed = box_seal(plain, n, bob.pk, alice.sk);
  ASSERT_EQ(boxed.size(), plain.size() + mac_size);
  EXPECT_EQ(std::search(boxed.begin(), boxed.end(), plain.begin(), plain.end()), boxed.end());
  auto opened = box_open(boxed, n, alice.pk, bob.sk);
  ASSERT_TRUE(opened) << opened.err().message();
  EXPECT_EQ(*opened, plain);
}

TEST(crypto_box, rejects_wrong_recipient_wrong_sender_wrong_nonce_and_tampering) {
  auto alice = box_keypair::generate();
  auto bob = box_keypair::generate();
  auto carol = box_keypair::generate();
  const bytes plain = to_bytes("hello");
  const nonce n = random_nonce();
  const bytes boxed = box_seal(plain, n, bob.pk, alice.sk);

  EXPECT_EQ(box_open(boxed, n, alice.pk, carol.sk).code(), errc::decrypt_failed);
  EXPECT_EQ(box_open(boxed, n, carol.pk, bob.sk).code(), errc::decrypt_failed);
  EXPECT_EQ(box_open(boxed, random_nonce(), alice.pk, bob.sk).code(), errc::decrypt_failed);
  for (size_t i = 0; i < boxed.size(); ++i) {
    bytes t = boxed;
    t[i] ^= 0x01;
    EXPECT_EQ(box_open(t, n, alice.pk, bob.sk).code(), errc::decrypt_failed) << "byte " << i;
  }
  EXPECT_EQ(
      box_open(std::span<const uint8_t>(boxed).first(mac_size - 1), n, alice.pk, bob.sk).code(),
      errc::decrypt_failed);
}

TEST(crypto_box, refuses_small_order_public_keys) {
  // A peer could register an all-zero (small-order) key; sealing to it must fail visibly.
  auto alice = box_keypair::generate();
  const public_key zero{};
  EXPECT_FALSE(usable_box_key(zero));
  EXPECT_TRUE(usable_box_key(alice.pk));
  EXPECT_TRUE(box_seal(to_bytes("x"), random_nonce(), zero, alice.sk).empty());
  EXPECT_EQ(precompute(zero, alice.sk).k.size(), 0u);
}

TEST(crypto_box, only_canonical_public_key_encodings_are_accepted) {
  // X25519 ignores bit 255 and reduces mod p: these encodings alias another key.
  auto kp = box_keypair::generate();
  EXPECT_TRUE(canonical_box_key(kp.pk));
  public_key alias = kp.pk;
  alias[31] |= 0x80;
  EXPECT_FALSE(canonical_box_key(alias));
  EXPECT_FALSE(usable_box_key(alias));

  public_key p_minus_1;
  p_minus_1.fill(0xff);
  p_minus_1[31] = 0x7f;
  p_minus_1[0] = 0xec;
  EXPECT_TRUE(canonical_box_key(p_minus_1));
  public_key p = p_minus_1;
  p[0] = 0xed;
  EXPECT_FALSE(canonical_box_key(p));
  public_key top = p_minus_1;
  top[0] = 0xff;
  EXPECT_FALSE(canonical_box_key(top));
  public_key below = p;
  below[15] = 0xfe;
  EXPECT_TRUE(canonical_box_key(below));
}

TEST(crypto_box, precomputed_keys_match_on_both_sides) {
  // Session traffic (heartbeats) uses beforenm/afternm; both ends must derive the same key.
  auto alice = box_keypair::generate();
  auto bob = box_keypair::generate();
  shared_key ab = precompute(bob.pk, alice.sk);
  shared_key ba = precompute(alice.pk, bob.sk);
  ASSERT_EQ(ab.k.size(), shared_key_size);
  EXPECT_TRUE(equal(ab.k.view(), ba.k.view()));

  const bytes plain = to_bytes("hb 42");
  const nonce n = random_nonce();
  bytes boxed = box_seal_with(plain, n, ab);
  auto opened = box_open_with(boxed, n, ba);
  ASSERT_TRUE(opened);
  EXPECT_EQ(*opened, plain);
  // Interoperates with the one-shot form.
  auto one_shot = box_open(boxed, n, alice.pk, bob.sk);
  ASSERT_TRUE(one_shot);
  EXPECT_EQ(*one_shot, plain);

  boxed.back() ^= 0x80;
  EXPECT_EQ(box_open_with(boxed, n, ba).code(), errc::decrypt_failed);
  EXPECT_EQ(box_open_with(boxed, n, shared_key{}).code(), errc::bad_key);
}

TEST(crypto_box, from_secret_derives_the_same_public_key) {
  auto kp = box_keypair::generate();
  auto again = box_keypair::from_secret(kp.sk.view());
  ASSERT_TRUE(again);
  EXPECT_EQ(again->pk, kp.pk);
  EXPECT_EQ(box_keypair::from_secret(bytes(31)).code(), errc::bad_key);
}

TEST(crypto_secret, is_move_only_and_moves_ownership) {
  secret a(32);
  a.data()[0] = 7;
  const uint8_t* p = a.data();
  secret b(std::move(a));
  EXPECT_EQ(b.data(), p);
  EXPECT_EQ(b.size(), 32u);
  EXPECT_EQ(a.size(), 0u);  // NOLINT(bugprone-use-after-move): checking the moved-from state
  EXPECT_EQ(a.data(), nullptr);
  secret c(8);
  c = std::move(b);
  EXPECT_EQ(c.data()[0], 7);
  EXPECT_EQ(c.size(), 32u);
  static_assert(!std::is_copy_constructible_v<secret>);
  static_assert(!std::is_copy_assignable_v<secret>);
}

TEST(crypto_sign, verifies_and_rejects_tampered_message_and_wrong_key) {
  // Agents run a deployment only if its signature verifies against a trusted publisher key.
  auto publisher = sign_keypair::generate();
  auto other = sign_keypair::generate();
  const bytes deployment = to_bytes("{containers: [busybox@sha256:abc]}");
  const signature sig = sign_detached(deployment, publisher.sk);

  EXPECT_TRUE(verify_detached(deployment, sig, publisher.pk));
  EXPECT_EQ(verify_detached(deployment, sig, other.pk).code(), errc::bad_signature);
  bytes tampered = deployment;
  tampered[3] ^= 0x01;
  EXPECT_EQ(verify_detached(tampered, sig, publisher.pk).code(), errc::bad_signature);
  signature bad_sig = sig;
  bad_sig[10] ^= 0x01;
  EXPECT_EQ(verify_detached(deployment, bad_sig, publisher.pk).code(), errc::bad_signature);
  EXPECT_EQ(
      verify_detached(deployment, std::span<const uint8_t>(sig).first(63), publisher.pk).code(),
      errc::bad_signature);
  EXPECT_EQ(
      verify_detached(deployment, sig, std::span<const uint8_t>(publisher.pk).first(31)).code(),
      errc::bad_key);
}

TEST(crypto_sign, from_secret_accepts_full_key_and_seed_and_rejects_mismatch) {
  auto kp = sign_keypair::generate();
  auto full = sign_keypair::from_secret(kp.sk.view());
  ASSERT_TRUE(full);
  EXPECT_EQ(full->pk, kp.pk);
  auto seeded = sign_keypair::from_secret(kp.sk.view().first(32));
  ASSERT_TRUE(seeded);
  EXPECT_EQ(seeded->pk, kp.pk);

  bytes mismatched(kp.sk.data(), kp.sk.data() + kp.sk.size());
  mismatched[63] ^= 0x01;  // embedded public key no longer matches the seed
  EXPECT_EQ(sign_keypair::from_secret(mismatched).code(), errc::bad_key);
  EXPECT_EQ(sign_keypair::from_secret(bytes(40)).code(), errc::bad_key);
}

TEST(crypto_password, verifies_right_and_rejects_wrong_password) {
  // Node and agbot tokens are stored only as Argon2id hashes.
  auto h = hash_password("s3cret-token", hash_strength::minimum);
  ASSERT_TRUE(h) << h.err().message();
  EXPECT_EQ(h->rfind("$argon2id$", 0), 0u) << *h;
  EXPECT_TRUE(verify_password(*h, "s3cret-token"));
  EXPECT_FALSE(verify_password(*h, "s3cret-tokeN"));
  EXPECT_FALSE(verify_password(*h, ""));
  EXPECT_FALSE(verify_password(*h, std::string_view{}));
  EXPECT_TRUE(hash_password(std::string_view{}, hash_strength::minimum));
  EXPECT_FALSE(verify_password("not a hash", "s3cret-token"));
  EXPECT_FALSE(verify_password("", "s3cret-token"));
  EXPECT_FALSE(verify_password(std::string(500, '$'), "s3cret-token"));
  auto again = hash_password("s3cret-token", hash_strength::minimum);
  ASSERT_TRUE(again);
  EXPECT_NE(*again, *h);  // salted
}

TEST(crypto_hash, blake2b_matches_known_answer_and_key_changes_it) {
  const bytes empty_digest = generic_hash({}, 32);
  EXPECT_EQ(to_hex(empty_digest),
            "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8");
  const bytes key(32, 0x11);
  const bytes keyed = generic_hash(to_bytes("abc"), 32, key);
  EXPECT_EQ(keyed.size(), 32u);
  EXPECT_NE(keyed, generic_hash(to_bytes("abc"), 32));
  EXPECT_EQ(generic_hash(to_bytes("abc"), 16).size(), 16u);
}

TEST(crypto_mailbox, is_16_lowercase_base32_chars_and_stable) {
  // Mailbox ids end up in topic names: they must be short, opaque and the same on every host.
  public_key pk;
  for (size_t i = 0; i < pk.size(); ++i) pk[i] = static_cast<uint8_t>(i);
  // Independently computed: base32(blake2b(pk, digest_size=32)[:10]).lower()
  EXPECT_EQ(mailbox_id(pk), "zmxvcyh4d57aljk6");

  for (int i = 0; i < 20; ++i) {
    auto kp = box_keypair::generate();
    const std::string id = mailbox_id(kp.pk);
    ASSERT_EQ(id.size(), 16u);
    EXPECT_TRUE(std::all_of(id.begin(), id.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= '2' && c <= '7');
    })) << id;
    EXPECT_EQ(mailbox_id(kp.pk), id);
    EXPECT_NE(mailbox_id(box_keypair::generate().pk), id);
  }
}

TEST(crypto_encoding, hex_and_base64_round_trip) {
  const bytes b{0x00, 0x01, 0xfe, 0xff, 0x7f};
  EXPECT_EQ(to_hex(b), "0001feff7f");
  EXPECT_EQ(to_base64(b), "AAH+/38=");  // original alphabet, padded
  auto h = from_hex("0001FEff7f");
  ASSERT_TRUE(h);
  EXPECT_EQ(*h, b);
  auto b64 = from_base64("AAH+/38=");
  ASSERT_TRUE(b64);
  EXPECT_EQ(*b64, b);
  EXPECT_EQ(to_hex({}), "");
  EXPECT_EQ(to_base64({}), "");
  EXPECT_TRUE(from_hex("")->empty());
}

TEST(crypto_encoding, hex_and_base64_reject_garbage) {
  for (std::string_view bad : {"0", "zz", "00 11", "0x00", "abc", "gg00", "00\n"}) {
    EXPECT_EQ(from_hex(bad).code(), errc::bad_key) << bad;
  }
  for (std::string_view bad :
       {"A", "AAH-_38=", "AAH+/38", "AA==AA==", "A\nAH+/38=", "!!!!", "AAH+/38=x"}) {
    EXPECT_EQ(from_base64(bad).code(), errc::bad_key) << bad;
  }
}

TEST(crypto_encoding, parse_public_key_takes_hex_or_base64_of_32_bytes) {
  auto kp = box_keypair::generate();
  auto from_h = parse_public_key(to_hex(kp.pk));
  ASSERT_TRUE(from_h);
  EXPECT_EQ(*from_h, kp.pk);
  auto from_b = parse_public_key(to_base64(kp.pk) + "\n");
  ASSERT_TRUE(from_b);
  EXPECT_EQ(*from_b, kp.pk);

  EXPECT_EQ(parse_public_key(to_base64(std::span<const uint8_t>(kp.pk).first(31))).code(),
            errc::bad_key);
  EXPECT_EQ(parse_public_key(to_hex(std::span<const uint8_t>(kp.pk).first(31))).code(),
            errc::bad_key);
  EXPECT_EQ(parse_public_key("").code(), errc::bad_key);
  EXPECT_EQ(parse_public_key("node-7").code(), errc::bad_key);
}

TEST(crypto_equal, compares_content_and_length) {
  const bytes a{1, 2, 3};
  EXPECT_TRUE(equal(a, bytes{1, 2, 3}));
  EXPECT_FALSE(equal(a, bytes{1, 2, 4}));
  EXPECT_FALSE(equal(a, bytes{1, 2}));
  EXPECT_TRUE(equal({}, {}));
}

TEST(crypto_key_file, secret_file_is_0600_whatever_the_umask_and_public_0644) {
  temp_dir dir;
  auto kp = box_keypair::generate();
  const mode_t old = ::umask(0);  // the most permissive umask must not widen a secret file
  auto w1 = write_key_file(dir.path() / "node.key", kp.sk.view(), true);
  auto w2 = write_key_file(dir.path() / "node.pub", kp.pk, false);
  ::umask(old);
  ASSERT_TRUE(w1) << w1.err().message();
  ASSERT_TRUE(w2) << w2.err().message();
  EXPECT_EQ(mode_of(dir.path() / "node.key"), 0600u);
  EXPECT_EQ(mode_of(dir.path() / "node.pub"), 0644u);

  std::ifstream in(dir.path() / "node.pub");
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, to_base64(kp.pk));

  auto sk = read_secret_key_file(dir.path() / "node.key");
  ASSERT_TRUE(sk) << sk.err().message();
  EXPECT_TRUE(equal(sk->view(), kp.sk.view()));
  auto pk = read_public_key_file(dir.path() / "node.pub");
  ASSERT_TRUE(pk);
  EXPECT_TRUE(equal(*pk, kp.pk));
  // Nothing left behind from the write-then-rename.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()),
                          std::filesystem::directory_iterator()),
            2);
}

TEST(crypto_key_file, overwriting_a_readable_file_narrows_it_to_0600) {
  temp_dir dir;
  const auto p = dir.path() / "agbot.key";
  { std::ofstream(p) << "old\n"; }
  std::filesystem::permissions(p, std::filesystem::perms(0644));
  auto kp = box_keypair::generate();
  ASSERT_TRUE(write_key_file(p, kp.sk.view(), true));
  EXPECT_EQ(mode_of(p), 0600u);
}

TEST(crypto_key_file, refuses_secret_file_readable_by_group_or_other) {
  temp_dir dir;
  const auto p = dir.path() / "node.key";
  auto kp = box_keypair::generate();
  ASSERT_TRUE(write_key_file(p, kp.sk.view(), true));
  for (auto mode : {0644, 0640, 0604, 0660}) {
    std::filesystem::permissions(p, std::filesystem::perms(mode));
    auto r = read_secret_key_file(p);
    ASSERT_FALSE(r) << std::oct << mode;
    EXPECT_EQ(r.code(), errc::bad_key_file);
    EXPECT_NE(r.err().detail.find(p.string()), std::string::npos) << r.err().detail;
    char mode_text[8];
    std::snprintf(mode_text, sizeof mode_text, "0%o", static_cast<unsigned>(mode));
    EXPECT_NE(r.err().detail.find(mode_text), std::string::npos) << r.err().detail;
  }
  // Public key files may be world-readable.
  std::filesystem::permissions(p, std::filesystem::perms(0644));
  EXPECT_TRUE(read_public_key_file(p));
}

TEST(crypto_key_file, rejects_missing_garbage_and_empty_files) {
  temp_dir dir;
  EXPECT_EQ(read_secret_key_file(dir.path() / "absent.key").code(), errc::io_error);
  const auto garbage = dir.path() / "garbage.key";
  { std::ofstream(garbage) << "this is not base64!\n"; }
  std::filesystem::permissions(garbage, std::filesystem::perms(0600));
  EXPECT_EQ(read_secret_key_file(garbage).code(), errc::bad_key_file);
  const auto empty = dir.path() / "empty.key";
  { std::ofstream(empty) << ""; }
  std::filesystem::permissions(empty, std::filesystem::perms(0600));
  EXPECT_EQ(read_secret_key_file(empty).code(), errc::bad_key_file);
  EXPECT_EQ(read_secret_key_file(dir.path()).code(), errc::bad_key_file);  // a directory
}

// Every binary takes a public key argument in one syntax: @FILE, a file path, or the key itself.
TEST(crypto_key_file, load_public_key_takes_at_file_path_base64_and_hex) {
  temp_dir dir;
  const auto kp = box_keypair::generate();
  const auto pub = dir.path() / "exchange.pub";
  ASSERT_TRUE(write_key_file(pub, kp.pk, false));
  for (const std::string& spec :
       {"@" + pub.string(), pub.string(), to_base64(kp.pk), to_hex(kp.pk)}) {
    auto k = load_public_key(spec);
    ASSERT_TRUE(k) << spec << ": " << k.err().message();
    EXPECT_TRUE(equal(*k, kp.pk)) << spec;
  }
  EXPECT_EQ(load_public_key("@" + (dir.path() / "absent.pub").string()).code(), errc::io_error);
  EXPECT_EQ(load_public_key("not-a-key").code(), errc::bad_key);
  const auto short_key = dir.path() / "short.pub";
  { std::ofstream(short_key) << to_base64(bytes(16, 7)) << "\n"; }
  EXPECT_FALSE(load_public_key("@" + short_key.string()));
}

TEST(crypto_key_file, load_or_create_creates_once_then_loads_the_same_key) {
  temp_dir dir;
  const auto p = dir.path() / "state" / "keys" / "node.key";
  auto first = load_or_create_box_keypair(p);
  ASSERT_TRUE(first) << first.err().message();
  EXPECT_EQ(mode_of(p), 0600u);
  auto pub = read_public_key_file(p.string() + ".pub");
  ASSERT_TRUE(pub);
  EXPECT_TRUE(equal(*pub, first->pk));

  auto second = load_or_create_box_keypair(p);
  ASSERT_TRUE(second) << second.err().message();
  EXPECT_EQ(second->pk, first->pk);

  // A key with the wrong length is a bad key file, not silently replaced.
  ASSERT_TRUE(write_key_file(p, bytes(16, 1), true));
  EXPECT_EQ(load_or_create_box_keypair(p).code(), errc::bad_key_file);
}

TEST(crypto_random, nonces_and_numbers_differ) {
  EXPECT_NE(random_nonce(), random_nonce());
  EXPECT_NE(random_u64(), random_u64());
  bytes a(16), b(16);
  random_bytes(a);
  random_bytes(b);
  EXPECT_NE(a, b);
}

TEST(crypto_errc, has_a_category_with_messages) {
  std::error_code ec = errc::bad_key_file;
  EXPECT_STREQ(ec.category().name(), "crypto");
  EXPECT_EQ(ec.message(), "bad key file");
  EXPECT_FALSE(std::error_code(errc::ok));
}

}  // namespace
}  // namespace hmq::core::crypto
