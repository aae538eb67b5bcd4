// `hmq key import`: trust a publisher's key on this node (`hmq key create` is cli/cmd_key.cc).
#include <filesystem>
#include <fstream>
#include <memory>

#include "cli/agent_control.h"

namespace hmq::cli::agent_cli {

void add_key_import(CLI::App& app, const control_context& c) {
  auto file = std::make_shared<std::string>();
  auto name = std::make_shared<std::string>();
  auto* cmd = sub(app, "key", "Keys")
                  ->add_subcommand("import",
                                   "Trust a publisher's Ed25519 public key for service signatures");
  cmd->add_option("-k,--key", *file, "Publisher public key file (one line of base64)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--name", *name, "Name shown in the trust store (default: the file name)");
  auto socket = add_agent_socket_option(cmd);
  cmd->callback(c.callback([socket, file, name, &out = c.out, &err = c.err] {
    std::ifstream f(*file);
    std::string line;
    std::getline(f, line);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (line.empty()) die(err, *file + ": empty key file");
    std::string n = name->empty() ? std::filesystem::path(*file).filename().string() : *name;
    json r = ask(*socket, {{"op", "key_import"}, {"key", line}, {"name", n}}, err);
    out << "trusted publisher key " << text(r, "key") << " (" << n << ")\n";
  }));
}

}  // namespace hmq::cli::agent_cli
