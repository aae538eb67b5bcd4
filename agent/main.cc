#include <CLI/CLI.hpp>

#include "agent/app.h"
#include "agent/config.h"

int main(int argc, char** argv) {
  CLI::App app{
      "hmq-agent: the Horizon-MQ edge node agent (registers the node, negotiates agreements, "
      "runs their workloads)"};
  hmq::agent::config c;
  hmq::agent::add_flags(app, c);
  CLI11_PARSE(app, argc, argv);
  return hmq::agent::run(c);
}
