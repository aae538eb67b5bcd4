// `hmq exchange pattern ...`: deployment patterns, published from Horizon pattern files.
#include <filesystem>
#include <memory>

#include "cli/horizon_json.h"
#include "cli/nouns.h"

namespace hmq::cli {

void add_exchange_pattern(CLI::App& exchange, command_context& ctx) {
  auto* pattern = exchange.add_subcommand("pattern", "Deployment patterns (Horizon pattern files)");
  pattern->require_subcommand(1);
  auto file = std::make_shared<std::string>();
  auto name = std::make_shared<std::string>();
  auto* c = pattern->add_subcommand("publish", "Publish a Horizon pattern file");
  c->add_option("-f,--json-file", *file, "Pattern file (Horizon format; $VAR substituted)")
      ->required();
  c->add_option("-p,--pattern-id", *name, "Pattern name (default: the file's name field)");
  ctx.on_run(c, [&ctx, file, name] {
    auto text = must(read_text_file(*file));
    auto source = std::filesystem::path(*file).filename().string();
    auto parsed = must(parse_pattern(text, source));
    for (const auto& w : parsed.warnings) ctx.err() << "warning: " << w << "\n";
    auto& p = parsed.pattern;
    if (!name->empty()) p.name = *name;
    if (p.name.empty()) usage_error(source + ": missing required field 'name' (or give -p NAME)");
    if (p.org.empty()) p.org = ctx.target_org();
    std::string what = "pattern " + p.org + "/" + p.name;
    fb::ResourceUnion r;
    r.Set(std::move(p));
    ctx.publish_upsert(r, what);
  });
  add_resource_verbs(*pattern, ctx, fb::ResourceKind::pattern, "pattern");
}

}  // namespace hmq::cli
