// `hmq key create`: a publisher's Ed25519 signing pair (`hmq key import` talks to the agent:
// cli/cmd_agent_key.cc).
#include <filesystem>
#include <memory>

#include "cli/nouns.h"
#include "core/crypto/crypto.h"

namespace hmq::cli {

namespace crypto = core::crypto;

void add_key(CLI::App& app, command_context& ctx) {
  auto* key = app.add_subcommand("key", "Publisher signing keys (Ed25519)");
  key->require_subcommand(1);
  auto* create =
      key->add_subcommand("create", "Create an Ed25519 key pair for signing service deployments");
  auto dir = std::make_shared<std::string>(env_or("HOME", ".") + "/.hmq/keys");
  auto force = std::make_shared<bool>(false);
  create->add_option("-d,--directory", *dir, "Directory for the key files (created if needed)")
      ->capture_default_str();
  create->add_flag("-f,--force", *force, "Overwrite existing key files");
  ctx.on_run(create, [&ctx, dir, force] {
    std::filesystem::path d(*dir);
    std::error_code ec;
    std::filesystem::create_directories(d, ec);
    if (ec) usage_error("cannot create " + d.string() + ": " + ec.message());
    auto sk_path = d / signing_private_name, pk_path = d / signing_public_name;
    if (!*force && (std::filesystem::exists(sk_path) || std::filesystem::exists(pk_path))) {
      usage_error(sk_path.string() + " exists; use -f to overwrite");
    }
    if (*force) {
      std::filesystem::remove(sk_path, ec);
      std::filesystem::remove(pk_path, ec);
    }
    auto kp = crypto::sign_keypair::generate();
    must(crypto::write_key_file(sk_path, kp.sk.view(), true));
    must(crypto::write_key_file(pk_path, kp.pk, false));
    ctx.out() << "Created signing key pair:\n  private: " << sk_path.string()
              << " (mode 0600)\n  public:  " << pk_path.string()
              << "\n  public key: " << crypto::to_base64(kp.pk) << "\n";
  });
}

}  // namespace hmq::cli
