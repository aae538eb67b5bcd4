// `hmq exchange service ...`: services, published from Horizon service definition files and
// signed whole by the publisher's key (core/wire/service_signature.h); `verify` checks one.
#include <algorithm>
#include <filesystem>
#include <memory>

#include "cli/commands.h"
#include "cli/horizon_json.h"
#include "cli/nouns.h"
#include "cli/registry.h"
#include "core/crypto/crypto.h"
#include "core/wire/service_signature.h"
#include "exchange_client/ids.h"

namespace hmq::cli {

namespace {

namespace crypto = core::crypto;
namespace xc = ::hmq::exchange_client;

struct publish_args {
  std::string file;
  std::string secret_key;  // -k
  std::string public_key;  // -K
  std::vector<std::string> registries;
  bool no_resolve = false;
};

// -r flags first, then the local docker login (a warning when it cannot be read).
std::vector<registry_credentials> registry_credentials_of(const publish_args& args,
                                                          std::ostream& err) {
  std::vector<registry_credentials> creds;
  for (const auto& r : args.registries) creds.push_back(must(parse_registry_flag(r)));
  auto docker = load_docker_config(default_docker_config_path());
  if (docker) {
    for (auto& c : *docker) creds.push_back(std::move(c));
  } else {
    err << "warning: " << docker.err().detail << "\n";
  }
  return creds;
}

// Every image gets the digest the nodes will check: from the file, else from its registry.
void resolve_digests(fb::DeploymentT& deployment, const std::vector<registry_credentials>& creds,
                     bool no_resolve, std::ostream& err) {
  for (auto& ct : deployment.containers) {
    if (!ct->image_digest.empty()) continue;
    if (no_resolve)
      usage_error("image '" + ct->image + "' has no digest and --no-resolve was given");
    ct->image_digest = must(resolve_digest(ct->image, creds));
    err << "resolved " << ct->image << " -> " << ct->image_digest << "\n";
  }
}

// The publisher's signing pair: -k (default ~/.hmq/keys/...), checked against -K if given.
crypto::sign_keypair signing_keypair(const publish_args& args) {
  std::string sk_path = args.secret_key.empty()
                            ? env_or("HOME", ".") + "/.hmq/keys/" + signing_private_name
                            : args.secret_key;
  auto secret = crypto::read_secret_key_file(sk_path);
  if (!secret)
    usage_error("signing key " + sk_path + ": " + secret.err().message() +
                " (create one with: hmq key create)");
  auto kp = crypto::sign_keypair::from_secret(secret->view());
  if (!kp) usage_error("signing key " + sk_path + ": " + kp.err().message());
  const auto& pk = args.public_key;
  if (!pk.empty()) {
    auto pub = crypto::read_public_key_file(pk);
    if (!pub) usage_error("public key " + pk + ": " + pub.err().message());
    if (!crypto::equal(*pub, kp->pk))
      usage_error("public key " + pk + " does not belong to " + sk_path);
  }
  return std::move(*kp);
}

void publish(command_context& ctx, const publish_args& args) {
  auto text = must(read_text_file(args.file));
  auto parsed = must(parse_service(text, std::filesystem::path(args.file).filename().string()));
  for (const auto& w : parsed.warnings) ctx.err() << "warning: " << w << "\n";
  auto& svc = parsed.service;
  if (svc.org.empty()) svc.org = ctx.target_org();

  auto creds = registry_credentials_of(args, ctx.err());
  resolve_digests(parsed.deployment, creds, args.no_resolve, ctx.err());
  auto kp = signing_keypair(args);
  svc.deployment = serialize_deployment(parsed.deployment);
  // The whole definition an agent acts on, not only the deployment (core/wire/service_signature.h).
  core::wire::sign_service(svc, kp);
  for (const auto& cr : creds) {
    // Only the credentials given with -r travel to nodes, never the local docker login.
    if (std::none_of(args.registries.begin(), args.registries.end(),
                     [&](const std::string& r) { return r.rfind(cr.registry + ":", 0) == 0; })) {
      continue;
    }
    auto d = std::make_unique<fb::DockAuthT>();
    d->registry = cr.registry;
    d->username = cr.username;
    d->token = cr.token;
    svc.dockauths.push_back(std::move(d));
  }
  std::string what = "service " + svc.org + "/" + xc::service_id(svc.url, svc.version, svc.arch);
  fb::ResourceUnion r;
  r.Set(std::move(svc));
  ctx.publish_upsert(r, what);
}

struct verify_args {
  std::string id;
  std::string public_key;  // -K: the key the signature must be made with
  std::string output = "table";
};

// `hmq exchange service verify`: is the service in the exchange signed whole by its publisher
// (and by -K's key)? What an agent checks before it accepts a proposal, checked ahead of time.
void verify(command_context& ctx, const verify_args& args) {
  auto key = ctx.qualified(args.id);
  const std::string org = key.first, name = key.second;
  auto r = ctx.call<fb::ResourceUnion>([&](auto& c, auto& a, auto cb) {
    c.get_resource(a, fb::ResourceKind::service, org, name, std::move(cb));
  });
  const auto* svc = r.AsService();
  if (!svc) throw failure{exit_refused, "the exchange answered with another resource kind"};
  const std::string what = "service " + org + "/" + name;
  std::string problem;
  if (auto v = core::wire::verify_service(*svc); !v) problem = v.err().detail;
  if (problem.empty() && !args.public_key.empty()) {
    auto want = crypto::read_public_key_file(args.public_key);
    if (!want) usage_error("public key " + args.public_key + ": " + want.err().message());
    if (!std::equal(want->begin(), want->end(), svc->publisher_key.begin(),
                    svc->publisher_key.end()))
      problem = "is signed by another key than " + args.public_key;
  }
  const std::string publisher =
      svc->publisher_key.empty() ? "" : crypto::to_base64(svc->publisher_key);
  ctx.json_or_table(
      args.output,
      [&] {
        return nlohmann::json{{"service", org + "/" + name},
                              {"valid", problem.empty()},
                              {"publisherKey", publisher},
                              {"error", problem}};
      },
      [&] {
        if (problem.empty())
          ctx.out() << what << ": signature valid (publisher key " << publisher << ")\n";
      });
  if (!problem.empty()) throw failure{exit_refused, what + " " + problem};
}

}  // namespace

void add_exchange_service(CLI::App& exchange, command_context& ctx) {
  auto* service = exchange.add_subcommand("service", "Services (Horizon service definition files)");
  service->require_subcommand(1);
  auto args = std::make_shared<publish_args>();
  auto* c =
      service->add_subcommand("publish", "Sign and publish a Horizon service definition file");
  c->add_option("-f,--json-file", args->file,
                "Service definition file (Horizon format; $VAR substituted)")
      ->required();
  c->add_option("-k,--private-key-file", args->secret_key,
                "Ed25519 private key for the deployment signature (default ~/.hmq/keys/" +
                    std::string(signing_private_name) + ")");
  c->add_option("-K,--public-key-file", args->public_key,
                "Its public key (checked against the private key)");
  c->add_option(
      "-r,--registry-token", args->registries,
      "registry:user:token for pulling the images; repeatable; also used to resolve digests");
  c->add_flag("--no-resolve", args->no_resolve,
              "Refuse images without a digest instead of asking the registry");
  ctx.on_run(c, [&ctx, args] { publish(ctx, *args); });
  auto vargs = std::make_shared<verify_args>();
  auto* v = service->add_subcommand(
      "verify",
      "Check that a service in the exchange is signed whole (identity, sharing, required "
      "services, user inputs, deployment) by its publisher, as agents check it");
  v->add_option("id", vargs->id, "Service: [org/]id (id = url_version_arch, as in hzn)")
      ->required();
  v->add_option("-K,--public-key-file", vargs->public_key,
                "The publisher's public key: the signature must be made with it");
  add_output_option(v, vargs->output);
  ctx.on_run(v, [&ctx, vargs] { verify(ctx, *vargs); });
  add_resource_verbs(*service, ctx, fb::ResourceKind::service, "service");
}

}  // namespace hmq::cli
