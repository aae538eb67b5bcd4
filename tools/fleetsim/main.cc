#include <CLI/CLI.hpp>

#include "tools/fleetsim/fleetsim.h"

int main(int argc, char** argv) {
  CLI::App app{
      "hmq-fleetsim: N simulated edge nodes (real agent engines, in-memory runtime) in one process "
      "against a real broker, exchange and agbot; prints progress and a summary"};
  hmq::fleetsim::options o;
  hmq::fleetsim::add_flags(app, o);
  CLI11_PARSE(app, argc, argv);
  return hmq::fleetsim::run(o);
}
