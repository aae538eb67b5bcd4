#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "cli/command_context.h"

// The nouns of the `hmq` command tree, one file each (cli/cmd_<noun>.cc), in the order
// commands.cc adds them. Each adds its subcommands under `parent`; their work runs through
// `ctx` (docs/cli.md "Adding a command").
namespace hmq::cli {

// The files of `hmq key create`, where `hmq exchange service publish` looks by default.
constexpr const char* signing_private_name = "hmq-signing.private.key";
constexpr const char* signing_public_name = "hmq-signing.public.key";

void add_key(CLI::App& app, command_context& ctx);       // hmq key create
void add_exchange(CLI::App& app, command_context& ctx);  // hmq exchange (+ its nouns below)
void add_rollout(CLI::App& app, command_context& ctx);   // hmq rollout status

// Under `hmq exchange`:
void add_exchange_status(CLI::App& exchange, command_context& ctx);  // status, version
void add_exchange_org(CLI::App& exchange, command_context& ctx);
void add_exchange_user(CLI::App& exchange, command_context& ctx);
void add_exchange_node(CLI::App& exchange, command_context& ctx);
void add_exchange_agbot(CLI::App& exchange, command_context& ctx);
void add_exchange_service(CLI::App& exchange, command_context& ctx);
void add_exchange_pattern(CLI::App& exchange, command_context& ctx);

// `list`, `get` and `remove` of a resource noun (cmd_exchange_resource.cc): the same three
// verbs for every kind, shown through cli/resource_view.h.
void add_resource_verbs(CLI::App& noun_cmd, command_context& ctx, fb::ResourceKind kind,
                        const std::string& noun);

// `--mailbox` and `--claim` of `node create` / `agbot create` (cmd_exchange_resource.cc): the
// mailbox id and the claim that `party` ("agent" or "agbot") prints while it waits to be
// provisioned; each needs the other.
void add_mailbox_options(CLI::App* create, std::string& mailbox, std::string& claim,
                         std::string_view party);

}  // namespace hmq::cli
